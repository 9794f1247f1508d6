/**
 * Point-in-time correct training examples for the rankers: for a (user, time t) query, the
 * retrieval model's top-K candidates for the user as they were just before t, labelled by what the
 * user did with them next, each with the feature row the online store would have served at t.
 *
 * "As of t" is literal: the features are read by the serving reader from a {@link PointInTimeStore}
 * (the online store as it stood at t, rebuilt by the production code); the retrieval query holds
 * the user's items strictly before t, is scored as of t, and the candidates leave out what the
 * user had already interacted with and the items that did not exist yet. Events at or after t are
 * read only for labels, and events at or after `to` never.
 *
 * Two passes: the candidates and labels of every query first, then the store replayed forward
 * through the query times, knowing every read in advance, so that only the events a read can show
 * are replayed (exact; see `PointInTimeStoreOptions.plan`).
 *
 * Caveat: the retrieval model is taken as given. Trained on the same period, it has seen the
 * events after t (its scores are in-sample there); draw query times after its training cutoff
 * (`from`) when the data allows.
 */
import { ConfigError } from '../../runtime/errors.js';
import type { FeatureDefinitions } from '../../runtime/features/types.js';
import { DEFAULT_WINDOWS_MINUTES } from '../../runtime/features/windows.js';
import { MAX_BATCH_ROWS } from '../../runtime/features/validate.js';
import { Rng } from '../data/rng.js';
import { EventType } from '../data/types.js';
import type { Dataset } from '../data/types.js';
import { topK } from '../eval/topk.js';
import type { ItemExclusion } from '../eval/topk.js';
import type { RetrievalScorer, UserQuery } from '../retrieval/scorer.js';
import { assembleFeatures, rankingSchema } from './features.js';
import type { RankingFeatureSchema } from './features.js';
import { PointInTimeStore, eventsBefore, firstEvent } from './point-in-time.js';
import type { PlannedRead, PointInTimeStoreStats } from './point-in-time.js';

const DAY_MS = 86_400_000;

/** One query: a user (dense index of the data set) at a time (epoch ms). */
export interface RankingQueryPoint {
  readonly user: number;
  readonly timeMs: number;
}

/**
 * The label of one event: purchase 4, like 3, click 2, view 1; a rating 4 from 4.5 up, 3 from 4,
 * 2 from 3, else 1 (a low rating still says the user chose the item). A candidate's label is the
 * highest of the user's events on it within the horizon, 0 for none.
 */
export function labelGrade(type: number, value: number): number {
  switch (type) {
    case EventType.Purchase:
      return 4;
    case EventType.Like:
      return 3;
    case EventType.Click:
      return 2;
    case EventType.View:
      return 1;
    case EventType.Rating:
      return value >= 4.5 ? 4 : value >= 4 ? 3 : value >= 3 ? 2 : 1;
    default:
      return 0;
  }
}

/** Options of {@link buildRankingExamples}. */
export interface RankingExamplesOptions {
  dataset: Dataset;
  /** The retrieval model (or a baseline) that proposes the candidates. */
  retrieval: RetrievalScorer;
  /** The feature views (`configs/features.yaml`). */
  definitions: FeatureDefinitions;
  /** @default rankingSchema(): every ranking feature */
  schema?: RankingFeatureSchema;
  /**
   * The query points, in any order. When absent, `queries` points are drawn at the times of
   * events in `[from, to - horizonMs]`, each for the event's user: a request made just before
   * what they did.
   */
  points?: readonly RankingQueryPoint[];
  /** Query points drawn when `points` is absent. @default 2000 */
  queries?: number;
  /** Earliest query time (epoch ms). @default the first event's time */
  from?: number;
  /**
   * Nothing at or after this time is read: query times are at most `to - horizonMs`, so every
   * label window is whole. Pass a split's cutoff to keep its test part out.
   * @default one ms after the last event
   */
  to?: number;
  /** Candidates per query (the retrieval model's top K). @default 100 */
  candidates?: number;
  /** How far ahead of t the user's events label the candidates. @default 86400000 (a day) */
  horizonMs?: number;
  /** Items of the user's history given to the retrieval model (the latest). @default 50 */
  historyLength?: number;
  /** See {@link PointInTimeStoreOptions.batchIntervalMs}. @default 86400000 */
  batchIntervalMs?: number;
  /** The stream views' windows (`events.windows_minutes`). @default [5, 30] */
  windowsMinutes?: readonly number[];
  /** Keep queries none of whose candidates has a positive label (they teach a ranker nothing). @default false */
  keepEmptyGroups?: boolean;
  /** Seed of the query sample. @default 0 */
  seed?: number;
  /**
   * Queries scored per `scoreBatch` call, as of the earliest of their times. 1 scores each as of
   * its own time. More is much faster; for a scorer that does not depend on the time (the two-tower
   * model: its item embeddings are fixed) it changes only the scores' last bits (its matrix kernel
   * sums in another order), for one that does (recent popularity) it scores a query as of a time
   * up to the batch's span before its own, never after. Histories are each query's own either way.
   * @default 1
   */
  retrievalBatch?: number;
  /**
   * Replay only the events the planned reads can show (exact; see
   * `PointInTimeStoreOptions.plan`); false replays every event, for comparison. @default true
   */
  planReplay?: boolean;
  /** Called after each query's features are read (after pass 1: candidates and labels). */
  onProgress?: (done: number, total: number) => void;
}

export interface ResolvedRankingExamplesOptions {
  schema: RankingFeatureSchema;
  queries: number;
  from: number;
  to: number;
  candidates: number;
  horizonMs: number;
  historyLength: number;
  batchIntervalMs: number;
  windowsMinutes: readonly number[];
  keepEmptyGroups: boolean;
  seed: number;
  retrievalBatch: number;
  planReplay: boolean;
}

function positiveInteger(value: number, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new ConfigError(name, `must be an integer in 1..${max}`);
  }
  return value;
}

/** Validates once, naming the option, and applies the defaults. */
export function resolveRankingExamplesOptions(
  options: RankingExamplesOptions,
): ResolvedRankingExamplesOptions {
  const { events } = options.dataset;
  const first = events.length > 0 ? (events.ts[0] as number) : 0;
  const last = events.length > 0 ? (events.ts[events.length - 1] as number) : 0;
  const from = options.from ?? first;
  const to = options.to ?? last + 1;
  if (!Number.isFinite(from)) throw new ConfigError('from', 'must be a finite epoch-ms time');
  if (!Number.isFinite(to)) throw new ConfigError('to', 'must be a finite epoch-ms time');
  const horizonMs = options.horizonMs ?? DAY_MS;
  if (!Number.isSafeInteger(horizonMs) || horizonMs < 1) {
    throw new ConfigError('horizonMs', 'must be a positive integer (milliseconds)');
  }
  if (options.points === undefined && from > to - horizonMs) {
    throw new ConfigError(
      'from',
      `leaves no query time: from must be at most to - horizonMs (${to - horizonMs})`,
    );
  }
  const batchIntervalMs = options.batchIntervalMs ?? DAY_MS;
  if (!Number.isSafeInteger(batchIntervalMs) || batchIntervalMs < 0) {
    throw new ConfigError('batchIntervalMs', 'must be a non-negative integer (milliseconds)');
  }
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new ConfigError('seed', 'must be an integer');
  return {
    schema: options.schema ?? rankingSchema(),
    queries: positiveInteger(options.queries ?? 2000, 'queries'),
    from,
    to,
    candidates: positiveInteger(options.candidates ?? 100, 'candidates', MAX_BATCH_ROWS),
    horizonMs,
    historyLength: positiveInteger(options.historyLength ?? 50, 'historyLength'),
    batchIntervalMs,
    windowsMinutes: options.windowsMinutes ?? DEFAULT_WINDOWS_MINUTES,
    keepEmptyGroups: options.keepEmptyGroups ?? false,
    seed,
    retrievalBatch: positiveInteger(options.retrievalBatch ?? 1, 'retrievalBatch', 4096),
    planReplay: options.planReplay ?? true,
  };
}

/**
 * `count` query points drawn uniformly without replacement from the events with times in
 * `[from, until]`: each the event's user at the event's time. Points that repeat a (user, time)
 * are kept once. Sorted by time, then user.
 */
export function sampleQueryPoints(
  dataset: Dataset,
  count: number,
  from: number,
  until: number,
  seed: number,
): RankingQueryPoint[] {
  const lo = eventsBefore(dataset, from);
  const hi = firstEvent(dataset, (ts) => ts > until);
  const n = Math.max(0, hi - lo);
  const picked = new Set<number>();
  if (count >= n) {
    for (let e = lo; e < hi; e++) picked.add(e);
  } else {
    // Floyd's algorithm: `count` distinct positions without an index array of the whole range.
    const rng = new Rng(seed, 7);
    for (let j = n - count; j < n; j++) {
      const r = rng.int(j + 1);
      picked.add(lo + (picked.has(lo + r) ? j : r));
    }
  }
  const seen = new Set<string>();
  const points: RankingQueryPoint[] = [];
  for (const e of [...picked].sort((a, b) => a - b)) {
    const point = {
      user: dataset.events.user[e] as number,
      timeMs: dataset.events.ts[e] as number,
    };
    const key = `${point.user}@${point.timeMs}`;
    if (seen.has(key)) continue;
    seen.add(key);
    points.push(point);
  }
  return points.sort((a, b) => a.timeMs - b.timeMs || a.user - b.user);
}

/** What building the examples did, and where the time went. */
export interface RankingExamplesStats {
  /** Query points considered. */
  points: number;
  /** Queries kept (groups). */
  groups: number;
  /** Queries dropped because no candidate has a positive label. */
  withoutPositives: number;
  /** Queries dropped because the retrieval model had no candidate left for the user. */
  withoutCandidates: number;
  /** Rows with a positive label. */
  positives: number;
  store: PointInTimeStoreStats;
  /** Milliseconds scoring and selecting candidates. */
  retrievalMs: number;
  /** Milliseconds computing the feature rows from the contexts. */
  assembleMs: number;
  totalMs: number;
}

/** Training examples for a ranker: the inputs of a lambdarank GBDT or a DeepFM. */
export interface RankingExamples {
  readonly schema: RankingFeatureSchema;
  /** Rows. */
  readonly rows: number;
  /** Row-major, `rows × schema.size`, NaN for missing values. */
  readonly features: Float32Array;
  /** Graded relevance of each row ({@link labelGrade}), 0 for none. */
  readonly labels: Float32Array;
  /** Rows of each query, in row order: query q's rows follow query q - 1's. */
  readonly groups: Int32Array;
  /** The query of each group: user (dense index) and time. */
  readonly queries: { readonly user: Int32Array; readonly timeMs: Float64Array };
  /** The candidate item (dense index) of each row. */
  readonly items: Int32Array;
  readonly stats: RankingExamplesStats;
}

/** Event positions of each user, in time order: user u's are `events[offsets[u] .. offsets[u+1])`. */
function eventsByUser(dataset: Dataset): { offsets: Int32Array; events: Int32Array } {
  const users = dataset.users.ids.length;
  const { user, length } = dataset.events;
  const offsets = new Int32Array(users + 1);
  for (let e = 0; e < length; e++) offsets[(user[e] as number) + 1]!++;
  for (let u = 0; u < users; u++) offsets[u + 1]! += offsets[u] as number;
  const fill = offsets.slice(0, users);
  const events = new Int32Array(length);
  for (let e = 0; e < length; e++) events[fill[user[e] as number]!++] = e;
  return { offsets, events };
}

/**
 * Builds point-in-time correct ranking examples (see the top of this file). Rejects with
 * `ConfigError` naming the option for bad options or points, and with `RangeError` when the
 * retrieval model scores another number of items than the data set has.
 */
export async function buildRankingExamples(
  options: RankingExamplesOptions,
): Promise<RankingExamples> {
  const started = performance.now();
  const resolved = resolveRankingExamplesOptions(options);
  const { dataset, retrieval, definitions } = options;
  const { schema, candidates: k, horizonMs, historyLength, to } = resolved;
  const { events, users, items } = dataset;
  const itemCount = items.ids.length;

  const points =
    options.points === undefined
      ? sampleQueryPoints(dataset, resolved.queries, resolved.from, to - horizonMs, resolved.seed)
      : [...options.points].sort((a, b) => a.timeMs - b.timeMs || a.user - b.user);
  points.forEach((point, i) => {
    if (!Number.isInteger(point.user) || point.user < 0 || point.user >= users.ids.length) {
      throw new ConfigError(
        `points[${i}].user`,
        `must be a user index in 0..${users.ids.length - 1}`,
      );
    }
    if (!Number.isFinite(point.timeMs) || point.timeMs + horizonMs > to) {
      throw new ConfigError(
        `points[${i}].timeMs`,
        `must be a time with its label window before to (${to})`,
      );
    }
  });

  // Pass 1: candidates and labels of every query (history and label windows only).
  const byUser = eventsByUser(dataset);
  // An item exists at t when created by then (or of unknown creation), or once it has an event.
  const firstEvent = new Float64Array(itemCount).fill(Number.POSITIVE_INFINITY);
  for (let e = events.length - 1; e >= 0; e--) {
    firstEvent[events.item[e] as number] = events.ts[e] as number;
  }
  const seen = new Uint8Array(itemCount);
  const label = new Float32Array(itemCount);
  let at = 0;
  const exclusion: ItemExclusion = {
    has: (item) =>
      seen[item] === 1 ||
      ((items.createdAt[item] as number) > at && (firstEvent[item] as number) >= at),
  };
  const stats = { withoutPositives: 0, withoutCandidates: 0, positives: 0, retrievalMs: 0 };
  const planned: Array<
    PlannedRead & { items: Int32Array; scores: Float32Array; labels: Float32Array }
  > = [];
  const retrievalStarted = performance.now();
  const batch = resolved.retrievalBatch;
  for (let from = 0; from < points.length; from += batch) {
    const chunk = points.slice(from, from + batch);
    // The user's events strictly before t are the history; from t on, what they did next.
    const splits = chunk.map(({ user, timeMs }) => {
      const first = byUser.offsets[user] as number;
      const end = byUser.offsets[user + 1] as number;
      let split = first;
      while (split < end && (events.ts[byUser.events[split] as number] as number) < timeMs) split++;
      return { first, split, end };
    });
    const queries = chunk.map(({ user }, c): UserQuery => {
      const { first, split } = splits[c] as (typeof splits)[number];
      const history = new Int32Array(Math.min(split - first, historyLength));
      for (let j = split - history.length; j < split; j++) {
        history[j - split + history.length] = events.item[byUser.events[j] as number] as number;
      }
      return {
        userIndex: user,
        history,
        profile: {
          ageBand: users.ageBand[user] ?? -1,
          country: users.country[user] ?? -1,
          device: users.device[user] ?? -1,
        },
      };
    });
    // Points are in time order: the first is the earliest, so no query is scored as of its future.
    const scores = retrieval.scoreBatch(queries, (chunk[0] as RankingQueryPoint).timeMs);
    if (scores.length !== chunk.length * itemCount) {
      throw new RangeError(
        `retrieval ${retrieval.name} returned ${scores.length} scores for ${chunk.length} queries × ${itemCount} items`,
      );
    }
    for (let c = 0; c < chunk.length; c++) {
      const { user, timeMs } = chunk[c] as RankingQueryPoint;
      const { first, split, end } = splits[c] as (typeof splits)[number];
      at = timeMs;
      for (let j = first; j < split; j++)
        seen[events.item[byUser.events[j] as number] as number] = 1;
      const top = topK(scores.subarray(c * itemCount, (c + 1) * itemCount), k, exclusion);
      for (let j = first; j < split; j++)
        seen[events.item[byUser.events[j] as number] as number] = 0;
      if (top.items.length === 0) {
        stats.withoutCandidates++;
        continue;
      }

      const until = Math.min(timeMs + horizonMs, to);
      let labelled = split;
      for (; labelled < end; labelled++) {
        const e = byUser.events[labelled] as number;
        if ((events.ts[e] as number) >= until) break;
        const item = events.item[e] as number;
        const grade = labelGrade(events.type[e] as number, events.value[e] as number);
        if (grade > (label[item] as number)) label[item] = grade;
      }
      const labels = Float32Array.from(top.items, (item) => label[item] as number);
      for (let j = split; j < labelled; j++) {
        label[events.item[byUser.events[j] as number] as number] = 0;
      }
      const positives = labels.reduce((n, grade) => n + (grade > 0 ? 1 : 0), 0);
      if (positives === 0 && !resolved.keepEmptyGroups) {
        stats.withoutPositives++;
        continue;
      }
      stats.positives += positives;
      planned.push({ timeMs, user, items: top.items, scores: top.scores, labels });
    }
  }
  stats.retrievalMs = performance.now() - retrievalStarted;

  // Pass 2: the store as it stood at each query time, replaying only what the reads can show.
  const store = await PointInTimeStore.open({
    dataset,
    definitions,
    schema,
    batchIntervalMs: resolved.batchIntervalMs,
    windowsMinutes: resolved.windowsMinutes,
    ...(resolved.planReplay ? { plan: planned } : {}),
  });
  const rows = planned.reduce((n, query) => n + query.items.length, 0);
  const features = new Float32Array(rows * schema.size);
  const labels = new Float32Array(rows);
  const rowItems = new Int32Array(rows);
  let assembleMs = 0;
  try {
    let row = 0;
    for (let q = 0; q < planned.length; q++) {
      const query = planned[q] as (typeof planned)[number];
      await store.advanceTo(query.timeMs);
      const contexts = await store.contexts(query.user, query.items, query.scores);
      const assembleStarted = performance.now();
      const n = contexts.length;
      assembleFeatures(
        schema,
        contexts,
        features.subarray(row * schema.size, (row + n) * schema.size),
      );
      labels.set(query.labels, row);
      rowItems.set(query.items, row);
      row += n;
      assembleMs += performance.now() - assembleStarted;
      options.onProgress?.(q + 1, planned.length);
    }
  } finally {
    await store.close();
  }
  return {
    schema,
    rows,
    features,
    labels,
    groups: Int32Array.from(planned, (query) => query.items.length),
    queries: {
      user: Int32Array.from(planned, (query) => query.user),
      timeMs: Float64Array.from(planned, (query) => query.timeMs),
    },
    items: rowItems,
    stats: {
      points: points.length,
      groups: planned.length,
      withoutPositives: stats.withoutPositives,
      withoutCandidates: stats.withoutCandidates,
      positives: stats.positives,
      store: store.stats(),
      retrievalMs: stats.retrievalMs,
      assembleMs,
      totalMs: performance.now() - started,
    },
  };
}
