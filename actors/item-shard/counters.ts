/**
 * Real-time item counters: interactions per item over sliding windows (5 minutes, an hour, a day by
 * default), with the click-through rate and a velocity derived from them, as features the ranker
 * reads. They live in the shard's actor, in memory, beside (not in) the index.
 *
 * Each window is a ring of time buckets per item, one counter per event type in each bucket: the
 * 5-minute window has 1-minute buckets, the day 1-hour ones, so an item costs the same fixed
 * amount however busy it is (44 buckets of 5 counters, about 1 KB with its id and map entry). A
 * ring keeps one bucket more than its window spans; a read counts the buckets inside the window
 * whole and the oldest one in proportion to the part of it still inside (events are taken as
 * spread evenly over a bucket), so a count slides smoothly instead of dropping a whole bucket at
 * once.
 *
 * Every item's counters sit in one typed array, `stride` numbers per item; an item id maps to its
 * slot, and the slots form a list ordered by the arrival of each item's newest event, so the
 * least recently updated item (and the first whose windows have all emptied) is at its tail.
 *
 * Time is the events' own (`ts_ms`) and a `now` passed in, never the clock, so a replayed stream
 * counts as it did live and tests are deterministic.
 */
import { COUNTER_EVENT_TYPES } from './messages.js';
import type { CounterEvent, CounterStats, RecordReply } from './messages.js';

/** One sliding window: its span, cut into `buckets` buckets of `spanMs / buckets` ms. */
export interface CounterWindow {
  spanMs: number;
  buckets: number;
}

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

/** Most buckets one window may have: beyond it an item's memory stops being small. */
const MAX_BUCKETS = 1440;
const MAX_WINDOWS = 8;

/** Validates once, naming the option, and applies the defaults. */
export function resolveItemCountersOptions(
  options: ItemCountersOptions = {},
): ResolvedItemCountersOptions {
  const windows = options.windows ?? DEFAULT_COUNTER_WINDOWS;
  if (windows.length < 2 || windows.length > MAX_WINDOWS) {
    throw new RangeError(`counters.windows must hold 2..${MAX_WINDOWS} windows`);
  }
  windows.forEach((w, i) => {
    const at = `counters.windows[${i}]`;
    if (!Number.isInteger(w.buckets) || w.buckets < 1 || w.buckets > MAX_BUCKETS) {
      throw new RangeError(`${at}.buckets must be an integer in 1..${MAX_BUCKETS}`);
    }
    if (!Number.isSafeInteger(w.spanMs) || w.spanMs < 1 || w.spanMs % w.buckets !== 0) {
      throw new RangeError(`${at}.spanMs must be a positive whole multiple of buckets`);
    }
    if (i > 0 && w.spanMs <= windows[i - 1]!.spanMs) {
      throw new RangeError(`${at}.spanMs must be longer than the window before it`);
    }
  });
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

/** `300000` → `5m`, `86400000` → `24h`: the suffix of a window's feature names. */
export function windowName(spanMs: number): string {
  if (spanMs % HOUR === 0) return `${spanMs / HOUR}h`;
  if (spanMs % MINUTE === 0) return `${spanMs / MINUTE}m`;
  if (spanMs % 1000 === 0) return `${spanMs / 1000}s`;
  return `${spanMs}ms`;
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

const TYPES = COUNTER_EVENT_TYPES.length;
const TYPE_INDEX: Readonly<Record<string, number>> = Object.fromEntries(
  COUNTER_EVENT_TYPES.map((type, i) => [type, i]),
);
const VIEW = TYPE_INDEX['view']!;
const CLICK = TYPE_INDEX['click']!;
/** An item slot nobody links to. */
const NONE = -1;
/** Empty items dropped per `record` before it counts, so one call after a quiet spell stays short. */
const TRIM_PER_RECORD = 1024;
const INITIAL_CAPACITY = 1024;

/** The bucket's place in its ring; buckets before 1970 (a negative index) still land in the ring. */
const ringSlot = (bucket: number, size: number): number => ((bucket % size) + size) % size;

export class ItemCounters {
  readonly options: ResolvedItemCountersOptions;
  /** Column names of {@link read}'s rows. */
  readonly features: readonly string[];
  private readonly windowCount: number;
  /** Per window: bucket width (ms), buckets in the window, slots in its ring (one more). */
  private readonly width: Float64Array;
  private readonly buckets: Int32Array;
  private readonly ringSize: Int32Array;
  /** Per window: where its ring starts within an item's stride. */
  private readonly ringOffset: Int32Array;
  /** Counters per item: every window's ring, each bucket one counter per event type. */
  private readonly stride: number;
  private readonly longestSpan: number;

  private capacity = 0;
  /** `counts[slot * stride + ringOffset[w] + ringSlot * TYPES + type]`. */
  private counts = new Uint32Array(0);
  /** Time of each item's newest event: where its rings' heads are. `-Infinity`: none yet. */
  private newest = new Float64Array(0);
  /** The recency list, newest first: `head` is the most recently updated item, `tail` the least. */
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private head = NONE;
  private tail = NONE;
  private readonly slotOf = new Map<string, number>();
  private readonly idOf: (string | undefined)[] = [];
  private readonly free: number[] = [];
  /** Slots ever handed out (the rest of the capacity is untouched). */
  private used = 0;
  /** Since when the store has seen events: the long window holds less than its span before. */
  private observedSince = Number.POSITIVE_INFINITY;
  private readonly scratch: Float64Array;
  private readonly tally = { recorded: 0, ignored: 0, rejected: 0, evicted: 0 };

  constructor(options: ItemCountersOptions = {}) {
    this.options = resolveItemCountersOptions(options);
    const windows = this.options.windows;
    this.windowCount = windows.length;
    this.features = counterFeatureNames(windows);
    this.width = Float64Array.from(windows, (w) => w.spanMs / w.buckets);
    this.buckets = Int32Array.from(windows, (w) => w.buckets);
    this.ringSize = Int32Array.from(windows, (w) => w.buckets + 1);
    this.ringOffset = new Int32Array(windows.length);
    let offset = 0;
    windows.forEach((w, i) => {
      this.ringOffset[i] = offset;
      offset += (w.buckets + 1) * TYPES;
    });
    this.stride = offset;
    this.longestSpan = windows[windows.length - 1]!.spanMs;
    this.scratch = new Float64Array(windows.length * TYPES);
  }

  /** Items held. */
  get size(): number {
    return this.slotOf.size;
  }

  stats(): CounterStats {
    return { items: this.slotOf.size, ...this.tally };
  }

  /**
   * Counts `events`, each at its own time (`now` when it has none). An event older than the
   * longest window is ignored, one more than `maxFutureMs` ahead of `now` rejected; either way the
   * rest of the batch counts.
   */
  record(events: readonly CounterEvent[], now: number): RecordReply {
    this.trim(now, TRIM_PER_RECORD);
    const oldest = now - this.longestSpan;
    const latest = now + this.options.maxFutureMs;
    let recorded = 0;
    let ignored = 0;
    let rejected = 0;
    if (this.observedSince > now) this.observedSince = now;
    for (const event of events) {
      const ts = event.ts_ms ?? now;
      if (ts > latest) {
        rejected++;
        continue;
      }
      if (ts < oldest) {
        ignored++;
        continue;
      }
      if (ts < this.observedSince) this.observedSince = ts;
      const slot = this.slotOf.get(event.item_id) ?? this.add(event.item_id, now);
      if (ts > this.newest[slot]!) this.advance(slot, ts);
      this.count(slot, ts, TYPE_INDEX[event.type]!);
      recorded++;
    }
    this.tally.recorded += recorded;
    this.tally.ignored += ignored;
    this.tally.rejected += rejected;
    return { recorded, ignored, rejected };
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
      const slot = this.slotOf.get(ids[i]!);
      if (slot === undefined) sums.fill(0);
      else this.sum(slot, now, sums);
      this.derive(sums, now, out, i * columns);
    }
    return out;
  }

  /** Events of every type in each window at `now`, into `sums[window * TYPES + type]`. */
  private sum(slot: number, now: number, sums: Float64Array): void {
    sums.fill(0);
    const counts = this.counts;
    const base = slot * this.stride;
    const newest = this.newest[slot]!;
    for (let w = 0; w < this.windowCount; w++) {
      const width = this.width[w]!;
      const n = this.buckets[w]!;
      const size = this.ringSize[w]!;
      const ring = base + this.ringOffset[w]!;
      const current = Math.floor(now / width);
      const top = Math.floor(newest / width);
      // The window (now - span, now] covers the current bucket so far, the n - 1 before it whole,
      // and the part of bucket `current - n` after now - span; the ring holds `top - n` to `top`.
      const oldest = current - n;
      const tailWeight = 1 - (now - current * width) / width;
      const from = Math.max(oldest, top - n);
      const to = Math.min(current, top);
      const at = w * TYPES;
      for (let b = from; b <= to; b++) {
        const weight = b === oldest ? tailWeight : 1;
        const cell = ring + ringSlot(b, size) * TYPES;
        for (let t = 0; t < TYPES; t++) sums[at + t]! += weight * counts[cell + t]!;
      }
    }
  }

  /**
   * Writes one row: each window's counts and CTR, then the velocity.
   *
   * CTR is the posterior mean under a Beta prior of mean `p0` worth `n0` views:
   * `(clicks + p0·n0) / (views + n0)`, capped at 1 (clicks can outnumber views when views are lost
   * upstream). A new item's 1 click in 2 views reads (1 + 1) / (2 + 20) = 0.09 with the defaults,
   * not 0.5: its own rate takes over only as its views pass n0.
   *
   * Velocity is how much faster the item is moving now than over the longest window, as a log
   * ratio of the short window's count to the count its long-window rate would predict there, both
   * with `m` pseudo-events added: `ln((s + m) / (l · Ts / Tl + m))`, for `s` and `l` the events (all
   * types) in the shortest and longest windows, spans `Ts` and `Tl`. 0 is a steady item (and one
   * without events), positive a rising one, negative a cooling one. Without `m` a brand-new item's
   * 3 views would read ln(Tl / Ts), the most any item can reach (5.7 with the defaults), the same as
   * an item going viral; with m = 5 it reads ln(8 / 5.01) = 0.47, while 300 events in 5 minutes
   * against 600 in the day read ln(305 / 7.08) = 3.8. The log keeps it symmetric and bounded for
   * the ranker. Until the store has seen events for a whole long window (after a start), `Tl` is
   * the time it has seen: a long window that holds only 10 minutes must not read as a slow day.
   */
  private derive(sums: Float64Array, now: number, out: Float32Array, at: number): void {
    const { ctrPriorMean, ctrPriorViews, velocityPrior } = this.options;
    let col = at;
    for (let w = 0; w < this.windowCount; w++) {
      const base = w * TYPES;
      for (let t = 0; t < TYPES; t++) out[col++] = sums[base + t]!;
      const ctr =
        (sums[base + CLICK]! + ctrPriorMean * ctrPriorViews) / (sums[base + VIEW]! + ctrPriorViews);
      out[col++] = Math.min(1, ctr);
    }
    let short = 0;
    let long = 0;
    const last = (this.windowCount - 1) * TYPES;
    for (let t = 0; t < TYPES; t++) {
      short += sums[t]!;
      long += sums[last + t]!;
    }
    const shortSpan = this.options.windows[0]!.spanMs;
    const seen = Math.min(this.longestSpan, Math.max(shortSpan, now - this.observedSince));
    const expected = (long * shortSpan) / seen;
    out[col] = Math.log((short + velocityPrior) / (expected + velocityPrior));
  }

  /** Adds one event of type `type` at `ts` (no later than the item's newest) to every ring. */
  private count(slot: number, ts: number, type: number): void {
    const base = slot * this.stride;
    const newest = this.newest[slot]!;
    for (let w = 0; w < this.windowCount; w++) {
      const width = this.width[w]!;
      const bucket = Math.floor(ts / width);
      // Too late for this ring (it holds `top - n` to `top`), though a longer one may count it.
      if (bucket < Math.floor(newest / width) - this.buckets[w]!) continue;
      const size = this.ringSize[w]!;
      this.counts[base + this.ringOffset[w]! + ringSlot(bucket, size) * TYPES + type]!++;
    }
  }

  /** Moves the item's rings forward to `ts`, clearing the buckets they reuse. */
  private advance(slot: number, ts: number): void {
    const base = slot * this.stride;
    const was = this.newest[slot]!;
    this.newest[slot] = ts;
    this.touch(slot);
    if (was === Number.NEGATIVE_INFINITY) {
      this.counts.fill(0, base, base + this.stride);
      return;
    }
    for (let w = 0; w < this.windowCount; w++) {
      const width = this.width[w]!;
      const size = this.ringSize[w]!;
      const to = Math.floor(ts / width);
      const steps = Math.min(to - Math.floor(was / width), size);
      const ring = base + this.ringOffset[w]!;
      for (let b = to - steps + 1; b <= to; b++) {
        const cell = ring + ringSlot(b, size) * TYPES;
        this.counts.fill(0, cell, cell + TYPES);
      }
    }
  }

  /** Whether every window of the item is empty at `now`. */
  private isEmpty(slot: number, now: number): boolean {
    const w = this.windowCount - 1;
    const width = this.width[w]!;
    return Math.floor(this.newest[slot]! / width) < Math.floor(now / width) - this.buckets[w]!;
  }

  /** Drops up to `limit` items whose windows are all empty, least recently updated first. */
  private trim(now: number, limit: number): void {
    for (let i = 0; i < limit && this.tail !== NONE && this.isEmpty(this.tail, now); i++) {
      this.remove(this.tail);
    }
  }

  /** A slot for a new item: a free one, a new one, or the least recently updated item's. */
  private add(id: string, now: number): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.used < this.options.maxItems) {
        if (this.used === this.capacity) this.grow();
        slot = this.used++;
      } else {
        // The tail was updated least recently; the list's order makes it the first to empty.
        const victim = this.tail;
        if (!this.isEmpty(victim, now)) this.tally.evicted++;
        this.remove(victim);
        slot = this.free.pop()!;
      }
    }
    this.slotOf.set(id, slot);
    this.idOf[slot] = id;
    this.newest[slot] = Number.NEGATIVE_INFINITY;
    this.prev[slot] = NONE;
    this.next[slot] = NONE;
    this.linkFirst(slot);
    return slot;
  }

  private remove(slot: number): void {
    this.unlink(slot);
    const id = this.idOf[slot];
    if (id !== undefined) this.slotOf.delete(id);
    this.idOf[slot] = undefined;
    this.free.push(slot);
  }

  /** Makes `slot` the most recently updated item. */
  private touch(slot: number): void {
    if (this.head === slot) return;
    this.unlink(slot);
    this.linkFirst(slot);
  }

  private linkFirst(slot: number): void {
    this.prev[slot] = NONE;
    this.next[slot] = this.head;
    if (this.head !== NONE) this.prev[this.head] = slot;
    this.head = slot;
    if (this.tail === NONE) this.tail = slot;
  }

  private unlink(slot: number): void {
    const before = this.prev[slot]!;
    const after = this.next[slot]!;
    if (before === NONE) this.head = after;
    else this.next[before] = after;
    if (after === NONE) this.tail = before;
    else this.prev[after] = before;
    this.prev[slot] = NONE;
    this.next[slot] = NONE;
  }

  /** Doubles the arrays (up to `maxItems`): memory follows the items actually held. */
  private grow(): void {
    const capacity = Math.min(this.options.maxItems, Math.max(INITIAL_CAPACITY, this.capacity * 2));
    const counts = new Uint32Array(capacity * this.stride);
    counts.set(this.counts);
    this.counts = counts;
    this.newest = copyInto(new Float64Array(capacity), this.newest);
    this.prev = copyInto(new Int32Array(capacity), this.prev);
    this.next = copyInto(new Int32Array(capacity), this.next);
    this.capacity = capacity;
  }
}

function copyInto<T extends Float64Array | Int32Array>(to: T, from: T): T {
  to.set(from);
  return to;
}
