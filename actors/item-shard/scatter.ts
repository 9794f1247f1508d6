/**
 * The scatter-gather client of the item index, as the user actor uses it: one `search` to every
 * shard at once under one deadline, the answers merged into the top k. A shard that is late or
 * down does not fail the query: its number is listed in `missing_shards` and the result is flagged
 * `degraded`, so the caller answers with what it has, in time.
 *
 * A shard that had no responders at all (its last replica gone) is not asked again for
 * `probeAfterMs` ({@link Unreachable}).
 */
import { EncodedRequest } from '../../runtime/client/client.js';
import type { ActorClient, TypedRef } from '../../runtime/client/client.js';
import { BadRequestError, NoRespondersError } from '../../runtime/errors.js';
import { Unreachable } from '../../runtime/client/unreachable.js';
import { shardOf } from './index-file.js';
import { ITEMS_KIND } from './messages.js';
import type { ItemShardProtocol, PackedItems, SearchRequest } from './messages.js';

export interface ShardScatterOptions {
  client: ActorClient;
  /** Shards S of the index (`items.shards`). */
  shards: number;
  /** How long a shard without responders is left out before it is asked again. @default 1000 */
  probeAfterMs?: number;
  /** The clock (epoch ms). @default Date.now */
  now?: () => number;
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
  item_ids: string[];
  /** `scores[i]` is the score of `item_ids[i]`. */
  scores: Float32Array;
  /** Shards that did not answer within the deadline, or answered with an error; ascending. */
  missing_shards: number[];
  /** True when any shard is missing: the items are the best of a part of the index. */
  degraded: boolean;
}

export class ShardScatter {
  private readonly shards: number;
  private readonly ref: TypedRef<ItemShardProtocol, string>;
  private readonly unreachable: Unreachable<number>;

  constructor(options: ShardScatterOptions) {
    if (!Number.isInteger(options.shards) || options.shards < 1) {
      throw new RangeError('shards must be a positive integer');
    }
    this.shards = options.shards;
    this.ref = options.client.grouped<ItemShardProtocol>(ITEMS_KIND);
    this.unreachable = new Unreachable(options.probeAfterMs ?? 1000, options.now);
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
      shardRequests(request, this.shards).map((encoded, shard) =>
        this.unreachable.has(shard)
          ? Promise.reject(new NoRespondersError(`shard ${shard} had no responders lately`))
          : this.unreachable.track(shard, () =>
              this.ref.ask(String(shard), 'search', encoded, call),
            ),
      ),
    );
    const lists: PackedItems[] = [];
    const missing: number[] = [];
    settled.forEach((outcome, shard) => {
      if (outcome.status === 'fulfilled') {
        lists.push(outcome.value);
        return;
      }
      if (outcome.reason instanceof BadRequestError) throw outcome.reason;
      missing.push(shard);
    });
    return {
      ...mergeTopK(lists, request.k),
      missing_shards: missing,
      degraded: missing.length > 0,
    };
  }
}

/**
 * Each shard's request, encoded. An excluded item can only be in the shard that holds it
 * (`shardOf`, as the index is built and upserts are routed), so each shard gets only its own part
 * of the exclusions: a user's seen and served items would otherwise travel to, be decoded by and
 * be handed to the search thread of every shard. Without exclusions every shard gets the same
 * bytes, encoded once.
 */
export function shardRequests(
  request: SearchRequest,
  shards: number,
): EncodedRequest<SearchRequest>[] {
  const exclude = request.exclude;
  if (exclude === undefined || exclude.length === 0 || shards === 1) {
    const encoded = EncodedRequest.of(request);
    return Array.from({ length: shards }, () => encoded);
  }
  const parts: string[][] = Array.from({ length: shards }, () => []);
  for (const item of exclude) parts[shardOf(item, shards)]!.push(item);
  return parts.map((part) => {
    const own: SearchRequest = { ...request, exclude: part };
    if (part.length === 0) delete own.exclude;
    return EncodedRequest.of(own);
  });
}

/** The best `k` of several packed lists, each already best first (k-way merge). */
export function mergeTopK(lists: readonly PackedItems[], k: number): PackedItems {
  let total = 0;
  for (const list of lists) total += list.item_ids.length;
  const n = Math.min(k, total);
  const item_ids: string[] = [];
  const scores = new Float32Array(n);
  const heads = lists.map(() => 0);
  while (item_ids.length < n) {
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let l = 0; l < lists.length; l++) {
      const list = lists[l]!;
      const head = heads[l]!;
      if (head >= list.item_ids.length) continue;
      const score = list.scores[head]!;
      if (best === -1 || score > bestScore) {
        best = l;
        bestScore = score;
      }
    }
    if (best === -1) break;
    scores[item_ids.length] = bestScore;
    item_ids.push(lists[best]!.item_ids[heads[best]!]!);
    heads[best]!++;
  }
  return { item_ids, scores };
}
