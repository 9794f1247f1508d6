/**
 * The online feature store as it stood at a time t, rebuilt from a data set: what a request at t
 * could have been shown, for training examples and offline evaluation. It is built by the code
 * that builds the store in production, and read through the serving reader:
 *
 * - batch views (`user_profile`, `item_profile`, `item_popularity`) are computed by
 *   `computeBatchViews` from the data set cut at the last materialisation before t (every
 *   `batchIntervalMs`, a day by default: a batch job, not a per-request computation), and are
 *   written with that time as the store's clock, so TTLs run as they would have;
 * - stream views (`user_realtime`, `item_realtime`) are written by the real `StreamFeatureWriter`
 *   from the events before t, replayed in time order, each at its own time as the clock: what a
 *   writer that keeps up with the stream stores. Its rows hold the windows as of the entity's
 *   newest event and expire with the view's TTL, so a read at t sees what serving would see.
 */
import { ConfigError } from '../../runtime/errors.js';
import type { FeedbackEvent, FeedbackType } from '../../runtime/events/feedback.js';
import { FEEDBACK_TYPES } from '../../runtime/events/feedback.js';
import { FeatureRegistry } from '../../runtime/features/definitions.js';
import { MemoryOnlineStore } from '../../runtime/features/memory-store.js';
import { OnlineFeatures } from '../../runtime/features/online-features.js';
import { StreamFeatureWriter } from '../../runtime/features/stream-writer.js';
import type {
  FeatureDefinitions,
  FeatureValue,
  FeatureWrite,
  OnlineStore,
  StoredRow,
  WriteBatch,
  WriteResult,
} from '../../runtime/features/types.js';
import { MAX_BATCH_ROWS } from '../../runtime/features/validate.js';
import { DEFAULT_WINDOWS_MINUTES } from '../../runtime/features/windows.js';
import { sliceEvents } from '../data/split.js';
import { EVENT_TYPE_NAMES } from '../data/types.js';
import type { Dataset, EventType } from '../data/types.js';
import { batchViewsOf, computeBatchViews } from '../features/batch-views.js';
import type { FeatureTable } from '../features/batch-views.js';
import { RankingInputsReader, rankingSchema } from './features.js';
import type { RankingContext, RankingFeatureSchema } from './features.js';

const DAY_MS = 86_400_000;

const FEEDBACK: ReadonlySet<string> = new Set(FEEDBACK_TYPES);

/**
 * Event `e` of the data set as the events stream carries it: id `e<index>`, the data set's user
 * and item ids, its type's name, its time, and its rating (or dwell time) as `value`.
 */
export function feedbackEventOf(dataset: Dataset, e: number): FeedbackEvent {
  const { events, users, items } = dataset;
  const type = EVENT_TYPE_NAMES[events.type[e] as EventType];
  if (type === undefined || !FEEDBACK.has(type)) {
    throw new RangeError(`event ${e} has type ${String(events.type[e])}, not a feedback type`);
  }
  const value = events.value[e] ?? 0;
  const event: FeedbackEvent = {
    event_id: `e${e}`,
    user_id: users.ids[events.user[e] as number] as string,
    item_id: items.ids[events.item[e] as number] as string,
    type: type as FeedbackType,
    ts_ms: events.ts[e] as number,
  };
  if (type === 'rating' || value > 0) event.value = value;
  return event;
}

/** Position of the first event at or after `timeMs` (events are sorted by time). */
export function eventsBefore(dataset: Dataset, timeMs: number): number {
  return firstEvent(dataset, (ts) => ts >= timeMs);
}

/** Position of the first event for which `after` holds; `after` must be monotone in time. */
export function firstEvent(dataset: Dataset, after: (ts: number) => boolean): number {
  const { ts, length } = dataset.events;
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (after(ts[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The data set as it stood at `timeMs`: the same users and items, and only the events strictly
 * before it (a view, nothing copied). What a batch job run at that time computes its tables from.
 */
export function datasetBefore(dataset: Dataset, timeMs: number): Dataset {
  const n = eventsBefore(dataset, timeMs);
  const events = sliceEvents(dataset.events, 0, n);
  const { manifest } = dataset;
  return {
    ...dataset,
    manifest: {
      ...manifest,
      counts: { ...manifest.counts, events: n },
      timeRange: {
        from: manifest.timeRange.from,
        to: n > 0 ? (events.ts[n - 1] as number) : manifest.timeRange.from,
      },
    },
    events,
  };
}

/**
 * When the batch views served at `timeMs` were materialised: the last multiple of `intervalMs`
 * (from the epoch, so days start at midnight UTC) at or before it; `timeMs` itself for 0.
 */
export function batchSnapshotTime(timeMs: number, intervalMs: number): number {
  return intervalMs > 0 ? Math.floor(timeMs / intervalMs) * intervalMs : timeMs;
}

export interface PointInTimeStoreOptions {
  dataset: Dataset;
  /** The feature views (`configs/features.yaml`). */
  definitions: FeatureDefinitions;
  /** Checked against the definitions at start. @default rankingSchema() */
  schema?: RankingFeatureSchema;
  /**
   * How often the batch views are materialised: those served at t were computed from the events
   * before `batchSnapshotTime(t, batchIntervalMs)`. 0 recomputes them at every query time.
   * @default 86400000 (daily)
   */
  batchIntervalMs?: number;
  /** The stream views' windows (`events.windows_minutes`). @default [5, 30] */
  windowsMinutes?: readonly number[];
  /**
   * Every read that will be made, when known in advance. Then only the events that can still show
   * in a planned read are replayed: an event of an entity matters to a read at B only if it falls
   * within the stream views' TTL plus the longest window (and a bucket) before B, since an older
   * one has left every window, and the row it wrote has expired unless a later event (replayed)
   * rewrote it. Exact, and much less work when the reads are few; a read not in the plan is
   * refused. @default none: every event is replayed
   */
  plan?: readonly PlannedRead[];
}

/** A read {@link PointInTimeStore.contexts} will be asked for. */
export interface PlannedRead {
  readonly timeMs: number;
  readonly user: number;
  readonly items: ArrayLike<number>;
}

/** Planned read times of each entity of one kind, sorted: entity x's are `times[offsets[x] .. offsets[x+1])`. */
class ReadTimes {
  readonly offsets: Int32Array;
  readonly times: Float64Array;
  /** Per entity, the first of its times after the last event asked about. */
  private readonly cursor: Int32Array;

  constructor(
    count: number,
    reads: ReadonlyArray<{ timeMs: number; entities: ArrayLike<number> }>,
  ) {
    this.offsets = new Int32Array(count + 1);
    for (const { entities } of reads) {
      for (let k = 0; k < entities.length; k++) this.offsets[(entities[k] as number) + 1]!++;
    }
    for (let x = 0; x < count; x++) this.offsets[x + 1]! += this.offsets[x] as number;
    this.cursor = this.offsets.slice(0, count);
    const fill = this.offsets.slice(0, count);
    this.times = new Float64Array(this.offsets[count] as number);
    // `reads` are in time order, so each entity's times come out sorted.
    for (const { timeMs, entities } of reads) {
      for (let k = 0; k < entities.length; k++) this.times[fill[entities[k] as number]!++] = timeMs;
    }
  }

  /**
   * Whether entity `x` has a read in `(ts, ts + horizon]`. `ts` must not decrease from one call to
   * the next for the same entity (events come in time order).
   */
  readSoon(x: number, ts: number, horizon: number): boolean {
    const end = this.offsets[x + 1] as number;
    let at = this.cursor[x] as number;
    while (at < end && (this.times[at] as number) <= ts) at++;
    this.cursor[x] = at;
    return at < end && (this.times[at] as number) <= ts + horizon;
  }

  /** Whether entity `x` has a read at exactly `timeMs`. */
  has(x: number, timeMs: number): boolean {
    let lo = this.offsets[x] as number;
    let hi = this.offsets[x + 1] as number;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.times[mid] as number) < timeMs) lo = mid + 1;
      else hi = mid;
    }
    return lo < (this.offsets[x + 1] as number) && this.times[lo] === timeMs;
  }
}

/** The planned reads by entity, and how far back of a read an event can still matter. */
interface ReadPlan {
  readonly users: ReadTimes;
  readonly items: ReadTimes;
  readonly horizonMs: number;
}

/** What a {@link PointInTimeStore} has done so far. */
export interface PointInTimeStoreStats {
  /** Events replayed through the stream writer. */
  events: number;
  /** Batch tables computed (one set per materialisation time reached). */
  snapshots: number;
  /** Batch rows written for the entities read. */
  batchRows: number;
  /** Milliseconds in the stream replay, the batch computations and the feature reads. */
  replayMs: number;
  batchMs: number;
  readMs: number;
}

/**
 * The online feature store as it stood at a moving time t, rebuilt from a data set (see the top of
 * this file): {@link advanceTo} moves t forward, {@link contexts} reads the ranking inputs of a user
 * and candidates at t through the serving reader. Time only goes forward.
 */
export class PointInTimeStore {
  private timeMs = Number.NEGATIVE_INFINITY;
  /** Next event to replay. */
  private next = 0;
  private snapshotMs = Number.NaN;
  private snapshotId = 0;
  private tables = new Map<string, FeatureTable>();
  /** Per batch view, the snapshot whose row each entity holds in the store (0: none). */
  private readonly written = new Map<string, Int32Array>();
  private readonly counts: PointInTimeStoreStats = {
    events: 0,
    snapshots: 0,
    batchRows: 0,
    replayMs: 0,
    batchMs: 0,
    readMs: 0,
  };

  private constructor(
    private readonly dataset: Dataset,
    private readonly definitions: FeatureDefinitions,
    private readonly batchIntervalMs: number,
    private readonly store: OnlineStore,
    private readonly writer: StreamFeatureWriter,
    private readonly features: OnlineFeatures,
    private readonly reader: RankingInputsReader,
    /** The clock of the store's TTLs and the writer: the replay sets it to each event's time. */
    private readonly clock: { now: number },
    private readonly plan: ReadPlan | undefined,
  ) {
    for (const view of batchViewsOf(definitions)) {
      const size = view.entity === 'user' ? dataset.users.ids.length : dataset.items.ids.length;
      this.written.set(view.name, new Int32Array(size));
    }
  }

  /**
   * A store before the data set's first event. Throws `ConfigError` naming the option for bad
   * options, or the view or field the ranking features need and the definitions lack.
   */
  static async open(options: PointInTimeStoreOptions): Promise<PointInTimeStore> {
    const { dataset, definitions } = options;
    const batchIntervalMs = options.batchIntervalMs ?? DAY_MS;
    if (!Number.isSafeInteger(batchIntervalMs) || batchIntervalMs < 0) {
      throw new ConfigError('batchIntervalMs', 'must be a non-negative integer (milliseconds)');
    }
    for (const view of batchViewsOf(definitions)) {
      if (view.entity !== 'user' && view.entity !== 'item') {
        throw new ConfigError(`views.${view.name}.entity`, 'batch views are keyed by user or item');
      }
    }
    const clock = { now: Number.MIN_SAFE_INTEGER };
    const now = (): number => clock.now;
    const batchViews = new Set(batchViewsOf(definitions).map((view) => view.name));
    const store = new ViewSplitStore(
      new MemoryOnlineStore({ definitions, now }),
      new MemoryOnlineStore({ definitions, now }),
      batchViews,
    );
    const writer = new StreamFeatureWriter({
      store,
      definitions,
      windowsMinutes: options.windowsMinutes ?? DEFAULT_WINDOWS_MINUTES,
      now,
    });
    // The store is rebuilt for every time it is read at: a cache would serve an earlier time.
    const features = new OnlineFeatures({
      store,
      registry: new FeatureRegistry(definitions),
      cacheMaxEntries: 0,
      now,
    });
    const reader = new RankingInputsReader(features, options.schema ?? rankingSchema());
    // The writer reads item categories from the store; they are written once, before the replay.
    const categories = definitions.views.find((v) => v.name === writer.options.categoryView);
    if (categories !== undefined && categories.ttlMs !== 0) {
      throw new ConfigError(
        `views.${categories.name}.ttl`,
        'must be 0 (never expires) for a point-in-time replay: the stream writer reads item categories from it at every event of the log',
      );
    }
    let plan: ReadPlan | undefined;
    if (options.plan !== undefined) {
      const reads = [...options.plan].sort((a, b) => a.timeMs - b.timeMs);
      reads.forEach((read, i) => {
        if (!Number.isFinite(read.timeMs))
          throw new ConfigError(`plan[${i}].timeMs`, 'must be a finite time');
        checkIndices([read.user], dataset.users.ids.length, `plan[${i}].user`);
        checkIndices(read.items, dataset.items.ids.length, `plan[${i}].items`);
      });
      plan = {
        users: new ReadTimes(
          dataset.users.ids.length,
          reads.map((r) => ({ timeMs: r.timeMs, entities: [r.user] })),
        ),
        items: new ReadTimes(
          dataset.items.ids.length,
          reads.map((r) => ({ timeMs: r.timeMs, entities: r.items })),
        ),
        horizonMs: relevanceHorizon(definitions, writer),
      };
    }
    const pit = new PointInTimeStore(
      dataset,
      definitions,
      batchIntervalMs,
      store,
      writer,
      features,
      reader,
      clock,
      plan,
    );
    await pit.seedCategories();
    return pit;
  }

  /** The time the store stands at (epoch ms); -Infinity before the first {@link advanceTo}. */
  get time(): number {
    return this.timeMs;
  }

  stats(): PointInTimeStoreStats {
    return { ...this.counts };
  }

  /**
   * Moves the store to `timeMs`: replays the events before it through the stream writer and makes
   * the batch tables those of the last materialisation at or before it. Throws `RangeError` for a
   * time before the current one.
   */
  async advanceTo(timeMs: number): Promise<void> {
    if (!Number.isFinite(timeMs)) throw new RangeError('timeMs must be a finite epoch-ms time');
    if (timeMs < this.timeMs) {
      throw new RangeError(`the store is at ${this.timeMs}; it cannot go back to ${timeMs}`);
    }
    const started = performance.now();
    const { events } = this.dataset;
    const ts = events.ts;
    const plan = this.plan;
    while (this.next < events.length && (ts[this.next] as number) < timeMs) {
      // Events of one instant are one batch: written at their time, as a writer keeping up would.
      const at = ts[this.next] as number;
      let end = this.next + 1;
      while (end < events.length && ts[end] === at) end++;
      const batch: FeedbackEvent[] = [];
      for (let e = this.next; e < end; e++) {
        // The first event always goes: it starts the writer's watch (the velocity's long window).
        if (
          plan === undefined ||
          e === 0 ||
          plan.users.readSoon(events.user[e] as number, at, plan.horizonMs) ||
          plan.items.readSoon(events.item[e] as number, at, plan.horizonMs)
        ) {
          batch.push(feedbackEventOf(this.dataset, e));
        }
      }
      this.next = end;
      if (batch.length === 0) continue;
      this.clock.now = at;
      await this.writer.processBatch(batch);
      this.counts.events += batch.length;
    }
    this.clock.now = timeMs;
    this.timeMs = timeMs;
    this.counts.replayMs += performance.now() - started;

    const snapshotMs = batchSnapshotTime(timeMs, this.batchIntervalMs);
    if (snapshotMs !== this.snapshotMs) {
      const batchStarted = performance.now();
      const tables = computeBatchViews(datasetBefore(this.dataset, snapshotMs), this.definitions);
      this.tables = new Map(tables.map((table) => [table.view.name, table]));
      this.snapshotMs = snapshotMs;
      this.snapshotId++;
      this.counts.snapshots++;
      this.counts.batchMs += performance.now() - batchStarted;
    }
  }

  /**
   * The ranking contexts of `items` (dense indices) with retrieval `scores` for `user` at the
   * store's time: the batch rows of the entities are written first (as materialised at the
   * snapshot time, unless already there), then everything is read through the serving reader.
   */
  async contexts(
    user: number,
    items: ArrayLike<number>,
    scores: ArrayLike<number>,
  ): Promise<RankingContext[]> {
    if (!Number.isFinite(this.timeMs)) throw new RangeError('advanceTo a time first');
    const plan = this.plan;
    if (plan !== undefined) {
      const unplanned =
        !plan.users.has(user, this.timeMs) ||
        Array.prototype.some.call(items, (item: number) => !plan.items.has(item, this.timeMs));
      if (unplanned) {
        throw new RangeError(
          `a read of user ${user} or its items at ${this.timeMs} is not in the plan`,
        );
      }
    }
    const started = performance.now();
    await this.writeBatchRows(user, items);
    const { users, items: catalogue } = this.dataset;
    const candidates = Array.from({ length: items.length }, (_, k) => ({
      itemId: catalogue.ids[items[k] as number] as string,
      score: scores[k] as number,
    }));
    const inputs = await this.reader.read(users.ids[user] as string, candidates, this.timeMs);
    this.counts.readMs += performance.now() - started;
    return inputs.contexts;
  }

  /** Stops the writer and the reader and drops the store. */
  async close(): Promise<void> {
    await this.writer.close();
    await this.features.close();
    await this.store.close();
  }

  /**
   * The writer reads item categories from the store: every item's profile goes in before the
   * replay (its fields do not depend on events), older than any snapshot's row, which replaces it.
   */
  private async seedCategories(): Promise<void> {
    const view = this.writer.options.categoryView;
    if (!this.written.has(view)) return;
    const table = computeBatchViews(
      datasetBefore(this.dataset, Number.NEGATIVE_INFINITY),
      this.definitions,
      [view],
    )[0];
    if (table === undefined) return;
    const rows: FeatureWrite[] = table.ids.map((entity, index) => ({
      view,
      entity,
      row: { values: rowValues(table, index), eventTimeMs: Number.MIN_SAFE_INTEGER },
    }));
    for (let from = 0; from < rows.length; from += MAX_BATCH_ROWS) {
      await this.store.write({ rows: rows.slice(from, from + MAX_BATCH_ROWS) });
    }
  }

  private async writeBatchRows(user: number, items: ArrayLike<number>): Promise<void> {
    const rows: FeatureWrite[] = [];
    for (const [name, table] of this.tables) {
      const written = this.written.get(name) as Int32Array;
      const add = (index: number): void => {
        if (written[index] === this.snapshotId) return;
        written[index] = this.snapshotId;
        rows.push({
          view: name,
          entity: table.ids[index] as string,
          row: { values: rowValues(table, index), eventTimeMs: table.eventTimeMs[index] as number },
        });
      };
      if (table.view.entity === 'user') add(user);
      else for (let k = 0; k < items.length; k++) add(items[k] as number);
    }
    await this.writeAtSnapshot(rows);
  }

  /** Writes batch rows as materialised at the snapshot time: their TTLs run from then. */
  private async writeAtSnapshot(rows: readonly FeatureWrite[]): Promise<void> {
    if (rows.length === 0) return;
    this.clock.now = this.snapshotMs;
    try {
      for (let from = 0; from < rows.length; from += MAX_BATCH_ROWS) {
        await this.store.write({ rows: rows.slice(from, from + MAX_BATCH_ROWS) });
      }
    } finally {
      this.clock.now = this.timeMs;
    }
    this.counts.batchRows += rows.length;
  }
}

/**
 * Two in-memory stores as one: the batch views in one, the rest (stream views, processed marks,
 * meta values) in the other, each with the in-memory store's exact semantics. Why two: that store
 * sweeps every row it holds once a minute of its clock, and the replay's clock runs through every
 * minute of the log, so the catalogue's batch rows, which never expire, would be swept hundreds of
 * thousands of times; apart, they are swept only when batch rows are written (once per query), and
 * the stream side holds only the rows of the last day. A batch touching both sides is refused.
 */
class ViewSplitStore implements OnlineStore {
  constructor(
    private readonly batch: OnlineStore,
    private readonly live: OnlineStore,
    private readonly batchViews: ReadonlySet<string>,
  ) {}

  read(view: string, entities: readonly string[]): Promise<(StoredRow | null)[]> {
    return (this.batchViews.has(view) ? this.batch : this.live).read(view, entities);
  }

  write(batch: WriteBatch): Promise<WriteResult> {
    const batchRows = batch.rows.filter((row) => this.batchViews.has(row.view)).length;
    if (batchRows === 0) return this.live.write(batch);
    if (batchRows === batch.rows.length && batch.marks === undefined)
      return this.batch.write(batch);
    return Promise.reject(
      new RangeError('a write must hold batch views only, or stream views and marks only'),
    );
  }

  processed(scope: string, ids: readonly string[]): Promise<boolean[]> {
    return this.live.processed(scope, ids);
  }

  getMeta(key: string): Promise<string | null> {
    return this.live.getMeta(key);
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.live.setMeta(key, value);
  }

  async close(): Promise<void> {
    await Promise.all([this.batch.close(), this.live.close()]);
  }
}

/**
 * How long before a read an event can still show in it: the longest TTL of the stream views (a row
 * not rewritten for that long has expired), plus the longest window and one of its buckets (what a
 * row written at its entity's last event still counts), plus a minute to spare. Infinite when a
 * stream view never expires.
 */
function relevanceHorizon(definitions: FeatureDefinitions, writer: StreamFeatureWriter): number {
  const { views, windows } = writer.options;
  let ttl = 0;
  for (const name of views) {
    const view = definitions.views.find((v) => v.name === name);
    if (view === undefined || view.ttlMs === 0) return Number.POSITIVE_INFINITY;
    ttl = Math.max(ttl, view.ttlMs);
  }
  const longest = windows[windows.length - 1];
  const window = longest === undefined ? 0 : longest.spanMs + longest.spanMs / longest.buckets;
  return ttl + window + 60_000;
}

function checkIndices(indices: ArrayLike<number>, count: number, path: string): void {
  for (let k = 0; k < indices.length; k++) {
    const x = indices[k];
    if (!Number.isInteger(x) || (x as number) < 0 || (x as number) >= count) {
      throw new ConfigError(path, `must hold indices in 0..${count - 1}, got ${String(x)}`);
    }
  }
}

function rowValues(table: FeatureTable, index: number): Record<string, FeatureValue> {
  const values: Record<string, FeatureValue> = {};
  for (const field of table.view.fields) {
    values[field.name] = table.columns[field.name]?.[index] as FeatureValue;
  }
  return values;
}
