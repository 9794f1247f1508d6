/**
 * Histogram bins per feature, built the way LightGBM builds them (its `BinMapper::FindBin`), so a
 * model trained here splits where LightGBM would: bin upper bounds from the distinct values of a
 * sample (midpoints between neighbours, one ulp up), or greedy quantiles when there are more
 * distinct values than bins; zero always a bin of its own; NaN a last bin of its own when the
 * feature has missing values; features that cannot be split dropped.
 *
 * A split on bin `t` sends `bin <= t` left, which for a raw value is `value <= upperBound[t]`, so the
 * model stores real thresholds and predicts from raw feature values, never from bins.
 */
import { ConfigError } from '../../runtime/errors.js';
import { Rng } from '../data/index.js';
import { MissingType } from './model.js';

/**
 * LightGBM's `kZeroThreshold` (a float literal `1e-35f`): a value within it of 0 is zero, and the
 * zero bin is bounded by ±this.
 */
export const ZERO_THRESHOLD = Math.fround(1e-35);

/** How one feature's values map to bins. */
export interface BinMapper {
  /** Number of bins, the NaN bin included. */
  readonly numBins: number;
  readonly missingType: MissingType;
  /**
   * Upper bound of each bin: a value falls in the first bin whose bound is `>= value`. The last
   * value bin's bound is `+Infinity`; the NaN bin (when `missingType` is NaN, the last bin) has NaN.
   */
  readonly upperBounds: Float64Array;
  /** The bin of the value 0 (LightGBM's default bin). */
  readonly defaultBin: number;
  /** Smallest and largest value in the sample, 0 included when the feature has zeros. */
  readonly minValue: number;
  readonly maxValue: number;
  /**
   * One bin only, or no threshold leaves `filterCount` sample rows on both sides: the trainer
   * drops the feature (LightGBM's trivial feature, written `none` in `feature_infos`).
   */
  readonly trivial: boolean;
}

/** Settings of bin construction; the trainer passes its own (see `GbdtTrainOptions`). */
export interface BinningOptions {
  /** Most bins per feature, the NaN bin included. @default 255 */
  maxBin?: number;
  /** Fewest sample rows in a bin. @default 3 */
  minDataInBin?: number;
  /** Rows sampled to find the bounds (all rows when there are fewer). @default 200000 */
  binConstructSampleCount?: number;
  /** Give NaN a bin of its own (else NaN is taken as 0). @default true */
  useMissing?: boolean;
  /** Treat 0 (and NaN) as missing: the zero bin takes the learned default direction. @default false */
  zeroAsMissing?: boolean;
  /**
   * Drop features on which no split can put `minDataInLeaf` rows on both sides (scaled to the
   * sample, LightGBM's `feature_pre_filter`). 0 keeps every feature with two bins or more.
   * @default 0
   */
  minDataInLeaf?: number;
  /** Seed of the row sample. @default 0 */
  seed?: number;
}

export type ResolvedBinningOptions = Required<BinningOptions>;

export function resolveBinningOptions(options: BinningOptions = {}): ResolvedBinningOptions {
  const int = (name: string, value: number, min: number): number => {
    if (!Number.isInteger(value) || value < min) {
      throw new ConfigError(name, `must be an integer >= ${min}, got ${value}`);
    }
    return value;
  };
  return {
    maxBin: int('maxBin', options.maxBin ?? 255, 2),
    minDataInBin: int('minDataInBin', options.minDataInBin ?? 3, 1),
    binConstructSampleCount: int(
      'binConstructSampleCount',
      options.binConstructSampleCount ?? 200_000,
      1,
    ),
    useMissing: options.useMissing ?? true,
    zeroAsMissing: options.zeroAsMissing ?? false,
    minDataInLeaf: int('minDataInLeaf', options.minDataInLeaf ?? 0, 0),
    seed: int('seed', options.seed ?? 0, 0),
  };
}

// The next double above `x` (C's nextafter(x, +inf)), through the bits of a float64.
const scratch = new Float64Array(1);
const words = new Uint32Array(scratch.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;

/** The smallest double greater than `x`. */
export function nextUp(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE;
  scratch[0] = x;
  const lo = words[LO] as number;
  if (x > 0) {
    words[LO] = (lo + 1) >>> 0;
    if (lo === 0xffffffff) words[HI] = ((words[HI] as number) + 1) >>> 0;
  } else {
    words[LO] = (lo - 1) >>> 0;
    if (lo === 0) words[HI] = ((words[HI] as number) - 1) >>> 0;
  }
  return scratch[0];
}

/** LightGBM's `CheckDoubleEqualOrdered`: `b` (>= `a`) is within one ulp of `a`. */
function equalOrdered(a: number, b: number): boolean {
  if (b === a) return true;
  // An ulp of a normal double is at most |a|·2^-52: a larger gap settles it without the bits.
  const magnitude = Math.abs(a);
  if (magnitude > 1e-300 && b - a > magnitude * 2 ** -51) return false;
  return b <= nextUp(a);
}

/** LightGBM's `GreedyFindBin` over `values[from..to)` (distinct, ascending) with their counts. */
function greedyFindBin(
  values: readonly number[],
  counts: readonly number[],
  from: number,
  to: number,
  maxBinIn: number,
  totalCount: number,
  minDataInBin: number,
): number[] {
  const num = to - from;
  const bounds: number[] = [];
  let maxBin = maxBinIn;
  if (num <= maxBin) {
    let inBin = 0;
    for (let i = 0; i < num - 1; i++) {
      inBin += counts[from + i] as number;
      if (inBin >= minDataInBin) {
        const value = nextUp(((values[from + i] as number) + (values[from + i + 1] as number)) / 2);
        if (bounds.length === 0 || !equalOrdered(bounds[bounds.length - 1] as number, value)) {
          bounds.push(value);
          inBin = 0;
        }
      }
    }
    bounds.push(Infinity);
    return bounds;
  }
  if (minDataInBin > 0) {
    maxBin = Math.max(1, Math.min(maxBin, Math.floor(totalCount / minDataInBin)));
  }
  let meanBinSize = totalCount / maxBin;
  let restBinCount = maxBin;
  let restSampleCount = totalCount;
  const isBig = new Uint8Array(num);
  for (let i = 0; i < num; i++) {
    if ((counts[from + i] as number) >= meanBinSize) {
      isBig[i] = 1;
      restBinCount--;
      restSampleCount -= counts[from + i] as number;
    }
  }
  meanBinSize = restSampleCount / restBinCount;
  const upper = new Array<number>(maxBin).fill(Infinity);
  const lower = new Array<number>(maxBin).fill(Infinity);
  let binCount = 0;
  lower[0] = values[from] as number;
  let inBin = 0;
  for (let i = 0; i < num - 1; i++) {
    const count = counts[from + i] as number;
    if (isBig[i] === 0) restSampleCount -= count;
    inBin += count;
    if (
      isBig[i] === 1 ||
      inBin >= meanBinSize ||
      (isBig[i + 1] === 1 && inBin >= Math.max(1, meanBinSize * 0.5))
    ) {
      upper[binCount] = values[from + i] as number;
      binCount++;
      lower[binCount] = values[from + i + 1] as number;
      if (binCount >= maxBin - 1) break;
      inBin = 0;
      if (isBig[i] === 0) {
        restBinCount--;
        meanBinSize = restSampleCount / restBinCount;
      }
    }
  }
  binCount++;
  for (let i = 0; i < binCount - 1; i++) {
    const value = nextUp(((upper[i] as number) + (lower[i + 1] as number)) / 2);
    if (bounds.length === 0 || !equalOrdered(bounds[bounds.length - 1] as number, value)) {
      bounds.push(value);
    }
  }
  bounds.push(Infinity);
  return bounds;
}

/**
 * LightGBM's `FindBinWithZeroAsOneBin`: negatives and positives share the bins by their counts,
 * zero gets `(-ZERO_THRESHOLD, ZERO_THRESHOLD]` to itself.
 */
function findBinWithZeroAsOneBin(
  values: readonly number[],
  counts: readonly number[],
  maxBin: number,
  totalCount: number,
  minDataInBin: number,
): number[] {
  const num = values.length;
  let leftCountData = 0;
  let zeroCount = 0;
  let rightCountData = 0;
  for (let i = 0; i < num; i++) {
    const v = values[i] as number;
    if (v <= -ZERO_THRESHOLD) leftCountData += counts[i] as number;
    else if (v > ZERO_THRESHOLD) rightCountData += counts[i] as number;
    else zeroCount += counts[i] as number;
  }
  let leftCount = values.findIndex((v) => v > -ZERO_THRESHOLD);
  if (leftCount < 0) leftCount = num;
  let bounds: number[] = [];
  if (leftCount > 0 && maxBin > 1) {
    const leftMaxBin = Math.max(
      1,
      Math.trunc((leftCountData / (totalCount - zeroCount)) * (maxBin - 1)),
    );
    bounds = greedyFindBin(values, counts, 0, leftCount, leftMaxBin, leftCountData, minDataInBin);
    if (bounds.length > 0) bounds[bounds.length - 1] = -ZERO_THRESHOLD;
  }
  let rightStart = -1;
  for (let i = leftCount; i < num; i++) {
    if ((values[i] as number) > ZERO_THRESHOLD) {
      rightStart = i;
      break;
    }
  }
  const rightMaxBin = maxBin - 1 - bounds.length;
  if (rightStart >= 0 && rightMaxBin > 0) {
    const right = greedyFindBin(
      values,
      counts,
      rightStart,
      num,
      rightMaxBin,
      rightCountData,
      minDataInBin,
    );
    bounds.push(ZERO_THRESHOLD, ...right);
  } else {
    bounds.push(Infinity);
  }
  return bounds;
}

/** LightGBM's `NeedFilter`: no threshold leaves `filterCount` rows on both sides. */
function needFilter(countInBin: readonly number[], total: number, filterCount: number): boolean {
  let left = 0;
  for (let i = 0; i < countInBin.length - 1; i++) {
    left += countInBin[i] as number;
    if (left >= filterCount && total - left >= filterCount) return false;
  }
  return true;
}

/** The bin of `value` (LightGBM's `ValueToBin`). */
export function valueToBin(mapper: BinMapper, value: number): number {
  let v = value;
  if (Number.isNaN(v)) {
    if (mapper.missingType === MissingType.NaN) return mapper.numBins - 1;
    v = 0;
  }
  const bounds = mapper.upperBounds;
  let l = 0;
  let r = mapper.numBins - 1;
  if (mapper.missingType === MissingType.NaN) r--;
  while (l < r) {
    const m = (r + l - 1) >> 1;
    if (v <= (bounds[m] as number)) r = m;
    else l = m + 1;
  }
  return l;
}

/**
 * Finds the bins of one feature from its sampled values (NaN for missing, zeros included).
 * `filterCount` is the fewest sample rows a side of a split may have (0: no pre-filter).
 */
export function findBinMapper(
  sample: ArrayLike<number>,
  options: Pick<ResolvedBinningOptions, 'maxBin' | 'minDataInBin' | 'useMissing' | 'zeroAsMissing'>,
  filterCount = 0,
): BinMapper {
  const { maxBin, minDataInBin, useMissing, zeroAsMissing } = options;
  const total = sample.length;
  // LightGBM samples the non-zero values only (a value within ZERO_THRESHOLD of 0 is zero), NaN
  // included; zeros are counted from the total.
  let nanCount = 0;
  let nonZero = 0;
  for (let i = 0; i < total; i++) {
    const v = sample[i] as number;
    if (Number.isNaN(v)) nanCount++;
    else if (Math.abs(v) > ZERO_THRESHOLD) nonZero++;
  }
  const sorted = new Float64Array(nonZero);
  for (let i = 0, k = 0; i < total; i++) {
    const v = sample[i] as number;
    if (!Number.isNaN(v) && Math.abs(v) > ZERO_THRESHOLD) sorted[k++] = v;
  }
  sorted.sort();
  let missingType: MissingType = MissingType.None;
  let naCount = 0;
  if (useMissing) {
    if (zeroAsMissing) missingType = MissingType.Zero;
    else if (nanCount > 0) {
      missingType = MissingType.NaN;
      naCount = nanCount;
    }
  }
  // Without a NaN bin, NaN is read as 0.
  const zeroCount = total - nonZero - naCount;

  const distinct: number[] = [];
  const counts: number[] = [];
  const n = sorted.length;
  if (n === 0 || ((sorted[0] as number) > 0 && zeroCount > 0)) {
    distinct.push(0);
    counts.push(zeroCount);
  }
  if (n > 0) {
    distinct.push(sorted[0] as number);
    counts.push(1);
  }
  for (let i = 1; i < n; i++) {
    const prev = sorted[i - 1] as number;
    const cur = sorted[i] as number;
    if (!equalOrdered(prev, cur)) {
      if (prev < 0 && cur > 0) {
        distinct.push(0);
        counts.push(zeroCount);
      }
      distinct.push(cur);
      counts.push(1);
    } else {
      // Values one ulp apart are one value: keep the larger.
      distinct[distinct.length - 1] = cur;
      counts[counts.length - 1] = (counts[counts.length - 1] as number) + 1;
    }
  }
  if (n > 0 && (sorted[n - 1] as number) < 0 && zeroCount > 0) {
    distinct.push(0);
    counts.push(zeroCount);
  }
  const minValue = distinct[0] as number;
  const maxValue = distinct[distinct.length - 1] as number;

  let bounds: number[];
  if (missingType === MissingType.NaN) {
    bounds = findBinWithZeroAsOneBin(distinct, counts, maxBin - 1, total - naCount, minDataInBin);
    bounds.push(NaN);
  } else {
    bounds = findBinWithZeroAsOneBin(distinct, counts, maxBin, total, minDataInBin);
    if (missingType === MissingType.Zero && bounds.length === 2) missingType = MissingType.None;
  }
  const numBins = bounds.length;
  const countInBin = new Array<number>(numBins).fill(0);
  let bin = 0;
  for (let i = 0; i < distinct.length; i++) {
    if ((distinct[i] as number) > (bounds[bin] as number)) bin++;
    countInBin[bin] = (countInBin[bin] as number) + (counts[i] as number);
  }
  if (missingType === MissingType.NaN) countInBin[numBins - 1] = naCount;
  const upperBounds = Float64Array.from(bounds);
  const partial = { numBins, missingType, upperBounds, defaultBin: 0 };
  const trivial = numBins <= 1 || (filterCount > 0 && needFilter(countInBin, total, filterCount));
  return {
    ...partial,
    defaultBin: trivial ? 0 : valueToBin({ ...partial, minValue, maxValue, trivial }, 0),
    minValue,
    maxValue,
    trivial,
  };
}

/** Features as the trainer reads them: row-major values, NaN for missing. */
export interface FeatureMatrix {
  /** `numRows × numFeatures` values, row-major. */
  readonly values: ArrayLike<number>;
  readonly numRows: number;
  readonly numFeatures: number;
}

/**
 * Bin mappers of every feature of `matrix`, from a seeded sample of at most
 * `binConstructSampleCount` rows.
 */
export function findBinMappers(matrix: FeatureMatrix, options: BinningOptions = {}): BinMapper[] {
  const o = resolveBinningOptions(options);
  const { numRows, numFeatures, values } = matrix;
  let rows: Int32Array;
  if (numRows <= o.binConstructSampleCount) {
    rows = Int32Array.from({ length: numRows }, (_, i) => i);
  } else {
    // Floyd's sample of k distinct rows, then in row order.
    const rng = new Rng(o.seed, 3);
    const chosen = new Set<number>();
    for (let j = numRows - o.binConstructSampleCount; j < numRows; j++) {
      const t = rng.int(j + 1);
      chosen.add(chosen.has(t) ? j : t);
    }
    rows = Int32Array.from(chosen).sort();
  }
  const total = rows.length;
  const filterCount =
    o.minDataInLeaf > 0 ? Math.trunc((o.minDataInLeaf * total) / Math.max(1, numRows)) : 0;
  const column = new Float64Array(total);
  const mappers: BinMapper[] = [];
  for (let f = 0; f < numFeatures; f++) {
    for (let i = 0; i < total; i++)
      column[i] = values[(rows[i] as number) * numFeatures + f] as number;
    mappers.push(findBinMapper(column, o, filterCount));
  }
  return mappers;
}

/** Bins of rows × features: one byte a value when every feature has at most 256 bins. */
export type BinMatrix = Uint8Array | Uint16Array;

/**
 * The bins of the features `features` of `matrix` (by `mappers[j]` for `features[j]`), row-major
 * (`numRows × features.length`). Zeros and NaN, frequent in sparse data, skip the binary search.
 */
export function binMatrix(
  matrix: FeatureMatrix,
  features: ArrayLike<number>,
  mappers: readonly BinMapper[],
): BinMatrix {
  const { numRows, numFeatures, values } = matrix;
  const width = features.length;
  const wide = mappers.some((m) => m.numBins > 256);
  const out = wide ? new Uint16Array(numRows * width) : new Uint8Array(numRows * width);
  for (let j = 0; j < width; j++) {
    const mapper = mappers[j] as BinMapper;
    const f = features[j] as number;
    const zeroBin = valueToBin(mapper, 0);
    const nanBin = valueToBin(mapper, NaN);
    for (let r = 0; r < numRows; r++) {
      const v = values[r * numFeatures + f] as number;
      out[r * width + j] = Number.isNaN(v) ? nanBin : v === 0 ? zeroBin : valueToBin(mapper, v);
    }
  }
  return out;
}

/**
 * LightGBM's `feature_infos` entry of a feature: `[min:max]`, or `none` for a dropped one. Numbers
 * are written as C's `%.17g` writes them.
 */
export function featureInfo(mapper: BinMapper): string {
  if (mapper.trivial) return 'none';
  return `[${formatG17(mapper.minValue)}:${formatG17(mapper.maxValue)}]`;
}

/** `x` as C's `printf("%.17g")` formats it: shortest exact form for LightGBM's text files. */
export function formatG17(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  // %g: exponent form when the exponent is < -4 or >= the precision.
  let s = x.toExponential(16);
  const e = Number(s.slice(s.indexOf('e') + 1));
  if (e < -4 || e >= 17) {
    let mantissa = s.slice(0, s.indexOf('e'));
    if (mantissa.includes('.')) mantissa = mantissa.replace(/0+$/, '').replace(/\.$/, '');
    return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  s = x.toFixed(Math.max(0, 16 - e));
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}
