/**
 * Gradients and hessians of the training losses, as LightGBM computes them, so the same data and
 * parameters grow the same trees: L2 regression, binary log loss through a sigmoid, and LambdaRank
 * (LightGBM's `LambdarankNDCG`: pairwise RankNet lambdas weighted by the |ΔNDCG| of swapping the
 * pair, only pairs with a document in the top `truncationLevel`, with its score-distance and
 * log-sum normalisation).
 *
 * Scores, gradients and hessians are float64 arrays over the training rows; `computeGradients`
 * overwrites `grad` and `hess` and allocates nothing.
 */
import { ConfigError } from '../../runtime/errors.js';
import {
  DISTANCE_FLOOR,
  LambdarankPairKernel,
  wasmLambdarankAvailable,
} from './wasm-lambdarank.js';

/** LightGBM's `kEpsilon` (a float literal `1e-15f`). */
export const K_EPSILON = Math.fround(1e-15);

/** The gains of labels 0..30 LightGBM uses by default: `2^label - 1`. */
export function defaultLabelGain(): number[] {
  return Array.from({ length: 31 }, (_, i) => 2 ** i - 1);
}

/** A loss the booster descends. */
export interface Objective {
  /** The model file's `objective=` line, e.g. `regression`, `binary sigmoid:1`, `lambdarank`. */
  readonly modelString: string;
  /** The score every row starts from (LightGBM's `boost_from_average`); 0 for ranking. */
  initScore(): number;
  computeGradients(scores: Float64Array, grad: Float64Array, hess: Float64Array): void;
}

/** L2 regression: gradient `score - label`, hessian 1. */
export class RegressionObjective implements Objective {
  readonly modelString = 'regression';

  constructor(
    private readonly labels: Float64Array,
    private readonly boostFromAverage = true,
  ) {}

  initScore(): number {
    if (!this.boostFromAverage || this.labels.length === 0) return 0;
    let sum = 0;
    for (let i = 0; i < this.labels.length; i++) sum += this.labels[i] as number;
    return sum / this.labels.length;
  }

  computeGradients(scores: Float64Array, grad: Float64Array, hess: Float64Array): void {
    const labels = this.labels;
    for (let i = 0; i < labels.length; i++) {
      grad[i] = (scores[i] as number) - (labels[i] as number);
      hess[i] = 1;
    }
  }
}

/**
 * Binary log loss of `p = 1 / (1 + exp(-sigmoid · score))` against labels 0/1: gradient
 * `sigmoid (p - y)`, hessian `sigmoid² p (1 - p)` (LightGBM's form, through labels ±1).
 */
export class BinaryObjective implements Objective {
  readonly modelString: string;

  constructor(
    private readonly labels: Float64Array,
    private readonly sigmoid = 1,
    private readonly boostFromAverage = true,
  ) {
    if (!(sigmoid > 0)) throw new ConfigError('sigmoid', `must be positive, got ${sigmoid}`);
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i] as number;
      if (y !== 0 && y !== 1) {
        throw new ConfigError('labels', `binary labels must be 0 or 1, row ${i} has ${y}`);
      }
    }
    this.modelString = `binary sigmoid:${sigmoid}`;
  }

  initScore(): number {
    if (!this.boostFromAverage || this.labels.length === 0) return 0;
    let positives = 0;
    for (let i = 0; i < this.labels.length; i++) positives += this.labels[i] as number;
    const p = positives / this.labels.length;
    // All one class: LightGBM leaves the start at 0 rather than at ±infinity.
    if (p <= 0 || p >= 1) return 0;
    return Math.log(p / (1 - p)) / this.sigmoid;
  }

  computeGradients(scores: Float64Array, grad: Float64Array, hess: Float64Array): void {
    const labels = this.labels;
    const sigmoid = this.sigmoid;
    for (let i = 0; i < labels.length; i++) {
      const label = (labels[i] as number) > 0 ? 1 : -1;
      const response = (-label * sigmoid) / (1 + Math.exp(label * sigmoid * (scores[i] as number)));
      const abs = Math.abs(response);
      grad[i] = response;
      hess[i] = abs * (sigmoid - abs);
    }
  }
}

/** Settings of {@link LambdarankObjective}, LightGBM's names in brackets. */
export interface LambdarankSettings {
  /** Only pairs with a document ranked above this position count [`lambdarank_truncation_level`]. */
  readonly truncationLevel: number;
  /** Divide each pair's weight by the score distance and scale the query's lambdas [`lambdarank_norm`]. */
  readonly norm: boolean;
  /** Steepness of the pairwise sigmoid [`sigmoid`]. */
  readonly sigmoid: number;
  /** Gain of each label [`label_gain`]. */
  readonly labelGain: readonly number[];
  /**
   * Run the pair loop in WebAssembly when the runtime can (`wasm-lambdarank.ts`); false runs it in
   * JavaScript, with the same result. @default true
   */
  readonly useWasm?: boolean;
}

/** Queries this long or longer are sorted with the built-in sort instead of insertion sort. */
const INSERTION_SORT_MAX = 128;

/**
 * LambdaRank with NDCG. Documents are ranked by the current scores (ties by row order, as
 * LightGBM's stable sort); for each pair of different labels with one of them in the top
 * `truncationLevel`, the lambda is RankNet's `-σ / (1 + exp(σ (s_high - s_low)))` times
 * `|gain_high - gain_low| · |1/log2(2 + r_high) - 1/log2(2 + r_low)| / maxDCG@truncationLevel`.
 */
export class LambdarankObjective implements Objective {
  readonly modelString = 'lambdarank';
  private readonly labelInt: Int32Array;
  private readonly boundaries: Int32Array;
  private readonly inverseMaxDcg: Float64Array;
  private readonly discount: Float64Array;
  private readonly gain: Float64Array;
  /** Per query, the rows ranked by the last scores: the next sort starts nearly sorted. */
  private readonly order: Int32Array;
  // One query in rank order (scratch, the longest query's size; in the kernel's memory with it).
  private readonly kernel: LambdarankPairKernel | undefined;
  private readonly rankScore: Float64Array;
  private readonly rankLabel: Int32Array;
  private readonly rankGain: Float64Array;
  private readonly rankExp: Float64Array;
  private readonly rankLambda: Float64Array;
  private readonly rankHessian: Float64Array;

  constructor(
    labels: Float64Array,
    /** Query boundaries: query `q` is rows `[boundaries[q], boundaries[q + 1])`. */
    boundaries: Int32Array,
    private readonly settings: LambdarankSettings,
  ) {
    const { truncationLevel, sigmoid, labelGain } = settings;
    if (!Number.isInteger(truncationLevel) || truncationLevel < 1) {
      throw new ConfigError(
        'lambdarankTruncationLevel',
        `must be a positive integer, got ${truncationLevel}`,
      );
    }
    if (!(sigmoid > 0)) throw new ConfigError('sigmoid', `must be positive, got ${sigmoid}`);
    this.gain = Float64Array.from(labelGain);
    this.labelInt = checkRankLabels(labels, labelGain.length);
    this.boundaries = boundaries;
    let longest = 0;
    for (let q = 0; q + 1 < boundaries.length; q++) {
      longest = Math.max(longest, (boundaries[q + 1] as number) - (boundaries[q] as number));
    }
    this.discount = discounts(longest);
    const queries = boundaries.length - 1;
    this.inverseMaxDcg = new Float64Array(queries);
    for (let q = 0; q < queries; q++) {
      const max = maxDcgAtK(
        truncationLevel,
        this.labelInt,
        boundaries[q] as number,
        boundaries[q + 1] as number,
        this.gain,
        this.discount,
      );
      this.inverseMaxDcg[q] = max > 0 ? 1 / max : 0;
    }
    this.order = new Int32Array(labels.length);
    for (let i = 0; i < this.order.length; i++) this.order[i] = i;
    if ((settings.useWasm ?? true) && wasmLambdarankAvailable) {
      const kernel = new LambdarankPairKernel(longest, this.discount);
      this.kernel = kernel;
      this.rankScore = kernel.score;
      this.rankLabel = kernel.label;
      this.rankGain = kernel.gain;
      this.rankExp = kernel.exp;
      this.rankLambda = kernel.lambda;
      this.rankHessian = kernel.hessian;
    } else {
      this.kernel = undefined;
      this.rankScore = new Float64Array(longest);
      this.rankLabel = new Int32Array(longest);
      this.rankGain = new Float64Array(longest);
      this.rankExp = new Float64Array(longest);
      this.rankLambda = new Float64Array(longest);
      this.rankHessian = new Float64Array(longest);
    }
  }

  initScore(): number {
    return 0;
  }

  computeGradients(scores: Float64Array, grad: Float64Array, hess: Float64Array): void {
    const b = this.boundaries;
    for (let q = 0; q + 1 < b.length; q++) {
      this.queryGradients(b[q] as number, b[q + 1] as number, q, scores, grad, hess);
    }
  }

  private queryGradients(
    start: number,
    end: number,
    query: number,
    scores: Float64Array,
    lambdas: Float64Array,
    hessians: Float64Array,
  ): void {
    const { truncationLevel, norm, sigmoid } = this.settings;
    const cnt = end - start;
    if (cnt === 0) return;
    const order = this.order;
    rankByScore(order, start, end, scores);
    // The query in rank order, in small contiguous arrays.
    const { rankScore, rankLabel, rankGain, rankExp, rankLambda, rankHessian } = this;
    const labels = this.labelInt;
    const gain = this.gain;
    for (let i = 0; i < cnt; i++) {
      const row = order[start + i] as number;
      const label = labels[row] as number;
      rankScore[i] = scores[row] as number;
      rankLabel[i] = label;
      rankGain[i] = gain[label] as number;
      rankLambda[i] = 0;
      rankHessian[i] = 0;
    }
    const inverseMaxDcg = this.inverseMaxDcg[query] as number;
    const bestScore = rankScore[0] as number;
    const worstScore = rankScore[cnt - 1] as number;
    const scaleByDistance = norm && bestScore !== worstScore;
    // 1 / (1 + exp(σ (s_h - s_l))) = e_l / (e_l + e_h) with e = exp(σ (s - mid)): one exp per
    // document instead of one per pair, exact while the exponents stay far from overflow.
    const perDocument = sigmoid * (bestScore - worstScore) < 1000;
    if (perDocument) {
      const mid = (bestScore + worstScore) / 2;
      for (let i = 0; i < cnt; i++)
        rankExp[i] = Math.exp(sigmoid * ((rankScore[i] as number) - mid));
    }
    const top = Math.min(cnt - 1, truncationLevel);
    const sumLambdas =
      perDocument && this.kernel !== undefined
        ? this.kernel.pairs(cnt, top, inverseMaxDcg, sigmoid, scaleByDistance)
        : this.pairs(cnt, top, inverseMaxDcg, scaleByDistance, perDocument);
    const factor = norm && sumLambdas > 0 ? Math.log2(1 + sumLambdas) / sumLambdas : 1;
    for (let i = 0; i < cnt; i++) {
      const row = order[start + i] as number;
      lambdas[row] = (rankLambda[i] as number) * factor;
      hessians[row] = (rankHessian[i] as number) * factor;
    }
  }

  /**
   * The pair loop over the query in the rank arrays (the WebAssembly kernel does the same): adds
   * each pair's lambda and hessian to both documents, returns the sum of |lambda|, twice.
   */
  private pairs(
    cnt: number,
    top: number,
    inverseMaxDcg: number,
    scaleByDistance: boolean,
    perDocument: boolean,
  ): number {
    const { sigmoid } = this.settings;
    const { rankScore, rankLabel, rankGain, rankExp, rankLambda, rankHessian, discount } = this;
    const sigmoid2 = sigmoid * sigmoid;
    let sumLambdas = 0;
    for (let i = 0; i < top; i++) {
      const labelI = rankLabel[i] as number;
      const scoreI = rankScore[i] as number;
      const gainI = rankGain[i] as number;
      const discountI = discount[i] as number;
      const expI = rankExp[i] as number;
      let lambdaI = 0;
      let hessianI = 0;
      for (let j = i + 1; j < cnt; j++) {
        const labelJ = rankLabel[j] as number;
        if (labelI === labelJ) continue;
        // Ranks i < j: the discount gap is positive.
        const pairedDiscount = discountI - (discount[j] as number);
        const iHigher = labelI > labelJ;
        const deltaScore = iHigher
          ? scoreI - (rankScore[j] as number)
          : (rankScore[j] as number) - scoreI;
        const dcgGap = iHigher ? gainI - (rankGain[j] as number) : (rankGain[j] as number) - gainI;
        let deltaNdcg = dcgGap * pairedDiscount * inverseMaxDcg;
        if (scaleByDistance) deltaNdcg /= DISTANCE_FLOOR + Math.abs(deltaScore);
        let p: number;
        if (perDocument) {
          const expJ = rankExp[j] as number;
          p = iHigher ? expJ / (expJ + expI) : expI / (expI + expJ);
        } else {
          p = 1 / (1 + Math.exp(sigmoid * deltaScore));
        }
        // The pair's lambda pushes the higher label up (negative gradient) and the lower down.
        const pLambda = -sigmoid * deltaNdcg * p;
        const pHessian = sigmoid2 * deltaNdcg * p * (1 - p);
        if (iHigher) {
          lambdaI += pLambda;
          rankLambda[j] = (rankLambda[j] as number) - pLambda;
        } else {
          lambdaI -= pLambda;
          rankLambda[j] = (rankLambda[j] as number) + pLambda;
        }
        hessianI += pHessian;
        rankHessian[j] = (rankHessian[j] as number) + pHessian;
        sumLambdas -= 2 * pLambda;
      }
      rankLambda[i] = (rankLambda[i] as number) + lambdaI;
      rankHessian[i] = (rankHessian[i] as number) + hessianI;
    }
    return sumLambdas;
  }
}

/** Labels as integer indices into the label gains; anything else is a bad label. */
export function checkRankLabels(labels: ArrayLike<number>, gains: number): Int32Array {
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] as number;
    if (!Number.isInteger(y) || y < 0 || y >= gains) {
      throw new ConfigError(
        'labels',
        `ranking labels must be integers in [0, ${gains - 1}] (one gain each), row ${i} has ${y}`,
      );
    }
    out[i] = y;
  }
  return out;
}

/** `1 / log2(2 + rank)` for ranks 0..n-1 (LightGBM's `DCGCalculator::GetDiscount`). */
export function discounts(n: number): Float64Array {
  const out = new Float64Array(Math.max(1, n));
  for (let i = 0; i < out.length; i++) out[i] = 1 / Math.log2(2 + i);
  return out;
}

/** DCG@k of the ideal order of rows `[start, end)`: the labels sorted from the highest. */
export function maxDcgAtK(
  k: number,
  labels: Int32Array,
  start: number,
  end: number,
  gain: Float64Array,
  discount: Float64Array,
): number {
  const counts = new Int32Array(gain.length);
  for (let i = start; i < end; i++) {
    const label = labels[i] as number;
    counts[label] = (counts[label] as number) + 1;
  }
  let dcg = 0;
  let rank = 0;
  const top = Math.min(k, end - start);
  for (let label = gain.length - 1; label >= 0 && rank < top; label--) {
    for (let c = counts[label] as number; c > 0 && rank < top; c--) {
      dcg += (gain[label] as number) * (discount[rank] as number);
      rank++;
    }
  }
  return dcg;
}

/**
 * Sorts `order[start..end)` (rows of one query) by score, highest first, ties by row: the same
 * order as a stable sort of the rows in row order, whatever order they start in. Insertion sort
 * is linear on the nearly sorted order the previous iteration left.
 */
export function rankByScore(
  order: Int32Array,
  start: number,
  end: number,
  scores: ArrayLike<number>,
): void {
  if (end - start >= INSERTION_SORT_MAX) {
    order
      .subarray(start, end)
      .sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
    return;
  }
  for (let i = start + 1; i < end; i++) {
    const row = order[i] as number;
    const s = scores[row] as number;
    let j = i - 1;
    while (j >= start) {
      const other = order[j] as number;
      const so = scores[other] as number;
      if (so > s || (so === s && other < row)) break;
      order[j + 1] = other;
      j--;
    }
    order[j + 1] = row;
  }
}
