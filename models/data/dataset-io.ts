/**
 * Reading and writing a data set folder (see `types.ts`): three Parquet files plus a manifest.
 *
 *   items.parquet   item_id, category, tags ('|'-joined tag names), created_at, title
 *   users.parquet   user_id, age_band, country, device, signup_at
 *   events.parquet  user_index, item_index, ts, type, value; sorted by ts
 *
 * Events refer to users and items by row number (dense index), which keeps the largest file small
 * and lets a reader join with one array lookup. Category, tag and profile vocabularies are kept in
 * each file's key-value metadata (`recsys.vocabulary.<column>`, a JSON array), so a round trip
 * keeps their order and entries no row uses; string columns still hold the names, so the files
 * read on their own in pandas, DuckDB or Feast.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatasetFormatError, DataOptionError } from './errors.js';
import {
  ColumnKind,
  describeColumns,
  openParquetFile,
  ParquetFileWriter,
  streamFileBytes,
} from './parquet.js';
import type { ColumnSpec, ParquetFileReader } from './parquet.js';
import { sliceEvents } from './split.js';
import type { Dataset, DatasetManifest, EventTable, ItemTable, UserTable } from './types.js';

export const MANIFEST_FILE = 'manifest.json';
export const ITEMS_FILE = 'items.parquet';
export const USERS_FILE = 'users.parquet';
export const EVENTS_FILE = 'events.parquet';
/** The synthetic generator's ground truth (see truth.ts). */
export const TRUTH_DIR = 'truth';
/** The data files, in fingerprint order. */
export const DATA_FILES = [ITEMS_FILE, USERS_FILE, EVENTS_FILE] as const;

/** Separator of tag names in the `tags` column; tag names must not contain it. */
export const TAG_SEPARATOR = '|';

const VOCABULARY_KEY = 'recsys.vocabulary.';
const FORMAT_KEY = 'recsys.format';
const FORMAT_VALUE = 'recsys-dataset/1';

/** Rows per row group of the items and users files. */
const TABLE_ROW_GROUP = 65_536;
/** Rows per row group of the events file. @default 131072 */
export const EVENT_ROW_GROUP = 131_072;

const VOCAB = 'vocabulary order in key-value metadata recsys.vocabulary.';

const ITEM_COLUMNS: readonly ColumnSpec[] = [
  { name: 'item_id', kind: ColumnKind.String, doc: 'original id; row number = item index' },
  { name: 'category', kind: ColumnKind.String, doc: `primary category; ${VOCAB}category` },
  {
    name: 'tags',
    kind: ColumnKind.String,
    doc: `tag names joined by '|', '' for none; ${VOCAB}tags`,
  },
  {
    name: 'created_at',
    kind: ColumnKind.TimestampMs,
    nullable: true,
    doc: 'creation or release time, UTC; null = unknown',
  },
  { name: 'title', kind: ColumnKind.String, nullable: true, doc: 'null = none' },
];

const USER_COLUMNS: readonly ColumnSpec[] = [
  { name: 'user_id', kind: ColumnKind.String, doc: 'original id; row number = user index' },
  {
    name: 'age_band',
    kind: ColumnKind.String,
    nullable: true,
    doc: `null = unknown; ${VOCAB}age_band`,
  },
  {
    name: 'country',
    kind: ColumnKind.String,
    nullable: true,
    doc: `null = unknown; ${VOCAB}country`,
  },
  {
    name: 'device',
    kind: ColumnKind.String,
    nullable: true,
    doc: `null = unknown; ${VOCAB}device`,
  },
  { name: 'signup_at', kind: ColumnKind.TimestampMs, nullable: true, doc: 'UTC; null = unknown' },
];

const EVENT_COLUMNS: readonly ColumnSpec[] = [
  { name: 'user_index', kind: ColumnKind.Int32, doc: 'row of users.parquet' },
  { name: 'item_index', kind: ColumnKind.Int32, doc: 'row of items.parquet' },
  {
    name: 'ts',
    kind: ColumnKind.TimestampMs,
    delta: true,
    statistics: true,
    doc: 'event time, UTC; the file is sorted by it',
  },
  {
    name: 'type',
    kind: ColumnKind.Uint8,
    doc: '0 view, 1 click, 2 like, 3 purchase, 4 rating',
  },
  {
    name: 'value',
    kind: ColumnKind.Float32,
    doc: 'the rating of a rating, dwell seconds of a view or click when known, else 0',
  },
];

/** The schema the manifest records: per file, each column's kind (`?` = nullable) and meaning. */
export const DATASET_SCHEMA: Readonly<Record<string, Record<string, string>>> = {
  [ITEMS_FILE]: describeColumns(ITEM_COLUMNS),
  [USERS_FILE]: describeColumns(USER_COLUMNS),
  [EVENTS_FILE]: describeColumns(EVENT_COLUMNS),
};

export interface DatasetInfo {
  readonly name: string;
  readonly source: DatasetManifest['source'];
  readonly details: Record<string, unknown>;
}

function vocabularyMetadata(entries: Record<string, readonly string[]>): Record<string, string> {
  const kv: Record<string, string> = { [FORMAT_KEY]: FORMAT_VALUE };
  for (const [column, words] of Object.entries(entries)) {
    kv[VOCABULARY_KEY + column] = JSON.stringify(words);
  }
  return kv;
}

function nameOf(vocabulary: readonly string[], index: number, what: string): string | null {
  if (index === -1) return null;
  const name = vocabulary[index];
  if (name === undefined) throw new DataOptionError(what, `index ${index} is out of range`);
  return name;
}

/**
 * Makes `dir` ready for a new data set: creates it, and removes the manifest (so a folder is
 * never taken for a complete data set while its files are rewritten) and any ground truth of an
 * earlier synthetic data set there.
 */
export async function prepareDatasetDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await rm(join(dir, MANIFEST_FILE), { force: true });
  await rm(join(dir, TRUTH_DIR), { recursive: true, force: true });
}

/** Writes items.parquet. */
export async function writeItems(dir: string, items: ItemTable): Promise<void> {
  const n = items.ids.length;
  if (items.category.length < n || items.createdAt.length < n || items.tagOffsets.length < n + 1) {
    throw new DataOptionError('items', 'columns are shorter than ids');
  }
  if (items.titles !== undefined && items.titles.length !== n) {
    throw new DataOptionError('items.titles', 'must have one title per item');
  }
  for (const tag of items.tags) {
    if (tag.includes(TAG_SEPARATOR)) {
      throw new DataOptionError('items.tags', `must not contain '${TAG_SEPARATOR}': ${tag}`);
    }
  }
  const writer = await ParquetFileWriter.open(join(dir, ITEMS_FILE), ITEM_COLUMNS, {
    kvMetadata: vocabularyMetadata({ category: items.categories, tags: items.tags }),
  });
  try {
    for (let start = 0; start < n; start += TABLE_ROW_GROUP) {
      const rows = Math.min(TABLE_ROW_GROUP, n - start);
      const category = new Array<string>(rows);
      const tags = new Array<string>(rows);
      for (let r = 0; r < rows; r++) {
        const i = start + r;
        category[r] = nameOf(items.categories, items.category[i] ?? -1, 'items.category') ?? '';
        const from = items.tagOffsets[i] ?? 0;
        const to = items.tagOffsets[i + 1] ?? from;
        const names: string[] = [];
        for (let k = from; k < to; k++) {
          names.push(nameOf(items.tags, items.tagIds[k] ?? -1, 'items.tagIds') ?? '');
        }
        tags[r] = names.join(TAG_SEPARATOR);
      }
      await writer.writeRowGroup(
        {
          item_id: items.ids.slice(start, start + rows),
          category,
          tags,
          created_at: items.createdAt.subarray(start, start + rows),
          title:
            items.titles === undefined
              ? new Array<null>(rows).fill(null)
              : items.titles.slice(start, start + rows),
        },
        rows,
      );
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** Writes users.parquet. */
export async function writeUsers(dir: string, users: UserTable): Promise<void> {
  const n = users.ids.length;
  if (
    users.ageBand.length < n ||
    users.country.length < n ||
    users.device.length < n ||
    users.signupAt.length < n
  ) {
    throw new DataOptionError('users', 'columns are shorter than ids');
  }
  const writer = await ParquetFileWriter.open(join(dir, USERS_FILE), USER_COLUMNS, {
    kvMetadata: vocabularyMetadata({
      age_band: users.ageBands,
      country: users.countries,
      device: users.devices,
    }),
  });
  const names = (vocabulary: readonly string[], column: Int32Array, start: number, rows: number) =>
    Array.from(column.subarray(start, start + rows), (v) => nameOf(vocabulary, v, 'users'));
  try {
    for (let start = 0; start < n; start += TABLE_ROW_GROUP) {
      const rows = Math.min(TABLE_ROW_GROUP, n - start);
      await writer.writeRowGroup(
        {
          user_id: users.ids.slice(start, start + rows),
          age_band: names(users.ageBands, users.ageBand, start, rows),
          country: names(users.countries, users.country, start, rows),
          device: names(users.devices, users.device, start, rows),
          signup_at: users.signupAt.subarray(start, start + rows),
        },
        rows,
      );
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** What an {@link EventWriter} wrote. */
export interface EventFileSummary {
  readonly events: number;
  /** First and last event time (epoch ms); both NaN when there are no events. */
  readonly timeRange: { readonly from: number; readonly to: number };
}

/**
 * Streams events.parquet: `append` takes columnar batches in time order (each batch sorted, and
 * no earlier than the last event appended), buffers one row group and writes it when full, so a
 * generator of any size holds one row group of events at a time.
 */
export interface EventWriter {
  /** Events appended so far. */
  readonly length: number;
  /** Appends the first `batch.length` events of the batch. Rejects if time order breaks. */
  append(batch: EventTable): Promise<void>;
  /** Writes the last row group and the footer. */
  close(): Promise<EventFileSummary>;
  /** Closes the file after a failure; the file is left invalid. */
  abort(): Promise<void>;
}

export interface EventWriterOptions {
  /** Events per row group. @default 131072 */
  rowGroupSize?: number;
  /** Largest valid user index + 1; appends with an index outside [0, users) reject. */
  users?: number;
  /** Largest valid item index + 1. */
  items?: number;
}

export async function openEventWriter(
  dir: string,
  options: EventWriterOptions = {},
): Promise<EventWriter> {
  const size = options.rowGroupSize ?? EVENT_ROW_GROUP;
  if (!Number.isInteger(size) || size < 1) {
    throw new DataOptionError('rowGroupSize', 'must be a positive integer');
  }
  const maxUser = options.users ?? 2 ** 31 - 1;
  const maxItem = options.items ?? 2 ** 31 - 1;
  await mkdir(dir, { recursive: true });
  const path = join(dir, EVENTS_FILE);
  const file = await ParquetFileWriter.open(path, EVENT_COLUMNS, {
    kvMetadata: { [FORMAT_KEY]: FORMAT_VALUE },
  });
  const buffer = {
    user: new Int32Array(size),
    item: new Int32Array(size),
    ts: new Float64Array(size),
    type: new Uint8Array(size),
    value: new Float32Array(size),
  };
  let filled = 0;
  let total = 0;
  let first = NaN;
  let last = -Infinity;
  let failed: Error | undefined;

  const flush = async (): Promise<void> => {
    if (filled === 0) return;
    await file.writeRowGroup(
      {
        user_index: buffer.user,
        item_index: buffer.item,
        ts: buffer.ts,
        type: buffer.type,
        value: buffer.value,
      },
      filled,
    );
    filled = 0;
  };

  return {
    get length() {
      return total;
    },
    async append(batch) {
      if (failed !== undefined) throw failed;
      try {
        const n = batch.length;
        for (let i = 0; i < n; i++) {
          const ts = batch.ts[i] ?? NaN;
          if (!(ts >= last)) {
            throw new DatasetFormatError(
              path,
              `events must be appended in time order: event ${total + i} at ${ts} follows ${last}`,
            );
          }
          last = ts;
          const user = batch.user[i] ?? -1;
          const item = batch.item[i] ?? -1;
          if (user < 0 || user >= maxUser || item < 0 || item >= maxItem) {
            throw new DatasetFormatError(
              path,
              `event ${total + i} refers to user ${user}, item ${item}: out of range`,
            );
          }
        }
        if (n > 0 && total === 0) first = batch.ts[0] ?? NaN;
        let offset = 0;
        while (offset < n) {
          const take = Math.min(size - filled, n - offset);
          buffer.user.set(batch.user.subarray(offset, offset + take), filled);
          buffer.item.set(batch.item.subarray(offset, offset + take), filled);
          buffer.ts.set(batch.ts.subarray(offset, offset + take), filled);
          buffer.type.set(batch.type.subarray(offset, offset + take), filled);
          buffer.value.set(batch.value.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
          total += take;
          if (filled === size) await flush();
        }
      } catch (err) {
        failed = err instanceof Error ? err : new Error(String(err));
        throw failed;
      }
    },
    async close() {
      if (failed !== undefined) throw failed;
      await flush();
      await file.close();
      return { events: total, timeRange: { from: first, to: total === 0 ? NaN : last } };
    },
    async abort() {
      await file.abort();
    },
  };
}

/**
 * SHA-256 over the bytes of items.parquet, users.parquet and events.parquet, in that order:
 * two data sets with the same fingerprint hold the same data.
 */
export async function datasetFingerprint(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of DATA_FILES) {
    try {
      await streamFileBytes(join(dir, file), (chunk) => hash.update(chunk));
    } catch (err) {
      throw new DatasetFormatError(join(dir, file), 'cannot read', { cause: err });
    }
  }
  return hash.digest('hex');
}

/**
 * Writes manifest.json for a folder whose data files are written: counts, time range, schema,
 * fingerprint. `createdAt` defaults to now; pass a fixed one for a reproducible manifest.
 */
export async function writeManifest(
  dir: string,
  info: DatasetInfo,
  contents: {
    users: number;
    items: number;
    events: EventFileSummary;
    createdAt?: string;
  },
): Promise<DatasetManifest> {
  const manifest: DatasetManifest = {
    format: 'recsys-dataset',
    version: 1,
    name: info.name,
    source: info.source,
    createdAt: contents.createdAt ?? new Date().toISOString(),
    counts: { users: contents.users, items: contents.items, events: contents.events.events },
    timeRange: {
      from: contents.events.events === 0 ? 0 : contents.events.timeRange.from,
      to: contents.events.events === 0 ? 0 : contents.events.timeRange.to,
    },
    fingerprint: await datasetFingerprint(dir),
    schema: DATASET_SCHEMA,
    details: info.details,
  };
  // Written last and renamed into place: a folder with a manifest is a complete data set.
  const tmp = join(dir, `${MANIFEST_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(tmp, join(dir, MANIFEST_FILE));
  return manifest;
}

function isSorted(ts: Float64Array, n: number): boolean {
  for (let i = 1; i < n; i++) if ((ts[i] ?? 0) < (ts[i - 1] ?? 0)) return false;
  return true;
}

/** The events in time order (a stable sort: equal times keep their order). */
function inTimeOrder(events: EventTable): EventTable {
  const n = events.length;
  if (isSorted(events.ts, n)) return events;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const ts = events.ts;
  order.sort((a, b) => (ts[a] ?? 0) - (ts[b] ?? 0) || a - b);
  return gather(events, order);
}

function gather(events: EventTable, order: Uint32Array): EventTable {
  const n = order.length;
  const out = {
    length: n,
    user: new Int32Array(n),
    item: new Int32Array(n),
    ts: new Float64Array(n),
    type: new Uint8Array(n),
    value: new Float32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const j = order[i] ?? 0;
    out.user[i] = events.user[j] ?? 0;
    out.item[i] = events.item[j] ?? 0;
    out.ts[i] = events.ts[j] ?? 0;
    out.type[i] = events.type[j] ?? 0;
    out.value[i] = events.value[j] ?? 0;
  }
  return out;
}

/**
 * Writes a whole data set held in memory: items.parquet, users.parquet, events.parquet (sorted by
 * time if they are not already; equal times keep their order), then manifest.json.
 */
export async function writeDataset(
  dir: string,
  tables: { items: ItemTable; users: UserTable; events: EventTable },
  info: DatasetInfo,
): Promise<DatasetManifest> {
  const { items, users } = tables;
  for (let i = 0; i < tables.events.length; i++) {
    if (Number.isNaN(tables.events.ts[i])) {
      throw new DataOptionError('events.ts', `event ${i} has no time`);
    }
  }
  const events = inTimeOrder(tables.events);
  await prepareDatasetDir(dir);
  await writeItems(dir, items);
  await writeUsers(dir, users);
  const writer = await openEventWriter(dir, { users: users.ids.length, items: items.ids.length });
  let summary: EventFileSummary;
  try {
    for (let start = 0; start < events.length; start += EVENT_ROW_GROUP) {
      const end = Math.min(events.length, start + EVENT_ROW_GROUP);
      await writer.append(sliceEvents(events, start, end));
    }
    summary = await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writeManifest(dir, info, {
    users: users.ids.length,
    items: items.ids.length,
    events: summary,
  });
}

export async function readManifest(dir: string): Promise<DatasetManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DatasetFormatError(path, 'no data set here (manifest.json cannot be read)', {
      cause: err,
    });
  }
  let manifest: DatasetManifest;
  try {
    manifest = JSON.parse(text) as DatasetManifest;
  } catch (err) {
    throw new DatasetFormatError(path, 'is not valid JSON', { cause: err });
  }
  if (manifest.format !== 'recsys-dataset' || manifest.version !== 1) {
    throw new DatasetFormatError(path, 'is not a recsys-dataset version 1 manifest');
  }
  return manifest;
}

/** Reads a vocabulary from key-value metadata, or starts an empty one for files without it. */
function vocabulary(reader: ParquetFileReader, column: string): string[] {
  const text = reader.kvMetadata[VOCABULARY_KEY + column];
  if (text === undefined) return [];
  const words = JSON.parse(text) as unknown;
  if (!Array.isArray(words) || !words.every((w) => typeof w === 'string')) {
    throw new DatasetFormatError(reader.path, `vocabulary of ${column} is not a string array`);
  }
  return words;
}

/** Maps names to indices, adding names the vocabulary lacks (files from other tools). */
class Lookup {
  private readonly index = new Map<string, number>();
  constructor(readonly words: string[]) {
    words.forEach((w, i) => this.index.set(w, i));
  }
  get(word: string): number {
    let i = this.index.get(word);
    if (i === undefined) {
      i = this.words.length;
      this.words.push(word);
      this.index.set(word, i);
    }
    return i;
  }
}

/** Reads the named columns of a file group by group into per-group arrays. */
async function forEachGroup(
  reader: ParquetFileReader,
  columns: readonly string[],
  onGroup: (start: number, rows: number, data: Record<string, ArrayLike<unknown>>) => void,
): Promise<void> {
  let start = 0;
  for (let g = 0; g < reader.rowGroups.length; g++) {
    const rows = reader.rowGroups[g] ?? 0;
    const data: Record<string, unknown[]> = {};
    for (const c of columns) data[c] = new Array<unknown>(rows);
    await reader.readRowGroup(g, columns, (column, rowStart, values) => {
      const target = data[column];
      if (target === undefined) return;
      const offset = rowStart - start;
      for (let i = 0; i < values.length; i++) {
        const r = offset + i;
        if (r >= 0 && r < rows) target[r] = values[i];
      }
    });
    onGroup(start, rows, data);
    start += rows;
  }
}

/** Reads only the items table of the data set in `dir` (for tools that need no events). */
export async function readItems(dir: string): Promise<ItemTable> {
  const reader = await openParquetFile(join(dir, ITEMS_FILE));
  const n = reader.rows;
  const categories = new Lookup(vocabulary(reader, 'category'));
  const tags = new Lookup(vocabulary(reader, 'tags'));
  const ids = new Array<string>(n);
  const category = new Int32Array(n);
  const tagOffsets = new Int32Array(n + 1);
  let tagIds = new Int32Array(Math.max(16, n * 2));
  let tagCount = 0;
  const createdAt = new Float64Array(n);
  const titles = new Array<string>(n);
  let anyTitle = false;
  const hasTitle = reader.columns.includes('title');
  const columns = ['item_id', 'category', 'tags', 'created_at', ...(hasTitle ? ['title'] : [])];
  await forEachGroup(reader, columns, (start, rows, data) => {
    for (let r = 0; r < rows; r++) {
      const i = start + r;
      ids[i] = String(data['item_id']?.[r]);
      category[i] = categories.get(String(data['category']?.[r]));
      const joined = data['tags']?.[r];
      if (typeof joined === 'string' && joined !== '') {
        for (const tag of joined.split(TAG_SEPARATOR)) {
          if (tagCount === tagIds.length) {
            const grown = new Int32Array(tagIds.length * 2);
            grown.set(tagIds);
            tagIds = grown;
          }
          tagIds[tagCount++] = tags.get(tag);
        }
      }
      tagOffsets[i + 1] = tagCount;
      const created = data['created_at']?.[r];
      createdAt[i] = typeof created === 'number' ? created : NaN;
      const title = hasTitle ? data['title']?.[r] : null;
      if (typeof title === 'string') {
        anyTitle = true;
        titles[i] = title;
      } else {
        titles[i] = '';
      }
    }
  });
  return {
    ids,
    category,
    categories: categories.words,
    tagOffsets,
    tagIds: tagIds.slice(0, tagCount),
    tags: tags.words,
    createdAt,
    ...(anyTitle ? { titles } : {}),
  };
}

async function readUsers(dir: string): Promise<UserTable> {
  const reader = await openParquetFile(join(dir, USERS_FILE));
  const n = reader.rows;
  const ageBands = new Lookup(vocabulary(reader, 'age_band'));
  const countries = new Lookup(vocabulary(reader, 'country'));
  const devices = new Lookup(vocabulary(reader, 'device'));
  const ids = new Array<string>(n);
  const ageBand = new Int32Array(n);
  const country = new Int32Array(n);
  const device = new Int32Array(n);
  const signupAt = new Float64Array(n);
  const code = (lookup: Lookup, v: unknown) => (typeof v === 'string' ? lookup.get(v) : -1);
  await forEachGroup(
    reader,
    ['user_id', 'age_band', 'country', 'device', 'signup_at'],
    (start, rows, data) => {
      for (let r = 0; r < rows; r++) {
        const i = start + r;
        ids[i] = String(data['user_id']?.[r]);
        ageBand[i] = code(ageBands, data['age_band']?.[r]);
        country[i] = code(countries, data['country']?.[r]);
        device[i] = code(devices, data['device']?.[r]);
        const signup = data['signup_at']?.[r];
        signupAt[i] = typeof signup === 'number' ? signup : NaN;
      }
    },
  );
  return {
    ids,
    ageBand,
    country,
    device,
    ageBands: ageBands.words,
    countries: countries.words,
    devices: devices.words,
    signupAt,
  };
}

/** Reads events.parquet straight into typed arrays (no per-row objects). */
export async function readEvents(
  dir: string,
  bounds: { users?: number; items?: number } = {},
): Promise<EventTable> {
  const reader = await openParquetFile(join(dir, EVENTS_FILE));
  const n = reader.rows;
  const user = new Int32Array(n);
  const item = new Int32Array(n);
  const ts = new Float64Array(n);
  const type = new Uint8Array(n);
  const value = new Float32Array(n);
  const targets: Record<string, Int32Array | Float64Array | Uint8Array | Float32Array> = {
    user_index: user,
    item_index: item,
    ts,
    type,
    value,
  };
  for (let g = 0; g < reader.rowGroups.length; g++) {
    await reader.readRowGroup(g, Object.keys(targets), (column, rowStart, values) => {
      const target = targets[column];
      if (target === undefined) return;
      const count = Math.min(values.length, n - rowStart);
      if (ArrayBuffer.isView(values) && !(values instanceof BigInt64Array)) {
        target.set((values as Int32Array).subarray(0, count), rowStart);
      } else {
        for (let i = 0; i < count; i++) target[rowStart + i] = Number(values[i]);
      }
    });
  }
  const maxUser = bounds.users ?? 2 ** 31 - 1;
  const maxItem = bounds.items ?? 2 ** 31 - 1;
  for (let i = 0; i < n; i++) {
    const u = user[i] ?? -1;
    const it = item[i] ?? -1;
    if (u < 0 || u >= maxUser || it < 0 || it >= maxItem) {
      throw new DatasetFormatError(reader.path, `event ${i} refers to user ${u}, item ${it}`);
    }
    if (i > 0 && (ts[i] ?? 0) < (ts[i - 1] ?? 0)) {
      throw new DatasetFormatError(reader.path, `events are not sorted by ts at row ${i}`);
    }
  }
  return { length: n, user, item, ts, type, value };
}

/** Reads a data set folder into the columnar in-memory form. */
export async function readDataset(dir: string): Promise<Dataset> {
  const manifest = await readManifest(dir);
  const items = await readItems(dir);
  const users = await readUsers(dir);
  const events = await readEvents(dir, { users: users.ids.length, items: items.ids.length });
  const counts = { users: users.ids.length, items: items.ids.length, events: events.length };
  if (
    counts.users !== manifest.counts.users ||
    counts.items !== manifest.counts.items ||
    counts.events !== manifest.counts.events
  ) {
    throw new DatasetFormatError(
      join(dir, MANIFEST_FILE),
      `counts ${JSON.stringify(manifest.counts)} do not match the files ${JSON.stringify(counts)}`,
    );
  }
  return { manifest, items, users, events };
}
