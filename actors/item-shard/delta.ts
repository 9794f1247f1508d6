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

export class ShardDelta {
  /** New or replaced items, searched beside the base. */
  private readonly items = new Map<string, DeltaItem>();
  /** Base items a query must not return: deleted, or replaced by a delta item. */
  private readonly hidden = new Set<string>();
  /** Base items deleted (a subset of `hidden`). */
  private readonly deleted = new Set<string>();

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

  /** Live items: the base, less what is hidden, plus the delta. */
  get live(): number {
    return this.base.size - this.hidden.size + this.items.size;
  }

  isHidden(id: string): boolean {
    return this.hidden.has(id);
  }

  upsert(item: UpsertItem): void {
    // A private copy: the request's vector may be a view into a reused receive buffer.
    this.items.set(item.item_id, { vector: item.vector.slice(), category: item.category ?? null });
    if (this.base.has(item.item_id)) {
      this.hidden.add(item.item_id);
      this.deleted.delete(item.item_id);
    }
  }

  /** Returns whether `id` named a live item. */
  delete(id: string): boolean {
    const inDelta = this.items.delete(id);
    if (this.base.has(id)) {
      const wasLive = !this.deleted.has(id) && (inDelta || !this.hidden.has(id));
      this.hidden.add(id);
      this.deleted.add(id);
      return wasLive;
    }
    return inDelta;
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
