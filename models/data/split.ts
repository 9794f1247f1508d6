/**
 * Train/test splits of a data set's events.
 *
 * - {@link temporalSplit}: everything before a cutoff time trains, everything at or after it
 *   tests. The honest protocol for a system that serves the future from the past.
 * - {@link randomSplit}: each event lands in test with a fixed probability, whatever its time.
 *   Some published baselines use it; it leaks the future into training, so use it only to
 *   compare with them.
 */
import { DataOptionError } from './errors.js';
import { Rng } from './rng.js';
import type { Dataset, EventTable } from './types.js';

export interface Split {
  /** Test events are at or after this time (epoch ms); training events are before it. */
  readonly cutoff: number;
  readonly train: EventTable;
  readonly test: EventTable;
}

export type TemporalSplitOptions =
  | {
      /** Share of events (by count) the test set gets, in (0, 1). @default 0.2 */
      testFraction?: number;
    }
  | {
      /** Explicit cutoff time (epoch ms). */
      cutoff: number;
    };

export interface RandomSplitOptions {
  /** Probability that an event lands in test, in (0, 1). */
  testFraction: number;
  /** Same seed and data, same split. */
  seed: number;
}

type EventSource = Pick<Dataset, 'events'> | EventTable;

function eventsOf(source: EventSource): EventTable {
  return 'events' in source ? source.events : source;
}

function checkFraction(value: number): number {
  if (!(value > 0 && value < 1)) {
    throw new DataOptionError('testFraction', `must be in (0, 1), got ${value}`);
  }
  return value;
}

/** A zero-copy view of events [start, end) (typed-array subarrays share the memory). */
export function sliceEvents(events: EventTable, start: number, end: number): EventTable {
  const from = Math.max(0, Math.min(start, events.length));
  const to = Math.max(from, Math.min(end, events.length));
  return {
    length: to - from,
    user: events.user.subarray(from, to),
    item: events.item.subarray(from, to),
    ts: events.ts.subarray(from, to),
    type: events.type.subarray(from, to),
    value: events.value.subarray(from, to),
  };
}

/**
 * The events at the given positions, in the order given, copied into new typed arrays (column by
 * column; no per-row objects). `count` limits how many entries of `indices` are used.
 */
export function selectEvents(
  events: EventTable,
  indices: Int32Array | Uint32Array | readonly number[],
  count: number = indices.length,
): EventTable {
  const n = Math.min(count, indices.length);
  const user = new Int32Array(n);
  const item = new Int32Array(n);
  const ts = new Float64Array(n);
  const type = new Uint8Array(n);
  const value = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k] ?? -1;
    if (!(i >= 0 && i < events.length)) {
      throw new RangeError(`index ${i} at position ${k} is outside [0, ${events.length})`);
    }
    user[k] = events.user[i] ?? 0;
    item[k] = events.item[i] ?? 0;
    ts[k] = events.ts[i] ?? 0;
    type[k] = events.type[i] ?? 0;
    value[k] = events.value[i] ?? 0;
  }
  return { length: n, user, item, ts, type, value };
}

/** First position whose time is >= `time` (events sorted by time). */
function lowerBound(ts: Float64Array, n: number, time: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ts[mid] ?? Infinity) < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Splits by time: train holds the events strictly before the cutoff, test those at or after it.
 * With `testFraction` the cutoff is the time of the event at position ⌊n·(1 − testFraction)⌋, so
 * test gets about that share (more when events share the cutoff's timestamp). Train and test are
 * views into the data set's arrays: nothing is copied. Events must be sorted by time, as a
 * data set's are.
 */
export function temporalSplit(source: EventSource, options: TemporalSplitOptions = {}): Split {
  const events = eventsOf(source);
  const n = events.length;
  for (let i = 1; i < n; i++) {
    if ((events.ts[i] ?? 0) < (events.ts[i - 1] ?? 0)) {
      throw new DataOptionError('events', `must be sorted by time (row ${i} goes back)`);
    }
  }
  let cutoff: number;
  if ('cutoff' in options) {
    if (!Number.isFinite(options.cutoff)) {
      throw new DataOptionError('cutoff', `must be a finite time, got ${options.cutoff}`);
    }
    cutoff = options.cutoff;
  } else {
    const fraction = checkFraction(options.testFraction ?? 0.2);
    if (n === 0)
      return { cutoff: NaN, train: sliceEvents(events, 0, 0), test: sliceEvents(events, 0, 0) };
    const position = Math.min(n - 1, Math.floor(n * (1 - fraction)));
    cutoff = events.ts[position] ?? 0;
  }
  const at = lowerBound(events.ts, n, cutoff);
  return { cutoff, train: sliceEvents(events, 0, at), test: sliceEvents(events, at, n) };
}

/**
 * Splits each event independently: test with probability `testFraction`, decided by a seeded
 * generator. Both sides keep time order. For comparison with published baselines only.
 */
export function randomSplit(source: EventSource, options: RandomSplitOptions): Split {
  const events = eventsOf(source);
  const fraction = checkFraction(options.testFraction);
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff) {
    throw new DataOptionError('seed', `must be an integer in [0, 4294967295], got ${options.seed}`);
  }
  const rng = new Rng(options.seed, 0x5b1);
  const n = events.length;
  const trainIdx = new Int32Array(n);
  const testIdx = new Int32Array(n);
  let nTrain = 0;
  let nTest = 0;
  for (let i = 0; i < n; i++) {
    if (rng.next() < fraction) testIdx[nTest++] = i;
    else trainIdx[nTrain++] = i;
  }
  return {
    // Random splits have no cutoff; NaN says so without breaking the shape.
    cutoff: NaN,
    train: selectEvents(events, trainIdx, nTrain),
    test: selectEvents(events, testIdx, nTest),
  };
}
