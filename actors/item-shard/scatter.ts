/**
 * The scatter-gather client of the item index, as the user actor uses it: one `search` to every
 * shard at once under one deadline, the answers merged into the top k. A shard that is late or
 * down does not fail the query: its number is listed in `missing_shards` and the result is flagged
 * `degraded`, so the caller answers with what it has, in time.
 */
import type { ActorClient, TypedRef } from '../../runtime/client/client.js';
import { BadRequestError } from '../../runtime/errors.js';
import { ITEMS_KIND } from './messages.js';
import type { ItemShardProtocol, ScoredItem, SearchRequest } from './messages.js';

export interface ShardScatterOptions {
  client: ActorClient;
  /** Shards S of the index (`items.shards`). */
  shards: number;
}

export interface ScatterCallOptions {
  /** Budget from now, in ms, shared by every shard. @default 1000 */
  timeoutMs?: number;
  /** Absolute deadline (epoch ms); wins over `timeoutMs`. Pass the caller's own down. */
  deadline?: number;
  requestId?: string;
}

export interface ScatterResult {
  /** The best `k` over the shards that answered, best first. */
  items: ScoredItem[];
  /** Shards that did not answer within the deadline, or answered with an error; ascending. */
  missing_shards: number[];
  /** True when any shard is missing: the items are the best of a part of the index. */
  degraded: boolean;
}

export class ShardScatter {
  private readonly shards: readonly string[];
  private readonly ref: TypedRef<ItemShardProtocol, string>;

  constructor(options: ShardScatterOptions) {
    if (!Number.isInteger(options.shards) || options.shards < 1) {
      throw new RangeError('shards must be a positive integer');
    }
    this.shards = Array.from({ length: options.shards }, (_, s) => String(s));
    this.ref = options.client.grouped<ItemShardProtocol>(ITEMS_KIND);
  }

  /**
   * Searches every shard under one deadline. Rejects only when the request itself is bad (every
   * shard would refuse it the same way); a shard's other failures make it missing.
   */
  async search(request: SearchRequest, options: ScatterCallOptions = {}): Promise<ScatterResult> {
    const deadline = options.deadline ?? Date.now() + (options.timeoutMs ?? 1000);
    const call = {
      deadline,
      ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
    };
    const settled = await Promise.allSettled(
      this.shards.map((shard) => this.ref.ask(shard, 'search', request, call)),
    );
    const lists: ScoredItem[][] = [];
    const missing: number[] = [];
    settled.forEach((outcome, shard) => {
      if (outcome.status === 'fulfilled') {
        lists.push(outcome.value.items);
        return;
      }
      if (outcome.reason instanceof BadRequestError) throw outcome.reason;
      missing.push(shard);
    });
    return {
      items: mergeTopK(lists, request.k),
      missing_shards: missing,
      degraded: missing.length > 0,
    };
  }
}

/** The best `k` of several lists, each already best first (k-way merge). */
export function mergeTopK(lists: readonly (readonly ScoredItem[])[], k: number): ScoredItem[] {
  const heads = lists.map(() => 0);
  const out: ScoredItem[] = [];
  while (out.length < k) {
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let l = 0; l < lists.length; l++) {
      const item = lists[l]![heads[l]!];
      if (item !== undefined && (best === -1 || item.score > bestScore)) {
        best = l;
        bestScore = item.score;
      }
    }
    if (best === -1) break;
    out.push(lists[best]![heads[best]!]!);
    heads[best]!++;
  }
  return out;
}
