/**
 * Import of a real interaction log into the internal data set: the MovieLens layouts and any
 * delimited log with a column mapping. `importDataset` returns the tables and a report; writing
 * them is `writeDataset`'s job.
 */
import { stat } from 'node:fs/promises';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';

import { DatasetBuilder } from './builder.js';
import type { BuiltTables } from './builder.js';
import type { ImportContext } from './context.js';
import { ImportError } from './errors.js';
import {
  EVENT_COLUMNS,
  EVENT_TYPE_BY_NAME,
  ITEM_COLUMNS,
  USER_COLUMNS,
  importCsv,
  parseColumnMap,
  parseTypeMap,
} from './generic-csv.js';
import type { CsvImportSpec, EventColumnMap, ItemColumnMap, UserColumnMap } from './generic-csv.js';
import { detectMovieLensFormat, importMovieLens } from './movielens.js';
import type { MovieLensFormat } from './movielens.js';
import type { Delimiter, TextEncoding } from './records.js';
import type { ImportProgressListener, ImportReport } from './report.js';

export { UNKNOWN_CATEGORY, stableArgsort, type BuiltTables } from './builder.js';
export { IMPORT_FAILED, ImportError, type ImportErrorOptions } from './errors.js';
export {
  EVENT_TYPE_ALIASES,
  EVENT_TYPE_BY_NAME,
  parseColumnMap,
  parseTypeMap,
  sniffDelimiter,
} from './generic-csv.js';
export { ML100K_GENRES, detectMovieLensFormat, type MovieLensFormat } from './movielens.js';
export {
  RecordParser,
  forEachRecord,
  parseQuoted,
  readRecords,
  type Delimiter,
  type RecordReaderOptions,
  type TextEncoding,
  type TextRecord,
} from './records.js';
export {
  BadRowReason,
  FIRST_BAD_ROWS,
  badTotal,
  type FileReport,
  type ImportProgress,
  type ImportProgressListener,
  type ImportReport,
} from './report.js';
export {
  AGE_BANDS,
  EPOCH_MS_THRESHOLD,
  ageBand,
  normalizeTag,
  parseTime,
  regionFromPostalCode,
  titleYearTime,
} from './values.js';

export type ImportFormat = MovieLensFormat | 'csv';
export const IMPORT_FORMATS: readonly ImportFormat[] = [
  'movielens-100k',
  'movielens-csv',
  'movielens-1m',
  'csv',
];

const DELIMITERS: Readonly<Record<string, Delimiter>> = {
  ',': ',',
  comma: ',',
  ';': ';',
  semicolon: ';',
  '|': '|',
  pipe: '|',
  '::': '::',
  '\t': '\t',
  '\\t': '\t',
  tab: '\t',
};

export interface ImportOptions {
  /**
   * A MovieLens folder; for the generic CSV, the events file, or a folder that relative `events`,
   * `items` and `users` paths are read from.
   */
  path: string;
  /** @default detected: MovieLens from the files in `path`, `csv` when `path` is a file or `map` is given */
  format?: ImportFormat;
  /** Generic CSV: the events file (when `path` is a folder). */
  events?: string;
  /** Generic CSV: `user=<col>,item=<col>,time=<col>[,type=<col>][,value=<col>]`. */
  map?: string;
  /** Generic CSV: an items file, read with `itemMap`. */
  items?: string;
  /** `id=<col>[,category=<col>][,tags=<col>][,title=<col>][,created=<col>]`. */
  itemMap?: string;
  /** Generic CSV: a users file, read with `userMap`. */
  users?: string;
  /** `id=<col>[,age=<col>|,age_band=<col>][,country=<col>][,device=<col>][,signup=<col>]`. */
  userMap?: string;
  /** Generic CSV: extra type values, `value=type,...`, e.g. `transaction=purchase`. */
  typeMap?: string;
  /** Generic CSV: the type of every event when `map` has no `type` column. @default 'click' */
  eventType?: string;
  /** Generic CSV: `,` `;` `|` `::` or `tab`. @default from the extension or the header row */
  delimiter?: string;
  /** Generic CSV: the files' encoding. @default 'utf8' */
  encoding?: TextEncoding;
  /** Most used free-form tags kept per item (genres and categories always kept). @default 10 */
  maxTagsPerItem?: number;
  /** Hears progress through each input file (for a progress bar). */
  onProgress?: ImportProgressListener;
}

export type ResolvedImportOptions =
  | { format: MovieLensFormat; path: string; maxTagsPerItem: number }
  | {
      format: 'csv';
      path: string;
      maxTagsPerItem: number;
      csv: Omit<CsvImportSpec, 'unknownTypes'>;
    };

export interface ImportResult {
  tables: BuiltTables;
  /** The manifest's `source`. */
  source: 'movielens' | 'csv';
  format: ImportFormat;
  report: ImportReport;
}

/**
 * The command-line flag of each option. Option errors name the flag (in the message and in
 * `ImportError.field`), since that is what a user typed.
 */
export const IMPORT_OPTION_FLAGS: Readonly<Record<keyof ImportOptions, string>> = {
  path: '<path>',
  format: '--format',
  events: '--events',
  map: '--map',
  items: '--items',
  itemMap: '--item-map',
  users: '--users',
  userMap: '--user-map',
  typeMap: '--type-map',
  eventType: '--event-type',
  delimiter: '--delimiter',
  encoding: '--encoding',
  maxTagsPerItem: '--max-tags',
  onProgress: 'onProgress',
};

function optionError(key: keyof ImportOptions, message: string): ImportError {
  const flag = IMPORT_OPTION_FLAGS[key];
  return new ImportError(`${flag}: ${message}`, { field: flag });
}

async function kindOf(path: string): Promise<'file' | 'dir'> {
  try {
    const info = await stat(path);
    if (info.isDirectory()) return 'dir';
    if (info.isFile()) return 'file';
  } catch (err) {
    throw new ImportError(`${path} not found`, { file: path, cause: err });
  }
  throw new ImportError(`${path} is neither a file nor a folder`, { file: path });
}

/** Applies defaults and checks every option once; rejects with an `ImportError` naming it. */
export async function resolveImportOptions(options: ImportOptions): Promise<ResolvedImportOptions> {
  const maxTagsPerItem = options.maxTagsPerItem ?? 10;
  if (!Number.isInteger(maxTagsPerItem) || maxTagsPerItem < 0) {
    throw optionError('maxTagsPerItem', 'must be a non-negative integer');
  }
  if (options.format !== undefined && !IMPORT_FORMATS.includes(options.format)) {
    throw optionError(
      'format',
      `must be one of ${IMPORT_FORMATS.join(', ')}, got "${String(options.format)}"`,
    );
  }
  const kind = await kindOf(options.path);
  const wantsCsv = options.map !== undefined || options.events !== undefined || kind === 'file';
  const format = options.format ?? (wantsCsv ? 'csv' : await detectMovieLensFormat(options.path));
  if (format === undefined) {
    throw new ImportError(
      `${options.path}: no MovieLens files found (u.data, ratings.dat or ratings.csv); for another log give --events and --map`,
      { file: options.path },
    );
  }
  if (format !== 'csv') {
    if (kind !== 'dir') {
      throw new ImportError(`${options.path}: a MovieLens import reads a folder, not a file`, {
        file: options.path,
      });
    }
    const csvOnly = (['map', 'events', 'items', 'itemMap', 'users', 'userMap'] as const).find(
      (key) => options[key] !== undefined,
    );
    if (csvOnly !== undefined) {
      throw optionError(csvOnly, `applies to the csv format only, not ${format}`);
    }
    return { format, path: options.path, maxTagsPerItem };
  }

  // Relative file names are read from the folder when `path` is one, as given otherwise.
  const locate = (name: string) => ({
    path: kind === 'dir' && !isAbsolute(name) ? join(options.path, name) : name,
    file: name,
  });
  let events: { path: string; file: string };
  if (kind === 'file') {
    if (options.events !== undefined) {
      throw optionError('events', 'not needed: the path given is the events file');
    }
    events = { path: options.path, file: basename(options.path) };
  } else {
    if (options.events === undefined) {
      throw optionError('events', 'the events file is required for the csv format');
    }
    events = locate(options.events);
  }
  if (options.map === undefined) {
    throw optionError(
      'map',
      'a column mapping is required for the csv format (user=<col>,item=<col>,time=<col>)',
    );
  }
  const eventMap = parseColumnMap(
    options.map,
    EVENT_COLUMNS,
    ['user', 'item', 'time'],
    IMPORT_OPTION_FLAGS.map,
  ) as EventColumnMap;

  const side = <M>(
    fileKey: 'items' | 'users',
    mapKey: 'itemMap' | 'userMap',
    allowed: readonly string[],
  ): { path: string; file: string; map: M } | undefined => {
    const file = options[fileKey];
    const mapText = options[mapKey];
    if (file === undefined && mapText === undefined) return undefined;
    if (file === undefined) {
      throw optionError(mapKey, `needs ${IMPORT_OPTION_FLAGS[fileKey]} (the file it maps)`);
    }
    if (mapText === undefined) {
      throw optionError(fileKey, `needs ${IMPORT_OPTION_FLAGS[mapKey]} (id=<col>,...)`);
    }
    const map = parseColumnMap(mapText, allowed, ['id'], IMPORT_OPTION_FLAGS[mapKey]);
    return { ...locate(file), map: map as M };
  };
  const items = side<ItemColumnMap>('items', 'itemMap', ITEM_COLUMNS);
  const users = side<UserColumnMap>('users', 'userMap', USER_COLUMNS);
  if (users?.map.age !== undefined && users.map.age_band !== undefined) {
    throw optionError('userMap', 'give age or age_band, not both');
  }

  const defaultType = EVENT_TYPE_BY_NAME[(options.eventType ?? 'click').toLowerCase()];
  if (defaultType === undefined) {
    throw optionError(
      'eventType',
      `must be one of ${Object.keys(EVENT_TYPE_BY_NAME).join(', ')}, got "${options.eventType}"`,
    );
  }
  let delimiter: Delimiter | undefined;
  if (options.delimiter !== undefined) {
    delimiter = DELIMITERS[options.delimiter.toLowerCase()];
    if (delimiter === undefined) {
      throw optionError('delimiter', `must be one of , ; | :: tab, got "${options.delimiter}"`);
    }
  }
  const encoding = options.encoding ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'latin1') {
    throw optionError('encoding', `must be utf8 or latin1, got "${String(encoding)}"`);
  }
  return {
    format,
    path: options.path,
    maxTagsPerItem,
    csv: {
      events: { ...events, map: eventMap },
      ...(items === undefined ? {} : { items }),
      ...(users === undefined ? {} : { users }),
      typeMap:
        options.typeMap === undefined
          ? {}
          : parseTypeMap(options.typeMap, IMPORT_OPTION_FLAGS.typeMap),
      defaultType,
      ...(delimiter === undefined ? {} : { delimiter }),
      encoding,
    },
  };
}

/** The data set name a path suggests: the folder's name, or the file's without its extension. */
export function defaultDatasetName(path: string): string {
  const base = basename(resolve(path));
  const ext = extname(base);
  return ext === '' ? base : base.slice(0, -ext.length);
}

/** Items per category, largest first (ties by name), at most `limit` of them. */
function topCategories(counts: Map<string, number>, limit: number): Record<string, number> {
  const sorted = [...counts].sort(([a, na], [b, nb]) => nb - na || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(sorted.slice(0, limit));
}

/**
 * Reads a MovieLens folder or a mapped CSV log into the internal tables. Rejects with an
 * `ImportError` when a required file, column or option is missing; bad rows are only counted.
 */
export async function importDataset(options: ImportOptions): Promise<ImportResult> {
  const resolved = await resolveImportOptions(options);
  const builder = new DatasetBuilder();
  const ctx: ImportContext = {
    builder,
    files: [],
    maxTagsPerItem: resolved.maxTagsPerItem,
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  };
  const unknownTypes: Record<string, number> = {};
  if (resolved.format === 'csv') {
    await importCsv(ctx, { ...resolved.csv, unknownTypes });
  } else {
    await importMovieLens(ctx, resolved.path, resolved.format);
  }
  const tables = builder.build();
  const { events } = tables;
  const first = events.length > 0 ? events.ts[0] : undefined;
  const last = events.length > 0 ? events.ts[events.length - 1] : undefined;
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
  const report: ImportReport = {
    format: resolved.format,
    files: ctx.files,
    counts: {
      users: tables.users.ids.length,
      items: tables.items.ids.length,
      events: events.length,
    },
    timeRange: { from: iso(first), to: iso(last) },
    itemsOnlyInEvents: builder.itemsOnlyInEvents,
    usersOnlyInEvents: builder.usersOnlyInEvents,
    unknownEventTypes: unknownTypes,
    categories: topCategories(builder.categoryCounts(), 50),
    vocabulary: { categories: tables.items.categories.length, tags: tables.items.tags.length },
  };
  return {
    tables,
    source: resolved.format === 'csv' ? 'csv' : 'movielens',
    format: resolved.format,
    report,
  };
}
