/**
 * Sliding-window event counters per key, implemented once for everything that counts events over
 * time: the item shard's real-time counters and the stream feature writer's user and item views.
 *
 * Each window is a ring of time buckets per key, one counter per event kind in each bucket, so a key
 * costs the same fixed amount however busy it is. A ring keeps one bucket more than its window
 * spans; a read counts the buckets inside the window whole and the oldest one in proportion to the
 * part of it still inside (events are taken as spread evenly over a bucket), so a count slides
 * smoothly instead of dropping a whole bucket at once.
 *
 * Every key's counters sit in one typed array, `stride` numbers per key; a key maps to its slot, and
 * the slots form a list ordered by the arrival of each key's newest event, so the least recently
 * updated key (and the first whose windows have all emptied) is at its tail, the first to go when
 * the counters are full.
 *
 * A key's buckets can be exported as a short string and imported elsewhere, so a writer can store
 * them beside the values it computed and another replica (or the same one after a restart) can
 * carry on counting where it stopped.
 *
 * Time is the events' own and a `now` passed in, never the clock, so a replayed stream counts as it
 * did live and tests are deterministic.
 */
import { fnv1a32 } from '../placement/hash.js';

/** One sliding window: its span, cut into `buckets` buckets of `spanMs / buckets` ms. */
export interface CounterWindow {
  spanMs: number;
  buckets: number;
}

export interface WindowCountersOptions {
  /** The event kinds counted (`view`, `click`...): one counter per kind in every bucket. */
  kinds: readonly string[];
  /**
   * The windows, shortest first.
   * @default windowsFromMinutes(DEFAULT_WINDOWS_MINUTES): 5 and 30 minutes in 1-minute buckets
   */
  windows?: readonly CounterWindow[];
  /**
   * Keys held at most; past it, the least recently updated one goes (one whose windows are all
   * empty first). A key costs `(buckets + 1) · kinds · 4` bytes per window plus its id and map
   * entry, allocated as keys arrive.
   * @default 100000
   */
  maxKeys?: number;
  /** How far past `now` an event's time may be (clock skew between hosts). @default 10000 */
  maxFutureMs?: number;
}

export interface ResolvedWindowCountersOptions {
  kinds: readonly string[];
  windows: readonly CounterWindow[];
  maxKeys: number;
  maxFutureMs: number;
}

/** What {@link WindowCounters.record} did with an event. A const object plus a same-named type. */
export const RecordOutcome = {
  /** Counted. */
  Recorded: 'recorded',
  /** Older than the longest window: nothing left to count it in. */
  Ignored: 'ignored',
  /** Further ahead of `now` than `maxFutureMs`, or without a finite time. */
  Rejected: 'rejected',
} as const;
export type RecordOutcome = (typeof RecordOutcome)[keyof typeof RecordOutcome];

export interface WindowCountersStats {
  /** Keys held, at most `maxKeys`. */
  keys: number;
  recorded: number;
  ignored: number;
  rejected: number;
  /** Keys dropped for room while some window of theirs still had counts. */
  evicted: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The windows of `events.windows_minutes` when the config says nothing. */
export const DEFAULT_WINDOWS_MINUTES: readonly number[] = [5, 30];

/** Most buckets one window may have: beyond it a key's memory stops being small. */
export const MAX_BUCKETS = 1440;
export const MAX_WINDOWS = 8;
const MAX_KINDS = 64;
/** Buckets a window given in minutes gets at most: beyond an hour they widen instead. */
const MINUTE_BUCKETS_UP_TO = 60;

/**
 * Windows for spans in minutes (`events.windows_minutes`): 1-minute buckets up to an hour (5 and
 * 30 minutes: 5 and 30 buckets), 60 buckets beyond it (a day: 24-minute buckets), so the oldest
 * bucket, the only one counted in part, is never more than a sixtieth of a long window.
 */
export function windowsFromMinutes(minutes: readonly number[]): CounterWindow[] {
  return minutes.map((m) => ({
    spanMs: m * MINUTE,
    buckets: Math.min(m, MINUTE_BUCKETS_UP_TO),
  }));
}

/**
 * Checks windows once, naming the option (`name[i].buckets`): `min..8` of them, each a whole
 * number of buckets of whole milliseconds, each longer than the one before.
 */
export function checkWindows(windows: readonly CounterWindow[], name: string, min = 1): void {
  if (windows.length < min || windows.length > MAX_WINDOWS) {
    throw new RangeError(`${name} must hold ${min}..${MAX_WINDOWS} windows`);
  }
  windows.forEach((w, i) => {
    const at = `${name}[${i}]`;
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
}

/** Validates once, naming the option, and applies the defaults. */
export function resolveWindowCountersOptions(
  options: WindowCountersOptions,
): ResolvedWindowCountersOptions {
  const kinds: readonly string[] = options.kinds;
  if (!Array.isArray(options.kinds) || kinds.length < 1 || kinds.length > MAX_KINDS) {
    throw new RangeError(`kinds must hold 1..${MAX_KINDS} event kinds`);
  }
  kinds.forEach((kind, i) => {
    if (typeof kind !== 'string' || kind === '') {
      throw new RangeError(`kinds[${i}] must be a non-empty string`);
    }
    if (kinds.indexOf(kind) !== i) throw new RangeError(`kinds[${i}] repeats '${kind}'`);
  });
  const windows = options.windows ?? windowsFromMinutes(DEFAULT_WINDOWS_MINUTES);
  checkWindows(windows, 'windows');
  const maxKeys = options.maxKeys ?? 100_000;
  if (!Number.isInteger(maxKeys) || maxKeys < 1 || maxKeys > 2 ** 30) {
    throw new RangeError('maxKeys must be a positive integer');
  }
  const maxFutureMs = options.maxFutureMs ?? 10_000;
  if (!Number.isFinite(maxFutureMs) || maxFutureMs < 0) {
    throw new RangeError('maxFutureMs must be a non-negative number');
  }
  return {
    kinds: [...kinds],
    windows: windows.map((w) => ({ spanMs: w.spanMs, buckets: w.buckets })),
    maxKeys,
    maxFutureMs,
  };
}

/** `300000` → `5m`, `86400000` → `24h`: the suffix of a window's feature names. */
export function windowName(spanMs: number): string {
  if (spanMs % HOUR === 0) return `${spanMs / HOUR}h`;
  if (spanMs % MINUTE === 0) return `${spanMs / MINUTE}m`;
  if (spanMs % 1000 === 0) return `${spanMs / 1000}s`;
  return `${spanMs}ms`;
}

/**
 * Click-through rate as the posterior mean under a Beta prior of mean `p0` worth `n0` views:
 * `(clicks + p0·n0) / (views + n0)`, capped at 1 (clicks can outnumber views when views are lost
 * upstream). A new item's 1 click in 2 views reads (1 + 1) / (2 + 20) = 0.09 with p0 = 0.05 and
 * n0 = 20, not 0.5: its own rate takes over only as its views pass n0.
 */
export function smoothedCtr(
  clicks: number,
  views: number,
  priorMean: number,
  priorViews: number,
): number {
  return Math.min(1, (clicks + priorMean * priorViews) / (views + priorViews));
}

/**
 * How much faster a key is moving now than over the longest window, as a log ratio of the short
 * window's count to the count its long-window rate would predict there, both with `m` pseudo-events
 * added: `ln((s + m) / (l · Ts / Tl + m))`, for `s` and `l` the events in the shortest and longest
 * windows, `Ts` the short span and `Tl` the time the long window has really watched
 * ({@link WindowCounters.watchedMs}). 0 is a steady key (and one without events), positive a rising
 * one, negative a cooling one. Without `m` a brand-new item's 3 views would read ln(Tl / Ts), the
 * most any item can reach, the same as an item going viral; with m = 5 (5-minute and 1-day windows)
 * it reads ln(8 / 5.01) = 0.47, while 300 events in 5 minutes against 600 in the day read
 * ln(305 / 7.08) = 3.8. The log keeps it symmetric and bounded for a ranker.
 */
export function velocityScore(
  short: number,
  long: number,
  shortSpanMs: number,
  watchedMs: number,
  prior: number,
): number {
  const expected = (long * shortSpanMs) / watchedMs;
  return Math.log((short + prior) / (expected + prior));
}

/** A slot nobody links to. */
const NONE = -1;
const INITIAL_CAPACITY = 1024;
/** First byte of an exported state: its format. */
const STATE_FORMAT = 1;
/** Format byte, layout hash (u32), newest event time (f64), watched-since time (f64). */
const STATE_HEADER = 1 + 4 + 8 + 8;

/** The bucket's place in its ring; buckets before 1970 (a negative index) still land in the ring. */
const ringSlot = (bucket: number, size: number): number => ((bucket % size) + size) % size;

export class WindowCounters {
  readonly options: ResolvedWindowCountersOptions;
  readonly kinds: readonly string[];
  readonly windows: readonly CounterWindow[];
  private readonly kindCount: number;
  private readonly kindOf: ReadonlyMap<string, number>;
  private readonly windowCount: number;
  /** Per window: bucket width (ms), buckets in the window, slots in its ring (one more). */
  private readonly width: Float64Array;
  private readonly buckets: Int32Array;
  private readonly ringSize: Int32Array;
  /** Per window: where its ring starts within a key's stride. */
  private readonly ringOffset: Int32Array;
  /** Counters per key: every window's ring, each bucket one counter per kind. */
  private readonly stride: number;
  private readonly shortestSpan: number;
  private readonly longestSpan: number;
  /** Kinds and windows, hashed: a state exported under another layout is refused. */
  private readonly layout: number;

  private capacity = 0;
  /** `counts[slot * stride + ringOffset[w] + ringSlot * kinds + kind]`. */
  private counts = new Uint32Array(0);
  /** Time of each key's newest event: where its rings' heads are. `-Infinity`: none yet. */
  private newestAt = new Float64Array(0);
  /** The recency list, newest first: `head` is the most recently updated key, `tail` the least. */
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private head = NONE;
  private tail = NONE;
  private readonly slotOf = new Map<string, number>();
  private readonly idOf: (string | undefined)[] = [];
  private readonly free: number[] = [];
  /** Slots ever handed out (the rest of the capacity is untouched). */
  private used = 0;
  /** Since when events have been watched: the long window holds less than its span before. */
  private since = Number.POSITIVE_INFINITY;
  /** The latest `now` seen, for eviction decisions that have none at hand. */
  private lastNow = Number.NEGATIVE_INFINITY;
  private readonly tally = { recorded: 0, ignored: 0, rejected: 0, evicted: 0 };

  constructor(options: WindowCountersOptions) {
    this.options = resolveWindowCountersOptions(options);
    const { kinds, windows } = this.options;
    this.kinds = kinds;
    this.windows = windows;
    this.kindCount = kinds.length;
    this.kindOf = new Map(kinds.map((kind, i) => [kind, i]));
    this.windowCount = windows.length;
    this.width = Float64Array.from(windows, (w) => w.spanMs / w.buckets);
    this.buckets = Int32Array.from(windows, (w) => w.buckets);
    this.ringSize = Int32Array.from(windows, (w) => w.buckets + 1);
    this.ringOffset = new Int32Array(windows.length);
    let offset = 0;
    windows.forEach((w, i) => {
      this.ringOffset[i] = offset;
      offset += (w.buckets + 1) * kinds.length;
    });
    this.stride = offset;
    this.shortestSpan = windows[0]!.spanMs;
    this.longestSpan = windows[windows.length - 1]!.spanMs;
    this.layout = fnv1a32(
      `${kinds.join(',')}|${windows.map((w) => `${w.spanMs}/${w.buckets}`).join(',')}`,
    );
  }

  /** Keys held. */
  get size(): number {
    return this.slotOf.size;
  }

  /** Since when events have been watched (epoch ms): the earliest `now`, event or import seen. */
  get observedSince(): number {
    return this.since;
  }

  /** Where `kind`'s counts sit in a window's part of {@link sums}; -1 for a kind not counted. */
  kindIndex(kind: string): number {
    return this.kindOf.get(kind) ?? -1;
  }

  has(key: string): boolean {
    return this.slotOf.has(key);
  }

  /** Time of the key's newest counted event, `undefined` when the key is not held. */
  newest(key: string): number | undefined {
    const slot = this.slotOf.get(key);
    if (slot === undefined) return undefined;
    const newest = this.newestAt[slot]!;
    return newest === Number.NEGATIVE_INFINITY ? undefined : newest;
  }

  stats(): WindowCountersStats {
    return { keys: this.slotOf.size, ...this.tally };
  }

  /** Notes that events have been watched since `timeMs` (a start, or an imported state's). */
  observe(timeMs: number): void {
    if (timeMs < this.since) this.since = timeMs;
  }

  /**
   * The span the longest window has really watched at `now`: itself once events have been watched
   * that long, the time watched before (at least the shortest span), so a long window that holds
   * only 10 minutes after a start does not read as a slow day. The `Tl` of {@link velocityScore}.
   */
  watchedMs(now: number): number {
    return Math.min(this.longestSpan, Math.max(this.shortestSpan, now - this.since));
  }

  /** What {@link record} would do with an event at `tsMs`, by its time alone; counts nothing. */
  admits(tsMs: number, now: number): RecordOutcome {
    if (!Number.isFinite(tsMs) || tsMs > now + this.options.maxFutureMs) {
      return RecordOutcome.Rejected;
    }
    if (tsMs < now - this.longestSpan) return RecordOutcome.Ignored;
    return RecordOutcome.Recorded;
  }

  /**
   * Counts one event of `kind` for `key` at `tsMs`. An event older than the longest window is
   * ignored, one more than `maxFutureMs` ahead of `now` (or without a finite time) rejected; an
   * ignored or rejected event takes no room. Throws `RangeError` for a kind not counted.
   */
  record(key: string, kind: string, tsMs: number, now: number): RecordOutcome {
    const type = this.kindOf.get(kind);
    if (type === undefined) throw new RangeError(`kind '${kind}' is not counted`);
    if (now > this.lastNow) this.lastNow = now;
    this.observe(now);
    const outcome = this.admits(tsMs, now);
    if (outcome !== RecordOutcome.Recorded) {
      this.tally[outcome]++;
      return outcome;
    }
    this.observe(tsMs);
    const slot = this.slotOf.get(key) ?? this.add(key, now);
    if (tsMs > this.newestAt[slot]!) this.advance(slot, tsMs);
    this.count(slot, tsMs, type);
    this.tally.recorded++;
    return RecordOutcome.Recorded;
  }

  /**
   * Events of every kind in each window at `now`, into `out[window * kinds + kind]` (a new array
   * when none is given); zeros for a key not held, the same as a key whose windows have emptied.
   * Reads change nothing.
   */
  sums(key: string, now: number, out?: Float64Array): Float64Array {
    const sums = out ?? new Float64Array(this.windowCount * this.kindCount);
    sums.fill(0);
    const slot = this.slotOf.get(key);
    if (slot === undefined) return sums;
    const kinds = this.kindCount;
    const counts = this.counts;
    const base = slot * this.stride;
    const newest = this.newestAt[slot]!;
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
      const at = w * kinds;
      for (let b = from; b <= to; b++) {
        const weight = b === oldest ? tailWeight : 1;
        const cell = ring + ringSlot(b, size) * kinds;
        for (let t = 0; t < kinds; t++) sums[at + t]! += weight * counts[cell + t]!;
      }
    }
    return sums;
  }

  /** Forgets `key`; whether it was held. */
  delete(key: string): boolean {
    const slot = this.slotOf.get(key);
    if (slot === undefined) return false;
    this.remove(slot);
    return true;
  }

  /**
   * Drops up to `limit` keys whose windows are all empty at `now`, least recently updated first;
   * returns how many went. Cheap: it stops at the first key with counts, which the list's order
   * makes the oldest.
   */
  trim(now: number, limit = Number.POSITIVE_INFINITY): number {
    let dropped = 0;
    while (dropped < limit && this.tail !== NONE && this.isEmpty(this.tail, now)) {
      this.remove(this.tail);
      dropped++;
    }
    return dropped;
  }

  /**
   * The key's buckets as a short string (base64: format, layout, newest event time, watched-since
   * time, then each window's buckets oldest first as varints), `null` for a key not held. Import it
   * with {@link importState} into counters of the same kinds and windows.
   */
  exportState(key: string): string | null {
    const slot = this.slotOf.get(key);
    if (slot === undefined) return null;
    const kinds = this.kindCount;
    const newest = this.newestAt[slot]!;
    const values: number[] = [];
    const base = slot * this.stride;
    for (let w = 0; w < this.windowCount; w++) {
      const width = this.width[w]!;
      const size = this.ringSize[w]!;
      const ring = base + this.ringOffset[w]!;
      const top = Math.floor(newest / width);
      for (let b = top - this.buckets[w]!; b <= top; b++) {
        const cell = ring + ringSlot(b, size) * kinds;
        for (let t = 0; t < kinds; t++) values.push(this.counts[cell + t]!);
      }
    }
    const bytes = Buffer.alloc(STATE_HEADER + 5 * values.length);
    bytes.writeUInt8(STATE_FORMAT, 0);
    bytes.writeUInt32LE(this.layout, 1);
    bytes.writeDoubleLE(newest, 5);
    bytes.writeDoubleLE(this.since, 13);
    let at = STATE_HEADER;
    for (let value of values) {
      // LEB128: seven bits a byte, low first; most buckets are empty and take one byte.
      while (value >= 0x80) {
        bytes[at++] = (value & 0x7f) | 0x80;
        value = Math.floor(value / 0x80);
      }
      bytes[at++] = value;
    }
    return bytes.toString('base64', 0, at);
  }

  /**
   * Replaces `key`'s buckets with an exported state, which makes the key the most recently
   * updated; the state's watched-since time lowers {@link observedSince}. Returns false, changing
   * nothing, for a state that is malformed or was exported under other kinds or windows.
   */
  importState(key: string, state: string): boolean {
    const bytes = Buffer.from(state, 'base64');
    if (bytes.length < STATE_HEADER || bytes.readUInt8(0) !== STATE_FORMAT) return false;
    if (bytes.readUInt32LE(1) !== this.layout) return false;
    const newest = bytes.readDoubleLE(5);
    const since = bytes.readDoubleLE(13);
    if (!Number.isFinite(newest) || Number.isNaN(since)) return false;
    const values = new Uint32Array(this.stride);
    let count = 0;
    let at = STATE_HEADER;
    while (at < bytes.length) {
      if (count === values.length) return false;
      let value = 0;
      let scale = 1;
      for (;;) {
        const byte = bytes[at++];
        if (byte === undefined || scale > 0x80 ** 4) return false;
        value += (byte & 0x7f) * scale;
        if (byte < 0x80) break;
        scale *= 0x80;
      }
      if (value > 0xffffffff) return false;
      values[count++] = value;
    }
    if (count !== values.length) return false;

    const slot = this.slotOf.get(key) ?? this.add(key, this.lastNow);
    const kinds = this.kindCount;
    const base = slot * this.stride;
    this.newestAt[slot] = newest;
    this.touch(slot);
    let from = 0;
    for (let w = 0; w < this.windowCount; w++) {
      const width = this.width[w]!;
      const size = this.ringSize[w]!;
      const ring = base + this.ringOffset[w]!;
      const top = Math.floor(newest / width);
      for (let b = top - this.buckets[w]!; b <= top; b++) {
        const cell = ring + ringSlot(b, size) * kinds;
        this.counts.set(values.subarray(from, from + kinds), cell);
        from += kinds;
      }
    }
    this.observe(since);
    return true;
  }

  /** Adds one event of kind `type` at `ts` (no later than the key's newest) to every ring. */
  private count(slot: number, ts: number, type: number): void {
    const base = slot * this.stride;
    const newest = this.newestAt[slot]!;
    for (let w = 0; w < this.windowCount; w++) {
      const width = this.width[w]!;
      const bucket = Math.floor(ts / width);
      // Too late for this ring (it holds `top - n` to `top`), though a longer one may count it.
      if (bucket < Math.floor(newest / width) - this.buckets[w]!) continue;
      const size = this.ringSize[w]!;
      this.counts[base + this.ringOffset[w]! + ringSlot(bucket, size) * this.kindCount + type]!++;
    }
  }

  /** Moves the key's rings forward to `ts`, clearing the buckets they reuse. */
  private advance(slot: number, ts: number): void {
    const base = slot * this.stride;
    const kinds = this.kindCount;
    const was = this.newestAt[slot]!;
    this.newestAt[slot] = ts;
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
        const cell = ring + ringSlot(b, size) * kinds;
        this.counts.fill(0, cell, cell + kinds);
      }
    }
  }

  /** Whether every window of the key is empty at `now`. */
  private isEmpty(slot: number, now: number): boolean {
    const w = this.windowCount - 1;
    const width = this.width[w]!;
    return Math.floor(this.newestAt[slot]! / width) < Math.floor(now / width) - this.buckets[w]!;
  }

  /** A slot for a new key: a free one, a new one, or the least recently updated key's. */
  private add(id: string, now: number): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.used < this.options.maxKeys) {
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
    this.newestAt[slot] = Number.NEGATIVE_INFINITY;
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

  /** Makes `slot` the most recently updated key. */
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

  /** Doubles the arrays (up to `maxKeys`): memory follows the keys actually held. */
  private grow(): void {
    const capacity = Math.min(this.options.maxKeys, Math.max(INITIAL_CAPACITY, this.capacity * 2));
    const counts = new Uint32Array(capacity * this.stride);
    counts.set(this.counts);
    this.counts = counts;
    this.newestAt = copyInto(new Float64Array(capacity), this.newestAt);
    this.prev = copyInto(new Int32Array(capacity), this.prev);
    this.next = copyInto(new Int32Array(capacity), this.next);
    this.capacity = capacity;
  }
}

function copyInto<T extends Float64Array | Int32Array>(to: T, from: T): T {
  to.set(from);
  return to;
}
