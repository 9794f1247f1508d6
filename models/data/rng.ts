/**
 * A small, fast, seeded pseudo-random generator (sfc32, seeded through splitmix32), so the same
 * seed gives the same numbers on every machine and Node version. Not for cryptography.
 */

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = NaN;

  /**
   * @param seed any 32-bit integer
   * @param stream picks an independent sequence for the same seed (one per purpose, so adding
   *   draws to one purpose does not shift another's numbers)
   */
  constructor(seed: number, stream = 0) {
    const mix = splitmix32((seed >>> 0) ^ Math.imul(stream + 1, 0x632be5ab));
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix() | 1;
    // Warm up: the first outputs of sfc32 still carry the seed's structure.
    for (let i = 0; i < 12; i++) this.uint32();
  }

  /** A uniform 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform in (0, 1]: safe under a logarithm. */
  nextOpen(): number {
    return (this.uint32() + 1) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = NaN;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.nextOpen()));
    const theta = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Exponential with mean 1. */
  exponential(): number {
    return -Math.log(this.nextOpen());
  }

  /** Log-normal with the given median and log-space standard deviation. */
  logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** Poisson with mean `lambda`, given `expNegLambda = exp(-lambda)` (Knuth; small means). */
  poisson(lambda: number, expNegLambda = Math.exp(-lambda)): number {
    if (lambda > 30) {
      return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * this.normal()));
    }
    let k = 0;
    let p = this.next();
    while (p > expNegLambda) {
      k++;
      p *= this.next();
    }
    return k;
  }

  /** Shuffles `array` in place (Fisher-Yates). */
  shuffle(array: Int32Array): Int32Array {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i] ?? 0;
      array[i] = array[j] ?? 0;
      array[j] = tmp;
    }
    return array;
  }
}

/**
 * Index of the first entry of the non-decreasing `cumulative[lo..hi)` greater than `target`:
 * with cumulative sums of weights, a uniform target in [cumulative[lo-1], cumulative[hi-1]) picks
 * an entry with probability proportional to its weight.
 */
export function upperBound(
  cumulative: Float64Array | Float32Array,
  target: number,
  lo: number,
  hi: number,
): number {
  let a = lo;
  let b = hi;
  while (a < b) {
    const mid = (a + b) >>> 1;
    if ((cumulative[mid] ?? Infinity) > target) b = mid;
    else a = mid + 1;
  }
  return a;
}

/** Picks an index in [0, weights.length) with probability proportional to its weight. */
export function pickWeighted(
  rng: Rng,
  cumulative: Float64Array,
  count = cumulative.length,
): number {
  const total = cumulative[count - 1] ?? 0;
  const i = upperBound(cumulative, rng.next() * total, 0, count);
  return Math.min(i, count - 1);
}
