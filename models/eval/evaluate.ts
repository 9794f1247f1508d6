/**
 * Offline evaluation of retrieval: every scorer (model, baseline, oracle) ranks the whole
 * catalogue for the same test users, with the same queries, truth and exclusions, in one run.
 *
 * Protocol (see {@link describeProtocol}):
 * - test users: every user with at least one test event, including users with no training events
 *   (cold start); results are reported for all of them and for the warm and cold ones apart;
 * - query: the user's index, profile and last `historyLength` training items, oldest first; the
 *   scorer decides what it knows about the user (a model that never trained on them treats them
 *   as unknown);
 * - `at`: the split's cutoff time, for every query (a random split has none: the caller names one,
 *   normally the end of the log);
 * - catalogue: every item that exists at `at`: created at or before it, of unknown creation time,
 *   or with a training event. Items created later cannot be recommended at `at` (no index holds
 *   them yet), so they are neither candidates nor truth (`excludeFutureItems`, on by default);
 * - candidates: every catalogue item except the user's training items (no sampled negatives);
 * - truth: the distinct catalogue items of the user's test events, minus their training items. A
 *   user left with an empty truth is skipped (counted apart).
 */
import type { Split } from '../data/split.js';
import type { Dataset, EventTable } from '../data/types.js';
import type { RetrievalScorer, UserQuery } from '../retrieval/scorer.js';
import { MetricsAccumulator, type MetricsAtK } from './metrics.js';
import { topK, type ItemExclusion } from './topk.js';

/** Training and test events of one split (from `temporalSplit` or `randomSplit`). */
export interface EvalSplit extends Split {
  /**
   * How the events were divided, for the report.
   * @default 'temporal'
   */
  readonly kind?: 'temporal' | 'random';
}

export interface EvaluateRetrievalOptions {
  readonly dataset: Dataset;
  readonly split: EvalSplit;
  /** Models and baselines to compare; names must be distinct. */
  readonly scorers: readonly RetrievalScorer[];
  /**
   * Query time (epoch ms) of every query.
   * @default split.cutoff (required for a split without one, such as a random split)
   */
  readonly at?: number;
  /**
   * Cut-offs of the ranked lists.
   * @default [10, 50, 100]
   */
  readonly ks?: readonly number[];
  /** Training items per query (the most recent ones). */
  readonly historyLength: number;
  /**
   * Users scored per `scoreBatch` call. Memory per call is `batchSize × items × 4` bytes.
   * @default as many as fit in 64 MiB of scores, at most 512
   */
  readonly batchSize?: number;
  /**
   * Evaluate a seeded random sample of this many test users instead of all of them (for large
   * data sets where scoring everyone takes too long).
   * @default undefined (all test users)
   */
  readonly maxUsers?: number;
  /** Seed of the user sample. @default 0 */
  readonly seed?: number;
  /**
   * Leave out of candidates and truth the items created after `at` (see the protocol above).
   * @default true
   */
  readonly excludeFutureItems?: boolean;
  /** Called after each batch of users, for progress reporting. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Metrics of one scorer over one group of users. */
export interface SegmentResult {
  /** Users evaluated (non-empty truth). */
  readonly users: number;
  /** One entry per K, in the order of `ks`. */
  readonly metrics: readonly MetricsAtK[];
}

export interface ScorerResult {
  readonly name: string;
  /** All test users, users with training events (warm), users without (cold). */
  readonly all: SegmentResult;
  readonly warm: SegmentResult;
  readonly cold: SegmentResult;
  /** Wall time spent scoring and selecting the top K for this scorer. */
  readonly seconds: number;
}

/** What was evaluated, and how: enough to reproduce or compare runs. */
export interface EvalProtocol {
  readonly dataset: string;
  readonly fingerprint: string;
  readonly split: 'temporal' | 'random';
  /** Epoch ms; null for a random split. */
  readonly cutoff: number | null;
  readonly at: number;
  readonly historyLength: number;
  readonly items: number;
  readonly trainEvents: number;
  readonly testEvents: number;
  /** Users with at least one test event. */
  readonly testUsers: number;
  /** Test users left after sampling (equal to `testUsers` without `maxUsers`). */
  readonly sampledUsers: number;
  /** Catalogue items that did not exist yet at `at` (0 unless `excludeFutureItems`). */
  readonly futureItems: number;
  /** (user, item) test pairs dropped from the truth because the item did not exist at `at`. */
  readonly futureTruthPairs: number;
  /**
   * Sampled users left with no truth (every test item seen in training, or created after `at`):
   * skipped.
   */
  readonly skippedUsers: number;
  /** Evaluated users, with and without training events. */
  readonly warmUsers: number;
  readonly coldUsers: number;
  readonly maxUsers: number | null;
  readonly seed: number;
  readonly batchSize: number;
  /** The protocol in words. */
  readonly description: string;
}

export interface RetrievalEvaluation {
  readonly protocol: EvalProtocol;
  readonly ks: readonly number[];
  readonly scorers: readonly ScorerResult[];
}

/** 64 MiB of float32 scores per `scoreBatch` call. */
const BATCH_SCORE_BUDGET = 16 * 1024 * 1024;
const MAX_BATCH_SIZE = 512;

/** Events of a table grouped by user, in time order: user u's items are `items[offsets[u] .. offsets[u+1])`. */
export interface UserEvents {
  readonly offsets: Int32Array;
  readonly items: Int32Array;
}

/** Groups events by user with a stable counting sort, so each user's items stay in time order. */
export function groupByUser(events: EventTable, userCount: number, itemCount: number): UserEvents {
  const offsets = new Int32Array(userCount + 1);
  for (let e = 0; e < events.length; e++) {
    const user = events.user[e] as number;
    const item = events.item[e] as number;
    if (!(user >= 0 && user < userCount)) {
      throw new RangeError(`event ${e} names user ${user}, outside the ${userCount} users`);
    }
    if (!(item >= 0 && item < itemCount)) {
      throw new RangeError(`event ${e} names item ${item}, outside the ${itemCount} items`);
    }
    offsets[user + 1] = (offsets[user + 1] as number) + 1;
  }
  for (let u = 0; u < userCount; u++) {
    offsets[u + 1] = (offsets[u + 1] as number) + (offsets[u] as number);
  }
  const next = offsets.slice(0, userCount);
  const items = new Int32Array(events.length);
  for (let e = 0; e < events.length; e++) {
    const user = events.user[e] as number;
    const at = next[user] as number;
    items[at] = events.item[e] as number;
    next[user] = at + 1;
  }
  return { offsets, items };
}

/** Runs the protocol for every scorer and returns their metrics side by side. */
export function evaluateRetrieval(options: EvaluateRetrievalOptions): RetrievalEvaluation {
  const resolved = resolveOptions(options);
  const { dataset, split, scorers, ks, historyLength, batchSize } = resolved;
  const itemCount = dataset.items.ids.length;
  const userCount = dataset.users.ids.length;
  const at = resolved.at;
  const maxK = Math.max(...ks);

  const train = groupByUser(split.train, userCount, itemCount);
  const test = groupByUser(split.test, userCount, itemCount);
  const testUsers: number[] = [];
  for (let u = 0; u < userCount; u++) {
    if ((test.offsets[u + 1] as number) > (test.offsets[u] as number)) testUsers.push(u);
  }
  const users =
    resolved.maxUsers === undefined || resolved.maxUsers >= testUsers.length
      ? testUsers
      : sample(testUsers, resolved.maxUsers, resolved.seed);

  const accumulators = scorers.map(() => ({
    all: new MetricsAccumulator(itemCount, ks),
    warm: new MetricsAccumulator(itemCount, ks),
    cold: new MetricsAccumulator(itemCount, ks),
    ms: 0,
  }));
  const mask = new CandidateMask(
    resolved.excludeFutureItems ? futureItems(dataset, split.train, at) : new Uint8Array(itemCount),
  );
  let skipped = 0;
  let futureTruthPairs = 0;
  let warmUsers = 0;
  let coldUsers = 0;

  for (let start = 0; start < users.length; start += batchSize) {
    const batch: Array<{ query: UserQuery; seen: Int32Array; truth: Set<number> }> = [];
    for (const user of users.slice(start, start + batchSize)) {
      const seen = train.items.subarray(train.offsets[user], train.offsets[user + 1]);
      mask.set(seen);
      const truth = new Set<number>();
      const future = new Set<number>();
      for (let e = test.offsets[user] as number; e < (test.offsets[user + 1] as number); e++) {
        const item = test.items[e] as number;
        if (mask.isFuture(item)) future.add(item);
        else if (!mask.has(item)) truth.add(item);
      }
      mask.clear(seen);
      futureTruthPairs += future.size;
      if (truth.size === 0) {
        skipped++;
        continue;
      }
      if (seen.length > 0) warmUsers++;
      else coldUsers++;
      const history = seen.slice(Math.max(0, seen.length - historyLength));
      const profile = {
        ageBand: dataset.users.ageBand[user] ?? -1,
        country: dataset.users.country[user] ?? -1,
        device: dataset.users.device[user] ?? -1,
      };
      batch.push({ query: { userIndex: user, history, profile }, seen, truth });
    }
    const queries = batch.map((b) => b.query);
    scorers.forEach((scorer, s) => {
      const acc = accumulators[s];
      if (acc === undefined || queries.length === 0) return;
      const started = performance.now();
      const scores = scorer.scoreBatch(queries, at);
      if (scores.length !== queries.length * itemCount) {
        throw new RangeError(
          `scorer ${scorer.name} returned ${scores.length} scores for ${queries.length} queries × ${itemCount} items`,
        );
      }
      batch.forEach(({ seen, truth }, q) => {
        mask.set(seen);
        const { items } = topK(scores.subarray(q * itemCount, (q + 1) * itemCount), maxK, mask);
        mask.clear(seen);
        acc.all.add(items, truth);
        (seen.length > 0 ? acc.warm : acc.cold).add(items, truth);
      });
      acc.ms += performance.now() - started;
    });
    options.onProgress?.(Math.min(start + batchSize, users.length), users.length);
  }

  const segment = (acc: MetricsAccumulator): SegmentResult => ({
    users: acc.users,
    metrics: acc.result(),
  });
  const protocol: Omit<EvalProtocol, 'description'> = {
    dataset: dataset.manifest.name,
    fingerprint: dataset.manifest.fingerprint,
    split: split.kind ?? 'temporal',
    cutoff: Number.isFinite(split.cutoff) ? split.cutoff : null,
    at,
    historyLength,
    items: itemCount,
    trainEvents: split.train.length,
    testEvents: split.test.length,
    testUsers: testUsers.length,
    sampledUsers: users.length,
    futureItems: mask.futureCount,
    futureTruthPairs,
    skippedUsers: skipped,
    warmUsers,
    coldUsers,
    maxUsers: resolved.maxUsers ?? null,
    seed: resolved.seed,
    batchSize,
  };
  return {
    protocol: { ...protocol, description: describeProtocol(protocol) },
    ks,
    scorers: scorers.map((scorer, s) => {
      const acc = accumulators[s] as (typeof accumulators)[number];
      return {
        name: scorer.name,
        all: segment(acc.all),
        warm: segment(acc.warm),
        cold: segment(acc.cold),
        seconds: acc.ms / 1000,
      };
    }),
  };
}

/** The protocol of a run in words, for reports. */
export function describeProtocol(p: Omit<EvalProtocol, 'description'>): string {
  const iso = (ms: number): string =>
    Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
  const splitText =
    p.split === 'temporal'
      ? `Temporal split at ${iso(p.cutoff ?? p.at)}: training events are before it, test events at or after it; every query is made as of ${p.cutoff === p.at ? 'that time' : iso(p.at)}.`
      : `Random split of the events (for comparison with published baselines only: it leaks the future into training); every query is made as of ${iso(p.at)}.`;
  const sampleText =
    p.maxUsers === null || p.sampledUsers === p.testUsers
      ? ''
      : ` A seeded sample of ${p.sampledUsers} of them (seed ${p.seed}) is evaluated.`;
  return [
    splitText,
    `Test users are the ${p.testUsers} users with at least one test event, including users with no training events (cold start).${sampleText}`,
    `Each user's query is their index, profile and last ${p.historyLength} training items, oldest first.`,
    p.futureItems > 0
      ? `${p.futureItems} of the ${p.items} items were created after that time and are left out of candidates and truth (${p.futureTruthPairs} user-item test pairs): nothing can recommend them yet.`
      : '',
    `Candidates are all ${p.items - p.futureItems} catalogue items minus the items the user interacted with in training; there are no sampled negatives.`,
    `The truth is the distinct items of the user's test events minus those training items; ${p.skippedUsers} users left with no truth are skipped.`,
    `Evaluated: ${p.warmUsers + p.coldUsers} users (${p.warmUsers} warm, ${p.coldUsers} cold).`,
    `Recall@K = hits in the top K / truth size; NDCG@K with binary relevance, log2 discount and the ideal DCG over min(K, truth size); hit rate@K = share of users with at least one hit; coverage@K = distinct items in anyone's top K / catalogue size.`,
  ]
    .filter((sentence) => sentence !== '')
    .join(' ');
}

interface ResolvedOptions {
  dataset: Dataset;
  split: EvalSplit;
  scorers: readonly RetrievalScorer[];
  ks: number[];
  historyLength: number;
  batchSize: number;
  maxUsers: number | undefined;
  seed: number;
  excludeFutureItems: boolean;
  at: number;
}

function resolveOptions(options: EvaluateRetrievalOptions): ResolvedOptions {
  const itemCount = options.dataset.items.ids.length;
  if (itemCount < 1) throw new RangeError('dataset must have at least one item');
  const ks = [...new Set(options.ks ?? [10, 50, 100])].sort((a, b) => a - b);
  if (ks.length === 0 || ks.some((k) => !Number.isInteger(k) || k < 1)) {
    throw new RangeError('ks must be positive integers');
  }
  const positive = (name: string, value: number): number => {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
    return value;
  };
  positive('historyLength', options.historyLength);
  const names = options.scorers.map((s) => s.name);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate !== undefined)
    throw new RangeError(`scorers must have distinct names: ${duplicate}`);
  const at = options.at ?? options.split.cutoff;
  if (!Number.isFinite(at)) {
    throw new RangeError('at must be a time (epoch ms) when the split has no cutoff');
  }
  const batchSize =
    options.batchSize === undefined
      ? Math.max(1, Math.min(MAX_BATCH_SIZE, Math.floor(BATCH_SCORE_BUDGET / itemCount)))
      : positive('batchSize', options.batchSize);
  return {
    dataset: options.dataset,
    split: options.split,
    scorers: options.scorers,
    ks,
    historyLength: options.historyLength,
    batchSize,
    maxUsers: options.maxUsers === undefined ? undefined : positive('maxUsers', options.maxUsers),
    seed: options.seed ?? 0,
    excludeFutureItems: options.excludeFutureItems ?? true,
    at,
  };
}

/**
 * Items that do not exist yet at `at`: created after it, and without a training event (an item
 * someone interacted with existed, whatever its recorded creation time says).
 */
function futureItems(dataset: Dataset, train: EventTable, at: number): Uint8Array {
  const createdAt = dataset.items.createdAt;
  const future = new Uint8Array(dataset.items.ids.length);
  for (let i = 0; i < future.length; i++) if ((createdAt[i] as number) > at) future[i] = 1;
  for (let e = 0; e < train.length; e++) future[train.item[e] as number] = 0;
  return future;
}

/** What a user may not be recommended: their seen items (set per user) and future items. */
class CandidateMask implements ItemExclusion {
  private readonly seen: Uint8Array;
  readonly futureCount: number;

  constructor(private readonly future: Uint8Array) {
    this.seen = new Uint8Array(future.length);
    this.futureCount = future.reduce((n, f) => n + f, 0);
  }

  has(item: number): boolean {
    return this.seen[item] === 1 || this.future[item] === 1;
  }

  isFuture(item: number): boolean {
    return this.future[item] === 1;
  }

  set(items: Int32Array): void {
    for (const item of items) this.seen[item] = 1;
  }

  clear(items: Int32Array): void {
    for (const item of items) this.seen[item] = 0;
  }
}

/** `count` of `values` chosen with a seeded partial Fisher–Yates shuffle, in ascending order. */
function sample(values: readonly number[], count: number, seed: number): number[] {
  const pool = [...values];
  const random = mulberry32(seed);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    const picked = pool[j] as number;
    pool[j] = pool[i] as number;
    pool[i] = picked;
  }
  return pool.slice(0, count).sort((a, b) => a - b);
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
