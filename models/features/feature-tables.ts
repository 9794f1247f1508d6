/**
 * The offline feature tables of a data set: one Parquet file per batch view under `features/` in
 * the data set folder, plus a manifest saying which views, rows, columns and types it holds and
 * which data (by fingerprint) they were built from.
 *
 *   features/manifest.json          views, rows, columns with their types, data fingerprint
 *   features/<view>.parquet         <entity>_id, event_time, then the view's fields
 *
 * The layout is Feast's offline source: an entity key column, an event timestamp column, one
 * column per feature. Scalars are native Parquet columns; list fields (`string_list`,
 * `float_list`) are JSON arrays in a string column, so the files read in pandas or DuckDB without
 * a list type the data layer does not write. The folder is written beside the data and swapped in
 * whole, so a reader never sees half of a rebuild.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { FeatureType } from '../../runtime/features/types.js';
import type {
  FeatureDefinitions,
  FeatureValue,
  ViewDefinition,
} from '../../runtime/features/types.js';
import { readDataset, readManifest } from '../data/dataset-io.js';
import { DatasetFormatError } from '../data/errors.js';
import { ColumnKind, openParquetFile, ParquetFileWriter } from '../data/parquet.js';
import type { ColumnSpec, ColumnValues } from '../data/parquet.js';
import type { DatasetManifest } from '../data/types.js';
import { batchViewsOf, checkBatchDefinitions, computeBatchViews } from './batch-views.js';
import type { FeatureTable } from './batch-views.js';

/** The folder of the feature tables inside a data set folder. */
export const FEATURES_DIR = 'features';
export const FEATURES_MANIFEST_FILE = 'manifest.json';
/** The column holding each row's event time (epoch ms, UTC). */
export const EVENT_TIME_COLUMN = 'event_time';
/** Type of the event time column in a table's `columns`. */
export const EVENT_TIME_TYPE = 'timestamp_ms';
/** Type of the entity id column in a table's `columns`. */
export const ENTITY_ID_TYPE = 'string';

/** Rows per row group of a feature table. */
const ROW_GROUP = 65_536;
const FORMAT_KEY = 'recsys.format';
const FORMAT_VALUE = 'recsys-feature-table/1';

/** How each feature type is stored in Parquet, recorded in the manifest for other readers. */
export const FEATURE_TYPE_STORAGE: Readonly<Record<FeatureType, string>> = {
  [FeatureType.Float]: 'DOUBLE',
  [FeatureType.Int]: 'INT32',
  [FeatureType.Bool]: 'INT32 (UINT_8), 0 or 1',
  [FeatureType.String]: 'BYTE_ARRAY (UTF8)',
  [FeatureType.FloatList]: 'BYTE_ARRAY (UTF8), a JSON array of numbers',
  [FeatureType.StringList]: 'BYTE_ARRAY (UTF8), a JSON array of strings',
};

const COLUMN_KIND: Readonly<Record<FeatureType, ColumnKind>> = {
  [FeatureType.Float]: ColumnKind.Float64,
  [FeatureType.Int]: ColumnKind.Int32,
  [FeatureType.Bool]: ColumnKind.Uint8,
  [FeatureType.String]: ColumnKind.String,
  [FeatureType.FloatList]: ColumnKind.String,
  [FeatureType.StringList]: ColumnKind.String,
};

/** One view's table as the manifest describes it. */
export interface FeatureTableInfo {
  readonly view: string;
  readonly entity: string;
  /** File name inside `features/`. */
  readonly file: string;
  readonly rows: number;
  /** Oldest and newest event time of the rows (epoch ms); both 0 without rows. */
  readonly eventTimeRange: { readonly from: number; readonly to: number };
  /**
   * Every column in file order with its type: the entity id column `string`, `event_time`
   * `timestamp_ms`, each field its feature type.
   */
  readonly columns: Readonly<Record<string, string>>;
}

/** `features/manifest.json`. */
export interface FeatureTablesManifest {
  readonly format: 'recsys-feature-tables';
  readonly version: 1;
  /** Name of the data set the tables were built from. */
  readonly dataset: string;
  /** Fingerprint of that data set's files: tables of another fingerprint are out of date. */
  readonly fingerprint: string;
  readonly createdAt: string;
  /** End of the data (epoch ms): the event time of `item_popularity` rows. */
  readonly dataEndMs: number;
  /** How feature types are stored in Parquet. */
  readonly storage: Readonly<Record<string, string>>;
  /** The tables, by view name. */
  readonly views: Readonly<Record<string, FeatureTableInfo>>;
}

/** One row of a feature table as read back. */
export interface FeatureTableRow {
  readonly entity: string;
  readonly eventTimeMs: number;
  /** The declared fields of the view, each of its declared type. */
  readonly values: Record<string, FeatureValue>;
}

/** The entity id column of a view of `entity`: `user_id`, `item_id`. */
export function entityIdColumn(entity: string): string {
  return `${entity}_id`;
}

export function featuresDir(datasetDir: string): string {
  return join(datasetDir, FEATURES_DIR);
}

function tableFile(view: string): string {
  return `${view}.parquet`;
}

function columnSpecs(view: ViewDefinition): ColumnSpec[] {
  return [
    { name: entityIdColumn(view.entity), kind: ColumnKind.String },
    { name: EVENT_TIME_COLUMN, kind: ColumnKind.TimestampMs },
    ...view.fields.map((f) => ({ name: f.name, kind: COLUMN_KIND[f.type] })),
  ];
}

/** One column's values of rows [start, end), in the Parquet kind of its feature type. */
function encodeColumn(
  type: FeatureType,
  values: readonly FeatureValue[],
  start: number,
  end: number,
  where: string,
): ColumnValues {
  const rows = end - start;
  switch (type) {
    case FeatureType.Float:
      return Float64Array.from({ length: rows }, (_, r) => values[start + r] as number);
    case FeatureType.Int: {
      const out = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        const v = values[start + r] as number;
        if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
          throw new DatasetFormatError(where, `row ${start + r}: ${v} is not a 32-bit integer`);
        }
        out[r] = v;
      }
      return out;
    }
    case FeatureType.Bool:
      return Uint8Array.from({ length: rows }, (_, r) => (values[start + r] === true ? 1 : 0));
    case FeatureType.String:
      return Array.from({ length: rows }, (_, r) => values[start + r] as string);
    case FeatureType.FloatList:
    case FeatureType.StringList:
      return Array.from({ length: rows }, (_, r) => JSON.stringify(values[start + r]));
  }
}

function timeRange(times: Float64Array): { from: number; to: number } {
  if (times.length === 0) return { from: 0, to: 0 };
  let from = Infinity;
  let to = -Infinity;
  for (const t of times) {
    if (t < from) from = t;
    if (t > to) to = t;
  }
  return { from, to };
}

async function writeTable(dir: string, table: FeatureTable): Promise<FeatureTableInfo> {
  const { view } = table;
  const path = join(dir, tableFile(view.name));
  const specs = columnSpecs(view);
  const writer = await ParquetFileWriter.open(path, specs, {
    kvMetadata: { [FORMAT_KEY]: FORMAT_VALUE, 'recsys.view': view.name },
  });
  const n = table.ids.length;
  try {
    for (let start = 0; start < n; start += ROW_GROUP) {
      const end = Math.min(n, start + ROW_GROUP);
      const data: Record<string, ColumnValues> = {
        [entityIdColumn(view.entity)]: table.ids.slice(start, end),
        [EVENT_TIME_COLUMN]: table.eventTimeMs.subarray(start, end),
      };
      for (const field of view.fields) {
        const values = table.columns[field.name];
        if (values === undefined) throw new DatasetFormatError(path, `no values of ${field.name}`);
        data[field.name] = encodeColumn(field.type, values, start, end, path);
      }
      await writer.writeRowGroup(data, end - start);
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  const columns: Record<string, string> = {
    [entityIdColumn(view.entity)]: ENTITY_ID_TYPE,
    [EVENT_TIME_COLUMN]: EVENT_TIME_TYPE,
  };
  for (const field of view.fields) columns[field.name] = field.type;
  return {
    view: view.name,
    entity: view.entity,
    file: tableFile(view.name),
    rows: n,
    eventTimeRange: timeRange(table.eventTimeMs.subarray(0, n)),
    columns,
  };
}

/**
 * Writes `tables` as `features/` of the data set in `datasetDir`, replacing what was there (the
 * new folder is written beside it and renamed into place). `createdAt` defaults to now.
 */
export async function writeFeatureTables(
  datasetDir: string,
  tables: readonly FeatureTable[],
  dataset: Pick<DatasetManifest, 'name' | 'fingerprint'> & { readonly endMs: number },
  createdAt: string = new Date().toISOString(),
): Promise<FeatureTablesManifest> {
  const final = featuresDir(datasetDir);
  const building = `${final}.tmp`;
  await rm(building, { recursive: true, force: true });
  await mkdir(building, { recursive: true });
  const views: Record<string, FeatureTableInfo> = {};
  try {
    for (const table of tables) views[table.view.name] = await writeTable(building, table);
    const manifest: FeatureTablesManifest = {
      format: 'recsys-feature-tables',
      version: 1,
      dataset: dataset.name,
      fingerprint: dataset.fingerprint,
      createdAt,
      dataEndMs: dataset.endMs,
      storage: FEATURE_TYPE_STORAGE,
      views,
    };
    await writeFile(
      join(building, FEATURES_MANIFEST_FILE),
      `${JSON.stringify(manifest, null, 2)}\n`,
    );
    await rm(final, { recursive: true, force: true });
    await rename(building, final);
    return manifest;
  } catch (err) {
    await rm(building, { recursive: true, force: true });
    throw err;
  }
}

/** What {@link buildFeatureTables} did. */
export interface BuildFeatureTablesResult {
  readonly manifest: FeatureTablesManifest;
  readonly durationMs: number;
}

/**
 * Reads the data set in `datasetDir`, computes every batch view of `definitions` and writes them
 * as its `features/` folder. Throws `ConfigError` when a declared batch view or field cannot be
 * computed (before reading anything).
 */
export async function buildFeatureTables(
  datasetDir: string,
  definitions: FeatureDefinitions,
  now: () => number = () => performance.now(),
): Promise<BuildFeatureTablesResult> {
  checkBatchDefinitions(definitions);
  const started = now();
  const dataset = await readDataset(datasetDir);
  const tables = computeBatchViews(dataset, definitions);
  const { events } = dataset;
  const endMs =
    events.length > 0 ? (events.ts[events.length - 1] ?? 0) : dataset.manifest.timeRange.to;
  const manifest = await writeFeatureTables(datasetDir, tables, {
    name: dataset.manifest.name,
    fingerprint: dataset.manifest.fingerprint,
    endMs,
  });
  return { manifest, durationMs: now() - started };
}

/** One line: `feature tables: user_profile 5,000 rows, item_profile 20,000 rows, ...`. */
export function describeFeatureTables(manifest: FeatureTablesManifest): string {
  const tables = Object.values(manifest.views).map(
    (t) => `${t.view} ${t.rows.toLocaleString('en-US')} rows`,
  );
  return `feature tables: ${tables.length === 0 ? 'none (no batch views)' : tables.join(', ')}`;
}

/** Reads `features/manifest.json` of the data set in `datasetDir`. */
export async function readFeatureTablesManifest(
  datasetDir: string,
): Promise<FeatureTablesManifest> {
  const path = join(featuresDir(datasetDir), FEATURES_MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DatasetFormatError(
      path,
      'no feature tables here; build them with `recsys data features --data <name>`',
      { cause: err },
    );
  }
  let manifest: FeatureTablesManifest;
  try {
    manifest = JSON.parse(text) as FeatureTablesManifest;
  } catch (err) {
    throw new DatasetFormatError(path, 'is not valid JSON', { cause: err });
  }
  if (
    manifest.format !== 'recsys-feature-tables' ||
    manifest.version !== 1 ||
    typeof manifest.views !== 'object' ||
    manifest.views === null
  ) {
    throw new DatasetFormatError(path, 'is not a recsys-feature-tables version 1 manifest');
  }
  return manifest;
}

/** Why the feature tables of a data set cannot be used as they are; `null` when they can. */
export async function staleFeatureTables(
  datasetDir: string,
  definitions: FeatureDefinitions,
  dataset?: DatasetManifest,
): Promise<string | null> {
  const data = dataset ?? (await readManifest(datasetDir));
  let tables: FeatureTablesManifest;
  try {
    tables = await readFeatureTablesManifest(datasetDir);
  } catch (err) {
    if (err instanceof DatasetFormatError) return 'there are no feature tables';
    throw err;
  }
  if (tables.fingerprint !== data.fingerprint) {
    return `the feature tables were built from data ${tables.fingerprint.slice(0, 12)}, the data set is ${data.fingerprint.slice(0, 12)}`;
  }
  for (const view of batchViewsOf(definitions)) {
    const reason = tableMismatch(tables.views[view.name], view);
    if (reason !== null) return reason;
  }
  return null;
}

/** Why the table `info` cannot serve `view` as now declared; `null` when it can. */
function tableMismatch(info: FeatureTableInfo | undefined, view: ViewDefinition): string | null {
  if (info === undefined) return `there is no table of view ${view.name}`;
  if (info.entity !== view.entity) {
    return `the table of ${view.name} is keyed by ${info.entity}, the view by ${view.entity}`;
  }
  for (const field of view.fields) {
    const stored = info.columns[field.name];
    if (stored === undefined) return `the table of ${view.name} has no field ${field.name}`;
    if (
      stored !== field.type &&
      !(stored === FeatureType.Int && field.type === FeatureType.Float)
    ) {
      return `field ${field.name} of ${view.name} is stored as ${stored}, declared ${field.type}`;
    }
  }
  return null;
}

function decode(type: FeatureType, raw: unknown, where: () => string): FeatureValue {
  switch (type) {
    case FeatureType.Float:
    case FeatureType.Int:
      if (typeof raw === 'number') return raw;
      if (typeof raw === 'bigint') return Number(raw);
      break;
    case FeatureType.Bool:
      if (typeof raw === 'number') return raw !== 0;
      if (typeof raw === 'boolean') return raw;
      break;
    case FeatureType.String:
      if (typeof raw === 'string') return raw;
      break;
    case FeatureType.FloatList:
    case FeatureType.StringList: {
      if (typeof raw !== 'string') break;
      let list: unknown;
      try {
        list = JSON.parse(raw);
      } catch {
        break;
      }
      const element = type === FeatureType.FloatList ? 'number' : 'string';
      if (Array.isArray(list) && list.every((v) => typeof v === element)) {
        return list as number[] | string[];
      }
      break;
    }
  }
  throw new DatasetFormatError(where(), `is not a ${type}: ${String(raw)}`);
}

/**
 * Reads the table of `view` from the data set in `datasetDir`, one row group at a time: yields the
 * rows of each group with exactly the fields `view` declares now (columns the table has beyond
 * them are not read). Throws `DatasetFormatError` when the table lacks a declared field or stores
 * it with another type.
 */
export async function* readFeatureRows(
  datasetDir: string,
  view: ViewDefinition,
  manifest?: FeatureTablesManifest,
): AsyncGenerator<FeatureTableRow[]> {
  const tables = manifest ?? (await readFeatureTablesManifest(datasetDir));
  const info = tables.views[view.name];
  const dir = featuresDir(datasetDir);
  const mismatch = tableMismatch(info, view);
  if (info === undefined || mismatch !== null) {
    throw new DatasetFormatError(
      join(dir, FEATURES_MANIFEST_FILE),
      `${mismatch ?? ''}; rebuild the tables with \`recsys data features --data <name>\``,
    );
  }
  const reader = await openParquetFile(join(dir, info.file));
  const id = entityIdColumn(view.entity);
  const columns = [id, EVENT_TIME_COLUMN, ...view.fields.map((f) => f.name)];
  let start = 0;
  for (let g = 0; g < reader.rowGroups.length; g++) {
    const rows = reader.rowGroups[g] ?? 0;
    const data: Record<string, unknown[]> = {};
    for (const c of columns) data[c] = new Array<unknown>(rows);
    await reader.readRowGroup(g, columns, (column, rowStart, values) => {
      const target = data[column];
      if (target === undefined) return;
      for (let i = 0; i < values.length; i++) {
        const r = rowStart - start + i;
        if (r >= 0 && r < rows) target[r] = values[i];
      }
    });
    const out: FeatureTableRow[] = new Array<FeatureTableRow>(rows);
    for (let r = 0; r < rows; r++) {
      const where = () => `${reader.path} row ${start + r}`;
      const entity = data[id]?.[r];
      const time = data[EVENT_TIME_COLUMN]?.[r];
      if (typeof entity !== 'string' || typeof time !== 'number') {
        throw new DatasetFormatError(where(), `has no ${id} or ${EVENT_TIME_COLUMN}`);
      }
      const values: Record<string, FeatureValue> = {};
      for (const field of view.fields) {
        values[field.name] = decode(
          field.type,
          data[field.name]?.[r],
          () => `${where()} ${field.name}`,
        );
      }
      out[r] = { entity, eventTimeMs: time, values };
    }
    start += rows;
    yield out;
  }
}

/** Reads the whole table of `view` into memory (tests, small data sets). */
export async function readFeatureTable(
  datasetDir: string,
  view: ViewDefinition,
): Promise<FeatureTable> {
  const ids: string[] = [];
  const times: number[] = [];
  const columns: Record<string, FeatureValue[]> = {};
  for (const field of view.fields) columns[field.name] = [];
  for await (const rows of readFeatureRows(datasetDir, view)) {
    for (const row of rows) {
      ids.push(row.entity);
      times.push(row.eventTimeMs);
      for (const field of view.fields) columns[field.name]!.push(row.values[field.name]!);
    }
  }
  return { view, ids, eventTimeMs: Float64Array.from(times), columns };
}
