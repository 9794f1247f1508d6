/**
 * The two figures the DeepFM trainer watches: NDCG@K over query groups (the early-stopping
 * metric, defined as LightGBM defines it so the figures compare with the GBDT ranker's) and the
 * area under the ROC curve of "label > 0".
 */
import { labelGain } from './loss.js';

/**
 * Mean NDCG@k over query groups of consecutive rows: gain 2^label − 1, discount log2(rank + 1),
 * rows ordered by descending score (ties by position), and a group without a relevant row
 * counting as 1 (LightGBM's convention).
 */
export function ndcgAt(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  groups: ArrayLike<number>,
  k: number,
): number {
  if (groups.length === 0) return 0;
  let total = 0;
  let start = 0;
  for (let q = 0; q < groups.length; q++) {
    const n = groups[q] as number;
    const order = Array.from({ length: n }, (_, i) => start + i);
    order.sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
    const ideal = Array.from({ length: n }, (_, i) => labelGain(labels[start + i] as number));
    ideal.sort((a, b) => b - a);
    let dcg = 0;
    let idcg = 0;
    for (let r = 0; r < Math.min(k, n); r++) {
      const discount = 1 / Math.log2(r + 2);
      dcg += labelGain(labels[order[r] as number] as number) * discount;
      idcg += (ideal[r] as number) * discount;
    }
    total += idcg > 0 ? dcg / idcg : 1;
    start += n;
  }
  return total / groups.length;
}

/**
 * Area under the ROC curve of `scores` for "label > 0" (tied scores count one half); 0.5 when
 * either class is empty.
 */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    // Rows with the same score share the mean of their ranks.
    let j = i;
    while (j + 1 < n && scores[order[j + 1] as number] === scores[order[i] as number]) j++;
    const rank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if ((labels[order[t] as number] as number) > 0) {
        positives++;
        rankSum += rank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return 0.5;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
