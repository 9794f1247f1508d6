/**
 * The online feature store: the Feast part of the system. Features are declared once, in
 * `configs/features.yaml`, as entities (user, item) and feature views (named groups of typed fields
 * with defaults, a TTL and a source); the serving path reads whole views for many entities at once.
 *
 * Layout: one blob per entity per view. Reading a view for N entities is one round trip (one `MGET`
 * on Redis), not one per feature: per-feature keys are what made Feast's Redis reads slow. Every
 * blob carries the event time of its values, so freshness can be measured, and a write older than
 * what is stored is not applied, so replays and out-of-order writers cannot move a value backwards.
 *
 * Two implementations of {@link OnlineStore}: Redis through ioredis (production) and in memory
 * (embedded default, unit tests); one conformance suite runs against both.
 */

/** Types a feature field can have. A const object plus a same-named type. */
export const FeatureType = {
  Float: 'float',
  Int: 'int',
  Bool: 'bool',
  String: 'string',
  FloatList: 'float_list',
  StringList: 'string_list',
} as const;
export type FeatureType = (typeof FeatureType)[keyof typeof FeatureType];

export type FeatureValue = number | boolean | string | number[] | string[];

/** Where a view's values come from. */
export const ViewSource = {
  /** Offline tables, loaded by `recsys materialize`. */
  Batch: 'batch',
  /** Computed from the event stream as events arrive, written behind. */
  Stream: 'stream',
} as const;
export type ViewSource = (typeof ViewSource)[keyof typeof ViewSource];

export interface EntityDefinition {
  /** `user`, `item`: `[a-z][a-z0-9_]*`. */
  readonly name: string;
  readonly description: string;
}

export interface FieldDefinition {
  /** `[a-z][a-z0-9_]*`, unique within its view. */
  readonly name: string;
  readonly type: FeatureType;
  /** What a read returns for an entity without a stored value (or an expired one). */
  readonly default: FeatureValue;
  readonly description: string;
}

export interface ViewDefinition {
  /** `[a-z][a-z0-9_]*`, unique. */
  readonly name: string;
  /** The entity name this view is keyed by. */
  readonly entity: string;
  readonly source: ViewSource;
  /** A stored value older than this (by write time) expires; 0 = never. */
  readonly ttlMs: number;
  readonly fields: readonly FieldDefinition[];
  readonly description: string;
}

/** Every entity and view, validated. Built by `loadFeatureDefinitions` / `parseFeatureDefinitions`. */
export interface FeatureDefinitions {
  readonly entities: readonly EntityDefinition[];
  readonly views: readonly ViewDefinition[];
}

/** The values of one view for one entity, as stored. */
export interface FeatureRow {
  /** Field name to value; only fields of the view, each of its declared type. */
  readonly values: Readonly<Record<string, FeatureValue>>;
  /** When the values were true (epoch ms): the event time of the newest input they reflect. */
  readonly eventTimeMs: number;
  /**
   * Opaque state of the writer that computed the values (a stream view's window buckets), so
   * another writer can carry on from it; readers ignore it.
   */
  readonly state?: string;
}

/** A row as read back: the store numbers each entity's writes. */
export interface StoredRow extends FeatureRow {
  /** 1 for the first write of this view for this entity, +1 with every write applied since. */
  readonly version: number;
}

/** One row to write: which view, which entity. */
export interface FeatureWrite {
  readonly view: string;
  readonly entity: string;
  readonly row: FeatureRow;
  /**
   * Compare-and-set: apply only if the stored version is still this (0: nothing stored). When it
   * is not, the whole batch is refused with a `ConflictError` and nothing is written; the writer
   * reads again and retries. Used by stream writers, whose replicas may update one entity at once.
   */
  readonly ifVersion?: number;
}

/**
 * Event ids to remember as processed, written in the same atomic step as the rows they produced:
 * a consumer that restarts between the write and its acknowledgement sees them as done.
 */
export interface ProcessedMarks {
  /** Who processed them (a consumer group): marks of different scopes are independent. */
  readonly scope: string;
  readonly ids: readonly string[];
  /** How long a mark is kept: at least the longest a redelivery can come late. */
  readonly ttlMs: number;
}

export interface WriteBatch {
  readonly rows: readonly FeatureWrite[];
  readonly marks?: ProcessedMarks;
}

export interface WriteResult {
  /** Rows stored. */
  readonly written: number;
  /** Rows not applied because the store held a value with a later event time. */
  readonly stale: number;
}

export interface OnlineStore {
  /**
   * Reads one view for many entities in one round trip: a row per entity in the order given,
   * `null` for none (never written, or expired).
   */
  read(view: string, entities: readonly string[]): Promise<(StoredRow | null)[]>;
  /**
   * Applies a batch atomically (all of it or none): each row replaces the stored one unless that
   * one has a later event time (equal times replace, so rewriting the same row is idempotent); the
   * view's TTL restarts with each write. The marks are stored in the same step. Rejects with
   * `BadRequestError` naming the view, entity and field for an unknown view or field or a value of
   * the wrong type, and with `ConflictError` when an `ifVersion` does not hold.
   */
  write(batch: WriteBatch): Promise<WriteResult>;
  /** Which of `ids` carry a processed mark of `scope`, in the order given. */
  processed(scope: string, ids: readonly string[]): Promise<boolean[]>;
  /** A small named value the store keeps for its users (materialisation watermarks); null if none. */
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
  /** Closes connections; later calls reject. */
  close(): Promise<void>;
}
