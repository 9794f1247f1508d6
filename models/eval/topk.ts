/**
 * Exact top-K selection over a score vector without sorting it: one pass with a bounded min-heap
 * of the K best seen so far, O(n + m log K) where m (the items that enter the heap) is small once
 * the heap holds good scores. Scoring 1,000,000 items costs one comparison each for most of them.
 *
 * Order: higher score first; equal scores by lower item index first, so results are deterministic
 * and match a stable sort by descending score.
 */

/** Items to leave out (a user's seen items). `Set<number>` fits; so does {@link ItemMask}. */
export interface ItemExclusion {
  has(item: number): boolean;
}

/**
 * A reusable exclusion set over a catalogue of known size: a byte per item, so `has` is one load.
 * Mark a user's items, select, then unmark them for the next user (cheaper than a new Set).
 */
export class ItemMask implements ItemExclusion {
  private readonly bits: Uint8Array;

  constructor(readonly itemCount: number) {
    this.bits = new Uint8Array(itemCount);
  }

  has(item: number): boolean {
    return this.bits[item] === 1;
  }

  /** Marks each item of `items`. */
  set(items: ArrayLike<number>): void {
    for (let i = 0; i < items.length; i++) this.bits[items[i] as number] = 1;
  }

  /** Unmarks each item of `items`. */
  clear(items: ArrayLike<number>): void {
    for (let i = 0; i < items.length; i++) this.bits[items[i] as number] = 0;
  }
}

/** The K best items with their scores, best first. */
export interface TopK {
  readonly items: Int32Array;
  readonly scores: Float32Array;
}

/**
 * The `k` highest-scoring items of `scores` (index = item), best first, leaving out excluded
 * items and items scoring `-Infinity` or NaN. Returns fewer than `k` when fewer items qualify.
 * To select from one row of a batch, pass `batch.subarray(row * n, (row + 1) * n)` (a view, no copy).
 */
export function topK(scores: Float32Array, k: number, exclude?: ItemExclusion): TopK {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a non-negative integer`);
  const capacity = Math.min(k, scores.length);
  // A min-heap whose root is the worst item kept: the lowest score, and among equal scores the
  // highest index. Items are visited in index order, so a newcomer that only ties the root has a
  // higher index than it and loses: a strict `>` decides.
  const heapScores = new Float32Array(capacity);
  const heapItems = new Int32Array(capacity);
  let size = 0;
  if (capacity > 0) {
    const n = scores.length;
    for (let item = 0; item < n; item++) {
      const score = scores[item] as number;
      // `!(score > -Infinity)` is true for -Infinity and NaN alike.
      if (!(score > -Infinity)) continue;
      if (size === capacity && !(score > (heapScores[0] as number))) continue;
      if (exclude !== undefined && exclude.has(item)) continue;
      if (size < capacity) {
        siftUp(heapScores, heapItems, size, score, item);
        size++;
      } else {
        siftDown(heapScores, heapItems, size, score, item);
      }
    }
  }
  // Heap order to best-first order: repeatedly move the worst to the end.
  const items = new Int32Array(size);
  const out = new Float32Array(size);
  for (let end = size - 1; end >= 0; end--) {
    items[end] = heapItems[0] as number;
    out[end] = heapScores[0] as number;
    if (end > 0)
      siftDown(heapScores, heapItems, end, heapScores[end] as number, heapItems[end] as number);
  }
  return { items, scores: out };
}

/** True when (sa, ia) ranks below (sb, ib): a lower score, or an equal score and a higher index. */
function worse(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa < sb || (sa === sb && ia > ib);
}

/** Inserts (score, item) at position `size` and restores the heap. */
function siftUp(
  scores: Float32Array,
  items: Int32Array,
  size: number,
  score: number,
  item: number,
): void {
  let pos = size;
  while (pos > 0) {
    const parent = (pos - 1) >> 1;
    const ps = scores[parent] as number;
    const pi = items[parent] as number;
    if (!worse(score, item, ps, pi)) break;
    scores[pos] = ps;
    items[pos] = pi;
    pos = parent;
  }
  scores[pos] = score;
  items[pos] = item;
}

/** Replaces the root of a heap of `size` entries with (score, item) and restores the heap. */
function siftDown(
  scores: Float32Array,
  items: Int32Array,
  size: number,
  score: number,
  item: number,
): void {
  let pos = 0;
  for (;;) {
    const left = 2 * pos + 1;
    if (left >= size) break;
    const right = left + 1;
    let child = left;
    if (
      right < size &&
      worse(
        scores[right] as number,
        items[right] as number,
        scores[left] as number,
        items[left] as number,
      )
    ) {
      child = right;
    }
    const cs = scores[child] as number;
    const ci = items[child] as number;
    if (!worse(cs, ci, score, item)) break;
    scores[pos] = cs;
    items[pos] = ci;
    pos = child;
  }
  scores[pos] = score;
  items[pos] = item;
}
