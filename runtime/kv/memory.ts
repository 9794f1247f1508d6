/**
 * An in-memory KV store with NATS KV semantics: one revision sequence per bucket, deletes leave a
 * tombstone (so `update` against a delete's revision works, as it does on NATS), compare-and-set
 * writes, and a bucket-wide TTL. Expiry is computed lazily from `Date.now()` at read time, so fake
 * timers drive it, and like NATS it is never reported to watchers.
 *
 * One store can be shared by several in-process hosts: they see the same buckets.
 */
import { ConflictError } from '../errors.js';
import type { KvBucket, KvBucketOptions, KvEntry, KvOperation, KvStore, KvWatch } from './types.js';
import { checkBucket, checkKey, checkRevision } from './validate.js';

interface Stored {
  readonly value: Uint8Array;
  readonly revision: number;
  readonly operation: KvOperation;
  readonly writtenAt: number;
}

export class MemoryKvStore implements KvStore {
  private readonly buckets = new Map<string, MemoryBucketState>();

  bucket(name: string, options: KvBucketOptions): Promise<KvBucket> {
    return Promise.resolve().then(() => this.open(name, options));
  }

  private open(name: string, options: KvBucketOptions): KvBucket {
    checkBucket(name, options);
    let state = this.buckets.get(name);
    if (state === undefined) {
      state = new MemoryBucketState(options.ttlMs);
      this.buckets.set(name, state);
    } else {
      // As on NATS, opening with another TTL reconfigures the bucket for everyone.
      state.ttlMs = options.ttlMs;
    }
    return new MemoryKvBucket(name, state);
  }
}

class MemoryBucketState {
  readonly entries = new Map<string, Stored>();
  readonly watchers = new Set<MemoryWatch>();
  revision = 0;

  constructor(public ttlMs: number) {}

  /** The stored record (tombstones included) unless it has expired, which removes it. */
  live(key: string): Stored | undefined {
    const stored = this.entries.get(key);
    if (stored === undefined) return undefined;
    if (this.ttlMs > 0 && Date.now() - stored.writtenAt >= this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return stored;
  }

  write(key: string, value: Uint8Array, operation: KvOperation): number {
    const revision = ++this.revision;
    const stored: Stored = { value, revision, operation, writtenAt: Date.now() };
    this.entries.set(key, stored);
    for (const watch of this.watchers) watch.push(toEntry(key, stored));
    return revision;
  }
}

function toEntry(key: string, stored: Stored): KvEntry {
  return {
    key,
    value: stored.value.slice(),
    revision: stored.revision,
    operation: stored.operation,
  };
}

const EMPTY = new Uint8Array(0);

/**
 * Every operation yields once before touching state, so callers cannot come to rely on a write
 * having happened before its promise settles, which a NATS round trip would not give them.
 */
class MemoryKvBucket implements KvBucket {
  constructor(
    readonly name: string,
    private readonly state: MemoryBucketState,
  ) {}

  async get(key: string): Promise<KvEntry | null> {
    checkKey(key);
    await Promise.resolve();
    const stored = this.state.live(key);
    return stored === undefined || stored.operation !== 'PUT' ? null : toEntry(key, stored);
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    await Promise.resolve();
    return this.state.write(key, value.slice(), 'PUT');
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    await Promise.resolve();
    const stored = this.state.live(key);
    if (stored !== undefined && stored.operation === 'PUT') {
      throw new ConflictError(`key ${key} exists in bucket ${this.name}`, {
        data: { bucket: this.name, key, revision: stored.revision },
      });
    }
    return this.state.write(key, value.slice(), 'PUT');
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    checkKey(key);
    checkRevision('revision', revision);
    await Promise.resolve();
    this.expectRevision(key, revision);
    return this.state.write(key, value.slice(), 'PUT');
  }

  async delete(key: string, previousRevision?: number): Promise<void> {
    checkKey(key);
    if (previousRevision !== undefined) checkRevision('previousRevision', previousRevision);
    await Promise.resolve();
    if (previousRevision !== undefined) this.expectRevision(key, previousRevision);
    this.state.write(key, EMPTY, 'DEL');
  }

  async keys(): Promise<string[]> {
    await Promise.resolve();
    const keys: string[] = [];
    for (const key of [...this.state.entries.keys()]) {
      if (this.state.live(key)?.operation === 'PUT') keys.push(key);
    }
    return keys;
  }

  async watch(listener: (entry: KvEntry) => void): Promise<KvWatch> {
    await Promise.resolve();
    const current: KvEntry[] = [];
    for (const key of [...this.state.entries.keys()]) {
      const stored = this.state.live(key);
      if (stored?.operation === 'PUT') current.push(toEntry(key, stored));
    }
    current.sort((a, b) => a.revision - b.revision);
    const watch = new MemoryWatch(listener, () => this.state.watchers.delete(watch));
    this.state.watchers.add(watch);
    for (const entry of current) watch.push(entry);
    return watch;
  }

  /** NATS compares with the key's last record, tombstone or not; an absent key is revision 0. */
  private expectRevision(key: string, expected: number): void {
    const actual = this.state.live(key)?.revision ?? 0;
    if (actual !== expected) {
      throw new ConflictError(
        `key ${key} in bucket ${this.name} is at revision ${actual}, not ${expected}`,
        { data: { bucket: this.name, key, revision: actual, expected } },
      );
    }
  }
}

/** Delivers entries in order, each in a microtask after the write that caused it. */
class MemoryWatch implements KvWatch {
  private queue: KvEntry[] = [];
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly listener: (entry: KvEntry) => void,
    private readonly detach: () => void,
  ) {}

  push(entry: KvEntry): void {
    this.queue.push(entry);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.run);
    }
  }

  stop(): void {
    this.stopped = true;
    this.queue = [];
    this.detach();
  }

  private readonly run = (): void => {
    const batch = this.queue;
    this.queue = [];
    this.scheduled = false;
    for (const entry of batch) {
      if (this.stopped) return;
      try {
        this.listener(entry);
      } catch (err) {
        // A throwing listener is a bug above us: surface it without losing later entries.
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  };
}
