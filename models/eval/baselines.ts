/**
 * Baselines every model is judged beside, on the same split in the same run: two popularity
 * baselines (the same list for everyone; evaluation removes each user's seen items) and, on a
 * synthetic data set, the oracle that knows how the generator chose.
 */
import { oracleScores } from '../data/truth.js';
import type { Truth } from '../data/truth.js';
import type { EventTable } from '../data/types.js';
import type { RetrievalScorer, UserQuery } from '../retrieval/scorer.js';

const DAY_MS = 86_400_000;

function checkItemCount(itemCount: number): void {
  if (!Number.isInteger(itemCount) || itemCount < 1) {
    throw new RangeError(`itemCount must be a positive integer, got ${itemCount}`);
  }
}

/** Interaction counts per item over `events[from, to)`. */
function countEvents(events: EventTable, itemCount: number, from = 0, to = events.length) {
  const counts = new Float64Array(itemCount);
  for (let e = from; e < to; e++) {
    const item = events.item[e] as number;
    if (item < 0 || item >= itemCount) {
      throw new RangeError(`event ${e} names item ${item}, outside the catalogue of ${itemCount}`);
    }
    counts[item] = (counts[item] as number) + 1;
  }
  return counts;
}

/** The same scores for every query, one row each. */
function repeatRows(row: Float32Array, rows: number): Float32Array {
  const out = new Float32Array(rows * row.length);
  for (let q = 0; q < rows; q++) out.set(row, q * row.length);
  return out;
}

/**
 * Most popular items overall: the score of an item is the number of training events (of any
 * type) on it. The classic non-personalised baseline; it ignores the query and its time.
 */
export class PopularityScorer implements RetrievalScorer {
  readonly name: string;
  /** Training events per item. */
  readonly counts: Float32Array;

  /**
   * @param events the training events only (never the test period)
   * @param itemCount catalogue size
   */
  constructor(events: EventTable, itemCount: number, options: { name?: string } = {}) {
    checkItemCount(itemCount);
    this.name = options.name ?? 'popularity';
    this.counts = Float32Array.from(countEvents(events, itemCount));
  }

  scoreBatch(queries: readonly UserQuery[]): Float32Array {
    return repeatRows(this.counts, queries.length);
  }
}

export interface RecentPopularityOptions {
  /**
   * A window of fixed length: the events of the `windowDays` days before the query time count.
   * Overrides `windowShare`.
   */
  windowDays?: number;
  /**
   * A window of fixed weight: the most recent `windowShare` of the training events before the
   * query time count, however many days they span. This adapts "recently" to the pace of the log
   * (hours in a busy shop, months in a small rating log), so one default fits every data set.
   * @default 0.05
   */
  windowShare?: number;
  /**
   * When set, an event `d` days before the query time weighs `0.5 ** (d / halfLifeDays)` instead
   * of 1, so the last days of the window count most.
   * @default undefined (every event in the window weighs 1)
   */
  halfLifeDays?: number;
  /** @default 'recent-popularity' */
  name?: string;
}

/** The events a {@link RecentPopularityScorer} counts for one query time. */
export interface RecentWindow {
  /** Epoch ms of the first and last event counted (NaN when none). */
  readonly from: number;
  readonly to: number;
  /** Events counted. */
  readonly events: number;
  /** Days from the first event counted to the query time. */
  readonly days: number;
}

/**
 * Most popular items lately: the score of an item is its number of training events in a window
 * before the query time `at` (optionally decayed with a half-life), ties broken by the all-time
 * count and then by item index. This is the baseline a real-time system must beat: what is
 * popular now, not over the whole log. The window is the most recent 5% of the training events
 * by default, or a number of days.
 *
 * Scores are ranks turned around (the best item scores `itemCount`, the worst 1), which keeps the
 * tie-breaking exact in a Float32Array. They are computed once per distinct `at` and cached.
 */
export class RecentPopularityScorer implements RetrievalScorer {
  readonly name: string;
  readonly windowMs: number | undefined;
  readonly windowShare: number;
  readonly halfLifeMs: number | undefined;
  private readonly events: EventTable;
  private readonly itemCount: number;
  private readonly allTime: Float64Array;
  private cached: { at: number; scores: Float32Array; window: RecentWindow } | undefined;

  /**
   * @param events the training events only, sorted by time (as every {@link EventTable} is)
   * @param itemCount catalogue size
   */
  constructor(events: EventTable, itemCount: number, options: RecentPopularityOptions = {}) {
    checkItemCount(itemCount);
    if (options.windowDays !== undefined && !(options.windowDays > 0)) {
      throw new RangeError('windowDays must be positive');
    }
    const share = options.windowShare ?? 0.05;
    if (!(share > 0 && share <= 1)) throw new RangeError('windowShare must be in (0, 1]');
    if (options.halfLifeDays !== undefined && !(options.halfLifeDays > 0)) {
      throw new RangeError('halfLifeDays must be positive');
    }
    this.name = options.name ?? 'recent-popularity';
    this.windowMs = options.windowDays === undefined ? undefined : options.windowDays * DAY_MS;
    this.windowShare = share;
    this.halfLifeMs =
      options.halfLifeDays === undefined ? undefined : options.halfLifeDays * DAY_MS;
    this.events = events;
    this.itemCount = itemCount;
    this.allTime = countEvents(events, itemCount);
  }

  scoreBatch(queries: readonly UserQuery[], at: number): Float32Array {
    return repeatRows(this.scoresAt(at), queries.length);
  }

  /** The window counted for queries at `at`. */
  windowAt(at: number): RecentWindow {
    return this.compute(at).window;
  }

  /** One score per item as of `at` (epoch ms): events in the window before `at` count. */
  scoresAt(at: number): Float32Array {
    return this.compute(at).scores;
  }

  private compute(at: number): { scores: Float32Array; window: RecentWindow } {
    if (this.cached?.at === at) return this.cached;
    const { ts, item } = this.events;
    const to = lowerBound(ts, this.events.length, at);
    const from =
      this.windowMs === undefined
        ? to - Math.ceil(this.windowShare * to)
        : lowerBound(ts, this.events.length, at - this.windowMs);
    const recent = new Float64Array(this.itemCount);
    const halfLife = this.halfLifeMs;
    for (let e = from; e < to; e++) {
      const i = item[e] as number;
      const weight = halfLife === undefined ? 1 : 0.5 ** ((at - (ts[e] as number)) / halfLife);
      recent[i] = (recent[i] as number) + weight;
    }
    const order = Array.from({ length: this.itemCount }, (_, i) => i);
    const allTime = this.allTime;
    order.sort(
      (a, b) =>
        (recent[b] as number) - (recent[a] as number) ||
        (allTime[b] as number) - (allTime[a] as number) ||
        a - b,
    );
    const scores = new Float32Array(this.itemCount);
    order.forEach((i, rank) => {
      scores[i] = this.itemCount - rank;
    });
    const first = to > from ? (ts[from] as number) : NaN;
    const window: RecentWindow = {
      from: first,
      to: to > from ? (ts[to - 1] as number) : NaN,
      events: to - from,
      days:
        this.windowMs === undefined
          ? to > from
            ? (at - first) / DAY_MS
            : 0
          : this.windowMs / DAY_MS,
    };
    this.cached = { at, scores, window };
    return this.cached;
  }
}

/** First index in the sorted `ts[0, length)` whose value is ≥ `value`. */
function lowerBound(ts: Float64Array, length: number, value: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ts[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The synthetic world's oracle: scores every item with the generator's own choice model for the
 * user at the query time (`oracleScores`), so its recall is the best a model can expect from the
 * user's long-term taste. It knows every user of the world, cold or warm, and ignores the history.
 */
export class OracleScorer implements RetrievalScorer {
  readonly name: string;

  constructor(
    private readonly truth: Truth,
    options: { name?: string } = {},
  ) {
    this.name = options.name ?? 'oracle';
  }

  scoreBatch(queries: readonly UserQuery[], at: number): Float32Array {
    const n = this.truth.items;
    const out = new Float32Array(queries.length * n);
    queries.forEach((query, q) => {
      oracleScores(this.truth, query.userIndex, at, out.subarray(q * n, (q + 1) * n));
    });
    return out;
  }
}
