/**
 * A small key-value contract with compare-and-set writes and a bucket-wide TTL: what placement needs
 * for membership heartbeats and partition leases. Implemented on NATS KV (production) and in memory
 * (embedded mode, unit tests), so the lease protocol is the same code on both.
 */

export type KvOperation = 'PUT' | 'DEL';

export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** Monotonic per bucket; the token for compare-and-set. */
  readonly revision: number;
  readonly operation: KvOperation;
}

export interface KvBucketOptions {
  /** Entries not written for this long disappear (NATS 2.9 has no per-key TTL). */
  ttlMs: number;
  /** Survive a server restart (`file`) or not (`memory`). @default 'file' */
  storage?: 'file' | 'memory';
}

export interface KvWatch {
  stop(): void;
}

export interface KvBucket {
  readonly name: string;
  /** The current value, or `null` when absent, deleted or expired. */
  get(key: string): Promise<KvEntry | null>;
  put(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key is absent (or deleted); rejects with `ConflictError` otherwise. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key's revision is still `revision`; rejects with `ConflictError` otherwise. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  /** Deletes; with `previousRevision`, only if the key is still at that revision. */
  delete(key: string, previousRevision?: number): Promise<void>;
  /** Current keys (deleted and expired ones excluded). */
  keys(): Promise<string[]>;
  /**
   * Calls `listener` with every current entry, then with every later put and delete. Expiry by TTL
   * is not reported (NATS does not report it either): callers track liveness by time.
   */
  watch(listener: (entry: KvEntry) => void): Promise<KvWatch>;
}

export interface KvStore {
  /** Opens (creating or updating if needed) the named bucket. Names: `[A-Za-z0-9_-]+`. */
  bucket(name: string, options: KvBucketOptions): Promise<KvBucket>;
}
