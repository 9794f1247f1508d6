/**
 * Real-time item counters: interactions per item over sliding windows (5 minutes, an hour, a day by
 * default), with the click-through rate and a velocity derived from them, as features the ranker
 * reads. They live in the shard's actor, in memory, beside (not in) the index.
 *
 * The counting is the feature store's {@link WindowCounters} (rings of time buckets per item in one
 * typed array, least recently updated items evicted first, the oldest bucket counted in
 * proportion), keyed by item id with one counter per event type; this layer adds the item's
 * features on top: the 5-minute window has 1-minute buckets, the day 1-hour ones, so an item costs
 * the same fixed amount however busy it is (44 buckets of 5 counters, about 1 KB with its id and
 * map entry). The CTR and velocity formulas are the ones the stream feature writer uses too.
 *
 * Time is the events' own (`ts_ms`) and a `now` passed in, never the clock, so a replayed stream
 * counts as it did live and tests are deterministic.
 */
import { COUNTER_EVENT_TYPES } from './messages.js';
import type { CounterEvent, CounterStats, RecordReply } from './messages.js';
import {
  WindowCounters,
  checkWindows,
  smoothedCtr,
  velocityScore,
  windowName,
} from '../../runtime/features/windows.js';
import type { CounterWindow } from '../../runtime/features/windows.js';

export { windowName };
export type { CounterWindow };

export interface ItemCountersOptions {
  /**
   * The windows, shortest first; the velocity compares the shortest with the longest.
   * @default 5 min in 1-min buckets, 1 h in 5-min buckets, 24 h in 1-h buckets
   */
  windows?: readonly CounterWindow[];
  /**
   * Items held at most; past it, the least recently updated one goes (one whose windows are all
   * empty first). About 1 KB an item with the default windows, allocated as items arrive, so the
   * default caps a shard's counters at about 100 MB. The items dropped first are the quietest,
   * whose features are close to the no-event values anyway; when `stats` shows `counters.evicted`
   * climbing, items with counts are being lost and the cap is too low for the traffic.
   * @default 100000
   */
  maxItems?: number;
  /** How far past `now` an event's time may be (clock skew between hosts). @default 10000 */
  maxFutureMs?: number;
  /** The CTR prior's mean: the catalogue's overall clicks per view. @default 0.05 */
  ctrPriorMean?: number;
  /** The CTR prior's weight, in views: how many views an item needs to outweigh it. @default 20 */
  ctrPriorViews?: number;
  /** The velocity's pseudo-count, in events of the shortest window. @default 5 */
  velocityPrior?: number;
}

export interface ResolvedItemCountersOptions {
  windows: readonly CounterWindow[];
  maxItems: number;
  maxFutureMs: number;
  ctrPriorMean: number;
  ctrPriorViews: number;
  velocityPrior: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export const DEFAULT_COUNTER_WINDOWS: readonly CounterWindow[] = [
  { spanMs: 5 * MINUTE, buckets: 5 },
  { spanMs: HOUR, buckets: 12 },
  { spanMs: 24 * HOUR, buckets: 24 },
];

/** Validates once, naming the option, and applies the defaults. */
export function resolveItemCountersOptions(
  options: ItemCountersOptions = {},
): ResolvedItemCountersOptions {
  const windows = options.windows ?? DEFAULT_COUNTER_WINDOWS;
  // The velocity compares the shortest window with the longest: it takes two.
  checkWindows(windows, 'counters.windows', 2);
  const maxItems = options.maxItems ?? 100_000;
  if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 2 ** 30) {
    throw new RangeError('counters.maxItems must be a positive integer');
  }
  const maxFutureMs = options.maxFutureMs ?? 10_000;
  if (!Number.isFinite(maxFutureMs) || maxFutureMs < 0) {
    throw new RangeError('counters.maxFutureMs must be a non-negative number');
  }
  const ctrPriorMean = options.ctrPriorMean ?? 0.05;
  if (!(ctrPriorMean > 0 && ctrPriorMean < 1)) {
    throw new RangeError('counters.ctrPriorMean must be in (0, 1)');
  }
  const ctrPriorViews = options.ctrPriorViews ?? 20;
  if (!(ctrPriorViews > 0 && Number.isFinite(ctrPriorViews))) {
    throw new RangeError('counters.ctrPriorViews must be a positive number');
  }
  const velocityPrior = options.velocityPrior ?? 5;
  if (!(velocityPrior > 0 && Number.isFinite(velocityPrior))) {
    throw new RangeError('counters.velocityPrior must be a positive number');
  }
  return {
    windows: windows.map((w) => ({ spanMs: w.spanMs, buckets: w.buckets })),
    maxItems,
    maxFutureMs,
    ctrPriorMean,
    ctrPriorViews,
    velocityPrior,
  };
}

/** The feature names of a read, in column order. */
export function counterFeatureNames(windows: readonly CounterWindow[]): string[] {
  const names: string[] = [];
  for (const w of windows) {
    const suffix = windowName(w.spanMs);
    for (const type of COUNTER_EVENT_TYPES) names.push(`${type}s_${suffix}`);
    names.push(`ctr_${suffix}`);
  }
  names.push('velocity');
  return names;
}

/** Empty items dropped per `record` before it counts, so one call after a quiet spell stays short. */
const TRIM_PER_RECORD = 1024;
const VIEW = COUNTER_EVENT_TYPES.indexOf('view');
const CLICK = COUNTER_EVENT_TYPES.indexOf('click');

export class ItemCounters {
  readonly options: ResolvedItemCountersOptions;
  /** Column names of {@link read}'s rows. */
  readonly features: readonly string[];
  private readonly windows: WindowCounters;
  private readonly scratch: Float64Array;

  constructor(options: ItemCountersOptions = {}) {
    this.options = resolveItemCountersOptions(options);
    this.features = counterFeatureNames(this.options.windows);
    this.windows = new WindowCounters({
      kinds: COUNTER_EVENT_TYPES,
      windows: this.options.windows,
      maxKeys: this.options.maxItems,
      maxFutureMs: this.options.maxFutureMs,
    });
    this.scratch = new Float64Array(this.options.windows.length * COUNTER_EVENT_TYPES.length);
  }

  /** Items held. */
  get size(): number {
    return this.windows.size;
  }

  stats(): CounterStats {
    const { keys, recorded, ignored, rejected, evicted } = this.windows.stats();
    return { items: keys, recorded, ignored, rejected, evicted };
  }

  /**
   * Counts `events`, each at its own time (`now` when it has none). An event older than the
   * longest window is ignored, one more than `maxFutureMs` ahead of `now` rejected; either way the
   * rest of the batch counts.
   */
  record(events: readonly CounterEvent[], now: number): RecordReply {
    this.windows.trim(now, TRIM_PER_RECORD);
    this.windows.observe(now);
    const reply: RecordReply = { recorded: 0, ignored: 0, rejected: 0 };
    for (const event of events) {
      reply[this.windows.record(event.item_id, event.type, event.ts_ms ?? now, now)]++;
    }
    return reply;
  }

  /**
   * The features of `ids` at `now`, one row of {@link features} per id in the order given. An item
   * not held reads as zero counts, whose CTR is the prior's mean and velocity 0: the same as an
   * item whose windows have emptied, so whether an item is still held never shows.
   */
  read(ids: readonly string[], now: number): Float32Array {
    const columns = this.features.length;
    const out = new Float32Array(ids.length * columns);
    const sums = this.scratch;
    for (let i = 0; i < ids.length; i++) {
      this.windows.sums(ids[i]!, now, sums);
      this.derive(sums, now, out, i * columns);
    }
    return out;
  }

  /**
   * Writes one row: each window's counts and CTR ({@link smoothedCtr}, a Beta prior of mean
   * `ctrPriorMean` worth `ctrPriorViews` views), then the velocity ({@link velocityScore} of the
   * events of all types in the shortest and longest windows, over the time the store has watched:
   * until a whole long window has passed since a start, a long window that holds only 10 minutes
   * must not read as a slow day).
   */
  private derive(sums: Float64Array, now: number, out: Float32Array, at: number): void {
    const { ctrPriorMean, ctrPriorViews, velocityPrior, windows } = this.options;
    const types = COUNTER_EVENT_TYPES.length;
    let col = at;
    for (let w = 0; w < windows.length; w++) {
      const base = w * types;
      for (let t = 0; t < types; t++) out[col++] = sums[base + t]!;
      out[col++] = smoothedCtr(
        sums[base + CLICK]!,
        sums[base + VIEW]!,
        ctrPriorMean,
        ctrPriorViews,
      );
    }
    let short = 0;
    let long = 0;
    const last = (windows.length - 1) * types;
    for (let t = 0; t < types; t++) {
      short += sums[t]!;
      long += sums[last + t]!;
    }
    out[col] = velocityScore(
      short,
      long,
      windows[0]!.spanMs,
      this.windows.watchedMs(now),
      velocityPrior,
    );
  }
}
