/**
 * The item-shard actor: a grouped kind (`items`), one instance per shard number on each host that
 * serves the shard. Searches run in a piscina pool whose workers each hold a memory-mapped view of
 * the shard's base file, so this thread stays free for its mailbox, heartbeats and updates; the
 * mutable delta (upserts, deletes) lives here and is merged into every answer.
 */
import { readFile } from 'node:fs/promises';
import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { ActorContext, ActorKind } from '../../runtime/actor/actor.js';
import type { Handlers } from '../../runtime/actor/protocol.js';
import { BadRequestError, UnavailableError } from '../../runtime/errors.js';
import { ShardDelta } from './delta.js';
import { readShardManifest, shardFiles } from './index-file.js';
import type { ShardItems, ShardManifest } from './index-file.js';
import {
  ITEMS_KIND,
  checkDims,
  validateDelete,
  validateSearch,
  validateStats,
  validateUpsert,
} from './messages.js';
import type { ItemShardProtocol, ScoredItem, SearchReply, SearchRequest } from './messages.js';
import { SearchPool } from './pool.js';

export interface ItemShardKindOptions {
  /** The index version folder holding `shard-<s>.*` files. */
  indexDir: string;
  /** Largest `k` a search may ask. @default 1000 */
  maxK?: number;
  /** Worker threads per shard. @default 2 */
  workers?: number;
  /** HNSW candidate list while searching (ef). @default 64 */
  expansionSearch?: number;
}

export interface ResolvedItemShardKindOptions {
  indexDir: string;
  maxK: number;
  workers: number;
  expansionSearch: number;
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer`);
  return value;
}

export function resolveItemShardKindOptions(
  options: ItemShardKindOptions,
): ResolvedItemShardKindOptions {
  if (options.indexDir === '') throw new RangeError('indexDir must not be empty');
  return {
    indexDir: options.indexDir,
    maxK: positiveInt(options.maxK ?? 1000, 'maxK'),
    workers: positiveInt(options.workers ?? 2, 'workers'),
    expansionSearch: positiveInt(options.expansionSearch ?? 64, 'expansionSearch'),
  };
}

/** What an activation holds once its index is open. */
interface OpenState {
  shard: number;
  manifest: ShardManifest;
  pool: SearchPool;
  delta: ShardDelta;
  indexVersion: string;
}

export class ItemShardActor extends Actor<ItemShardProtocol> {
  private open: OpenState | undefined;

  constructor(
    ctx: ActorContext,
    private readonly options: ResolvedItemShardKindOptions,
  ) {
    super(ctx);
  }

  /**
   * Opens the shard: reads its manifest and ids, starts the workers and waits until each has its
   * view open. A message waits for this, so the shard answers only once its index is open; a
   * failure here fails the activation (and the waiting message) without taking the host down.
   */
  override async onActivate(): Promise<void> {
    const shard = Number(this.ctx.key);
    if (!/^\d+$/.test(this.ctx.key) || !Number.isSafeInteger(shard)) {
      throw new BadRequestError(
        'subject',
        `shard must be a non-negative integer, got ${this.ctx.key}`,
      );
    }
    const dir = this.options.indexDir;
    let manifest: ShardManifest;
    let items: ShardItems;
    const files = shardFiles(dir, shard);
    try {
      manifest = await readShardManifest(dir, shard);
      items = JSON.parse(await readFile(files.items, 'utf8')) as ShardItems;
    } catch (err) {
      // Another replica may have the file: the caller may try again.
      throw new UnavailableError(`shard ${shard}: index not open: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const pool = new SearchPool({
      workers: this.options.workers,
      workerData: { manifest, files, expansionSearch: this.options.expansionSearch },
    });
    try {
      const infos = await Promise.all(
        Array.from({ length: this.options.workers }, () => pool.run({ op: 'info' })),
      );
      for (const info of infos) {
        if (Array.isArray(info) || info.count !== manifest.count) {
          throw new Error(`a worker opened ${files.index} with an unexpected size`);
        }
      }
    } catch (err) {
      await pool.close();
      throw err;
    }
    this.open = {
      shard,
      manifest,
      pool,
      delta: new ShardDelta(new Set(items.ids), manifest.metric),
      indexVersion: `${manifest.modelVersion}@${manifest.builtAt}`,
    };
    this.ctx.log.info(
      { shard, count: manifest.count, dims: manifest.dims, workers: this.options.workers },
      'shard index open',
    );
  }

  override async onDeactivate(): Promise<void> {
    const open = this.open;
    this.open = undefined;
    await open?.pool.close();
  }

  private state(): OpenState {
    if (this.open === undefined) throw new UnavailableError('the shard index is not open');
    return this.open;
  }

  readonly handlers: Handlers<ItemShardProtocol> = {
    search: (request) => this.search(request),
    upsert: ({ items }) => {
      const { manifest, delta } = this.state();
      // Check every item first, so a bad one leaves no partial write.
      items.forEach((item, i) => checkDims(item.vector, `items[${i}].vector`, manifest.dims));
      for (const item of items) delta.upsert(item);
      return { upserted: items.length, delta: delta.size };
    },
    delete: ({ item_ids }) => {
      const { delta } = this.state();
      let deleted = 0;
      for (const id of item_ids) if (delta.delete(id)) deleted++;
      return { deleted, tombstones: delta.tombstones };
    },
    stats: () => {
      const { shard, manifest, delta, indexVersion } = this.state();
      return {
        shard,
        vectors: delta.live,
        base_vectors: manifest.count,
        delta: delta.size,
        tombstones: delta.tombstones,
        dims: manifest.dims,
        metric: manifest.metric,
        index_version: indexVersion,
        model_version: manifest.modelVersion,
        workers: this.options.workers,
      };
    },
  };

  private async search(request: SearchRequest): Promise<SearchReply> {
    const { shard, manifest, pool, delta, indexVersion } = this.state();
    checkDims(request.vector, 'vector', manifest.dims);
    const { vector, k, exclude, categories } = request;
    // Hidden base items (deleted or replaced) are dropped here rather than sent to the worker with
    // every query; the worker fetches that many more so k live items still come back.
    const extra = Math.min(delta.hiddenCount, manifest.count);
    const result = await pool.run({ op: 'search', vector, k, exclude, categories, extra });
    if (!Array.isArray(result)) throw new Error('the search worker answered a search with info');
    const base: ScoredItem[] = [];
    for (const item of result) {
      if (base.length === k) break;
      if (!delta.isHidden(item.item_id)) base.push(item);
    }
    const fresh = delta.search(
      vector,
      k,
      exclude === undefined ? undefined : new Set(exclude),
      categories === undefined ? undefined : new Set(categories),
    );
    const items = fresh.length === 0 ? base : mergeTopK(base, fresh, k);
    return { items, shard, index_version: indexVersion };
  }
}

function mergeTopK(a: readonly ScoredItem[], b: readonly ScoredItem[], k: number): ScoredItem[] {
  return [...a, ...b].sort((x, y) => y.score - x.score).slice(0, k);
}

/** The `items` kind over the index in `options.indexDir`. */
export function itemShardKind(options: ItemShardKindOptions): ActorKind<ItemShardProtocol> {
  const resolved = resolveItemShardKindOptions(options);
  const limits = { dims: undefined, maxK: resolved.maxK };
  return defineActorKind<ItemShardProtocol>({
    name: ITEMS_KIND,
    placement: 'grouped',
    description:
      'A shard of the item index: ANN search in worker threads, live upserts and deletes',
    version: '0.1.0',
    validators: {
      search: (p) => validateSearch(p, limits),
      upsert: (p) => validateUpsert(p, limits),
      delete: validateDelete,
      stats: validateStats,
    },
    create: (ctx) => new ItemShardActor(ctx, resolved),
    // Searches only wait on the pool; upserts and deletes change the delta synchronously, so no
    // message sees another half-done. Twice the workers keeps every worker fed.
    concurrency: Math.max(2, 2 * resolved.workers),
    // Reopening an index costs far more than keeping it: a shard never passivates.
    passivateAfterMs: null,
  });
}
