/**
 * The two training losses of the DeepFM ranker, each returning its value and writing its
 * derivative with respect to every logit. Both are means (over rows, over groups) so the step
 * size does not depend on the batch size.
 */
import type { Vec } from '../retrieval/linalg.js';

/** Gain of a graded label, as NDCG counts it: 2^label − 1, 0 for a label ≤ 0. */
export function labelGain(label: number): number {
  return label > 0 ? 2 ** label - 1 : 0;
}

/**
 * Mean binary log loss of `size` logits against "label > 0", and its gradient
 * `(σ(s) − y) / size` in `dLogits`.
 */
export function pointwiseLoss(
  logits: Vec,
  labels: ArrayLike<number>,
  size: number,
  dLogits: Vec,
): number {
  let total = 0;
  const inv = 1 / size;
  for (let b = 0; b < size; b++) {
    const s = logits[b] as number;
    const y = (labels[b] as number) > 0 ? 1 : 0;
    // log(1 + e^s) − y·s, written to stay finite for large |s|.
    total += Math.max(s, 0) - y * s + Math.log1p(Math.exp(-Math.abs(s)));
    const p = s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s));
    dLogits[b] = (p - y) * inv;
  }
  return total * inv;
}

/**
 * Listwise softmax cross-entropy: for each group of consecutive rows (sizes in `groups`), the
 * cross-entropy between the target distribution p_i = gain_i / Σ gain and softmax(logits); its
 * gradient is `softmax_i − p_i`. The mean over the groups that have a positive label; the others
 * have no target and get a zero gradient. Returns the loss and how many groups counted.
 */
export function listwiseLoss(
  logits: Vec,
  labels: ArrayLike<number>,
  groups: ArrayLike<number>,
  groupCount: number,
  dLogits: Vec,
): { loss: number; groups: number } {
  let total = 0;
  let counted = 0;
  let start = 0;
  for (let q = 0; q < groupCount; q++) {
    const n = groups[q] as number;
    let gain = 0;
    for (let i = start; i < start + n; i++) gain += labelGain(labels[i] as number);
    if (gain > 0) counted++;
    start += n;
  }
  const inv = counted > 0 ? 1 / counted : 0;
  start = 0;
  for (let q = 0; q < groupCount; q++) {
    const n = groups[q] as number;
    const end = start + n;
    let gain = 0;
    let max = -Infinity;
    for (let i = start; i < end; i++) {
      gain += labelGain(labels[i] as number);
      max = Math.max(max, logits[i] as number);
    }
    if (gain === 0) {
      for (let i = start; i < end; i++) dLogits[i] = 0;
      start = end;
      continue;
    }
    let z = 0;
    for (let i = start; i < end; i++) z += Math.exp((logits[i] as number) - max);
    const logZ = max + Math.log(z);
    for (let i = start; i < end; i++) {
      const s = logits[i] as number;
      const p = labelGain(labels[i] as number) / gain;
      if (p > 0) total -= p * (s - logZ);
      dLogits[i] = (Math.exp(s - logZ) - p) * inv;
    }
    start = end;
  }
  return { loss: total * inv, groups: counted };
}
