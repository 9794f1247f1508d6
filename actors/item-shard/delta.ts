/**
 * The mutable part of a shard: items upserted since the base file was built, and base items
 * deleted since. It lives on the actor's thread, is searched exactly (it is small: a compaction
 * folds it into a new base once it reaches `items.compaction_threshold`), and is consulted by every
 * query, so an upsert or a delete is visible to the next one.
 */
import type { IndexMetric } from '../../runtime/config/index.js';
import type { ScoredItem, UpsertItem } from './messages.js';
import { exactScore } from './shard-search.js';

interface DeltaItem {
  vector: Float32Array;
  category: string | null;
}

/** What a compaction folds into a new base: the delta as it was when the compaction began. */
export interface DeltaSnapshot {
  /** Base items the new base must drop: deleted, or replaced by an entry of `upserts`. */
  remove: string[];
  /** Items the new base must hold (new or replacing a base item). */
  upserts: Array<{ itemId: string; vector: Float32Array; category: string | null }>;
}

export class ShardDelta {
  /** New or replaced items, searched beside the base. */
  private readonly items = new Map<string, DeltaItem>();
  /** Base items a query must not return: deleted, or replaced by a delta item. */
  private readonly hidden = new Set<string>();
  /** Base items deleted (a subset of `hidden`). */
  private readonly deleted = new Set<string>();
  /** Ids changed since {@link snapshot}, while a compaction runs. */
  private touched: Set<string> | undefined;

  constructor(
    private readonly base: ReadonlySet<string>,
    private readonly metric: IndexMetric,
  ) {}

  get size(): number {
    return this.items.size;
  }

  get tombstones(): number {
    return this.deleted.size;
  }

  /** Base items a base search may return that the delta will drop. */
  get hiddenCount(): number {
    return this.hidden.size;
  }

  /** Entries a compaction would fold: items held plus tombstones. */
  get pending(): number {
    return this.items.size + this.deleted.size;
  }

  /** Live items: the base, less what is hidden, plus the delta. */
  get live(): number {
    return this.base.size - this.hidden.size + this.items.size;
  }

  isHidden(id: string): boolean {
    return this.hidden.has(id);
  }

  upsert(item: UpsertItem): void {
    this.touched?.add(item.item_id);
    // A private copy: the request's vector may be a view into a reused receive buffer.
    this.items.set(item.item_id, { vector: item.vector.slice(), category: item.category ?? null });
    if (this.base.has(item.item_id)) {
      this.hidden.add(item.item_id);
      this.deleted.delete(item.item_id);
    }
  }

  /** Returns whether `id` named a live item. */
  delete(id: string): boolean {
    this.touched?.add(id);
    const inDelta = this.items.delete(id);
    if (this.base.has(id)) {
      const wasLive = !this.deleted.has(id) && (inDelta || !this.hidden.has(id));
      this.hidden.add(id);
      this.deleted.add(id);
      return wasLive;
    }
    return inDelta;
  }

  /**
   * The delta as it is now, for a compaction to fold into a new base; from here on the ids changed
   * are remembered, so {@link rebase} can carry exactly those over to the new base. Vectors are
   * shared, not copied: an upsert replaces an entry, it never writes into one.
   */
  snapshot(): DeltaSnapshot {
    this.touched = new Set();
    return {
      remove: [...this.hidden],
      upserts: [...this.items].map(([itemId, item]) => ({
        itemId,
        vector: item.vector,
        category: item.category,
      })),
    };
  }

  /**
   * The delta over `base`, the new base a compaction built from {@link snapshot}: it holds only
   * what changed since the snapshot, since the new base already holds everything before it.
   */
  rebase(base: ReadonlySet<string>): ShardDelta {
    const next = new ShardDelta(base, this.metric);
    for (const id of this.touched ?? []) {
      const item = this.items.get(id);
      if (item !== undefined) {
        next.items.set(id, item);
        if (base.has(id)) next.hidden.add(id);
      } else if (base.has(id)) {
        next.hidden.add(id);
        next.deleted.add(id);
      }
    }
    return next;
  }

  /** Forgets a {@link snapshot} whose compaction failed: the delta keeps everything. */
  abandonSnapshot(): void {
    this.touched = undefined;
  }

  /** Exact top-k of the delta under the query's filters. */
  search(
    vector: Float32Array,
    k: number,
    exclude: ReadonlySet<string> | undefined,
    categories: ReadonlySet<string> | undefined,
  ): ScoredItem[] {
    if (this.items.size === 0) return [];
    const scored: ScoredItem[] = [];
    for (const [id, item] of this.items) {
      if (exclude?.has(id) === true) continue;
      if (categories !== undefined && (item.category === null || !categories.has(item.category))) {
        continue;
      }
      scored.push({ item_id: id, score: exactScore(this.metric, vector, item.vector) });
    }
    scored.sort((a, b) => b.score - a.score);
    return scored.slice(0, k);
  }
}
