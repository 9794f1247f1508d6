/**
 * The gradient-boosted tree trainer: LightGBM's algorithm in TypeScript, so that nobody misses
 * LightGBM. Features are binned once (`binning.ts`); each iteration computes gradients and
 * hessians (`objectives.ts`), grows one tree leaf-wise (always splitting the leaf whose best split
 * gains most) from per-bin histograms of (gradient, hessian, count), and adds the shrunk tree to
 * the scores. Only the smaller child of a split has its histograms built from rows; the larger
 * child's are its parent's minus the smaller's. The split search scans the bins both ways when a
 * feature has missing values, so NaN (or zero, with `zeroAsMissing`) goes to the side that gains
 * most, recorded as the default direction in the model.
 *
 * Everything lives in typed arrays allocated once per training: the rows of each leaf as ranges of
 * one index array (LightGBM's data partition), one histogram slot per leaf. The histogram pass
 * (row by row, each row's bins read in one run) and the LambdaRank pair loop, nearly all of the
 * work, run in WebAssembly when the runtime has it, in JavaScript otherwise, with the same result.
 * The same data, options and seed give the same model, bit for bit. The model is written in
 * LightGBM's layout (`model.ts`): leaf and node numbering, thresholds as real feature values (bin
 * upper bounds), decision types, and the `parameters:` lines. Every feature is numerical: the
 * trainer learns no categorical (bitset) splits, though models read from LightGBM may have them.
 */
import { ConfigError } from '../../runtime/errors.js';
import { Rng } from '../data/index.js';
import { binMatrix, featureInfo, findBinMappers } from './binning.js';
import type { BinMapper, BinMatrix, FeatureMatrix } from './binning.js';
import { binaryLogLoss, l2Loss, NdcgEvaluator, queryBoundaries } from './metrics.js';
import { DecisionBits, MissingType } from './model.js';
import type { GbdtModel, GbdtTree } from './model.js';
import {
  BinaryObjective,
  defaultLabelGain,
  K_EPSILON,
  LambdarankObjective,
  RegressionObjective,
} from './objectives.js';
import type { Objective } from './objectives.js';
import { HistogramKernel, wasmHistogramAvailable } from './wasm-histogram.js';

// Local copies: in the hot loops, a property of an imported object can cost a getter call under
// some module loaders (tsx, bundlers).
const MISSING_NONE: number = MissingType.None;
const MISSING_NAN: number = MissingType.NaN;
const MISSING_ZERO: number = MissingType.Zero;
const EPSILON = K_EPSILON;

/** The losses the trainer descends. */
export const GbdtObjective = {
  /** L2 regression; metric `l2` (mean squared error). */
  Regression: 'regression',
  /** Binary log loss, labels 0/1; metric `binary_logloss`. */
  Binary: 'binary',
  /** LambdaRank on NDCG, graded labels within query groups; metric `ndcg@k`. */
  Lambdarank: 'lambdarank',
} as const;
export type GbdtObjective = (typeof GbdtObjective)[keyof typeof GbdtObjective];

/** Rows to train on or to validate with. */
export interface GbdtDataset {
  /** `labels.length × numFeatures` values, row-major; NaN is a missing value. */
  readonly features: ArrayLike<number>;
  readonly numFeatures: number;
  /** One per row: a real (regression), 0 or 1 (binary), a relevance grade 0..30 (lambdarank). */
  readonly labels: ArrayLike<number>;
  /** Sizes of consecutive query groups (lambdarank); they add up to the number of rows. */
  readonly groups?: ArrayLike<number>;
  /** Names written into the model (training set only). @default `Column_<i>` */
  readonly featureNames?: readonly string[];
}

export interface GbdtTrainData {
  readonly train: GbdtDataset;
  /**
   * Sets whose metrics are computed after every iteration, into the history; early stopping
   * watches all of them, as LightGBM does.
   */
  readonly valid?: readonly GbdtDataset[];
}

/** Training options, LightGBM's parameter names in brackets (its defaults unless said). */
export interface GbdtTrainOptions {
  /** @default 'regression' */
  objective?: GbdtObjective;
  /** Boosting iterations, one tree each [`num_iterations`]. @default 100 */
  numIterations?: number;
  /** Shrinkage of each tree [`learning_rate`]. @default 0.1 */
  learningRate?: number;
  /** Most leaves per tree [`num_leaves`]. @default 31 */
  numLeaves?: number;
  /** Most depth of a leaf; 0 or less: no limit [`max_depth`]. @default -1 */
  maxDepth?: number;
  /** Fewest rows in a leaf [`min_data_in_leaf`]. @default 20 */
  minDataInLeaf?: number;
  /** Smallest sum of hessians in a leaf [`min_sum_hessian_in_leaf`]. @default 1e-3 */
  minSumHessianInLeaf?: number;
  /** L1 regularisation of leaf values [`lambda_l1`]. @default 0 */
  lambdaL1?: number;
  /** L2 regularisation of leaf values [`lambda_l2`]. @default 0 */
  lambdaL2?: number;
  /** Smallest gain worth a split [`min_gain_to_split`]. @default 0 */
  minGainToSplit?: number;
  /** Share of the features each tree may split on, drawn per tree [`feature_fraction`]. @default 1 */
  featureFraction?: number;
  /** Share of the rows each tree is grown from [`bagging_fraction`]. @default 1 */
  baggingFraction?: number;
  /** Draw a new bag every this many iterations; 0: no bagging [`bagging_freq`]. @default 0 */
  baggingFreq?: number;
  /**
   * Stop when the metric of a validation set has not improved for this many iterations, and keep
   * the trees up to its best iteration; 0: never [`early_stopping_round`]. For ranking the metric
   * watched is NDCG at the last `evalAt` position, as in LightGBM. @default 0
   */
  earlyStoppingRounds?: number;
  /** Least improvement that counts [`early_stopping_min_delta`]. @default 0 */
  earlyStoppingMinDelta?: number;
  /** Most bins per feature, the NaN bin included [`max_bin`]. @default 255 */
  maxBin?: number;
  /** Fewest sampled rows in a bin [`min_data_in_bin`]. @default 3 */
  minDataInBin?: number;
  /** Rows sampled to find the bins [`bin_construct_sample_cnt`]. @default 200000 */
  binConstructSampleCount?: number;
  /** NaN is missing and learns its direction; false: NaN is read as 0 [`use_missing`]. @default true */
  useMissing?: boolean;
  /** Zero (and NaN) is missing [`zero_as_missing`]. @default false */
  zeroAsMissing?: boolean;
  /** Drop features no split of which can satisfy `minDataInLeaf` [`feature_pre_filter`]. @default true */
  featurePreFilter?: boolean;
  /** Seed of the bin sample, the feature draws and the bags [`seed`]. @default 0 */
  seed?: number;
  /** Steepness of the binary and the pairwise sigmoid [`sigmoid`]. @default 1 */
  sigmoid?: number;
  /** Pairs need a document in this many top positions [`lambdarank_truncation_level`]. @default 30 */
  lambdarankTruncationLevel?: number;
  /** Normalise lambdas by score distance and per query [`lambdarank_norm`]. @default true */
  lambdarankNorm?: boolean;
  /** Gain of each relevance label [`label_gain`]. @default 2^label - 1 for labels 0..30 */
  labelGain?: readonly number[];
  /** Positions of the validation NDCG [`eval_at`]. @default [1, 2, 3, 4, 5] */
  evalAt?: readonly number[];
  /** Start from the mean label (regression) or its log-odds (binary) [`boost_from_average`]. @default true */
  boostFromAverage?: boolean;
  /**
   * Run the histogram pass and the LambdaRank pair loop in WebAssembly when the runtime can;
   * false runs them in JavaScript, which gives the same model. @default true
   */
  useWasm?: boolean;
  /** Called after each iteration (progress on stderr, say). */
  onIteration?: (record: GbdtIterationRecord) => void;
}

export interface ResolvedGbdtOptions extends Required<
  Omit<GbdtTrainOptions, 'onIteration' | 'labelGain' | 'evalAt'>
> {
  readonly labelGain: readonly number[];
  readonly evalAt: readonly number[];
  readonly onIteration: ((record: GbdtIterationRecord) => void) | undefined;
}

/** One boosting iteration as the history records it. */
export interface GbdtIterationRecord {
  /** 1-based: the model of this many trees. */
  readonly iteration: number;
  readonly leaves: number;
  /** `valid[s][m]`: metric `m` (see {@link GbdtHistory.metrics}) on validation set `s`. */
  readonly valid: readonly (readonly number[])[];
  /** Since training started (binning included). */
  readonly seconds: number;
}

export interface GbdtHistory {
  /** Metric names: `ndcg@<k>`, `binary_logloss` or `l2`. */
  readonly metrics: readonly string[];
  readonly iterations: readonly GbdtIterationRecord[];
  /** Trees kept in the model: the best iteration when early stopping fired, else all. */
  readonly bestIteration: number;
  readonly stoppedEarly: boolean;
  /** Features kept after binning (the others had a single bin or no admissible split). */
  readonly usedFeatures: number;
  /** Whether the histogram pass ran in WebAssembly. */
  readonly wasm: boolean;
  readonly seconds: number;
}

export interface GbdtTrainResult {
  readonly model: GbdtModel;
  readonly history: GbdtHistory;
}

/** Applies the defaults and checks every option once; errors name the option. */
export function resolveGbdtOptions(options: GbdtTrainOptions = {}): ResolvedGbdtOptions {
  const int = (name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(name, `must be an integer in [${min}, ${max}], got ${value}`);
    }
    return value;
  };
  const nonNegative = (name: string, value: number): number => {
    if (!(value >= 0) || !Number.isFinite(value)) {
      throw new ConfigError(name, `must be a non-negative number, got ${value}`);
    }
    return value;
  };
  const positive = (name: string, value: number): number => {
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new ConfigError(name, `must be a positive number, got ${value}`);
    }
    return value;
  };
  const fraction = (name: string, value: number): number => {
    if (!(value > 0 && value <= 1)) throw new ConfigError(name, `must be in (0, 1], got ${value}`);
    return value;
  };
  const bool = (name: string, value: boolean): boolean => {
    if (typeof value !== 'boolean')
      throw new ConfigError(name, `must be a boolean, got ${String(value)}`);
    return value;
  };
  const objective = options.objective ?? GbdtObjective.Regression;
  if (!Object.values(GbdtObjective).includes(objective)) {
    throw new ConfigError(
      'objective',
      `must be one of ${Object.values(GbdtObjective).join(', ')}, got ${String(objective)}`,
    );
  }
  const labelGain = options.labelGain ?? defaultLabelGain();
  if (labelGain.length === 0 || labelGain.some((g) => !(g >= 0) || !Number.isFinite(g))) {
    throw new ConfigError('labelGain', 'must be a non-empty list of non-negative numbers');
  }
  const evalAt = options.evalAt ?? [1, 2, 3, 4, 5];
  if (evalAt.length === 0 || evalAt.some((k) => !Number.isInteger(k) || k < 1)) {
    throw new ConfigError(
      'evalAt',
      `must be a non-empty list of positive integers, got ${evalAt.join(',')}`,
    );
  }
  return {
    objective,
    numIterations: int('numIterations', options.numIterations ?? 100, 1),
    learningRate: positive('learningRate', options.learningRate ?? 0.1),
    numLeaves: int('numLeaves', options.numLeaves ?? 31, 2, 131_072),
    maxDepth: int('maxDepth', options.maxDepth ?? -1, -1),
    minDataInLeaf: int('minDataInLeaf', options.minDataInLeaf ?? 20, 0),
    minSumHessianInLeaf: nonNegative('minSumHessianInLeaf', options.minSumHessianInLeaf ?? 1e-3),
    lambdaL1: nonNegative('lambdaL1', options.lambdaL1 ?? 0),
    lambdaL2: nonNegative('lambdaL2', options.lambdaL2 ?? 0),
    minGainToSplit: nonNegative('minGainToSplit', options.minGainToSplit ?? 0),
    featureFraction: fraction('featureFraction', options.featureFraction ?? 1),
    baggingFraction: fraction('baggingFraction', options.baggingFraction ?? 1),
    baggingFreq: int('baggingFreq', options.baggingFreq ?? 0, 0),
    earlyStoppingRounds: int('earlyStoppingRounds', options.earlyStoppingRounds ?? 0, 0),
    earlyStoppingMinDelta: nonNegative('earlyStoppingMinDelta', options.earlyStoppingMinDelta ?? 0),
    maxBin: int('maxBin', options.maxBin ?? 255, 2, 65_536),
    minDataInBin: int('minDataInBin', options.minDataInBin ?? 3, 1),
    binConstructSampleCount: int(
      'binConstructSampleCount',
      options.binConstructSampleCount ?? 200_000,
      1,
    ),
    useMissing: bool('useMissing', options.useMissing ?? true),
    zeroAsMissing: bool('zeroAsMissing', options.zeroAsMissing ?? false),
    featurePreFilter: bool('featurePreFilter', options.featurePreFilter ?? true),
    seed: int('seed', options.seed ?? 0, 0, 0xffffffff),
    sigmoid: positive('sigmoid', options.sigmoid ?? 1),
    lambdarankTruncationLevel: int(
      'lambdarankTruncationLevel',
      options.lambdarankTruncationLevel ?? 30,
      1,
    ),
    lambdarankNorm: bool('lambdarankNorm', options.lambdarankNorm ?? true),
    labelGain: [...labelGain],
    evalAt: [...evalAt],
    boostFromAverage: bool('boostFromAverage', options.boostFromAverage ?? true),
    useWasm: bool('useWasm', options.useWasm ?? true),
    onIteration: options.onIteration,
  };
}

// ---------------------------------------------------------------------------------------------
// Data checks and binning

interface CheckedDataset {
  readonly matrix: FeatureMatrix;
  readonly labels: Float64Array;
  readonly boundaries: Int32Array | undefined;
}

function checkDataset(name: string, data: GbdtDataset, o: ResolvedGbdtOptions): CheckedDataset {
  const rows = data.labels.length;
  const needGroups = o.objective === GbdtObjective.Lambdarank;
  if (!Number.isInteger(data.numFeatures) || data.numFeatures < 1) {
    throw new ConfigError(
      `${name}.numFeatures`,
      `must be a positive integer, got ${data.numFeatures}`,
    );
  }
  if (data.features.length !== rows * data.numFeatures) {
    throw new ConfigError(
      `${name}.features`,
      `has ${data.features.length} values, expected ${rows} rows × ${data.numFeatures} features`,
    );
  }
  const labels = Float64Array.from(data.labels);
  const grades = o.labelGain.length;
  for (let i = 0; i < rows; i++) {
    const y = labels[i] as number;
    if (!Number.isFinite(y)) {
      throw new ConfigError(`${name}.labels`, `row ${i} has a label that is not a finite number`);
    }
    if (o.objective === GbdtObjective.Binary && y !== 0 && y !== 1) {
      throw new ConfigError(`${name}.labels`, `binary labels are 0 or 1, row ${i} has ${y}`);
    }
    if (needGroups && (!Number.isInteger(y) || y < 0 || y >= grades)) {
      throw new ConfigError(
        `${name}.labels`,
        `ranking labels are integers in [0, ${grades - 1}] (one label gain each), row ${i} has ${y}`,
      );
    }
  }
  let boundaries: Int32Array | undefined;
  if (data.groups !== undefined) {
    for (let q = 0; q < data.groups.length; q++) {
      const g = data.groups[q] as number;
      if (!Number.isInteger(g) || g < 0) {
        throw new ConfigError(`${name}.groups`, `group ${q} has size ${g}, not a count of rows`);
      }
    }
    boundaries = queryBoundaries(data.groups);
    const total = boundaries[boundaries.length - 1] as number;
    if (total !== rows) {
      throw new ConfigError(
        `${name}.groups`,
        `group sizes add up to ${total}, the data has ${rows} rows`,
      );
    }
  } else if (needGroups) {
    throw new ConfigError(`${name}.groups`, 'lambdarank needs the query groups of the rows');
  }
  return {
    matrix: { values: data.features, numRows: rows, numFeatures: data.numFeatures },
    labels,
    boundaries,
  };
}

/** The binned features the tree grower reads: the kept features only, in feature order. */
interface BinnedData {
  readonly numRows: number;
  /** `numRows × features` bins, row-major: a histogram pass reads each row's bins in one run. */
  readonly bins: BinMatrix;
}

/** The kept features' bin layout, shared by the training and the validation data. */
interface FeatureLayout {
  /** Original index of each kept feature. */
  readonly featureIndex: Int32Array;
  readonly mappers: readonly BinMapper[];
  readonly numBins: Int32Array;
  readonly missingType: Uint8Array;
  readonly defaultBin: Int32Array;
  /**
   * Histogram entries reserved per feature (the most bins of any feature): feature `f`'s bins
   * start at entry `f × stride`, a multiplication instead of a table look-up in the hot loop.
   */
  readonly stride: number;
}

function featureLayout(mappers: readonly BinMapper[]): FeatureLayout {
  const kept: number[] = [];
  mappers.forEach((m, i) => {
    if (!m.trivial) kept.push(i);
  });
  const keptMappers = kept.map((i) => mappers[i] as BinMapper);
  return {
    featureIndex: Int32Array.from(kept),
    mappers: keptMappers,
    numBins: Int32Array.from(keptMappers, (m) => m.numBins),
    missingType: Uint8Array.from(keptMappers, (m) => m.missingType),
    defaultBin: Int32Array.from(keptMappers, (m) => m.defaultBin),
    stride: Math.max(1, ...keptMappers.map((m) => m.numBins)),
  };
}

function binData(matrix: FeatureMatrix, layout: FeatureLayout): BinnedData {
  return {
    numRows: matrix.numRows,
    bins: binMatrix(matrix, layout.featureIndex, layout.mappers),
  };
}

// ---------------------------------------------------------------------------------------------
// One tree, grown leaf-wise

/** A tree while it grows: arrays sized for `numLeaves` leaves, in LightGBM's numbering. */
interface GrownTree {
  numLeaves: number;
  readonly splitFeature: Int32Array;
  readonly thresholdBin: Int32Array;
  readonly defaultLeft: Uint8Array;
  readonly missingType: Uint8Array;
  readonly splitGain: Float64Array;
  readonly leftChild: Int32Array;
  readonly rightChild: Int32Array;
  readonly internalValue: Float64Array;
  readonly internalWeight: Float64Array;
  readonly internalCount: Int32Array;
  readonly leafValue: Float64Array;
  readonly leafWeight: Float64Array;
  readonly leafCount: Int32Array;
  readonly leafParent: Int32Array;
  readonly leafDepth: Int32Array;
}

function newTree(maxLeaves: number): GrownTree {
  const nodes = maxLeaves - 1;
  return {
    numLeaves: 1,
    splitFeature: new Int32Array(nodes),
    thresholdBin: new Int32Array(nodes),
    defaultLeft: new Uint8Array(nodes),
    missingType: new Uint8Array(nodes),
    splitGain: new Float64Array(nodes),
    leftChild: new Int32Array(nodes),
    rightChild: new Int32Array(nodes),
    internalValue: new Float64Array(nodes),
    internalWeight: new Float64Array(nodes),
    internalCount: new Int32Array(nodes),
    leafValue: new Float64Array(maxLeaves),
    leafWeight: new Float64Array(maxLeaves),
    leafCount: new Int32Array(maxLeaves),
    leafParent: Int32Array.from({ length: maxLeaves }, () => -1),
    leafDepth: new Int32Array(maxLeaves),
  };
}

/** The split-search settings. */
interface SplitParams {
  readonly minDataInLeaf: number;
  readonly minSumHessianInLeaf: number;
  readonly lambdaL1: number;
  readonly lambdaL2: number;
  readonly minGainToSplit: number;
}

/** `sign(s) · max(0, |s| - l1)` (LightGBM's `ThresholdL1`). */
function thresholdL1(s: number, l1: number): number {
  const reg = Math.max(0, Math.abs(s) - l1);
  return s > 0 ? reg : s < 0 ? -reg : 0;
}

/** The gain of a leaf with these sums: `ThresholdL1(G)² / (H + λ2)`. */
export function leafGain(sumGrad: number, sumHess: number, l1: number, l2: number): number {
  const g = l1 > 0 ? thresholdL1(sumGrad, l1) : sumGrad;
  return (g * g) / (sumHess + l2);
}

/** The value of a leaf with these sums: `-ThresholdL1(G) / (H + λ2)`. */
export function leafOutput(sumGrad: number, sumHess: number, l1: number, l2: number): number {
  const g = l1 > 0 ? thresholdL1(sumGrad, l1) : sumGrad;
  return -g / (sumHess + l2);
}

/** The best split of one leaf on one feature, as the search leaves it. */
interface SplitCandidate {
  gain: number;
  threshold: number;
  defaultLeft: boolean;
  leftCount: number;
  leftSumGrad: number;
  leftSumHess: number;
  splittable: boolean;
}

/**
 * The best threshold of one feature from its histogram (entry `e = entry + bin`: gradient and
 * hessian sums at `hist[2e]`, `hist[2e + 1]`, row count at `counts[e]`), LightGBM's `FindBestThresholdSequentially`: right to left, the missing bin
 * (NaN bin, or zero bin with `MissingType.Zero`) left out of the right side, so it goes left; then,
 * when the feature has missing values, left to right with it kept out of the left side. The gain
 * is `gain(left) + gain(right) - gain(parent) - minGainToSplit`; `out.gain` stays -Infinity when
 * nothing qualifies. Counts are exact (LightGBM estimates them from hessians).
 */
export function findBestThreshold(
  hist: Float64Array,
  counts: ArrayLike<number>,
  entry: number,
  numBin: number,
  missingType: number,
  defaultBin: number,
  sumGrad: number,
  sumHessIn: number,
  numData: number,
  p: SplitParams,
  out: SplitCandidate,
): void {
  const { minDataInLeaf, minSumHessianInLeaf, lambdaL1: l1, lambdaL2: l2 } = p;
  const sumHess = sumHessIn + 2 * EPSILON;
  const minGainShift = leafGain(sumGrad, sumHess, l1, l2) + p.minGainToSplit;
  const twoWay = numBin > 2 && missingType !== MISSING_NONE;
  const skipDefault = twoWay && missingType === MISSING_ZERO;
  const naAsMissing = twoWay && missingType === MISSING_NAN;
  out.gain = -Infinity;
  out.splittable = false;

  // Right to left: the missing bin stays on the left.
  let bestGain = -Infinity;
  let bestThreshold = numBin;
  let bestLeftCount = 0;
  let bestLeftGrad = NaN;
  let bestLeftHess = NaN;
  let rightGrad = 0;
  let rightHess = EPSILON;
  let rightCount = 0;
  for (let t = numBin - 1 - (naAsMissing ? 1 : 0); t >= 1; t--) {
    if (skipDefault && t === defaultBin) continue;
    const e = entry + t;
    rightGrad += hist[2 * e] as number;
    rightHess += hist[2 * e + 1] as number;
    rightCount += counts[e] as number;
    if (rightCount < minDataInLeaf || rightHess < minSumHessianInLeaf) continue;
    const leftCount = numData - rightCount;
    if (leftCount < minDataInLeaf) break;
    const leftHess = sumHess - rightHess;
    if (leftHess < minSumHessianInLeaf) break;
    const leftGrad = sumGrad - rightGrad;
    const gain = leafGain(leftGrad, leftHess, l1, l2) + leafGain(rightGrad, rightHess, l1, l2);
    if (!(gain > minGainShift)) continue;
    out.splittable = true;
    if (gain > bestGain) {
      bestGain = gain;
      bestThreshold = t - 1;
      bestLeftCount = leftCount;
      bestLeftGrad = leftGrad;
      bestLeftHess = leftHess;
    }
  }
  if (out.splittable && bestGain > out.gain + minGainShift) {
    out.gain = bestGain - minGainShift;
    out.threshold = bestThreshold;
    out.defaultLeft = true;
    out.leftCount = bestLeftCount;
    out.leftSumGrad = bestLeftGrad;
    out.leftSumHess = bestLeftHess;
  }
  // Without a NaN bin, a two-bin feature with NaN sends NaN right (LightGBM sets it so).
  if (!twoWay && missingType === MISSING_NAN) out.defaultLeft = false;
  if (!twoWay) return;

  // Left to right: the missing bin stays on the right.
  bestGain = -Infinity;
  let leftGrad = 0;
  let leftHess = EPSILON;
  let leftCount = 0;
  for (let t = 0; t <= numBin - 2; t++) {
    if (skipDefault && t === defaultBin) continue;
    const e = entry + t;
    leftGrad += hist[2 * e] as number;
    leftHess += hist[2 * e + 1] as number;
    leftCount += counts[e] as number;
    if (leftCount < minDataInLeaf || leftHess < minSumHessianInLeaf) continue;
    const rCount = numData - leftCount;
    if (rCount < minDataInLeaf) break;
    const rHess = sumHess - leftHess;
    if (rHess < minSumHessianInLeaf) break;
    const rGrad = sumGrad - leftGrad;
    const gain = leafGain(leftGrad, leftHess, l1, l2) + leafGain(rGrad, rHess, l1, l2);
    if (!(gain > minGainShift)) continue;
    out.splittable = true;
    if (gain > bestGain) {
      bestGain = gain;
      bestThreshold = t;
      bestLeftCount = leftCount;
      bestLeftGrad = leftGrad;
      bestLeftHess = leftHess;
    }
  }
  if (out.splittable && bestGain > out.gain + minGainShift) {
    out.gain = bestGain - minGainShift;
    out.threshold = bestThreshold;
    out.defaultLeft = false;
    out.leftCount = bestLeftCount;
    out.leftSumGrad = bestLeftGrad;
    out.leftSumHess = bestLeftHess;
  }
}

/**
 * Grows trees on one binned training set; owns every buffer the growth needs, reused from tree to
 * tree. The histogram pass, most of the work, runs in WebAssembly when it can
 * (`wasm-histogram.ts`), over arrays that live in the kernel's memory: the row-major bins, the
 * interleaved gradients and hessians, the leaf row indices and one histogram slot per leaf.
 */
class TreeGrower {
  private readonly numFeatures: number;
  private readonly kernel: HistogramKernel;
  /** Rows of each leaf: leaf `l` is `indices[leafBegin[l] .. + leafRows[l])`. */
  readonly indices: Int32Array;
  readonly leafBegin: Int32Array;
  readonly leafRows: Int32Array;
  /** The training bins, row-major (`rows × features`), for walking a tree over training rows. */
  readonly bins: BinMatrix;
  /** The same bins feature by feature (`features × rows`): partitioning a leaf reads one feature. */
  private readonly columns: BinMatrix;
  private readonly scratchRows: Int32Array;
  private readonly gradHess: Float64Array;
  private readonly hist: Float64Array;
  private readonly counts: Int32Array;
  /** Entries (feature bins) of one slot: slot `s`, feature `f`, bin `b` is `s·slotEntries + f·stride + b`. */
  private readonly slotEntries: number;
  private readonly histSlot: Int32Array;
  /** `splittable[slot × features + f]`: the feature had an admissible split in that histogram. */
  private readonly splittable: Uint8Array;
  private readonly leafSumGrad: Float64Array;
  private readonly leafSumHess: Float64Array;
  // Best split of each leaf.
  private readonly bestGain: Float64Array;
  private readonly bestFeature: Int32Array;
  private readonly bestThreshold: Int32Array;
  private readonly bestDefaultLeft: Uint8Array;
  private readonly bestLeftCount: Int32Array;
  private readonly bestLeftGrad: Float64Array;
  private readonly bestLeftHess: Float64Array;
  private readonly goesLeft: Uint8Array;
  private readonly featureList: Int32Array;
  private readonly candidate: SplitCandidate = {
    gain: -Infinity,
    threshold: 0,
    defaultLeft: true,
    leftCount: 0,
    leftSumGrad: 0,
    leftSumHess: 0,
    splittable: false,
  };
  private featureUsed: Uint8Array = new Uint8Array(0);

  constructor(
    private readonly numRows: number,
    bins: BinMatrix,
    private readonly layout: FeatureLayout,
    private readonly maxLeaves: number,
    private readonly maxDepth: number,
    private readonly params: SplitParams,
    useWasm: boolean,
  ) {
    const n = numRows;
    const F = layout.featureIndex.length;
    this.numFeatures = F;
    this.kernel = new HistogramKernel(
      {
        rows: n,
        features: F,
        stride: layout.stride,
        slots: maxLeaves,
        wide: bins instanceof Uint16Array,
      },
      useWasm,
    );
    this.kernel.bins.set(bins);
    this.bins = this.kernel.bins;
    this.columns = bins instanceof Uint16Array ? new Uint16Array(n * F) : new Uint8Array(n * F);
    for (let r = 0; r < n; r++) {
      for (let f = 0; f < F; f++) this.columns[f * n + r] = bins[r * F + f] as number;
    }
    this.indices = this.kernel.indices;
    this.gradHess = this.kernel.gradHess;
    this.hist = this.kernel.hist;
    this.counts = this.kernel.counts;
    this.slotEntries = this.kernel.slotEntries;
    this.scratchRows = new Int32Array(n);
    this.leafBegin = new Int32Array(maxLeaves);
    this.leafRows = new Int32Array(maxLeaves);
    this.histSlot = new Int32Array(maxLeaves);
    this.splittable = new Uint8Array(maxLeaves * F);
    this.leafSumGrad = new Float64Array(maxLeaves);
    this.leafSumHess = new Float64Array(maxLeaves);
    this.bestGain = new Float64Array(maxLeaves);
    this.bestFeature = new Int32Array(maxLeaves);
    this.bestThreshold = new Int32Array(maxLeaves);
    this.bestDefaultLeft = new Uint8Array(maxLeaves);
    this.bestLeftCount = new Int32Array(maxLeaves);
    this.bestLeftGrad = new Float64Array(maxLeaves);
    this.bestLeftHess = new Float64Array(maxLeaves);
    this.goesLeft = new Uint8Array(Math.max(1, ...Array.from(layout.numBins)));
    this.featureList = new Int32Array(F);
  }

  /** Whether the histogram pass runs in WebAssembly. */
  get usesWasm(): boolean {
    return this.kernel.usesWasm;
  }

  /**
   * Grows one tree from the rows `bag[0..bagCount)` (all rows in order when `bag` is null), on the
   * features flagged in `featureUsed`. Leaf values are not shrunk yet.
   */
  grow(
    grad: Float64Array,
    hess: Float64Array,
    bag: Int32Array | null,
    bagCount: number,
    featureUsed: Uint8Array,
  ): GrownTree {
    const { params, gradHess } = this;
    for (let r = 0; r < this.numRows; r++) {
      gradHess[2 * r] = grad[r] as number;
      gradHess[2 * r + 1] = hess[r] as number;
    }
    this.featureUsed = featureUsed;
    const tree = newTree(this.maxLeaves);
    for (let i = 0; i < this.maxLeaves; i++) this.histSlot[i] = i;
    this.bestGain.fill(-Infinity);
    if (bag === null) {
      for (let i = 0; i < bagCount; i++) this.indices[i] = i;
    } else {
      this.indices.set(bag.subarray(0, bagCount));
    }
    this.leafBegin[0] = 0;
    this.leafRows[0] = bagCount;
    let sumGrad = 0;
    let sumHess = 0;
    for (let k = 0; k < bagCount; k++) {
      const r = this.indices[k] as number;
      sumGrad += grad[r] as number;
      sumHess += hess[r] as number;
    }
    this.leafSumGrad[0] = sumGrad;
    this.leafSumHess[0] = sumHess;
    tree.leafValue[0] = leafOutput(sumGrad, sumHess, params.lambdaL1, params.lambdaL2);
    tree.leafWeight[0] = sumHess;
    tree.leafCount[0] = bagCount;

    // The root: every used feature, histograms from the rows.
    this.kernel.build(0, 0, bagCount, bag === null);
    for (let f = 0; f < this.numFeatures; f++) if (featureUsed[f] === 1) this.findBest(0, f);

    for (let split = 0; split < this.maxLeaves - 1; split++) {
      // The leaf whose best split gains most; the first of equals.
      let best = 0;
      for (let l = 1; l < tree.numLeaves; l++) {
        if ((this.bestGain[l] as number) > (this.bestGain[best] as number)) best = l;
      }
      if (!((this.bestGain[best] as number) > 0)) break;
      const right = this.split(tree, best);
      this.prepareChildren(tree, best, right);
    }
    return tree;
  }

  /** Searches feature `f` of `leaf` (its histogram is in the leaf's slot) and keeps the best. */
  private findBest(leaf: number, f: number): void {
    const { layout, candidate } = this;
    const slot = this.histSlot[leaf] as number;
    findBestThreshold(
      this.hist,
      this.counts,
      slot * this.slotEntries + layout.stride * f,
      layout.numBins[f] as number,
      layout.missingType[f] as number,
      layout.defaultBin[f] as number,
      this.leafSumGrad[leaf] as number,
      this.leafSumHess[leaf] as number,
      this.leafRows[leaf] as number,
      this.params,
      candidate,
    );
    this.splittable[slot * this.numFeatures + f] = candidate.splittable ? 1 : 0;
    // Features go in index order, so a tie keeps the smaller feature, as LightGBM does.
    if (candidate.gain > (this.bestGain[leaf] as number)) {
      this.bestGain[leaf] = candidate.gain;
      this.bestFeature[leaf] = f;
      this.bestThreshold[leaf] = candidate.threshold;
      this.bestDefaultLeft[leaf] = candidate.defaultLeft ? 1 : 0;
      this.bestLeftCount[leaf] = candidate.leftCount;
      this.bestLeftGrad[leaf] = candidate.leftSumGrad;
      this.bestLeftHess[leaf] = candidate.leftSumHess;
    }
  }

  /**
   * Splits `leaf` by its best split (LightGBM's `Tree::Split`): the left child keeps the leaf's
   * number, the right child is the next leaf number, the new internal node the next node number.
   * Partitions the leaf's rows. Returns the right child.
   */
  private split(tree: GrownTree, leaf: number): number {
    const { params, layout } = this;
    const f = this.bestFeature[leaf] as number;
    const threshold = this.bestThreshold[leaf] as number;
    const defaultLeft = this.bestDefaultLeft[leaf] as number;
    const missingType = layout.missingType[f] as number;
    const sumGrad = this.leafSumGrad[leaf] as number;
    const sumHess = (this.leafSumHess[leaf] as number) + 2 * EPSILON;
    const leftGrad = this.bestLeftGrad[leaf] as number;
    const leftHess = this.bestLeftHess[leaf] as number;
    const rightGrad = sumGrad - leftGrad;
    const rightHess = sumHess - leftHess;
    const leftCount = this.bestLeftCount[leaf] as number;
    const rightCount = (this.leafRows[leaf] as number) - leftCount;

    const right = tree.numLeaves;
    const node = tree.numLeaves - 1;
    const parent = tree.leafParent[leaf] as number;
    if (parent >= 0) {
      if (tree.leftChild[parent] === ~leaf) tree.leftChild[parent] = node;
      else tree.rightChild[parent] = node;
    }
    tree.splitFeature[node] = f;
    tree.thresholdBin[node] = threshold;
    tree.defaultLeft[node] = defaultLeft;
    tree.missingType[node] = missingType;
    tree.splitGain[node] = this.bestGain[leaf] as number;
    tree.leftChild[node] = ~leaf;
    tree.rightChild[node] = ~right;
    tree.leafParent[leaf] = node;
    tree.leafParent[right] = node;
    tree.internalWeight[node] = tree.leafWeight[leaf] as number;
    tree.internalValue[node] = tree.leafValue[leaf] as number;
    tree.internalCount[node] = leftCount + rightCount;
    const leftValue = leafOutput(leftGrad, leftHess, params.lambdaL1, params.lambdaL2);
    const rightValue = leafOutput(rightGrad, rightHess, params.lambdaL1, params.lambdaL2);
    tree.leafValue[leaf] = Number.isNaN(leftValue) ? 0 : leftValue;
    tree.leafWeight[leaf] = leftHess - EPSILON;
    tree.leafCount[leaf] = leftCount;
    tree.leafValue[right] = Number.isNaN(rightValue) ? 0 : rightValue;
    tree.leafWeight[right] = rightHess - EPSILON;
    tree.leafCount[right] = rightCount;
    tree.leafDepth[right] = (tree.leafDepth[leaf] as number) + 1;
    tree.leafDepth[leaf] = (tree.leafDepth[leaf] as number) + 1;
    tree.numLeaves++;

    this.leafSumGrad[leaf] = leftGrad;
    this.leafSumHess[leaf] = leftHess - EPSILON;
    this.leafSumGrad[right] = rightGrad;
    this.leafSumHess[right] = rightHess - EPSILON;
    this.bestGain[leaf] = -Infinity;
    this.bestGain[right] = -Infinity;

    // Partition, stable: left rows stay in place in order, right rows follow them.
    const goesLeft = this.goesLeft;
    const numBin = layout.numBins[f] as number;
    for (let b = 0; b < numBin; b++) goesLeft[b] = b <= threshold ? 1 : 0;
    if (missingType === MISSING_NAN) goesLeft[numBin - 1] = defaultLeft;
    else if (missingType === MISSING_ZERO) goesLeft[layout.defaultBin[f] as number] = defaultLeft;
    const column = this.columns.subarray(f * this.numRows, (f + 1) * this.numRows);
    const { indices, scratchRows } = this;
    const begin = this.leafBegin[leaf] as number;
    const end = begin + (this.leafRows[leaf] as number);
    let l = begin;
    let r = 0;
    for (let k = begin; k < end; k++) {
      const row = indices[k] as number;
      if (goesLeft[column[row] as number] === 1) indices[l++] = row;
      else scratchRows[r++] = row;
    }
    indices.set(scratchRows.subarray(0, r), l);
    if (l - begin !== leftCount) {
      throw new Error(
        `gbdt: partition sent ${l - begin} rows left, the histogram said ${leftCount}`,
      );
    }
    this.leafRows[leaf] = l - begin;
    this.leafBegin[right] = l;
    this.leafRows[right] = r;
    return right;
  }

  /**
   * Histograms and best splits of the two new leaves (LightGBM's `BeforeFindBestSplit` and
   * `FindBestSplits`): the smaller child's histograms from its rows, the larger child's by
   * subtraction from the parent's, which it inherits.
   */
  private prepareChildren(tree: GrownTree, left: number, right: number): void {
    const { params } = this;
    if (this.maxDepth > 0 && (tree.leafDepth[left] as number) >= this.maxDepth) return;
    const leftRows = this.leafRows[left] as number;
    const rightRows = this.leafRows[right] as number;
    if (leftRows < 2 * params.minDataInLeaf && rightRows < 2 * params.minDataInLeaf) return;
    const parentSlot = this.histSlot[left] as number;
    let smaller: number;
    let larger: number;
    if (leftRows < rightRows) {
      smaller = left;
      larger = right;
      // The larger (right) child takes the parent's histograms; the left one a fresh slot.
      this.histSlot[left] = this.histSlot[right] as number;
      this.histSlot[right] = parentSlot;
    } else {
      smaller = right;
      larger = left;
    }
    const smallerSlot = this.histSlot[smaller] as number;
    const F = this.numFeatures;
    let count = 0;
    for (let f = 0; f < F; f++) {
      if (this.featureUsed[f] !== 1) continue;
      // A feature the parent could not split is not searched in its children (LightGBM).
      if (this.splittable[parentSlot * F + f] === 0) {
        this.splittable[smallerSlot * F + f] = 0;
        continue;
      }
      this.featureList[count++] = f;
    }
    const begin = this.leafBegin[smaller] as number;
    this.kernel.build(smallerSlot, begin, begin + (this.leafRows[smaller] as number), false);
    const { hist, counts, layout } = this;
    const smallerBase = smallerSlot * this.slotEntries;
    const largerBase = parentSlot * this.slotEntries;
    for (let i = 0; i < count; i++) {
      const f = this.featureList[i] as number;
      const from = layout.stride * f;
      const to = from + (layout.numBins[f] as number);
      for (let e = from; e < to; e++) {
        const big = largerBase + e;
        const small = smallerBase + e;
        hist[2 * big] = (hist[2 * big] as number) - (hist[2 * small] as number);
        hist[2 * big + 1] = (hist[2 * big + 1] as number) - (hist[2 * small + 1] as number);
        counts[big] = (counts[big] as number) - (counts[small] as number);
      }
      this.findBest(smaller, f);
      this.findBest(larger, f);
    }
  }
}

/** Bin-space routing at one node, the same as the raw-value rule of the written threshold. */
function goLeft(tree: GrownTree, layout: FeatureLayout, node: number, bin: number): boolean {
  const missingType = tree.missingType[node] as number;
  const f = tree.splitFeature[node] as number;
  if (missingType === MISSING_NAN && bin === (layout.numBins[f] as number) - 1) {
    return tree.defaultLeft[node] === 1;
  }
  if (missingType === MISSING_ZERO && bin === (layout.defaultBin[f] as number)) {
    return tree.defaultLeft[node] === 1;
  }
  return bin <= (tree.thresholdBin[node] as number);
}

/** The leaf value a tree gives binned row `row`. */
function predictBinned(
  tree: GrownTree,
  layout: FeatureLayout,
  data: BinnedData,
  row: number,
): number {
  if (tree.numLeaves === 1) return tree.leafValue[0] as number;
  let node = 0;
  while (node >= 0) {
    const F = layout.featureIndex.length;
    node = goLeft(
      tree,
      layout,
      node,
      data.bins[row * F + (tree.splitFeature[node] as number)] as number,
    )
      ? (tree.leftChild[node] as number)
      : (tree.rightChild[node] as number);
  }
  return tree.leafValue[~node] as number;
}

/** LightGBM's `MaybeRoundToZero`. */
function roundToZero(x: number): number {
  return Math.abs(x) <= 1e-35 ? 0 : x;
}

/** LightGBM's `AvoidInf` on thresholds. */
function avoidInf(x: number): number {
  if (Number.isNaN(x)) return 0;
  if (x >= 1e300) return 1e300;
  if (x <= -1e300) return -1e300;
  return x;
}

function toModelTree(tree: GrownTree, layout: FeatureLayout, shrinkage: number): GbdtTree {
  const nodes = tree.numLeaves - 1;
  const leaves = tree.numLeaves;
  const splitFeature = new Int32Array(nodes);
  const threshold = new Float64Array(nodes);
  const decisionType = new Uint8Array(nodes);
  const splitGain = new Float64Array(nodes);
  for (let i = 0; i < nodes; i++) {
    const f = tree.splitFeature[i] as number;
    splitFeature[i] = layout.featureIndex[f] as number;
    const mapper = layout.mappers[f] as BinMapper;
    threshold[i] = avoidInf(mapper.upperBounds[tree.thresholdBin[i] as number] as number);
    decisionType[i] =
      (tree.defaultLeft[i] === 1 ? DecisionBits.DefaultLeft : 0) |
      ((tree.missingType[i] as number) << DecisionBits.MissingTypeShift);
    // LightGBM keeps split gains as float.
    splitGain[i] = Math.fround(tree.splitGain[i] as number);
  }
  return {
    numLeaves: leaves,
    splitFeature,
    splitGain,
    threshold,
    decisionType,
    leftChild: tree.leftChild.slice(0, nodes),
    rightChild: tree.rightChild.slice(0, nodes),
    internalValue: tree.internalValue.slice(0, nodes),
    internalWeight: tree.internalWeight.slice(0, nodes),
    internalCount: tree.internalCount.slice(0, nodes),
    leafValue: tree.leafValue.slice(0, leaves),
    leafWeight: tree.leafWeight.slice(0, leaves),
    leafCount: tree.leafCount.slice(0, leaves),
    catBoundaries: new Int32Array(0),
    catThreshold: new Uint32Array(0),
    shrinkage,
  };
}

/** Multiplies the tree's values by `rate` (LightGBM's `Tree::Shrinkage`). */
function shrink(tree: GrownTree, rate: number): void {
  for (let i = 0; i < tree.numLeaves; i++)
    tree.leafValue[i] = roundToZero((tree.leafValue[i] as number) * rate);
  for (let i = 0; i < tree.numLeaves - 1; i++) {
    tree.internalValue[i] = roundToZero((tree.internalValue[i] as number) * rate);
  }
}

/** Adds `bias` to the tree's values (LightGBM's `Tree::AddBias`, which resets shrinkage to 1). */
function addBias(tree: GrownTree, bias: number): void {
  for (let i = 0; i < tree.numLeaves; i++)
    tree.leafValue[i] = roundToZero((tree.leafValue[i] as number) + bias);
  for (let i = 0; i < tree.numLeaves - 1; i++) {
    tree.internalValue[i] = roundToZero((tree.internalValue[i] as number) + bias);
  }
}

// ---------------------------------------------------------------------------------------------
// Boosting

interface ValidSet {
  readonly binned: BinnedData;
  readonly labels: Float64Array;
  readonly scores: Float64Array;
  readonly evaluate: (scores: Float64Array) => number[];
}

function metricNames(o: ResolvedGbdtOptions): string[] {
  if (o.objective === GbdtObjective.Lambdarank) return o.evalAt.map((k) => `ndcg@${k}`);
  return [o.objective === GbdtObjective.Binary ? 'binary_logloss' : 'l2'];
}

function makeObjective(
  o: ResolvedGbdtOptions,
  labels: Float64Array,
  boundaries: Int32Array | undefined,
): Objective {
  switch (o.objective) {
    case GbdtObjective.Binary:
      return new BinaryObjective(labels, o.sigmoid, o.boostFromAverage);
    case GbdtObjective.Lambdarank:
      return new LambdarankObjective(labels, boundaries as Int32Array, {
        truncationLevel: o.lambdarankTruncationLevel,
        norm: o.lambdarankNorm,
        sigmoid: o.sigmoid,
        labelGain: o.labelGain,
        useWasm: o.useWasm,
      });
    default:
      return new RegressionObjective(labels, o.boostFromAverage);
  }
}

function makeEvaluator(
  o: ResolvedGbdtOptions,
  labels: Float64Array,
  boundaries: Int32Array | undefined,
): (scores: Float64Array) => number[] {
  switch (o.objective) {
    case GbdtObjective.Lambdarank: {
      const ndcg = new NdcgEvaluator(labels, boundaries as Int32Array, o.evalAt, o.labelGain);
      return (scores) => ndcg.evaluate(scores);
    }
    case GbdtObjective.Binary:
      return (scores) => [binaryLogLoss(labels, scores, o.sigmoid)];
    default:
      return (scores) => [l2Loss(labels, scores)];
  }
}

/** The `parameters:` lines of the model, LightGBM's names and formatting. */
function parameterLines(o: ResolvedGbdtOptions): string[] {
  const num = (x: number): string => String(x);
  const flag = (b: boolean): string => (b ? '1' : '0');
  const metric =
    o.objective === GbdtObjective.Lambdarank
      ? 'ndcg'
      : o.objective === GbdtObjective.Binary
        ? 'binary_logloss'
        : 'l2';
  const entries: Array<[string, string]> = [
    ['boosting', 'gbdt'],
    ['objective', o.objective],
    ['metric', metric],
    ['tree_learner', 'serial'],
    ['num_iterations', num(o.numIterations)],
    ['learning_rate', num(o.learningRate)],
    ['num_leaves', num(o.numLeaves)],
    ['seed', num(o.seed)],
    ['deterministic', '1'],
    ['max_depth', num(o.maxDepth)],
    ['min_data_in_leaf', num(o.minDataInLeaf)],
    ['min_sum_hessian_in_leaf', num(o.minSumHessianInLeaf)],
    ['bagging_fraction', num(o.baggingFraction)],
    ['bagging_freq', num(o.baggingFreq)],
    ['feature_fraction', num(o.featureFraction)],
    ['early_stopping_round', num(o.earlyStoppingRounds)],
    ['early_stopping_min_delta', num(o.earlyStoppingMinDelta)],
    ['lambda_l1', num(o.lambdaL1)],
    ['lambda_l2', num(o.lambdaL2)],
    ['min_gain_to_split', num(o.minGainToSplit)],
    ['max_bin', num(o.maxBin)],
    ['min_data_in_bin', num(o.minDataInBin)],
    ['bin_construct_sample_cnt', num(o.binConstructSampleCount)],
    ['use_missing', flag(o.useMissing)],
    ['zero_as_missing', flag(o.zeroAsMissing)],
    ['feature_pre_filter', flag(o.featurePreFilter)],
    ['sigmoid', num(o.sigmoid)],
    ['boost_from_average', flag(o.boostFromAverage)],
    ['lambdarank_truncation_level', num(o.lambdarankTruncationLevel)],
    ['lambdarank_norm', flag(o.lambdarankNorm)],
    ['label_gain', o.labelGain.map(num).join(',')],
    ['eval_at', o.evalAt.map(num).join(',')],
  ];
  return entries.map(([key, value]) => `[${key}: ${value}]`);
}

/** `count` of the `n` items, drawn without replacement, in index order. */
function sampleIndices(rng: Rng, n: number, count: number): Int32Array {
  const all = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(n - i);
    const tmp = all[i] as number;
    all[i] = all[j] as number;
    all[j] = tmp;
  }
  return all.subarray(0, count).sort();
}

/**
 * Trains a gradient-boosted tree ensemble on `data.train`, with LightGBM's algorithm and
 * parameters. The history holds the validation metrics of every iteration.
 */
export function trainGbdt(data: GbdtTrainData, options: GbdtTrainOptions = {}): GbdtTrainResult {
  const o = resolveGbdtOptions(options);
  const started = performance.now();
  const ranking = o.objective === GbdtObjective.Lambdarank;
  const train = checkDataset('train', data.train, o);
  const numFeatures = data.train.numFeatures;
  const valids = (data.valid ?? []).map((v, i) => {
    if (v.numFeatures !== numFeatures) {
      throw new ConfigError(
        `valid[${i}].numFeatures`,
        `is ${v.numFeatures}, the training data has ${numFeatures}`,
      );
    }
    return checkDataset(`valid[${i}]`, v, o);
  });
  if (o.earlyStoppingRounds > 0 && valids.length === 0) {
    throw new ConfigError('earlyStoppingRounds', 'needs at least one validation set (data.valid)');
  }
  const featureNames =
    data.train.featureNames ?? Array.from({ length: numFeatures }, (_, i) => `Column_${i}`);
  if (
    featureNames.length !== numFeatures ||
    featureNames.some((n) => n.length === 0 || /\s/.test(n))
  ) {
    throw new ConfigError(
      'train.featureNames',
      `must be ${numFeatures} non-empty names without whitespace`,
    );
  }
  const numRows = train.matrix.numRows;
  if (numRows === 0) throw new ConfigError('train.labels', 'the training data has no rows');

  const mappers = findBinMappers(train.matrix, {
    maxBin: o.maxBin,
    minDataInBin: o.minDataInBin,
    binConstructSampleCount: o.binConstructSampleCount,
    useMissing: o.useMissing,
    zeroAsMissing: o.zeroAsMissing,
    minDataInLeaf: o.featurePreFilter ? o.minDataInLeaf : 0,
    seed: o.seed,
  });
  const layout = featureLayout(mappers);
  const objective = makeObjective(o, train.labels, train.boundaries);
  const validSets: ValidSet[] = valids.map((v) => ({
    binned: binData(v.matrix, layout),
    labels: v.labels,
    scores: new Float64Array(v.matrix.numRows),
    evaluate: makeEvaluator(o, v.labels, v.boundaries),
  }));
  const metrics = metricNames(o);
  const biggerIsBetter = ranking;

  const grower = new TreeGrower(
    numRows,
    binData(train.matrix, layout).bins,
    layout,
    o.numLeaves,
    o.maxDepth,
    {
      minDataInLeaf: o.minDataInLeaf,
      minSumHessianInLeaf: o.minSumHessianInLeaf,
      lambdaL1: o.lambdaL1,
      lambdaL2: o.lambdaL2,
      minGainToSplit: o.minGainToSplit,
    },
    o.useWasm && wasmHistogramAvailable,
  );
  const binned: BinnedData = { numRows, bins: grower.bins };
  const scores = new Float64Array(numRows);
  const grad = new Float64Array(numRows);
  const hess = new Float64Array(numRows);
  const initScore = objective.initScore();
  if (initScore !== 0) {
    scores.fill(initScore);
    for (const v of validSets) v.scores.fill(initScore);
  }

  const numUsed = layout.featureIndex.length;
  const featureRng = new Rng(o.seed, 1);
  const bagRng = new Rng(o.seed, 2);
  const featureUsed = new Uint8Array(numUsed).fill(1);
  const featureCount =
    o.featureFraction < 1
      ? Math.max(Math.min(2, numUsed), Math.round(numUsed * o.featureFraction))
      : numUsed;
  const bagging = o.baggingFreq > 0 && o.baggingFraction < 1;
  const bag = bagging ? new Int32Array(numRows) : null;
  const inBag = bagging ? new Uint8Array(numRows) : null;
  let bagCount = numRows;

  const trees: GbdtTree[] = [];
  const records: GbdtIterationRecord[] = [];
  const bestScore = new Float64Array(validSets.length).fill(-Infinity);
  const bestIter = new Int32Array(validSets.length);
  let stoppedEarly = false;
  let keep = -1;

  for (let iter = 0; iter < o.numIterations; iter++) {
    objective.computeGradients(scores, grad, hess);
    if (bag !== null && inBag !== null && iter % o.baggingFreq === 0) {
      bagCount = 0;
      for (let r = 0; r < numRows; r++) {
        const take = bagRng.next() < o.baggingFraction;
        inBag[r] = take ? 1 : 0;
        if (take) bag[bagCount++] = r;
      }
      // An empty bag would grow nothing: keep one row.
      if (bagCount === 0) {
        bag[bagCount++] = 0;
        inBag[0] = 1;
      }
    }
    if (featureCount < numUsed) {
      featureUsed.fill(0);
      for (const f of sampleIndices(featureRng, numUsed, featureCount)) featureUsed[f] = 1;
    }
    const tree = grower.grow(grad, hess, bag, bagCount, featureUsed);
    if (tree.numLeaves === 1) {
      // Nothing left to split: stop. A first tree stays, as a constant holding the start score.
      if (trees.length === 0) {
        tree.leafValue[0] = initScore;
        trees.push(toModelTree(tree, layout, 1));
      }
      break;
    }
    shrink(tree, o.learningRate);
    // Training rows in the bag take their leaf's value; the others walk the tree.
    for (let l = 0; l < tree.numLeaves; l++) {
      const value = tree.leafValue[l] as number;
      const begin = grower.leafBegin[l] as number;
      const end = begin + (grower.leafRows[l] as number);
      for (let k = begin; k < end; k++) {
        const r = grower.indices[k] as number;
        scores[r] = (scores[r] as number) + value;
      }
    }
    if (inBag !== null && bagCount < numRows) {
      for (let r = 0; r < numRows; r++) {
        if (inBag[r] === 0)
          scores[r] = (scores[r] as number) + predictBinned(tree, layout, binned, r);
      }
    }
    for (const v of validSets) {
      for (let r = 0; r < v.binned.numRows; r++) {
        v.scores[r] = (v.scores[r] as number) + predictBinned(tree, layout, v.binned, r);
      }
    }
    let shrinkage = o.learningRate;
    if (trees.length === 0 && Math.abs(initScore) > EPSILON) {
      addBias(tree, initScore);
      shrinkage = 1;
    }
    trees.push(toModelTree(tree, layout, shrinkage));

    const valid = validSets.map((v) => v.evaluate(v.scores));
    const record: GbdtIterationRecord = {
      iteration: iter + 1,
      leaves: tree.numLeaves,
      valid,
      seconds: (performance.now() - started) / 1000,
    };
    records.push(record);
    o.onIteration?.(record);

    if (o.earlyStoppingRounds > 0) {
      // LightGBM's rule: each validation set's last metric value (NDCG at the last position),
      // the first set to stall for `earlyStoppingRounds` iterations stops training, and the
      // trees after its best iteration go.
      let stop = false;
      for (let s = 0; s < valid.length && !stop; s++) {
        const values = valid[s] as number[];
        const score = (biggerIsBetter ? 1 : -1) * (values[values.length - 1] as number);
        if (score - (bestScore[s] as number) > o.earlyStoppingMinDelta) {
          bestScore[s] = score;
          bestIter[s] = iter;
        } else if (iter - (bestIter[s] as number) >= o.earlyStoppingRounds) {
          stop = true;
        }
      }
      if (stop) {
        stoppedEarly = true;
        keep = trees.length - o.earlyStoppingRounds;
        break;
      }
    }
  }
  if (keep >= 0) trees.length = Math.max(1, keep);

  const model: GbdtModel = {
    objective: objective.modelString,
    maxFeatureIdx: numFeatures - 1,
    featureNames: [...featureNames],
    featureInfos: mappers.map(featureInfo),
    trees,
    averageOutput: false,
    parameters: parameterLines(o),
  };
  return {
    model,
    history: {
      metrics,
      iterations: records,
      bestIteration: trees.length,
      stoppedEarly,
      usedFeatures: numUsed,
      wasm: grower.usesWasm,
      seconds: (performance.now() - started) / 1000,
    },
  };
}
