/**
 * The synthetic learning-to-rank set that LightGBM's reference figures were measured on, ported
 * from its generator script so the trainer and the tests can make the same rows without reading
 * that script: queries of 20-60 documents, 40 features (some NaN, some zero, a small-integer
 * "category" at feature 5), graded labels 0..4 from a nonlinear latent score plus noise.
 *
 * Same PRNG (mulberry32), same draws in the same order, same floating-point expressions: the text
 * this module writes is byte-for-byte the script's (`prefix` and `prefix.query`), and the dense
 * rows hold the values LightGBM read from that text (rounded to 5 decimals, absent = 0).
 */
import { ConfigError } from '../../runtime/errors.js';

/** Features per row. */
export const LTR_FEATURES = 40;

/** The generator's two latent functions: `a` is the one LightGBM's reference table was made on. */
export const LtrVariant = {
  A: 'a',
  B: 'b',
} as const;
export type LtrVariant = (typeof LtrVariant)[keyof typeof LtrVariant];

/** Rows of a learning-to-rank set, grouped by query (consecutive rows of one query). */
export interface LtrData {
  readonly rows: number;
  /** Always {@link LTR_FEATURES}. */
  readonly width: number;
  /** Row-major `rows × width`; NaN where the value is missing. */
  readonly features: Float64Array;
  /** Relevance grades 0..4. */
  readonly labels: Float64Array;
  /** Documents per query, in row order; sums to `rows`. */
  readonly groups: Int32Array;
}

/** The two files the generator script writes. */
export interface LtrText {
  /** LibSVM lines `label idx:value ...`, each ending in a newline (zeros left out). */
  readonly data: string;
  /** Group sizes, one per line (LightGBM's `.query` file). */
  readonly query: string;
}

export interface LtrOptions {
  /** Number of queries. */
  readonly queries: number;
  /** PRNG seed (taken as an unsigned 32-bit integer, as the script does). */
  readonly seed: number;
  /** @default 'a' */
  readonly variant?: LtrVariant;
}

/** Growable Float64Array: rows per query are drawn, so the total is known only at the end. */
class Growable {
  values: Float64Array;
  length = 0;

  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
  }

  reserve(extra: number): void {
    if (this.length + extra <= this.values.length) return;
    const grown = new Float64Array(Math.max(this.values.length * 2, this.length + extra));
    grown.set(this.values.subarray(0, this.length));
    this.values = grown;
  }

  trimmed(): Float64Array {
    return this.values.slice(0, this.length);
  }
}

function validate(options: LtrOptions): LtrVariant {
  if (!Number.isInteger(options.queries) || options.queries < 0) {
    throw new ConfigError('queries', 'must be a non-negative integer');
  }
  if (!Number.isFinite(options.seed)) throw new ConfigError('seed', 'must be a finite number');
  const variant = options.variant ?? LtrVariant.A;
  if (variant !== LtrVariant.A && variant !== LtrVariant.B) {
    throw new ConfigError('variant', `must be 'a' or 'b', got ${String(variant)}`);
  }
  return variant;
}

/**
 * Runs the generator; `lines`, when given, receives the LibSVM line of every row. Everything
 * below mirrors the script statement by statement: reordering a draw or regrouping a sum changes
 * the data.
 */
function run(
  options: LtrOptions,
  lines: string[] | undefined,
): { data: LtrData; groups: number[] } {
  const variant = validate(options);
  let seed = options.seed >>> 0;
  // mulberry32: a small PRNG that stays exact in 32-bit integer arithmetic
  const rnd = (): number => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gauss = (): number => {
    const u = Math.max(rnd(), 1e-12),
      v = rnd();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const F = LTR_FEATURES;
  const features = new Growable(F * 40 * Math.max(1, options.queries));
  const labels = new Growable(40 * Math.max(1, options.queries));
  const groups: number[] = [];
  const x = new Array<number>(F).fill(0);
  const v = variant === LtrVariant.B;
  for (let q = 0; q < options.queries; q++) {
    const n = 20 + Math.floor(rnd() * 41);
    const qctx = [gauss(), gauss(), gauss()] as [number, number, number];
    groups.push(n);
    features.reserve(n * F);
    labels.reserve(n);
    for (let d = 0; d < n; d++) {
      for (let f = 0; f < F; f++) x[f] = gauss();
      x[5] = Math.floor(rnd() * 12); // a small-integer "category" feature
      if (rnd() < 0.15) x[7] = NaN; // missing values
      if (rnd() < 0.3) x[9] = 0; // sparse feature
      const x0 = x[0] as number;
      const x1 = x[1] as number;
      const x2 = x[2] as number;
      const x3 = x[3] as number;
      const x4 = x[4] as number;
      const x5 = x[5];
      const x7 = x[7] as number;
      const x9 = x[9] as number;
      const x10 = x[10] as number;
      const x11 = x[11] as number;
      const x12 = x[12] as number;
      const x13 = x[13] as number;
      let s =
        1.2 * Math.tanh(x0 + qctx[0] * x1) +
        0.8 * (x2 > 0.5 ? 1 : 0) * (x3 > -0.2 ? 1 : -0.5) +
        0.6 * Math.sin(2 * x4) +
        ([2, 5, 9].includes(x5) ? 0.7 : 0) +
        (Number.isNaN(x7) ? 0.4 : 0.3 * x7) +
        0.5 * x9 * qctx[1] +
        0.4 * x10 * x11 +
        (v ? 0.7 * Math.cos(x12 * qctx[2]) - 0.5 * Math.abs(x13) : 0.3 * x12);
      s += 1.0 * gauss();
      const label = Math.max(0, Math.min(4, Math.floor((s + 1.5) / 1.0)));
      labels.values[labels.length++] = label;
      const parts = lines === undefined ? undefined : [String(label)];
      for (let f = 0; f < F; f++) {
        const value = x[f] as number;
        let stored: number;
        if (value === 0) {
          stored = 0;
        } else if (Number.isNaN(value)) {
          stored = NaN;
          parts?.push(`${f}:nan`);
        } else {
          const rounded = +value.toFixed(5);
          parts?.push(`${f}:${rounded}`);
          // A value that rounds to zero is written as `f:0`; LightGBM reads it as 0 (never -0).
          stored = rounded === 0 ? 0 : rounded;
        }
        features.values[features.length++] = stored;
      }
      if (parts !== undefined) lines?.push(parts.join(' '));
    }
  }
  return {
    data: {
      rows: labels.length,
      width: F,
      features: features.trimmed(),
      labels: labels.trimmed(),
      groups: Int32Array.from(groups),
    },
    groups,
  };
}

/** The rows the generator makes, as LightGBM reads them from its text. */
export function generateLtr(options: LtrOptions): LtrData {
  return run(options, undefined).data;
}

/** The rows and the generator's two files, byte-for-byte the script's output. */
export function generateLtrWithText(options: LtrOptions): { data: LtrData; text: LtrText } {
  const lines: string[] = [];
  const { data, groups } = run(options, lines);
  return {
    data,
    text: {
      data: lines.join('\n') + '\n',
      query: groups.join('\n') + '\n',
    },
  };
}
