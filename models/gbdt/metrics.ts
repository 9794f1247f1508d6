/**
 * The validation metrics of the booster, defined as LightGBM defines them so the figures compare
 * with its logs: NDCG@k with gain `label_gain[label]` (default `2^label - 1`), discount
 * `1 / log2(1 + rank)`, documents ordered by score with ties in row order, averaged over queries,
 * a query without any relevant document counting as 1; binary log loss on the sigmoid of the raw
 * score; and L2, the mean squared error (not its root).
 */
import {
  checkRankLabels,
  defaultLabelGain,
  discounts,
  maxDcgAtK,
  rankByScore,
} from './objectives.js';

/** Query boundaries from group sizes: query `q` is rows `[b[q], b[q + 1])`. */
export function queryBoundaries(groups: ArrayLike<number>): Int32Array {
  const b = new Int32Array(groups.length + 1);
  for (let q = 0; q < groups.length; q++) b[q + 1] = (b[q] as number) + (groups[q] as number);
  return b;
}

/**
 * Mean NDCG@k over queries for each `k` of `ks`, for rows ranked by `scores`. `labelGain[label]`
 * is the gain of a label (default `2^label - 1`).
 */
export function ndcgAtK(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  boundaries: Int32Array,
  ks: readonly number[],
  labelGain: readonly number[] = defaultLabelGain(),
): number[] {
  return new NdcgEvaluator(labels, boundaries, ks, labelGain).evaluate(scores);
}

/** NDCG@k of one data set for many score vectors: the ideal DCGs are computed once. */
export class NdcgEvaluator {
  private readonly labels: Int32Array;
  private readonly gain: Float64Array;
  private readonly discount: Float64Array;
  /** `[query × ks.length]` inverse ideal DCG, 0 for a query without relevant documents. */
  private readonly inverseMaxDcg: Float64Array;
  private readonly order: Int32Array;

  constructor(
    labels: ArrayLike<number>,
    private readonly boundaries: Int32Array,
    private readonly ks: readonly number[],
    labelGain: readonly number[] = defaultLabelGain(),
  ) {
    for (const k of ks) {
      if (!Number.isInteger(k) || k < 1) {
        throw new RangeError(`k must be a positive integer, got ${k}`);
      }
    }
    this.labels = checkRankLabels(labels, labelGain.length);
    this.gain = Float64Array.from(labelGain);
    const queries = boundaries.length - 1;
    let longest = 1;
    for (let q = 0; q < queries; q++) {
      longest = Math.max(longest, (boundaries[q + 1] as number) - (boundaries[q] as number));
    }
    this.discount = discounts(longest);
    this.inverseMaxDcg = new Float64Array(queries * ks.length);
    for (let q = 0; q < queries; q++) {
      for (let m = 0; m < ks.length; m++) {
        const max = maxDcgAtK(
          ks[m] as number,
          this.labels,
          boundaries[q] as number,
          boundaries[q + 1] as number,
          this.gain,
          this.discount,
        );
        this.inverseMaxDcg[q * ks.length + m] = max > 0 ? 1 / max : 0;
      }
    }
    this.order = new Int32Array(labels.length);
    for (let i = 0; i < this.order.length; i++) this.order[i] = i;
  }

  /** Mean NDCG@k for each k, in the order of `ks`. */
  evaluate(scores: ArrayLike<number>): number[] {
    const { boundaries, ks, order, labels, gain, discount, inverseMaxDcg } = this;
    const queries = boundaries.length - 1;
    const sums = new Float64Array(ks.length);
    for (let q = 0; q < queries; q++) {
      const start = boundaries[q] as number;
      const end = boundaries[q + 1] as number;
      rankByScore(order, start, end, scores);
      let dcg = 0;
      let r = 0;
      for (let m = 0; m < ks.length; m++) {
        const inverse = inverseMaxDcg[q * ks.length + m] as number;
        if (inverse <= 0) {
          sums[m] = (sums[m] as number) + 1;
          continue;
        }
        // DCG over the first k positions; the ks need not be sorted, so restart when one is smaller.
        const top = Math.min(ks[m] as number, end - start);
        if (top < r) {
          dcg = 0;
          r = 0;
        }
        for (; r < top; r++) {
          const label = labels[order[start + r] as number] as number;
          dcg += (gain[label] as number) * (discount[r] as number);
        }
        sums[m] = (sums[m] as number) + dcg * inverse;
      }
    }
    return Array.from(sums, (s) => (queries > 0 ? s / queries : 0));
  }
}

/** LightGBM's clamp of probabilities inside the log loss. */
const LOG_LOSS_EPSILON = 1e-15;

/** Mean binary log loss of raw scores (probability `1 / (1 + exp(-sigmoid · score))`). */
export function binaryLogLoss(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  sigmoid = 1,
): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = 1 / (1 + Math.exp(-sigmoid * (scores[i] as number)));
    if ((labels[i] as number) > 0) sum -= Math.log(Math.max(p, LOG_LOSS_EPSILON));
    else sum -= Math.log(Math.max(1 - p, LOG_LOSS_EPSILON));
  }
  return labels.length > 0 ? sum / labels.length : 0;
}

/** Mean squared error (LightGBM's `l2` metric). */
export function l2Loss(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const d = (scores[i] as number) - (labels[i] as number);
    sum += d * d;
  }
  return labels.length > 0 ? sum / labels.length : 0;
}
