import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { ConfigError } from '../../runtime/errors.js';
import {
  binMatrix,
  featureInfo,
  findBinMapper,
  findBinMappers,
  nextUp,
  valueToBin,
  ZERO_THRESHOLD,
} from '../../models/gbdt/binning.js';
import { formatLightGbmModel, parseLightGbmModel } from '../../models/gbdt/lightgbm-format.js';
import { generateLtr } from '../../models/gbdt/ltr-generator.js';
import { binaryLogLoss, l2Loss, ndcgAtK, queryBoundaries } from '../../models/gbdt/metrics.js';
import { MissingType } from '../../models/gbdt/model.js';
import {
  BinaryObjective,
  defaultLabelGain,
  K_EPSILON,
  LambdarankObjective,
  RegressionObjective,
} from '../../models/gbdt/objectives.js';
import { predictRaw } from '../../models/gbdt/predict.js';
import { findBestThreshold, leafGain, leafOutput, trainGbdt } from '../../models/gbdt/train.js';
import type { GbdtDataset, GbdtTrainOptions } from '../../models/gbdt/train.js';

const FIXTURES = new URL('../fixtures/lightgbm/', import.meta.url);

/** A dataset of one feature column per entry of `columns`. */
function dataset(
  columns: readonly (readonly number[])[],
  labels: readonly number[],
  groups?: readonly number[],
): GbdtDataset {
  const numFeatures = columns.length;
  const features = new Float64Array(labels.length * numFeatures);
  columns.forEach((column, f) => column.forEach((v, r) => (features[r * numFeatures + f] = v)));
  return { features, numFeatures, labels, ...(groups === undefined ? {} : { groups }) };
}

/** Options that let a handful of rows split anywhere. */
const TINY: GbdtTrainOptions = {
  minDataInLeaf: 1,
  minDataInBin: 1,
  minSumHessianInLeaf: 0,
  learningRate: 1,
  boostFromAverage: false,
};

describe('objectives', () => {
  it('L2 regression: gradient score - label, hessian 1, and the mean label as start', () => {
    const objective = new RegressionObjective(Float64Array.of(1, 2, 6));
    const grad = new Float64Array(3);
    const hess = new Float64Array(3);
    objective.computeGradients(Float64Array.of(0, 3, 6), grad, hess);
    expect(Array.from(grad)).toEqual([-1, 1, 0]);
    expect(Array.from(hess)).toEqual([1, 1, 1]);
    expect(objective.initScore()).toBe(3);
  });

  it('binary log loss: gradient p - y and hessian p (1 - p), as finite differences say', () => {
    const labels = Float64Array.of(0, 1, 1, 0);
    const scores = Float64Array.of(0, 2, -1.5, 0.7);
    const objective = new BinaryObjective(labels);
    const grad = new Float64Array(4);
    const hess = new Float64Array(4);
    objective.computeGradients(scores, grad, hess);
    // Hand-computed at score 0: p = 0.5.
    expect(grad[0]).toBeCloseTo(0.5, 15);
    expect(hess[0]).toBeCloseTo(0.25, 15);
    const loss = (s: number, y: number): number => binaryLogLoss([y], [s]);
    const h = 1e-5;
    for (let i = 0; i < 4; i++) {
      const s = scores[i] as number;
      const y = labels[i] as number;
      const g = (loss(s + h, y) - loss(s - h, y)) / (2 * h);
      const second = (loss(s + h, y) - 2 * loss(s, y) + loss(s - h, y)) / (h * h);
      expect(grad[i]).toBeCloseTo(g, 8);
      expect(hess[i]).toBeCloseTo(second, 4);
    }
    // Start at the log-odds of the positive rate (one half: 0).
    expect(objective.initScore()).toBe(0);
    expect(new BinaryObjective(Float64Array.of(1, 1, 1, 0)).initScore()).toBeCloseTo(
      Math.log(3),
      15,
    );
  });

  it('lambdarank: a pair by hand, with and without normalisation', () => {
    const labels = Float64Array.of(1, 0);
    const boundaries = Int32Array.of(0, 2);
    const settings = { truncationLevel: 30, sigmoid: 1, labelGain: defaultLabelGain() };
    const grad = new Float64Array(2);
    const hess = new Float64Array(2);
    new LambdarankObjective(labels, boundaries, { ...settings, norm: false }).computeGradients(
      Float64Array.of(0, 0),
      grad,
      hess,
    );
    // Ideal DCG 1; swapping ranks 0 and 1 changes NDCG by 1 - 1/log2(3); the sigmoid is 1/2.
    const deltaNdcg = 1 - 1 / Math.log2(3);
    expect(grad[0]).toBeCloseTo(-deltaNdcg / 2, 15);
    expect(grad[1]).toBeCloseTo(deltaNdcg / 2, 15);
    expect(hess[0]).toBeCloseTo(deltaNdcg / 4, 15);
    expect(hess[1]).toBeCloseTo(deltaNdcg / 4, 15);

    // Normalised: every lambda times log2(1 + Σ|λ|) / Σ|λ| (equal scores: no distance scaling).
    new LambdarankObjective(labels, boundaries, { ...settings, norm: true }).computeGradients(
      Float64Array.of(0, 0),
      grad,
      hess,
    );
    const factor = Math.log2(1 + deltaNdcg) / deltaNdcg;
    expect(grad[0]).toBeCloseTo((-deltaNdcg / 2) * factor, 15);
    expect(hess[1]).toBeCloseTo((deltaNdcg / 4) * factor, 15);

    // Distinct scores: the pair weight is divided by 0.01 + |Δs| (LightGBM's float 0.01).
    new LambdarankObjective(labels, boundaries, { ...settings, norm: true }).computeGradients(
      Float64Array.of(0.5, 0),
      grad,
      hess,
    );
    const w = deltaNdcg / (Math.fround(0.01) + 0.5);
    const p = 1 / (1 + Math.exp(0.5));
    const sum = 2 * w * p;
    expect(grad[0]).toBeCloseTo(-w * p * (Math.log2(1 + sum) / sum), 14);
  });

  it('lambdarank without normalisation is the gradient of the |ΔNDCG|-weighted pairwise loss', () => {
    // Two queries; ranks do not change under the small steps below.
    const labels = Float64Array.of(2, 0, 1, 3, 0, 1, 0, 2);
    const boundaries = Int32Array.of(0, 5, 8);
    const scores = Float64Array.of(0.3, 1.1, -0.4, 0.05, 0.8, 0.2, -0.6, 0.45);
    const sigmoid = 1.7;
    const objective = new LambdarankObjective(labels, boundaries, {
      truncationLevel: 30,
      norm: false,
      sigmoid,
      labelGain: defaultLabelGain(),
    });
    const grad = new Float64Array(8);
    const hess = new Float64Array(8);
    objective.computeGradients(scores, grad, hess);
    // The weights at the current ranks, kept fixed: the loss lambdarank descends.
    const gain = (l: number): number => 2 ** l - 1;
    const weights: Array<[number, number, number]> = [];
    for (let q = 0; q < 2; q++) {
      const rows = Array.from(
        { length: (boundaries[q + 1] as number) - (boundaries[q] as number) },
        (_, i) => (boundaries[q] as number) + i,
      );
      const ranked = [...rows].sort((a, b) => (scores[b] as number) - (scores[a] as number));
      const ideal = [...rows]
        .map((r) => labels[r] as number)
        .sort((a, b) => b - a)
        .reduce((s, l, i) => s + gain(l) / Math.log2(2 + i), 0);
      ranked.forEach((a, i) =>
        ranked.forEach((b, j) => {
          if ((labels[a] as number) <= (labels[b] as number)) return;
          const w =
            (Math.abs(gain(labels[a] as number) - gain(labels[b] as number)) *
              Math.abs(1 / Math.log2(2 + i) - 1 / Math.log2(2 + j))) /
            ideal;
          weights.push([a, b, w]);
        }),
      );
    }
    const loss = (s: Float64Array): number =>
      weights.reduce(
        (sum, [hi, lo, w]) =>
          sum + w * Math.log1p(Math.exp(-sigmoid * ((s[hi] as number) - (s[lo] as number)))),
        0,
      );
    const h = 1e-5;
    for (let i = 0; i < 8; i++) {
      const up = Float64Array.from(scores);
      const down = Float64Array.from(scores);
      up[i] = (up[i] as number) + h;
      down[i] = (down[i] as number) - h;
      expect(grad[i]).toBeCloseTo((loss(up) - loss(down)) / (2 * h), 8);
      expect(hess[i]).toBeCloseTo((loss(up) - 2 * loss(scores) + loss(down)) / (h * h), 4);
    }
  });

  it('lambdarank truncation: pairs below the truncation level carry no lambda', () => {
    // Ranked by score: row 0 (label 1), row 1 (label 0), row 2 (label 2).
    const labels = Float64Array.of(1, 0, 2);
    const scores = Float64Array.of(3, 2, 1);
    const settings = { norm: false, sigmoid: 1, labelGain: defaultLabelGain() };
    const grad1 = new Float64Array(3);
    const hess1 = new Float64Array(3);
    new LambdarankObjective(labels, Int32Array.of(0, 3), {
      ...settings,
      truncationLevel: 1,
    }).computeGradients(scores, grad1, hess1);
    const grad3 = new Float64Array(3);
    const hess3 = new Float64Array(3);
    new LambdarankObjective(labels, Int32Array.of(0, 3), {
      ...settings,
      truncationLevel: 3,
    }).computeGradients(scores, grad3, hess3);
    // Level 1: only pairs with rank 0, and the ideal DCG is DCG@1 = gain(2) = 3.
    const below = 1 / (1 + Math.E); // sigmoid of -1: a pair ranked right by a score gap of 1
    const above = 1 / (1 + Math.exp(-1)); // a pair ranked wrong by 1
    const d1 = 1;
    const d2 = 1 / Math.log2(3);
    const d3 = 1 / Math.log2(4);
    expect(grad1[1]).toBeCloseTo(((1 - 0) * (d1 - d2) * below) / 3, 14);
    expect(grad1[0]! + grad1[1]! + grad1[2]!).toBeCloseTo(0, 14);
    // Level 3: the pair of rows 1 and 2 (label 0 at rank 1 above label 2 at rank 2) adds, and
    // the ideal DCG is 3 + 1 / log2(3).
    const ideal3 = 3 + d2;
    expect(grad3[1]).toBeCloseTo(((d1 - d2) * below + 3 * (d2 - d3) * above) / ideal3, 14);
  });
});

describe('split search', () => {
  const params = {
    minDataInLeaf: 1,
    minSumHessianInLeaf: 0,
    lambdaL1: 0,
    lambdaL2: 0,
    minGainToSplit: 0,
  };
  /** A histogram of (gradient, hessian, count) per bin. */
  const hist = (entries: Array<[number, number, number]>) => ({
    sums: Float64Array.from(entries.flatMap(([g, h]) => [g, h])),
    counts: Int32Array.from(entries, (e) => e[2]),
  });
  const candidate = () => ({
    gain: 0,
    threshold: 0,
    defaultLeft: true,
    leftCount: 0,
    leftSumGrad: 0,
    leftSumHess: 0,
    splittable: false,
  });

  it('gains and leaf values by hand', () => {
    const h = hist([
      [-4, 2, 2],
      [1, 2, 2],
      [3, 2, 2],
    ]);
    const out = candidate();
    findBestThreshold(h.sums, h.counts, 0, 3, MissingType.None, 0, 0, 6, 6, params, out);
    // Threshold 0: 16/2 + 16/4 - 0 = 12; threshold 1: 9/4 + 9/2 = 6.75.
    expect(out.threshold).toBe(0);
    expect(out.gain).toBeCloseTo(12, 10);
    expect(out.leftCount).toBe(2);
    // L2 = 2: 16/4 + 16/6; L1 = 1: 3²/2 + 3²/4; min gain to split comes off the gain.
    findBestThreshold(
      h.sums,
      h.counts,
      0,
      3,
      MissingType.None,
      0,
      0,
      6,
      6,
      { ...params, lambdaL2: 2 },
      out,
    );
    expect(out.gain).toBeCloseTo(4 + 16 / 6, 10);
    findBestThreshold(
      h.sums,
      h.counts,
      0,
      3,
      MissingType.None,
      0,
      0,
      6,
      6,
      { ...params, lambdaL1: 1 },
      out,
    );
    expect(out.gain).toBeCloseTo(4.5 + 2.25, 10);
    findBestThreshold(
      h.sums,
      h.counts,
      0,
      3,
      MissingType.None,
      0,
      0,
      6,
      6,
      { ...params, minGainToSplit: 5 },
      out,
    );
    expect(out.gain).toBeCloseTo(7, 10);
    // min data in leaf 3: no split leaves 3 rows on both sides of bins of 2.
    findBestThreshold(
      h.sums,
      h.counts,
      0,
      3,
      MissingType.None,
      0,
      0,
      6,
      6,
      { ...params, minDataInLeaf: 3 },
      out,
    );
    expect(out.gain).toBe(-Infinity);
    expect(leafGain(-3, 4, 1, 0)).toBe(1);
    expect(leafOutput(-4, 2, 0, 2)).toBe(1);
    expect(leafOutput(-4, 2, 1, 1)).toBe(1);
  });

  it('sends the missing bin where it gains most', () => {
    // Bins 0, 1 and the NaN bin 2; NaN rows look like bin 1.
    const h = hist([
      [-4, 2, 2],
      [2, 2, 2],
      [2, 2, 2],
    ]);
    const out = candidate();
    findBestThreshold(h.sums, h.counts, 0, 3, MissingType.NaN, 0, 0, 6, 6, params, out);
    expect(out.threshold).toBe(0);
    expect(out.defaultLeft).toBe(false);
    expect(out.gain).toBeCloseTo(16 / 2 + 16 / 4, 10);
    // NaN rows like bin 0: missing goes left.
    const h2 = hist([
      [-2, 2, 2],
      [4, 2, 2],
      [-2, 2, 2],
    ]);
    findBestThreshold(h2.sums, h2.counts, 0, 3, MissingType.NaN, 0, 0, 6, 6, params, out);
    expect(out.threshold).toBe(0);
    expect(out.defaultLeft).toBe(true);
    expect(out.leftCount).toBe(4);
  });
});

describe('binning', () => {
  const options = { maxBin: 255, minDataInBin: 1, useMissing: true, zeroAsMissing: false };

  it('bounds between distinct values, zero a bin of its own, NaN last', () => {
    const mapper = findBinMapper([-2, -1, 0, 0, 1, 3, NaN], options);
    expect(mapper.missingType).toBe(MissingType.NaN);
    expect(Array.from(mapper.upperBounds)).toEqual([
      nextUp(-1.5),
      -ZERO_THRESHOLD,
      ZERO_THRESHOLD,
      nextUp(2),
      Infinity,
      NaN,
    ]);
    expect(valueToBin(mapper, -2)).toBe(0);
    expect(valueToBin(mapper, 0)).toBe(2);
    expect(mapper.defaultBin).toBe(2);
    expect(valueToBin(mapper, 2)).toBe(3);
    expect(valueToBin(mapper, 2.0000001)).toBe(4);
    expect(valueToBin(mapper, NaN)).toBe(5);
    expect(featureInfo(mapper)).toBe('[-2:3]');
  });

  it('quantile bins when values outnumber bins, min data per bin, zero as missing', () => {
    const values = Array.from({ length: 1000 }, (_, i) => i + 1);
    const mapper = findBinMapper(values, { ...options, maxBin: 10 });
    expect(mapper.numBins).toBeLessThanOrEqual(10);
    const counts = new Array<number>(mapper.numBins).fill(0);
    for (const v of values) {
      const bin = valueToBin(mapper, v);
      counts[bin] = (counts[bin] as number) + 1;
    }
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThan(150);
    // At least 3 rows per bin: 5 positive values make 2 bins, after the zero bin.
    expect(
      Array.from(findBinMapper([1, 2, 3, 4, 5], { ...options, minDataInBin: 3 }).upperBounds),
    ).toEqual([ZERO_THRESHOLD, nextUp(3.5), Infinity]);
    const zero = findBinMapper([0, 0, 1, 2, NaN], { ...options, zeroAsMissing: true });
    expect(zero.missingType).toBe(MissingType.Zero);
    expect(valueToBin(zero, NaN)).toBe(valueToBin(zero, 0));
  });

  it('drops single-valued features and those no split can serve; 16-bit bins past 256', () => {
    const numRows = 600;
    const values = new Float64Array(numRows * 3);
    for (let r = 0; r < numRows; r++) {
      values[r * 3] = 7;
      values[r * 3 + 1] = r === 0 ? 1 : 0;
      values[r * 3 + 2] = r;
    }
    const matrix = { values, numRows, numFeatures: 3 };
    const mappers = findBinMappers(matrix, { maxBin: 300, minDataInBin: 1, minDataInLeaf: 2 });
    expect(mappers.map((m) => m.trivial)).toEqual([true, true, false]);
    expect(featureInfo(mappers[0]!)).toBe('none');
    expect(mappers[2]!.numBins).toBe(300);
    expect(binMatrix(matrix, [2], [mappers[2]!])).toBeInstanceOf(Uint16Array);
  });
});

describe('metrics', () => {
  it('NDCG@k as LightGBM defines it', () => {
    // Query 1 ranked [2, 0, 1] by score; query 2 has no relevant document (counts as 1).
    const labels = [2, 0, 1, 0, 0];
    const scores = [0.9, 0.5, 0.1, 0.3, 0.2];
    const b = queryBoundaries([3, 2]);
    const dcg = 3 + 0 + 1 / Math.log2(4);
    const ideal = 3 + 1 / Math.log2(3);
    const [at1, at3] = ndcgAtK(labels, scores, b, [1, 3]);
    expect(at1).toBeCloseTo((1 + 1) / 2, 15);
    expect(at3).toBeCloseTo((dcg / ideal + 1) / 2, 15);
    // Ties keep row order.
    expect(ndcgAtK([0, 1], [0, 0], queryBoundaries([2]), [1])[0]).toBe(0);
    expect(l2Loss([1, 2], [2, 4])).toBe(2.5);
  });
});

describe('trainGbdt', () => {
  it('splits a tiny regression where the hand computation says', () => {
    const data = dataset([[1, 2, 3, 4]], [0, 0, 10, 10]);
    const { model } = trainGbdt({ train: data }, { ...TINY, numIterations: 1, numLeaves: 2 });
    const tree = model.trees[0]!;
    // Root G = -20, H = 4: gain 0 + 200 - 100 at the midpoint of 2 and 3 (one ulp up).
    expect(tree.numLeaves).toBe(2);
    expect(tree.threshold[0]).toBe(nextUp(2.5));
    expect(tree.splitGain[0]).toBeCloseTo(100, 4);
    expect(Array.from(tree.leafValue)).toEqual([expect.closeTo(0, 12), expect.closeTo(10, 12)]);
    expect(Array.from(tree.leafCount)).toEqual([2, 2]);
    expect(tree.internalValue[0]).toBeCloseTo(5, 12);
    expect(model.featureInfos).toEqual(['[1:4]']);
    expect(model.parameters).toContain('[num_leaves: 2]');
  });

  it('learns where missing values go, and the written model sends them there', () => {
    const x = [1, 2, 3, 4, NaN, NaN];
    const right = trainGbdt(
      { train: dataset([x], [0, 0, 10, 10, 10, 10]) },
      { ...TINY, numIterations: 1, numLeaves: 2 },
    ).model;
    const left = trainGbdt(
      { train: dataset([x], [10, 10, 0, 0, 10, 10]) },
      { ...TINY, numIterations: 1, numLeaves: 2 },
    ).model;
    // Missing type NaN (2 << 2), default right (8) or left (8 | 2).
    expect(right.trees[0]!.decisionType[0]).toBe(8);
    expect(left.trees[0]!.decisionType[0]).toBe(10);
    const rows = Float64Array.of(NaN, 1.5, 3.5);
    expect(Array.from(predictRaw(right, rows, 1))).toEqual([
      expect.closeTo(10, 12),
      expect.closeTo(0, 12),
      expect.closeTo(10, 12),
    ]);
    expect(Array.from(predictRaw(left, rows, 1))).toEqual([
      expect.closeTo(10, 12),
      expect.closeTo(10, 12),
      expect.closeTo(0, 12),
    ]);
  });

  it('recovers a step function (L2 regression)', () => {
    const n = 2000;
    const x = Array.from({ length: n }, (_, i) => (i + 0.5) / n);
    const noise = Array.from({ length: n }, (_, i) => 0.1 * Math.sin(i * 12.9898));
    const step = (v: number): number => (v < 0.3 ? 1 : v < 0.7 ? 5 : 2);
    const { model } = trainGbdt(
      {
        train: dataset(
          [x],
          x.map((v, i) => step(v) + (noise[i] as number)),
        ),
      },
      { numIterations: 60, learningRate: 0.2, numLeaves: 4, minDataInLeaf: 20 },
    );
    const probe = [0.05, 0.25, 0.35, 0.5, 0.65, 0.75, 0.95];
    const predicted = predictRaw(model, Float64Array.from(probe), 1);
    probe.forEach((v, i) => expect(predicted[i]).toBeCloseTo(step(v), 1));
    // The start score is the mean label, folded into the first tree (whose shrinkage becomes 1).
    expect(model.trees[0]!.shrinkage).toBe(1);
    expect(model.trees[1]!.shrinkage).toBe(0.2);
  });

  it('binary log loss: learns the boundary, starts from the log-odds, writes its objective', () => {
    const n = 400;
    const x = Array.from({ length: n }, (_, i) => i / n);
    const y = x.map((v, i) => (v > 0.6 !== (i % 10 === 0) ? 1 : 0));
    const { model, history } = trainGbdt(
      { train: dataset([x], y), valid: [dataset([x], y)] },
      { objective: 'binary', numIterations: 20, numLeaves: 3, minDataInLeaf: 10 },
    );
    expect(model.objective).toBe('binary sigmoid:1');
    const losses = history.iterations.map((r) => r.valid[0]![0]!);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]!);
    const p = predictRaw(model, Float64Array.of(0.2, 0.9), 1);
    expect(p[0]).toBeLessThan(-1);
    expect(p[1]).toBeGreaterThan(1);
    const positives = y.reduce<number>((a, b) => a + b, 0) / n;
    const start = Math.log(positives / (1 - positives));
    // At the start score the gradients sum to zero: the root's value is the start itself.
    const first = model.trees[0]!;
    expect(first.internalValue[0]).toBeCloseTo(start, 10);
    expect(first.shrinkage).toBe(1);
    expect(binaryLogLoss(y, predictRaw(model, Float64Array.from(x), 1))).toBeCloseTo(
      losses[losses.length - 1]!,
      12,
    );
  });

  it('grows leaf-wise within num_leaves and max_depth', () => {
    const n = 1000;
    const x0 = Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
    const x1 = Array.from({ length: n }, (_, i) => Math.cos(i * 1.91));
    const y = x0.map((v, i) => Math.sin(3 * v) + (x1[i] as number) ** 2);
    const deep = trainGbdt(
      { train: dataset([x0, x1], y) },
      { numIterations: 3, numLeaves: 15, minDataInLeaf: 5 },
    ).model;
    expect(deep.trees.every((t) => t.numLeaves === 15)).toBe(true);
    const shallow = trainGbdt(
      { train: dataset([x0, x1], y) },
      { numIterations: 3, numLeaves: 15, maxDepth: 2, minDataInLeaf: 5 },
    ).model;
    expect(shallow.trees.every((t) => t.numLeaves === 4)).toBe(true);
    const tree = deep.trees[0]!;
    expect(tree.leafCount.reduce((a, b) => a + b, 0)).toBe(n);
    expect(tree.internalCount[0]).toBe(n);
  });

  it('ranks a tiny learning-to-rank set perfectly, and its NDCG is what the model predicts', () => {
    // 60 queries of 8 documents; the label is the bucket of feature 0, feature 1 is noise.
    const queries = 60;
    const docs = 8;
    const f0: number[] = [];
    const f1: number[] = [];
    const labels: number[] = [];
    for (let i = 0; i < queries * docs; i++) {
      const v = (Math.sin(i * 7.13) + 1) / 2;
      f0.push(v);
      f1.push(Math.cos(i * 3.7));
      labels.push(Math.min(3, Math.floor(v * 4)));
    }
    const groups = new Array<number>(queries).fill(docs);
    const train = dataset([f0, f1], labels, groups);
    const { model, history } = trainGbdt(
      { train, valid: [train] },
      { objective: 'lambdarank', numIterations: 30, minDataInLeaf: 5, evalAt: [3, 8] },
    );
    const last = history.iterations[history.iterations.length - 1]!;
    expect(last.valid[0]).toEqual([1, 1]);
    const scores = predictRaw(model, train.features as Float64Array, 2);
    expect(ndcgAtK(labels, scores, queryBoundaries(groups), [3, 8])).toEqual([1, 1]);
    expect(history.metrics).toEqual(['ndcg@3', 'ndcg@8']);
  });

  it('grows the first tree LightGBM grew on its reference data', () => {
    const data = generateLtr({ queries: 3000, seed: 11 });
    const { model } = trainGbdt(
      {
        train: {
          features: data.features,
          numFeatures: data.width,
          labels: data.labels,
          groups: data.groups,
        },
      },
      { objective: 'lambdarank', numIterations: 1, minDataInLeaf: 50, seed: 7 },
    );
    const reference = parseLightGbmModel(
      readFileSync(new URL('lambdarank-ltr.model.txt', FIXTURES), 'utf8'),
    );
    const ours = model.trees[0]!;
    const theirs = reference.trees[0]!;
    expect(Array.from(ours.splitFeature)).toEqual(Array.from(theirs.splitFeature));
    expect(Array.from(ours.threshold)).toEqual(Array.from(theirs.threshold));
    expect(Array.from(ours.decisionType)).toEqual(Array.from(theirs.decisionType));
    expect(Array.from(ours.leftChild)).toEqual(Array.from(theirs.leftChild));
    expect(Array.from(ours.leafCount)).toEqual(Array.from(theirs.leafCount));
    // LightGBM keeps gradients in float32: values agree to about 1e-6.
    ours.leafValue.forEach((v, i) => {
      expect(Math.abs(v - (theirs.leafValue[i] as number))).toBeLessThan(
        2e-6 * Math.abs(theirs.leafValue[i] as number),
      );
    });
    ours.splitGain.forEach((g, i) => expect(g).toBeCloseTo(theirs.splitGain[i] as number, 2));
    expect(model.objective).toBe('lambdarank');
    expect(model.featureInfos[5]).toBe(reference.featureInfos[5]);
  }, 60_000);

  it('is deterministic for a seed, bagging and feature sampling included', () => {
    const data = generateLtr({ queries: 40, seed: 3 });
    const train = {
      features: data.features,
      numFeatures: data.width,
      labels: data.labels,
      groups: data.groups,
    };
    const options: GbdtTrainOptions = {
      objective: 'lambdarank',
      numIterations: 8,
      numLeaves: 7,
      minDataInLeaf: 10,
      featureFraction: 0.5,
      baggingFraction: 0.7,
      baggingFreq: 2,
      seed: 5,
    };
    const a = formatLightGbmModel(trainGbdt({ train }, options).model);
    const b = formatLightGbmModel(trainGbdt({ train }, options).model);
    expect(a).toBe(b);
    const c = formatLightGbmModel(trainGbdt({ train }, { ...options, seed: 6 }).model);
    expect(c).not.toBe(a);
    // The written model opens again as the same model.
    expect(formatLightGbmModel(parseLightGbmModel(a))).toBe(a);
    // The JavaScript loops add in the same order as the WebAssembly kernels: the same model.
    const js = trainGbdt({ train }, { ...options, useWasm: false });
    expect(js.history.wasm).toBe(false);
    expect(formatLightGbmModel(js.model)).toBe(a);
  });

  it('stops early when the validation metric stalls, keeping the best iteration', () => {
    // Labels are noise: the validation loss soon gets worse.
    const n = 400;
    const x = Array.from({ length: n }, (_, i) => Math.sin(i * 1.3));
    const y = Array.from({ length: n }, (_, i) => Math.sin(i * 91.7));
    const yValid = Array.from({ length: n }, (_, i) => Math.cos(i * 53.3));
    const { model, history } = trainGbdt(
      { train: dataset([x], y), valid: [dataset([x], yValid)] },
      { numIterations: 200, earlyStoppingRounds: 5, minDataInLeaf: 5, learningRate: 0.3 },
    );
    expect(history.stoppedEarly).toBe(true);
    expect(history.iterations.length).toBeLessThan(200);
    expect(history.bestIteration).toBe(history.iterations.length - 5);
    expect(model.trees).toHaveLength(history.bestIteration);
    const losses = history.iterations.map((r) => r.valid[0]![0]!);
    const best = losses[history.bestIteration - 1]!;
    expect(Math.min(...losses)).toBe(best);
    expect(l2Loss(yValid, predictRaw(model, Float64Array.from(x), 1))).toBeCloseTo(best, 10);
  });

  it('rejects bad options and data, naming them', () => {
    const data = dataset([[1, 2, 3, 4]], [0, 1, 0, 1]);
    const bad: Array<[GbdtTrainOptions, string]> = [
      [{ numLeaves: 1 }, 'numLeaves'],
      [{ learningRate: 0 }, 'learningRate'],
      [{ featureFraction: 1.5 }, 'featureFraction'],
      [{ baggingFraction: 0 }, 'baggingFraction'],
      [{ minDataInLeaf: -1 }, 'minDataInLeaf'],
      [{ lambdaL2: -1 }, 'lambdaL2'],
      [{ maxBin: 1 }, 'maxBin'],
      [{ objective: 'poisson' as 'regression' }, 'objective'],
      [{ evalAt: [0] }, 'evalAt'],
      [{ earlyStoppingRounds: 3 }, 'earlyStoppingRounds'],
      [{ objective: 'lambdarank' }, 'train.groups'],
      [{ objective: 'binary', labelGain: [] }, 'labelGain'],
    ];
    for (const [options, name] of bad) {
      expect(() => trainGbdt({ train: data }, options)).toThrow(ConfigError);
      expect(() => trainGbdt({ train: data }, options)).toThrow(name);
    }
    expect(() => trainGbdt({ train: { ...data, labels: [0, 1, 0] } })).toThrow('train.features');
    expect(() => trainGbdt({ train: data }, { objective: 'binary' })).not.toThrow();
    expect(() =>
      trainGbdt({ train: dataset([[1, 2, 3, 4]], [0, 2, 0, 1]) }, { objective: 'binary' }),
    ).toThrow('train.labels');
    expect(() =>
      trainGbdt(
        { train: dataset([[1, 2]], [0, 1], [2]), valid: [dataset([[1, 2]], [0, 1.5], [2])] },
        { objective: 'lambdarank' },
      ),
    ).toThrow('valid[0].labels');
    expect(K_EPSILON).toBe(Math.fround(1e-15));
  });
});
