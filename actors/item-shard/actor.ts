/**
 * The item-shard actor: a grouped kind (`items`), one instance per shard number on each host that
 * serves the shard. Searches run in a piscina pool whose workers each hold a memory-mapped view of
 * the shard's base file, so this thread stays free for its mailbox, heartbeats and updates; the
 * mutable delta (upserts, deletes) lives here and is merged into every answer. Updates reach the
 * delta through the item-events stream (`events.ts`), so every replica applies every update, and a
 * replica that starts opens the newest compacted generation and replays the events after it.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { ActorContext, ActorKind } from '../../runtime/actor/actor.js';
import type { Handlers } from '../../runtime/actor/protocol.js';
import { BadRequestError, UnavailableError } from '../../runtime/errors.js';
import { DEFAULT_EVENTS_STREAM_CONFIG, openEventsStream } from '../../runtime/events/index.js';
import type { EventsStreamConfig } from '../../runtime/events/index.js';
import { runCompaction } from './compact.js';
import { ItemCounters, resolveItemCountersOptions } from './counters.js';
import type { ItemCountersOptions, ResolvedItemCountersOptions } from './counters.js';
import { ShardDelta } from './delta.js';
import {
  ShardEventFeed,
  itemEventsStreamName,
  itemEventsSubject,
  itemEventsSubjects,
} from './events.js';
import type { ItemEvent } from './events.js';
import { FeedbackFeed } from './feedback-feed.js';
import { generationFolderName, newestGeneration } from './generations.js';
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
import { InlineSearcher } from './inline-search.js';
import type { ShardSearcher } from './inline-search.js';
import { SearchPool } from './pool.js';

export interface ItemShardKindOptions {
  /** The index version folder holding `shard-<s>.*` files. */
  indexDir: string;
  /** Largest `k` a search may ask. @default 1000 */
  maxK?: number;
  /** Worker threads per shard; 0 searches on the actor's thread (`inline-search.ts`). @default 1 */
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
  /**
   * How long the item-events stream keeps updates (0: no age limit); a replica that restarts
   * replays those after its newest compacted generation. @default 30 days
   */
  eventsMaxAgeMs?: number;
  /** How long a starting replica may take to read the updates it missed. @default 60000 */
  catchUpTimeoutMs?: number;
  /**
   * The events stream's retention (`events` of the configuration), which the shard's feedback
   * feed opens. @default 7 days, no byte limit, a 2-minute duplicate window
   */
  events?: EventsStreamConfig;
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
  eventsMaxAgeMs: number;
  catchUpTimeoutMs: number;
  events: EventsStreamConfig;
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
    workers: nonNegativeInt(options.workers ?? 1, 'workers'),
    expansionSearch: positiveInt(options.expansionSearch ?? 64, 'expansionSearch'),
    compactionThreshold: positiveInt(options.compactionThreshold ?? 10_000, 'compactionThreshold'),
    compactDir: options.compactDir ?? join(options.indexDir, 'compacted'),
    testHooks: options.testHooks ?? false,
    counters: resolveItemCountersOptions(options.counters),
    eventsMaxAgeMs: nonNegativeInt(options.eventsMaxAgeMs ?? 30 * DAY_MS, 'eventsMaxAgeMs'),
    catchUpTimeoutMs: positiveInt(options.catchUpTimeoutMs ?? 60_000, 'catchUpTimeoutMs'),
    events: { ...(options.events ?? DEFAULT_EVENTS_STREAM_CONFIG) },
  };
}

const DAY_MS = 24 * 60 * 60 * 1000;

function nonNegativeInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer`);
  }
  return value;
}

/** What applying an update gave, for the reply of the call that published it. */
interface Applied {
  count: number;
}

/** What an activation holds once its index is open. */
interface OpenState {
  shard: number;
  manifest: ShardManifest;
  files: ShardFiles;
  pool: ShardSearcher;
  /** Item id of each row of the base file (`null` for a row a compaction removed). */
  ids: readonly (string | null)[];
  delta: ShardDelta;
  indexVersion: string;
  /** The compacted generation's folder, removed once a later one replaces it. */
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
  /** This replica's reading of the shard's item events, from activation to deactivation. */
  private feed: ShardEventFeed<Applied> | undefined;
  /** This replica's reading of the feedback of the shard's items, into its counters. */
  private feedback: FeedbackFeed | undefined;

  constructor(
    ctx: ActorContext,
    private readonly options: ResolvedItemShardKindOptions,
  ) {
    super(ctx);
    this.counters = new ItemCounters(options.counters);
  }

  /**
   * Opens the shard: the newest compacted generation built on the index folder's file (or that
   * file), its workers (each with its view open), then the item events after what that file holds,
   * applied before the first message. A message waits for this, so the shard answers only once it
   * is open and caught up; a failure here fails the activation (and the waiting message) without
   * taking the host down.
   */
  override async onActivate(): Promise<void> {
    const shard = Number(this.ctx.key);
    if (!/^\d+$/.test(this.ctx.key) || !Number.isSafeInteger(shard)) {
      throw new BadRequestError(
        'subject',
        `shard must be a non-negative integer, got ${this.ctx.key}`,
      );
    }
    let manifest: ShardManifest;
    let items: ShardItems;
    let files = shardFiles(this.options.indexDir, shard);
    let generationDir: string | undefined;
    try {
      manifest = await readShardManifest(this.options.indexDir, shard);
      const newest = await newestGeneration(this.options.compactDir, shard, manifest);
      if (newest !== undefined) {
        ({ manifest } = newest);
        files = shardFiles(newest.dir, shard);
        generationDir = newest.dir;
      }
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
      generationDir,
    };
    try {
      await this.startFeed(shard, manifest);
    } catch (err) {
      this.open = undefined;
      await this.feed?.stop();
      this.feed = undefined;
      await pool.close();
      throw new UnavailableError(
        `shard ${shard}: cannot read its item events: ${(err as Error).message}`,
        { cause: err },
      );
    }
    try {
      await this.startFeedback(shard, manifest.shards);
    } catch (err) {
      this.open = undefined;
      await this.feed?.stop();
      this.feed = undefined;
      await pool.close();
      throw new UnavailableError(
        `shard ${shard}: cannot read the feedback stream: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.ctx.log.info(
      {
        shard,
        count: manifest.count,
        dims: manifest.dims,
        workers: this.options.workers,
        generation: manifest.generation ?? 0,
        stream_seq: this.feed?.applied,
        delta: this.open.delta.pending,
      },
      'shard index open',
    );
  }

  /** Reads the shard's item events after those `manifest` holds, and waits to have applied them. */
  private async startFeed(shard: number, manifest: ShardManifest): Promise<void> {
    const prefix = this.ctx.prefix;
    const stream = await this.ctx.streams.stream(itemEventsStreamName(prefix), {
      subjects: itemEventsSubjects(prefix),
      maxAgeMs: this.options.eventsMaxAgeMs,
    });
    this.feed = new ShardEventFeed<Applied>({
      stream,
      subject: itemEventsSubject(prefix, shard),
      dims: manifest.dims,
      modelVersion: manifest.modelVersion,
      apply: (event) => this.apply(event),
      log: this.ctx.log,
    });
    await this.feed.start(
      (manifest.streamSeq ?? 0) + 1,
      Date.now() + this.options.catchUpTimeoutMs,
    );
  }

  /** Counts the feedback of the shard's items from the events stream, from the longest window on. */
  private async startFeedback(shard: number, shards: number): Promise<void> {
    const windows = this.options.counters.windows;
    const feedback = new FeedbackFeed({
      stream: await openEventsStream(this.ctx.streams, this.ctx.prefix, this.options.events),
      prefix: this.ctx.prefix,
      shard,
      shards,
      record: (events, now) => this.counters.record(events, now),
      replayMs: windows[windows.length - 1]!.spanMs,
      log: this.ctx.log,
    });
    await feedback.start();
    this.feedback = feedback;
  }

  /** One update, from the stream: synchronous, so no query sees half of it. */
  private apply(event: ItemEvent): Applied {
    const { delta } = this.state();
    let count = 0;
    if (event.op === 'upsert') {
      for (const item of event.items) delta.upsert(item);
      count = event.items.length;
    } else {
      for (const id of event.item_ids) if (delta.delete(id)) count++;
    }
    this.maybeCompact();
    return { count };
  }

  override async onDeactivate(): Promise<void> {
    await this.feedback?.stop();
    this.feedback = undefined;
    // No update lands while the shard closes.
    await this.feed?.stop();
    this.feed = undefined;
    const open = this.open;
    this.open = undefined;
    // A compaction still running sees the shard closed and throws its result away.
    await this.compaction;
    await open?.pool.close();
    // The last generation stays on disk: the next activation starts from it.
  }

  /** A pool on `files` (or this thread, with no workers), resolved once the file is open. */
  private async startPool(manifest: ShardManifest, files: ShardFiles): Promise<ShardSearcher> {
    const log = this.ctx.log;
    const workerData = {
      manifest,
      files,
      expansionSearch: this.options.expansionSearch,
      testHooks: this.options.testHooks,
    };
    const pool: ShardSearcher =
      this.options.workers === 0
        ? new InlineSearcher(workerData)
        : new SearchPool({
            workers: this.options.workers,
            workerData,
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
    // Taken with the snapshot, in the same synchronous step: the new file holds exactly the events
    // up to here, and a replica opening it reads on from the next one.
    const streamSeq = this.feed?.applied ?? from.manifest.streamSeq ?? 0;
    const dims = from.manifest.dims;
    const upsertVectors = new Float32Array(snapshot.upserts.length * dims);
    snapshot.upserts.forEach((item, i) => upsertVectors.set(item.vector, i * dims));
    const outDir = join(
      this.options.compactDir,
      generationFolderName(
        from.shard,
        (from.manifest.generation ?? 0) + 1,
        randomBytes(4).toString('hex'),
      ),
    );
    let pool: ShardSearcher | undefined;
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
        streamSeq,
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

  private events(): ShardEventFeed<Applied> {
    if (this.feed === undefined) throw new UnavailableError('the shard reads no item events');
    return this.feed;
  }

  readonly handlers: Handlers<ItemShardProtocol> = {
    search: (request) => this.search(request),
    upsert: async ({ items }, meta) => {
      const { manifest } = this.state();
      // Checked before publishing, so a bad item fails the call and never reaches the stream.
      items.forEach((item, i) => checkDims(item.vector, `items[${i}].vector`, manifest.dims));
      const event = { op: 'upsert', items, model_version: manifest.modelVersion } as const;
      // The request id as message id: a call the client retries is stored once.
      const { seq } = await this.events().publish(event, meta.deadline, meta.requestId);
      return { upserted: items.length, delta: this.state().delta.size, seq };
    },
    delete: async ({ item_ids }, meta) => {
      this.state();
      const { seq, result } = await this.events().publish(
        { op: 'delete', item_ids },
        meta.deadline,
        meta.requestId,
      );
      return { deleted: result?.count ?? 0, tombstones: this.state().delta.tombstones, seq };
    },
    stats: () => this.stats(),
    // Callers send an item's events to its shard, shardOf(item_id, S), as they send its upserts;
    // the shard counts any id it is given, as it cannot tell which S the caller used. A tell
    // reaches one replica of the shard's queue group, so each replica counts only what it was sent.
    // Feedback on the events stream reaches every replica through the feedback feed instead: an
    // event sent both ways is counted twice.
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
      stream_seq: this.feed?.applied ?? 0,
      events_skipped: this.feed?.skipped ?? 0,
      feedback: this.feedback?.stats() ?? null,
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
