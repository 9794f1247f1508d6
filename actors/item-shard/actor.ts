/**
 * The item-shard actor: a grouped kind (`items`), one instance per shard number on each host that
 * serves the shard. Searches run in a piscina pool whose workers each hold a memory-mapped view of
 * the shard's base file, so this thread stays free for its mailbox, heartbeats and updates; the
 * mutable delta (upserts, deletes) lives here and is merged into every answer.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { ActorContext, ActorKind } from '../../runtime/actor/actor.js';
import type { Handlers } from '../../runtime/actor/protocol.js';
import { BadRequestError, UnavailableError } from '../../runtime/errors.js';
import { runCompaction } from './compact.js';
import { ItemCounters, resolveItemCountersOptions } from './counters.js';
import type { ItemCountersOptions, ResolvedItemCountersOptions } from './counters.js';
import { ShardDelta } from './delta.js';
import { indexVersionOf, readShardManifest, shardFiles } from './index-file.js';
import type { ShardFiles, ShardItems, ShardManifest } from './index-file.js';
import {
  ITEMS_KIND,
  checkDims,
  validateCounters,
  validateDelete,
  validateRecord,
  validateSearch,
  validateStats,
  validateUpsert,
} from './messages.js';
import type {
  ItemShardProtocol,
  PackedItems,
  ScoredItem,
  SearchReply,
  SearchRequest,
  ShardStats,
} from './messages.js';
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
  /** Shard count: a host given no `host.groups.items` serves every shard. */
  shards?: number;
  /**
   * Delta entries (upserts held plus tombstones) that start a compaction into a new base file.
   * @default 10000
   */
  compactionThreshold?: number;
  /** Where compacted generations are written. @default `<indexDir>/compacted` */
  compactDir?: string;
  /** Let the search workers honour test-only tasks (a worker exit). @default false */
  testHooks?: boolean;
  /** The real-time item counters (`record`, `counters`). */
  counters?: ItemCountersOptions;
}

export interface ResolvedItemShardKindOptions {
  indexDir: string;
  maxK: number;
  workers: number;
  expansionSearch: number;
  compactionThreshold: number;
  compactDir: string;
  testHooks: boolean;
  counters: ResolvedItemCountersOptions;
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
    compactionThreshold: positiveInt(options.compactionThreshold ?? 10_000, 'compactionThreshold'),
    compactDir: options.compactDir ?? join(options.indexDir, 'compacted'),
    testHooks: options.testHooks ?? false,
    counters: resolveItemCountersOptions(options.counters),
  };
}

/** What an activation holds once its index is open. */
interface OpenState {
  shard: number;
  manifest: ShardManifest;
  files: ShardFiles;
  pool: SearchPool;
  /** Item id of each row of the base file (`null` for a row a compaction removed). */
  ids: readonly (string | null)[];
  delta: ShardDelta;
  indexVersion: string;
  /** The compacted generation's own folder, removed once a later one replaces it. */
  generationDir: string | undefined;
}

/** Wait after a failed compaction before the next attempt (the next upsert past it starts one). */
const COMPACTION_RETRY_MS = 30_000;

export class ItemShardActor extends Actor<ItemShardProtocol> {
  private open: OpenState | undefined;
  /** The compaction running now, if any (one at a time). */
  private compaction: Promise<void> | undefined;
  /** After a failed compaction, none starts before this time (epoch ms): no retry loop. */
  private compactAfter = 0;
  /** Kept apart from the index: a compaction or a new base leaves them as they are. */
  private readonly counters: ItemCounters;

  constructor(
    ctx: ActorContext,
    private readonly options: ResolvedItemShardKindOptions,
  ) {
    super(ctx);
    this.counters = new ItemCounters(options.counters);
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
    const pool = await this.startPool(manifest, files);
    this.open = {
      shard,
      manifest,
      files,
      pool,
      ids: items.ids,
      delta: new ShardDelta(liveIds(items), manifest.metric),
      indexVersion: indexVersionOf(manifest),
      generationDir: undefined,
    };
    this.ctx.log.info(
      { shard, count: manifest.count, dims: manifest.dims, workers: this.options.workers },
      'shard index open',
    );
  }

  override async onDeactivate(): Promise<void> {
    const open = this.open;
    this.open = undefined;
    // A compaction still running sees the shard closed and throws its result away.
    await this.compaction;
    await open?.pool.close();
    // A compacted generation is this activation's alone (the next one starts from the index
    // folder again), so it goes with it.
    if (open?.generationDir !== undefined) {
      await rm(open.generationDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** A pool on `files`, resolved once every worker has the file open. */
  private async startPool(manifest: ShardManifest, files: ShardFiles): Promise<SearchPool> {
    const log = this.ctx.log;
    const pool = new SearchPool({
      workers: this.options.workers,
      workerData: {
        manifest,
        files,
        expansionSearch: this.options.expansionSearch,
        testHooks: this.options.testHooks,
      },
      onError: (err) => log.error({ err }, 'search pool error'),
    });
    try {
      for (const info of await pool.ready()) {
        if (info.count !== manifest.count) {
          throw new Error(`a worker opened ${files.index} with an unexpected size`);
        }
      }
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Starts a compaction when the delta has reached the threshold and none is running. */
  private maybeCompact(): void {
    const open = this.open;
    if (open === undefined || this.compaction !== undefined) return;
    if (open.delta.pending < this.options.compactionThreshold) return;
    if (Date.now() < this.compactAfter) return;
    this.compaction = this.compact(open).finally(() => {
      this.compaction = undefined;
      // Updates that came in while it ran may already call for the next one.
      this.maybeCompact();
    });
  }

  /**
   * Folds the delta into a new base file, off this thread, then switches to it: a new pool is
   * started on the new file and waited for, the shard's state is swapped in one synchronous step
   * (the new file, its pool, and the delta of what changed while the build ran), and the old pool
   * is closed only once the searches it was given have answered. No query fails or goes
   * unanswered; each sees either the old base with the old delta or the new base with the new.
   */
  private async compact(from: OpenState): Promise<void> {
    const log = this.ctx.log;
    const started = performance.now();
    const snapshot = from.delta.snapshot();
    const dims = from.manifest.dims;
    const upsertVectors = new Float32Array(snapshot.upserts.length * dims);
    snapshot.upserts.forEach((item, i) => upsertVectors.set(item.vector, i * dims));
    const outDir = join(
      this.options.compactDir,
      `shard-${from.shard}-g${(from.manifest.generation ?? 0) + 1}-${randomBytes(4).toString('hex')}`,
    );
    let pool: SearchPool | undefined;
    try {
      const built = await runCompaction({
        manifest: from.manifest,
        files: from.files,
        outDir,
        expansionSearch: this.options.expansionSearch,
        remove: snapshot.remove,
        upsertIds: snapshot.upserts.map((item) => item.itemId),
        upsertCategories: snapshot.upserts.map((item) => item.category),
        upsertVectors,
      });
      if (this.open !== from) throw new Error('the shard closed while compacting');
      pool = await this.startPool(built.manifest, built.files);
      if (this.open !== from) throw new Error('the shard closed while compacting');
      const items = JSON.parse(await readFile(built.files.items, 'utf8')) as ShardItems;
      const current = this.open;
      if (current !== from) throw new Error('the shard closed while compacting');
      // From here to the assignment nothing awaits: no message sees half a switch.
      this.open = {
        ...current,
        manifest: built.manifest,
        files: built.files,
        pool,
        ids: items.ids,
        delta: current.delta.rebase(liveIds(items)),
        indexVersion: indexVersionOf(built.manifest),
        generationDir: outDir,
      };
      pool = undefined;
      log.info(
        {
          shard: from.shard,
          generation: built.manifest.generation,
          count: built.manifest.count,
          folded: snapshot.upserts.length + snapshot.remove.length,
          delta: this.open.delta.size,
          seconds: (performance.now() - started) / 1000,
        },
        'shard compacted',
      );
    } catch (err) {
      from.delta.abandonSnapshot();
      await pool?.close();
      await rm(outDir, { recursive: true, force: true });
      if (this.open === from) {
        this.compactAfter = Date.now() + COMPACTION_RETRY_MS;
        log.error(
          { err, shard: from.shard, retryInMs: COMPACTION_RETRY_MS },
          'compaction failed; the delta keeps serving',
        );
      }
      return;
    }
    // The old pool finishes what it was given, then goes with its files.
    await from.pool.close();
    if (from.generationDir !== undefined) {
      await rm(from.generationDir, { recursive: true, force: true }).catch((err: unknown) =>
        log.warn({ err }, 'could not remove an old generation'),
      );
    }
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
      this.maybeCompact();
      return { upserted: items.length, delta: delta.size };
    },
    delete: ({ item_ids }) => {
      const { delta } = this.state();
      let deleted = 0;
      for (const id of item_ids) if (delta.delete(id)) deleted++;
      this.maybeCompact();
      return { deleted, tombstones: delta.tombstones };
    },
    stats: () => this.stats(),
    // Callers send an item's events to its shard, shardOf(item_id, S), as they send its upserts;
    // the shard counts any id it is given, as it cannot tell which S the caller used. A tell
    // reaches one replica of the shard's queue group, so each replica counts only what it was sent:
    // the event stream, once it exists, is to feed this op on every replica.
    record: ({ events }) => this.counters.record(events, Date.now()),
    counters: ({ item_ids, now_ms }) => {
      const now = now_ms ?? Date.now();
      const values = this.counters.read(item_ids, now);
      return { features: [...this.counters.features], values, now_ms: now };
    },
  };

  /** Shown by `$SRV.STATS` for each shard this host serves, and answered by the `stats` op. */
  override stats(): ShardStats {
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
      counters: this.counters.stats(),
    };
  }

  private async search(request: SearchRequest): Promise<SearchReply> {
    const { shard, manifest, pool, ids, delta, indexVersion } = this.state();
    checkDims(request.vector, 'vector', manifest.dims);
    const { vector, k, exclude, categories } = request;
    // Hidden base items (deleted or replaced) are dropped here rather than sent to the worker with
    // every query; the worker fetches that many more so k live items still come back.
    const extra = Math.min(delta.hiddenCount, manifest.count);
    const result = await pool.run({ op: 'search', vector, k, exclude, categories, extra });
    if (!('rows' in result)) throw new Error('the search worker answered a search with info');
    // Rows become ids here, once; the scores stay packed.
    const { rows, scores } = result;
    const item_ids: string[] = [];
    let baseScores = scores;
    let kept = 0;
    const checkHidden = delta.hiddenCount > 0;
    for (let i = 0; i < rows.length && kept < k; i++) {
      const id = ids[rows[i]!];
      if (id === undefined || id === null) {
        throw new Error(`the search worker answered row ${rows[i]} outside the shard file`);
      }
      if (checkHidden && delta.isHidden(id)) {
        // Compact the kept scores in place only once something was dropped.
        if (baseScores === scores) baseScores = scores.slice();
        continue;
      }
      if (baseScores !== scores) baseScores[kept] = scores[i]!;
      item_ids.push(id);
      kept++;
    }
    const base = { item_ids, scores: baseScores.subarray(0, kept) };
    const fresh = delta.search(
      vector,
      k,
      exclude === undefined ? undefined : new Set(exclude),
      categories === undefined ? undefined : new Set(categories),
    );
    const merged = fresh.length === 0 ? base : mergeWithDelta(base, fresh, k);
    return { item_ids: merged.item_ids, scores: merged.scores, shard, index_version: indexVersion };
  }
}

/** The ids of the rows a shard file holds (a compaction leaves `null` for a removed row). */
function liveIds(items: ShardItems): Set<string> {
  const ids = new Set<string>();
  for (const id of items.ids) if (id !== null) ids.add(id);
  return ids;
}

/** The best `k` of the base's packed answer and the delta's exact one. */
function mergeWithDelta(base: PackedItems, fresh: readonly ScoredItem[], k: number): PackedItems {
  const all: ScoredItem[] = base.item_ids.map((item_id, i) => ({
    item_id,
    score: base.scores[i]!,
  }));
  // Scores travel as float32: round the delta's the same way so ties compare alike.
  for (const item of fresh) all.push({ item_id: item.item_id, score: Math.fround(item.score) });
  const top = all.sort((x, y) => y.score - x.score).slice(0, k);
  return {
    item_ids: top.map((it) => it.item_id),
    scores: Float32Array.from(top, (it) => it.score),
  };
}

/** The `items` kind over the index in `options.indexDir`. */
export function itemShardKind(options: ItemShardKindOptions): ActorKind<ItemShardProtocol> {
  const resolved = resolveItemShardKindOptions(options);
  const limits = { dims: undefined, maxK: resolved.maxK };
  return defineActorKind<ItemShardProtocol>({
    name: ITEMS_KIND,
    placement: 'grouped',
    description:
      'A shard of the item index: ANN search in worker threads, live updates, item counters',
    version: '0.2.0',
    validators: {
      search: (p) => validateSearch(p, limits),
      upsert: (p) => validateUpsert(p, limits),
      delete: validateDelete,
      stats: validateStats,
      record: validateRecord,
      counters: validateCounters,
    },
    create: (ctx) => new ItemShardActor(ctx, resolved),
    // Searches only wait on the pool; upserts and deletes change the delta synchronously, so no
    // message sees another half-done. Twice the workers keeps every worker fed.
    concurrency: Math.max(2, 2 * resolved.workers),
    // Reopening an index costs far more than keeping it: a shard never passivates.
    passivateAfterMs: null,
    // A replica joins its shard's queue group only once its index is open.
    activateOnStart: true,
    ...(options.shards === undefined
      ? {}
      : { defaultGroups: Array.from({ length: options.shards }, (_, s) => String(s)) }),
  });
}
