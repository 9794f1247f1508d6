/**
 * In-batch sampled softmax: each user's positive item competes with the other items of the batch.
 * Logits are cosine similarities over a temperature; with the logQ correction the log of each
 * item's sampling probability is subtracted, so popular items (sampled as negatives more often)
 * are not pushed down for being popular (Yi et al., "Sampling-bias-corrected neural modeling for
 * large corpus item recommendations", RecSys 2019).
 */
import { gemm, gemmAtAdd, gemmBt } from './linalg.js';
import type { Vec } from './linalg.js';

export interface InBatchSoftmaxResult {
  /** Mean cross-entropy over the batch. */
  readonly loss: number;
  /** Gradient w.r.t. the user embeddings `[B × dims]`. */
  readonly dUsers: Vec;
  /** Gradient w.r.t. the item embeddings `[I × dims]`. */
  readonly dItems: Vec;
}

/**
 * @param users user embeddings `[B × dims]`
 * @param items the batch's distinct items `[I × dims]` (each item once, so no positive is ever
 *   also a negative of the same row)
 * @param target column in `items` of each user's positive
 * @param logQ log sampling probability of each of the `I` items, or undefined (no correction)
 */
export function inBatchSoftmax(
  users: Vec,
  items: Vec,
  target: Int32Array,
  dims: number,
  temperature: number,
  logQ?: Float64Array,
): InBatchSoftmaxResult {
  const b = target.length;
  const n = items.length / dims;
  const Ctor = users instanceof Float64Array ? Float64Array : Float32Array;
  const logits = new Ctor(b * n);
  gemmBt(users, items, logits, b, dims, n);
  const invT = 1 / temperature;
  let loss = 0;
  // Softmax in place: `logits` becomes dL/dlogits = (p - onehot) / B.
  for (let r = 0; r < b; r++) {
    const o = r * n;
    let max = -Infinity;
    for (let c = 0; c < n; c++) {
      const s = (logits[o + c] as number) * invT - (logQ === undefined ? 0 : (logQ[c] as number));
      logits[o + c] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c = 0; c < n; c++) {
      const e = Math.exp((logits[o + c] as number) - max);
      logits[o + c] = e;
      sum += e;
    }
    const t = target[r] as number;
    loss += -Math.log((logits[o + t] as number) / sum);
    const scale = 1 / (sum * b);
    for (let c = 0; c < n; c++) logits[o + c] = (logits[o + c] as number) * scale;
    logits[o + t] = (logits[o + t] as number) - 1 / b;
  }
  // dlogit/du = v / T and dlogit/dv = u / T.
  for (let i = 0; i < logits.length; i++) logits[i] = (logits[i] as number) * invT;
  const dUsers = new Ctor(b * dims);
  gemm(logits, items, dUsers, b, n, dims);
  const dItems = new Ctor(n * dims);
  gemmAtAdd(logits, users, dItems, b, n, dims);
  return { loss: loss / b, dUsers, dItems };
}
