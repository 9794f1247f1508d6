import { describe, expect, it } from 'vitest';
import {
  CoverageCounter,
  MetricsAccumulator,
  catalogueCoverage,
  hitRateAtK,
  idealDcg,
  ndcgAtK,
  rankingMetrics,
  recallAtK,
} from '../../models/eval/metrics.js';

// Discounts 1 / log2(rank + 1): rank 1 → 1, rank 2 → 0.63093, rank 3 → 0.5, rank 4 → 0.43068.
const D1 = 1;
const D2 = 1 / Math.log2(3);
const D3 = 0.5;
const D4 = 1 / Math.log2(5);

describe('ranking metrics', () => {
  // ranked [3, 1, 7, 5, 9], truth {1, 5, 8}: hits at rank 2 (item 1) and rank 4 (item 5).
  const ranked = [3, 1, 7, 5, 9];
  const truth = new Set([1, 5, 8]);

  it('K = 1: the top item 3 is not relevant', () => {
    expect(recallAtK(ranked, truth, 1)).toBe(0);
    expect(ndcgAtK(ranked, truth, 1)).toBe(0);
    expect(hitRateAtK(ranked, truth, 1)).toBe(0);
  });

  it('K = 3: one hit at rank 2', () => {
    // recall = 1 / 3; DCG = D2 = 0.63093; IDCG over min(3, 3) = 3 ranks = 1 + 0.63093 + 0.5 = 2.13093
    // NDCG = 0.63093 / 2.13093 = 0.29608
    expect(recallAtK(ranked, truth, 3)).toBeCloseTo(1 / 3, 10);
    expect(ndcgAtK(ranked, truth, 3)).toBeCloseTo(D2 / (D1 + D2 + D3), 10);
    expect(ndcgAtK(ranked, truth, 3)).toBeCloseTo(0.29608, 5);
    expect(hitRateAtK(ranked, truth, 3)).toBe(1);
  });

  it('K = 5: hits at ranks 2 and 4; the ideal still has only |truth| = 3 ranks', () => {
    // recall = 2 / 3; DCG = 0.63093 + 0.43068 = 1.06161; IDCG = 2.13093; NDCG = 0.49819
    expect(recallAtK(ranked, truth, 5)).toBeCloseTo(2 / 3, 10);
    expect(ndcgAtK(ranked, truth, 5)).toBeCloseTo((D2 + D4) / (D1 + D2 + D3), 10);
    expect(ndcgAtK(ranked, truth, 5)).toBeCloseTo(0.49819, 5);
  });

  it('K larger than the list scores the list as it is', () => {
    // K = 10 over 5 items: the same hits as K = 5; IDCG over min(10, 3) = 3 ranks.
    expect(rankingMetrics(ranked, truth, [10])).toEqual(rankingMetrics(ranked, truth, [5]));
    // ranked [2], truth {2, 4}, K = 10: recall 1 / 2; DCG = 1; IDCG = 1 + 0.63093 = 1.63093;
    // NDCG = 0.61315: the missing second item is still expected by the ideal list.
    expect(recallAtK([2], new Set([2, 4]), 10)).toBe(0.5);
    expect(ndcgAtK([2], new Set([2, 4]), 10)).toBeCloseTo(1 / (D1 + D2), 10);
    expect(ndcgAtK([2], new Set([2, 4]), 10)).toBeCloseTo(0.61315, 5);
    expect(rankingMetrics([], new Set([1]), [10])).toEqual([{ recall: 0, ndcg: 0, hitRate: 0 }]);
  });

  it('a perfect list has NDCG 1 and recall 1', () => {
    expect(rankingMetrics([5, 8, 1, 0], truth, [3])).toEqual([{ recall: 1, ndcg: 1, hitRate: 1 }]);
  });

  it('an item repeated in the list earns its gain once, at its first position', () => {
    // ranked [4, 4, 6], truth {4, 6}: gains at rank 1 (4) and rank 3 (6), the second 4 earns 0.
    // recall = 2 / 2 = 1 (not 3 / 2); DCG = 1 + 0.5 = 1.5; IDCG = 1 + 0.63093 = 1.63093
    // NDCG = 1.5 / 1.63093 = 0.91972
    const [m] = rankingMetrics([4, 4, 6], new Set([4, 6]), [3]) ?? [];
    expect(m?.recall).toBe(1);
    expect(m?.ndcg).toBeCloseTo((D1 + D3) / (D1 + D2), 10);
    expect(m?.ndcg).toBeCloseTo(0.91972, 5);
  });

  it('an empty truth has no metrics: the user is skipped', () => {
    expect(rankingMetrics([1, 2, 3], new Set(), [1, 2])).toBeNull();
    expect(recallAtK([1, 2, 3], new Set(), 2)).toBeNull();
    expect(ndcgAtK([1, 2, 3], new Set(), 2)).toBeNull();
    expect(hitRateAtK([1, 2, 3], new Set(), 2)).toBeNull();
  });

  it('computes several K in one pass, in the order given', () => {
    const [k5, k1, k3] = rankingMetrics(ranked, truth, [5, 1, 3]) ?? [];
    expect(k1?.recall).toBe(0);
    expect(k3?.recall).toBeCloseTo(1 / 3, 10);
    expect(k5?.recall).toBeCloseTo(2 / 3, 10);
  });

  it('idealDcg sums the first min(K, relevant) discounts', () => {
    expect(idealDcg(10, 0)).toBe(0);
    expect(idealDcg(2, 5)).toBeCloseTo(D1 + D2, 12);
    expect(idealDcg(5, 2)).toBeCloseTo(D1 + D2, 12);
  });

  it('rejects a K that is not a positive integer', () => {
    expect(() => rankingMetrics([1], new Set([1]), [0])).toThrow(/k must be a positive integer/);
    expect(() => recallAtK([1], new Set([1]), 1.5)).toThrow(/k must be a positive integer/);
  });
});

describe('catalogue coverage', () => {
  it('counts distinct items in anyone top K over the catalogue size', () => {
    // top-2 of [0, 1, 2] and [2, 3, 4] are {0, 1} and {2, 3}: 4 distinct of 10 items = 0.4
    expect(
      catalogueCoverage(
        [
          [0, 1, 2],
          [2, 3, 4],
        ],
        2,
        10,
      ),
    ).toBe(0.4);
    // top-3: {0, 1, 2} ∪ {2, 3, 4} = 5 distinct of 10 = 0.5
    expect(
      catalogueCoverage(
        [
          [0, 1, 2],
          [2, 3, 4],
        ],
        3,
        10,
      ),
    ).toBe(0.5);
    // a short list contributes what it has; a repeated item counts once
    expect(catalogueCoverage([[7, 7]], 5, 10)).toBe(0.1);
    expect(catalogueCoverage([], 5, 10)).toBe(0);
  });

  it('tracks several K at once', () => {
    const counter = new CoverageCounter(4, [1, 2]);
    counter.add([0, 1]);
    counter.add([1, 0]);
    // top-1: {0, 1} = 2 / 4; top-2: {0, 1} = 2 / 4
    expect(counter.coverage()).toEqual([0.5, 0.5]);
    counter.add([3, 2]);
    // top-1: {0, 1, 3} = 3 / 4; top-2: all four = 1
    expect(counter.coverage()).toEqual([0.75, 1]);
  });

  it('rejects items outside the catalogue', () => {
    expect(() => catalogueCoverage([[4]], 1, 4)).toThrow(/outside the catalogue/);
  });
});

describe('MetricsAccumulator', () => {
  it('averages over users with a truth and skips the others, coverage included', () => {
    const acc = new MetricsAccumulator(10, [1, 2]);
    // A: [1, 2] vs {2}: K=1 recall 0, NDCG 0; K=2 recall 1, DCG 0.63093, IDCG 1, NDCG 0.63093.
    expect(acc.add([1, 2], new Set([2]))).toBe(true);
    // B: [3, 4] vs {5}: nothing.
    expect(acc.add([3, 4], new Set([5]))).toBe(true);
    // C: empty truth: skipped, and its items 7, 8 do not count towards coverage.
    expect(acc.add([7, 8], new Set())).toBe(false);
    expect(acc.users).toBe(2);
    const [k1, k2] = acc.result();
    expect(k1).toEqual({ k: 1, recall: 0, ndcg: 0, hitRate: 0, coverage: 0.2 });
    // K=2: recall (1 + 0) / 2 = 0.5; NDCG (0.63093 + 0) / 2 = 0.31546; hit rate 1 / 2;
    // coverage {1, 2, 3, 4} / 10 = 0.4
    expect(k2?.recall).toBe(0.5);
    expect(k2?.ndcg).toBeCloseTo(D2 / 2, 12);
    expect(k2?.hitRate).toBe(0.5);
    expect(k2?.coverage).toBe(0.4);
  });

  it('reports zeros, not NaN, when nobody was counted', () => {
    const acc = new MetricsAccumulator(3, [5]);
    expect(acc.result()).toEqual([{ k: 5, recall: 0, ndcg: 0, hitRate: 0, coverage: 0 }]);
  });
});
