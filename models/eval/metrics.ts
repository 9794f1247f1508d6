/**
 * Ranking metrics for one user's ranked list against the set of items they went on to interact
 * with, and their means over many users.
 *
 * Conventions (the same as most retrieval papers and libraries):
 * - relevance is binary: an item is relevant when it is in the truth set;
 * - recall@K = |top-K ∩ truth| / |truth| (the denominator is not capped at K, so a user with more
 *   than K truth items cannot reach 1);
 * - NDCG@K = DCG@K / IDCG@K with DCG@K = Σ_{rank r ≤ K, item relevant} 1 / log2(r + 1) (ranks from
 *   1) and IDCG@K the DCG of a perfect list, over min(K, |truth|) positions;
 * - hit rate@K = 1 when at least one of the top K is relevant, else 0;
 * - a user with an empty truth set has no defined recall or NDCG and is skipped (not counted as 0);
 * - a list shorter than K is scored as it is (the missing positions earn nothing, the ideal still
 *   fills min(K, |truth|) positions);
 * - an item repeated in the list earns its gain once, at its first position; later copies still
 *   take up their positions. Repeats in the truth count once (it is a set).
 */

/** Recall, NDCG and hit rate of one list at one K. */
export interface RankingMetrics {
  readonly recall: number;
  readonly ndcg: number;
  readonly hitRate: number;
}

/** The truth of one user: any set of item indices. */
export type TruthSet = ReadonlySet<number>;

/** 1 / log2(rank + 1) for ranks 1..n, cached; `discount(r)` is the gain of a hit at rank r. */
const discounts: number[] = [];
function discount(rank: number): number {
  while (discounts.length < rank) discounts.push(1 / Math.log2(discounts.length + 2));
  return discounts[rank - 1] as number;
}

/** IDCG@K for a user with `relevant` truth items: Σ_{r=1}^{min(K, relevant)} 1 / log2(r + 1). */
export function idealDcg(k: number, relevant: number): number {
  let sum = 0;
  const n = Math.min(k, relevant);
  for (let rank = 1; rank <= n; rank++) sum += discount(rank);
  return sum;
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
}

/**
 * Metrics of `ranked` (best first) against `truth` at each K of `ks`, in one pass over the list.
 * Returns `null` when the truth is empty: the user is skipped.
 */
export function rankingMetrics(
  ranked: ArrayLike<number>,
  truth: TruthSet,
  ks: readonly number[],
): RankingMetrics[] | null {
  for (const k of ks) checkK(k);
  if (truth.size === 0) return null;
  const maxK = Math.max(0, ...ks);
  const depth = Math.min(maxK, ranked.length);
  // hitsAt[r] and dcgAt[r]: hits and DCG over the first r positions.
  const hitsAt = new Float64Array(depth + 1);
  const dcgAt = new Float64Array(depth + 1);
  const counted = new Set<number>();
  for (let r = 1; r <= depth; r++) {
    const item = ranked[r - 1] as number;
    const relevant = truth.has(item) && !counted.has(item);
    if (relevant) counted.add(item);
    hitsAt[r] = (hitsAt[r - 1] as number) + (relevant ? 1 : 0);
    dcgAt[r] = (dcgAt[r - 1] as number) + (relevant ? discount(r) : 0);
  }
  return ks.map((k) => {
    const r = Math.min(k, depth);
    const hits = hitsAt[r] as number;
    return {
      recall: hits / truth.size,
      ndcg: (dcgAt[r] as number) / idealDcg(k, truth.size),
      hitRate: hits > 0 ? 1 : 0,
    };
  });
}

/** recall@K of one list; `null` when the truth is empty. */
export function recallAtK(ranked: ArrayLike<number>, truth: TruthSet, k: number): number | null {
  return rankingMetrics(ranked, truth, [k])?.[0]?.recall ?? null;
}

/** NDCG@K of one list; `null` when the truth is empty. */
export function ndcgAtK(ranked: ArrayLike<number>, truth: TruthSet, k: number): number | null {
  return rankingMetrics(ranked, truth, [k])?.[0]?.ndcg ?? null;
}

/** Hit rate@K of one list (1 or 0); `null` when the truth is empty. */
export function hitRateAtK(ranked: ArrayLike<number>, truth: TruthSet, k: number): number | null {
  return rankingMetrics(ranked, truth, [k])?.[0]?.hitRate ?? null;
}

/**
 * Catalogue coverage@K: the share of the catalogue that appears in at least one user's top K.
 * Lists shorter than K contribute what they have.
 */
export function catalogueCoverage(
  lists: Iterable<ArrayLike<number>>,
  k: number,
  itemCount: number,
): number {
  const coverage = new CoverageCounter(itemCount, [k]);
  for (const list of lists) coverage.add(list);
  return coverage.coverage()[0] as number;
}

/** Distinct items recommended in anyone's top K, for several K at once. */
export class CoverageCounter {
  private readonly ks: readonly number[];
  /** Per catalogue item: the smallest rank (from 1) at which anyone was shown it; 0 = never. */
  private readonly bestRank: Uint32Array;

  constructor(
    readonly itemCount: number,
    ks: readonly number[],
  ) {
    if (!Number.isInteger(itemCount) || itemCount < 1) {
      throw new RangeError(`itemCount must be a positive integer, got ${itemCount}`);
    }
    for (const k of ks) checkK(k);
    this.ks = [...ks];
    this.bestRank = new Uint32Array(itemCount);
  }

  /** Records one user's ranked list (best first). */
  add(ranked: ArrayLike<number>): void {
    const depth = Math.min(ranked.length, Math.max(0, ...this.ks));
    for (let r = 1; r <= depth; r++) {
      const item = ranked[r - 1] as number;
      if (!Number.isInteger(item) || item < 0 || item >= this.itemCount) {
        throw new RangeError(`item ${item} is outside the catalogue of ${this.itemCount}`);
      }
      const best = this.bestRank[item] as number;
      if (best === 0 || r < best) this.bestRank[item] = r;
    }
  }

  /** Coverage at each K, in the order the Ks were given. */
  coverage(): number[] {
    return this.ks.map((k) => {
      let covered = 0;
      for (const rank of this.bestRank) if (rank !== 0 && rank <= k) covered++;
      return covered / this.itemCount;
    });
  }
}

/** Means of recall, NDCG and hit rate over users, and coverage, at several K. */
export interface MetricsAtK {
  readonly k: number;
  readonly recall: number;
  readonly ndcg: number;
  readonly hitRate: number;
  readonly coverage: number;
}

/** Accumulates the per-user metrics of many users and reports their means. */
export class MetricsAccumulator {
  readonly ks: readonly number[];
  private readonly recall: Float64Array;
  private readonly ndcg: Float64Array;
  private readonly hits: Float64Array;
  private readonly coverageCounter: CoverageCounter;
  private count = 0;

  constructor(itemCount: number, ks: readonly number[]) {
    if (ks.length === 0) throw new RangeError('ks must name at least one K');
    for (const k of ks) checkK(k);
    this.ks = [...ks];
    this.recall = new Float64Array(ks.length);
    this.ndcg = new Float64Array(ks.length);
    this.hits = new Float64Array(ks.length);
    this.coverageCounter = new CoverageCounter(itemCount, ks);
  }

  /** Users counted so far (users with an empty truth are not). */
  get users(): number {
    return this.count;
  }

  /**
   * Adds one user. Returns false, and counts nothing, when the truth is empty. Coverage counts
   * only the lists of counted users, so it describes the same population as the other metrics.
   */
  add(ranked: ArrayLike<number>, truth: TruthSet): boolean {
    const metrics = rankingMetrics(ranked, truth, this.ks);
    if (metrics === null) return false;
    metrics.forEach((m, i) => {
      this.recall[i] = (this.recall[i] as number) + m.recall;
      this.ndcg[i] = (this.ndcg[i] as number) + m.ndcg;
      this.hits[i] = (this.hits[i] as number) + m.hitRate;
    });
    this.coverageCounter.add(ranked);
    this.count++;
    return true;
  }

  /** Means over the counted users (0 when none were counted), one entry per K. */
  result(): MetricsAtK[] {
    const coverage = this.coverageCounter.coverage();
    const mean = (sum: number): number => (this.count === 0 ? 0 : sum / this.count);
    return this.ks.map((k, i) => ({
      k,
      recall: mean(this.recall[i] as number),
      ndcg: mean(this.ndcg[i] as number),
      hitRate: mean(this.hits[i] as number),
      coverage: coverage[i] as number,
    }));
  }
}
