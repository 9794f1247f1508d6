/**
 * What an import read, kept and skipped, file by file. It goes into the data set's manifest
 * (`details.report`) and is printed by `recsys data import`.
 */

/**
 * Why a row was skipped. A const object plus a same-named type; the values are stable (they are
 * written into manifests).
 */
export const BadRowReason = {
  /** The row has more or fewer fields than the header (or the format) says. */
  FieldCount: 'field_count',
  /** A quoted field was opened and never closed. */
  UnterminatedQuote: 'unterminated_quote',
  /** A user, item or other id is empty. */
  MissingId: 'missing_id',
  /** A rating is not a finite number. */
  BadRating: 'bad_rating',
  /** A value (dwell, generic `value` column, age) is not a finite number. */
  BadValue: 'bad_value',
  /** A time is neither epoch seconds, epoch milliseconds nor ISO 8601. */
  BadTime: 'bad_time',
  /** The id was already defined earlier in the same file; the first definition is kept. */
  DuplicateId: 'duplicate_id',
  /** A row of a side file (tags) names an item the data set does not hold. */
  UnknownItem: 'unknown_item',
  /** A tag is empty after trimming. */
  EmptyTag: 'empty_tag',
} as const;
export type BadRowReason = (typeof BadRowReason)[keyof typeof BadRowReason];

/** What the import did with one input file. */
export interface FileReport {
  /** The file's name relative to the imported folder (or as given). */
  file: string;
  /** What the file contributes. */
  role: 'events' | 'items' | 'users' | 'tags' | 'genres';
  /** Data rows read (header and blank lines excluded): `imported + sum(bad)`. */
  read: number;
  imported: number;
  /** Blank lines skipped; not counted as bad. */
  blank: number;
  /** Skipped rows by reason. */
  bad: Partial<Record<BadRowReason, number>>;
  /** The first few skipped rows, in file order. */
  firstBad: Array<{ line: number; reason: BadRowReason }>;
}

/** The whole import. */
export interface ImportReport {
  format: string;
  files: FileReport[];
  counts: { users: number; items: number; events: number };
  /** First and last event time, ISO 8601 (null when there are no events). */
  timeRange: { from: string | null; to: string | null };
  /** Items that events name but no items file defines (kept, with category `unknown`). */
  itemsOnlyInEvents: number;
  /** Users that events name but no users file defines (kept, with an unknown profile). */
  usersOnlyInEvents: number;
  /** Event type values no mapping knows, with their counts; each became a `click`. */
  unknownEventTypes: Record<string, number>;
  /** Items per primary category, largest first (at most 50 listed). */
  categories: Record<string, number>;
  /** Number of distinct categories and tags. */
  vocabulary: { categories: number; tags: number };
}

/** Progress through one input file, for a progress bar. */
export interface ImportProgress {
  file: string;
  /** Bytes read so far, of `totalBytes`. */
  bytes: number;
  totalBytes: number;
  /** Data rows read so far. */
  rows: number;
  /** Set on the last report of the file. */
  done?: true;
}

export type ImportProgressListener = (progress: ImportProgress) => void;

/** How many bad rows are listed by line number per file. */
export const FIRST_BAD_ROWS = 5;

export function newFileReport(file: string, role: FileReport['role']): FileReport {
  return { file, role, read: 0, imported: 0, blank: 0, bad: {}, firstBad: [] };
}

export function countBad(report: FileReport, line: number, reason: BadRowReason): void {
  report.bad[reason] = (report.bad[reason] ?? 0) + 1;
  if (report.firstBad.length < FIRST_BAD_ROWS) report.firstBad.push({ line, reason });
}

export function badTotal(report: FileReport): number {
  let total = 0;
  for (const n of Object.values(report.bad)) total += n;
  return total;
}
