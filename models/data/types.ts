/**
 * The internal data set every source becomes (the synthetic generator, a MovieLens import, a
 * generic CSV import) and every consumer reads (training, evaluation, indexing, materialisation).
 *
 * On disk a data set is a folder:
 *
 *   manifest.json     what is in it (schema, counts, time range, fingerprint, source)
 *   items.parquet     one row per item
 *   users.parquet     one row per user
 *   events.parquet    one row per interaction, sorted by time
 *   truth/…           synthetic only: the generator's ground truth (for the oracle)
 *
 * In memory it is columnar: typed arrays indexed by a dense item or user index (0..n-1), which is
 * what trainers and metrics want, with the original string ids kept beside them.
 */

/** Interaction kinds, strongest signal last. A const object plus a same-named type. */
export const EventType = {
  View: 0,
  Click: 1,
  Like: 2,
  Purchase: 3,
  /** An explicit rating (MovieLens); `value` holds the rating. */
  Rating: 4,
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

export const EVENT_TYPE_NAMES: Record<EventType, string> = {
  0: 'view',
  1: 'click',
  2: 'like',
  3: 'purchase',
  4: 'rating',
};

export interface ItemTable {
  /** Original ids, by item index. */
  readonly ids: readonly string[];
  /** Primary category index per item (into `categories`). */
  readonly category: Int32Array;
  /** Category names. */
  readonly categories: readonly string[];
  /** Tags per item as CSR: tags of item i are `tagIds[tagOffsets[i] .. tagOffsets[i+1])`. */
  readonly tagOffsets: Int32Array;
  readonly tagIds: Int32Array;
  readonly tags: readonly string[];
  /** Creation (or release) time, epoch ms; NaN when unknown. */
  readonly createdAt: Float64Array;
  /** Human-readable title, when the source has one. */
  readonly titles?: readonly string[];
}

export interface UserTable {
  readonly ids: readonly string[];
  /** Profile fields as category indices into the matching vocabulary; -1 when unknown. */
  readonly ageBand: Int32Array;
  readonly country: Int32Array;
  readonly device: Int32Array;
  readonly ageBands: readonly string[];
  readonly countries: readonly string[];
  readonly devices: readonly string[];
  /** Sign-up time, epoch ms; NaN when unknown. */
  readonly signupAt: Float64Array;
}

export interface EventTable {
  /** Number of events. Arrays may be longer (capacity); read only `[0, length)`. */
  readonly length: number;
  readonly user: Int32Array;
  readonly item: Int32Array;
  /** Epoch ms, non-decreasing. */
  readonly ts: Float64Array;
  readonly type: Uint8Array;
  /** Rating for `rating` events, dwell seconds for views and clicks when known, else 0. */
  readonly value: Float32Array;
}

export interface DatasetManifest {
  readonly format: 'recsys-dataset';
  readonly version: 1;
  readonly name: string;
  readonly source: 'synthetic' | 'movielens' | 'csv';
  readonly createdAt: string;
  readonly counts: { readonly users: number; readonly items: number; readonly events: number };
  readonly timeRange: { readonly from: number; readonly to: number };
  /** SHA-256 over the data files: two data sets with the same fingerprint hold the same data. */
  readonly fingerprint: string;
  /** Columns of each file, with their types, for readers in other languages. */
  readonly schema: Record<string, Record<string, string>>;
  /** Source-specific details (generator seed and scale, importer path, bad-row report). */
  readonly details: Record<string, unknown>;
}

export interface Dataset {
  readonly manifest: DatasetManifest;
  readonly items: ItemTable;
  readonly users: UserTable;
  readonly events: EventTable;
}
