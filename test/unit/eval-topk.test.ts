import { describe, expect, it } from 'vitest';
import { ItemMask, topK } from '../../models/eval/topk.js';

/** A small seeded PRNG so failures reproduce. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/** The reference: a full stable sort by descending score, lower index first among ties. */
function bySort(scores: Float32Array, k: number, exclude: ReadonlySet<number>): number[] {
  return Array.from(scores.keys())
    .filter((i) => !exclude.has(i) && (scores[i] as number) > -Infinity)
    .sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b)
    .slice(0, k);
}

describe('topK', () => {
  it('matches a full sort on random data with many ties, -Infinity, NaN and exclusions', () => {
    const next = random(7);
    for (let trial = 0; trial < 40; trial++) {
      const n = 1 + Math.floor(next() * 2000);
      const scores = new Float32Array(n);
      // Few distinct values, so ties are everywhere and the tie rule is exercised.
      for (let i = 0; i < n; i++) {
        const r = next();
        scores[i] = r < 0.05 ? -Infinity : r < 0.08 ? Number.NaN : Math.floor(next() * 20) - 10;
      }
      const exclude = new Set<number>();
      for (let i = 0; i < n; i++) if (next() < 0.2) exclude.add(i);
      for (const k of [0, 1, 5, 100, n - 1, n, n + 10]) {
        if (k < 0) continue;
        const result = topK(scores, k, exclude);
        const expected = bySort(scores, k, exclude);
        expect(Array.from(result.items)).toEqual(expected);
        expect(Array.from(result.scores)).toEqual(expected.map((i) => scores[i]));
      }
    }
  });

  it('matches a full sort on distinct continuous scores', () => {
    const next = random(11);
    const scores = Float32Array.from({ length: 50_000 }, () => next() * 2 - 1);
    const result = topK(scores, 100);
    expect(Array.from(result.items)).toEqual(bySort(scores, 100, new Set()));
  });

  it('breaks ties by the lower item index', () => {
    const scores = Float32Array.from([1, 3, 3, 2, 3, 1]);
    expect(Array.from(topK(scores, 2).items)).toEqual([1, 2]);
    expect(Array.from(topK(scores, 4).items)).toEqual([1, 2, 4, 3]);
    expect(Array.from(topK(new Float32Array(5), 3).items)).toEqual([0, 1, 2]);
  });

  it('never returns an excluded item, even the best', () => {
    const scores = Float32Array.from([9, 8, 7, 6, 5]);
    const mask = new ItemMask(5);
    mask.set([0, 2]);
    expect(Array.from(topK(scores, 3, mask).items)).toEqual([1, 3, 4]);
    mask.clear([0, 2]);
    expect(Array.from(topK(scores, 3, mask).items)).toEqual([0, 1, 2]);
  });

  it('returns fewer than K when fewer items qualify', () => {
    const scores = Float32Array.from([-Infinity, 2, Number.NaN, 1]);
    expect(Array.from(topK(scores, 10, new Set([3])).items)).toEqual([1]);
    expect(topK(new Float32Array(0), 10).items.length).toBe(0);
  });

  it('selects from one row of a batch through a subarray view', () => {
    const n = 4;
    const batch = Float32Array.from([1, 2, 3, 4, 40, 30, 20, 10]);
    expect(Array.from(topK(batch.subarray(n, 2 * n), 2).items)).toEqual([0, 1]);
    expect(Array.from(topK(batch.subarray(0, n), 2).items)).toEqual([3, 2]);
  });

  it('rejects a negative or fractional K', () => {
    expect(() => topK(new Float32Array(3), -1)).toThrow(/k must be/);
    expect(() => topK(new Float32Array(3), 1.5)).toThrow(/k must be/);
  });
});
