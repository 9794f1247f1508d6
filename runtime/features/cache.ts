/**
 * The in-process read-through cache of the online store: rows keyed by (view, entity), least
 * recently used first out, each served for a fixed time after it was read. Hot entities (the items
 * every request ranks) are read from memory instead of Redis; an entity without a stored row is
 * cached too (as `null`), so a hot miss does not go to Redis on every request either.
 *
 * One map per view (entity → entry), and one list through every entry of every view, most recently
 * used first, so the bound holds across views and eviction is O(1). A hit moves its entry to the
 * front and allocates nothing; an eviction hands the evicted entry over to the new row.
 *
 * Staleness is bounded two ways: the TTL, and `invalidate()` when a change notice arrives. A read
 * that went to the store before an invalidation must not put its (possibly older) result back
 * after it, so every view carries an epoch that invalidation bumps, and {@link ViewCache.set}
 * drops a row read under an older epoch.
 */

export interface FeatureCacheOptions {
  /** Entries held at most (one view of one entity each); 0 turns the cache off. @default 100000 */
  maxEntries?: number;
  /** How long an entry is served after it was stored, in milliseconds. @default 5000 */
  ttlMs?: number;
  /** The clock (epoch ms); tests pass a fake one. @default Date.now */
  now?: () => number;
}

export interface ResolvedFeatureCacheOptions {
  maxEntries: number;
  ttlMs: number;
  now: () => number;
}

/** Validates once, naming the option, and applies the defaults. */
export function resolveFeatureCacheOptions(
  options: FeatureCacheOptions = {},
): ResolvedFeatureCacheOptions {
  const maxEntries = options.maxEntries ?? 100_000;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) {
    throw new RangeError('maxEntries must be a non-negative integer');
  }
  const ttlMs = options.ttlMs ?? 5_000;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError('ttlMs must be a positive number');
  }
  return { maxEntries, ttlMs, now: options.now ?? Date.now };
}

/** Counts of one view's lookups, or of all views together. */
export interface FeatureCacheCounts {
  /** Lookups answered from the cache (a cached `null` included). */
  hits: number;
  /** Lookups that had to go to the store: not cached, expired, or the cache is off. */
  misses: number;
  /** Entries pushed out by the size bound. */
  evictions: number;
  /** Entries found past their TTL (each is also a miss). */
  expirations: number;
  /** Entries held now. */
  entries: number;
  /** `hits / (hits + misses)`; 0 before the first lookup. */
  hitRate: number;
}

export interface FeatureCacheStats extends FeatureCacheCounts {
  /** Per view, for every view looked up so far. */
  views: Record<string, FeatureCacheCounts>;
}

/** One cached row; also a link of the recency list. */
interface Entry<T> {
  owner: ViewCache<T>;
  entity: string;
  value: T | null;
  expiresAtMs: number;
  /** Towards the most recently used end. */
  prev: Entry<T>;
  /** Towards the least recently used end. */
  next: Entry<T>;
}

function hitRate(hits: number, misses: number): number {
  const lookups = hits + misses;
  return lookups === 0 ? 0 : hits / lookups;
}

/**
 * The cache of one view, from {@link FeatureCache.view}: what the serving path holds on to, so a
 * lookup is one map access.
 */
export class ViewCache<T> {
  hits = 0;
  misses = 0;
  evictions = 0;
  expirations = 0;
  /** @internal */
  readonly entries = new Map<string, Entry<T>>();
  private epochValue = 0;

  /** @internal */
  constructor(
    readonly view: string,
    private readonly cache: FeatureCache<T>,
  ) {}

  /**
   * Changes whenever entries of this view are invalidated or cleared. Read it before going to the
   * store and hand it to {@link set}, which then drops a row that an invalidation overtook.
   */
  get epoch(): number {
    return this.epochValue;
  }

  /**
   * The cached row of `entity` (`null`: cached as having none), or `undefined` when it is not
   * cached or has expired. `now` lets a caller looking up many entities read the clock once.
   */
  get(entity: string, now = this.cache.now()): T | null | undefined {
    const entry = this.entries.get(entity);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    if (entry.expiresAtMs <= now) {
      this.cache.remove(entry);
      this.expirations++;
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.cache.touch(entry);
    return entry.value;
  }

  /**
   * Caches `value` (`null`: the entity has no row) for the TTL from `now`. With `epoch`, does
   * nothing when entries of this view were invalidated since that epoch was read.
   */
  set(entity: string, value: T | null, now = this.cache.now(), epoch?: number): void {
    if (epoch !== undefined && epoch !== this.epochValue) return;
    this.cache.put(this, entity, value, now);
  }

  /** Drops the entries of `entities` (those cached); returns how many were dropped. */
  invalidate(entities: Iterable<string>): number {
    this.epochValue++;
    let dropped = 0;
    for (const entity of entities) {
      const entry = this.entries.get(entity);
      if (entry === undefined) continue;
      this.cache.remove(entry);
      dropped++;
    }
    return dropped;
  }

  /** @internal */
  bumpEpoch(): void {
    this.epochValue++;
  }

  counts(): FeatureCacheCounts {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      expirations: this.expirations,
      entries: this.entries.size,
      hitRate: hitRate(this.hits, this.misses),
    };
  }
}

/** A read-through LRU cache with a TTL, for rows of any type `T` keyed by (view, entity). */
export class FeatureCache<T> {
  readonly maxEntries: number;
  readonly ttlMs: number;
  /** @internal */
  readonly now: () => number;
  private readonly views = new Map<string, ViewCache<T>>();
  /** The list's sentinel: `head.next` is the most recently used entry, `head.prev` the least. */
  private readonly head: Entry<T>;
  private size = 0;

  constructor(options: FeatureCacheOptions = {}) {
    const resolved = resolveFeatureCacheOptions(options);
    this.maxEntries = resolved.maxEntries;
    this.ttlMs = resolved.ttlMs;
    this.now = resolved.now;
    const head = { entity: '', value: null, expiresAtMs: 0 } as Entry<T>;
    head.prev = head;
    head.next = head;
    this.head = head;
  }

  /** Whether anything is cached at all (`maxEntries` > 0). */
  get enabled(): boolean {
    return this.maxEntries > 0;
  }

  /** Entries held, across views. */
  get entries(): number {
    return this.size;
  }

  /** The cache of one view, created on first use; the same object every time. */
  view(name: string): ViewCache<T> {
    let view = this.views.get(name);
    if (view === undefined) {
      view = new ViewCache(name, this);
      this.views.set(name, view);
    }
    return view;
  }

  /** {@link ViewCache.get} by view name. */
  get(view: string, entity: string): T | null | undefined {
    return this.view(view).get(entity);
  }

  /** {@link ViewCache.set} by view name. */
  set(view: string, entity: string, value: T | null): void {
    this.view(view).set(entity, value);
  }

  /** Drops the entries of `entities` of `view`; returns how many were cached. */
  invalidate(view: string, entities: Iterable<string>): number {
    return this.view(view).invalidate(entities);
  }

  /** Drops every entry (counters are kept). */
  clear(): void {
    for (const view of this.views.values()) {
      view.entries.clear();
      view.bumpEpoch();
    }
    this.head.prev = this.head;
    this.head.next = this.head;
    this.size = 0;
  }

  stats(): FeatureCacheStats {
    const views: Record<string, FeatureCacheCounts> = {};
    let hits = 0;
    let misses = 0;
    let evictions = 0;
    let expirations = 0;
    for (const [name, view] of this.views) {
      views[name] = view.counts();
      hits += view.hits;
      misses += view.misses;
      evictions += view.evictions;
      expirations += view.expirations;
    }
    return {
      hits,
      misses,
      evictions,
      expirations,
      entries: this.size,
      hitRate: hitRate(hits, misses),
      views,
    };
  }

  /** @internal Moves an entry to the most recently used end. */
  touch(entry: Entry<T>): void {
    if (this.head.next === entry) return;
    this.unlink(entry);
    this.linkFirst(entry);
  }

  /** @internal */
  put(owner: ViewCache<T>, entity: string, value: T | null, now: number): void {
    if (this.maxEntries === 0) return;
    const expiresAtMs = now + this.ttlMs;
    const existing = owner.entries.get(entity);
    if (existing !== undefined) {
      existing.value = value;
      existing.expiresAtMs = expiresAtMs;
      this.touch(existing);
      return;
    }
    let entry: Entry<T>;
    if (this.size >= this.maxEntries) {
      // Full: the least recently used entry makes room, and its object carries the new row.
      entry = this.head.prev;
      this.unlink(entry);
      entry.owner.entries.delete(entry.entity);
      entry.owner.evictions++;
      entry.owner = owner;
      entry.entity = entity;
      entry.value = value;
      entry.expiresAtMs = expiresAtMs;
    } else {
      entry = { owner, entity, value, expiresAtMs, prev: this.head, next: this.head };
      this.size++;
    }
    owner.entries.set(entity, entry);
    this.linkFirst(entry);
  }

  /** @internal */
  remove(entry: Entry<T>): void {
    this.unlink(entry);
    entry.owner.entries.delete(entry.entity);
    // Drop the row at once rather than when the entry object is collected.
    entry.value = null;
    this.size--;
  }

  private unlink(entry: Entry<T>): void {
    entry.prev.next = entry.next;
    entry.next.prev = entry.prev;
  }

  private linkFirst(entry: Entry<T>): void {
    entry.prev = this.head;
    entry.next = this.head.next;
    this.head.next.prev = entry;
    this.head.next = entry;
  }
}
