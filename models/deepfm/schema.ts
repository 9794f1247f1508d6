/**
 * The input contract of the DeepFM ranker: a row of F ranking features described by a schema, and
 * its encoding into what the model reads. Rows come as one Float32Array of n × F values, the same
 * layout the ONNX graph takes as `features [N, F]`:
 *
 * - numeric field: a finite real, NaN for missing. It is standardised with the training mean and
 *   standard deviation; a missing value becomes 0 and switches on the field's "missing" weight and
 *   embedding instead. ±Infinity is not missing: the score comes out infinite or NaN.
 * - categorical field: an integer id in `0 .. cardinality - 1`. Anything else (NaN, negative,
 *   fractional, too large) reads the field's "unknown" row, so a category the model has never seen
 *   is scored rather than refused.
 *
 * Categorical fields share one table: field j owns rows `offset_j .. offset_j + cardinality_j`,
 * the last of them its unknown row. The ONNX graph computes the same row as
 * `Where(known, id + offset, unknownRow)`, in float32, hence the cap on the total rows.
 */
import { BadRequestError, ConfigError } from '../../runtime/errors.js';

/** Kinds of ranking feature. */
export const FieldKind = {
  Numeric: 'numeric',
  Categorical: 'categorical',
} as const;
export type FieldKind = (typeof FieldKind)[keyof typeof FieldKind];

/** One column of a feature row. */
export interface FeatureField {
  readonly name: string;
  readonly kind: FieldKind;
  /** Categorical fields: the number of known ids (`0 .. cardinality - 1`). */
  readonly cardinality?: number;
}

/** The columns of a feature row, in order. */
export type FeatureSchema = readonly FeatureField[];

/**
 * Most rows the categorical tables may have together: row numbers are computed in float32 by the
 * ONNX graph, exact up to 2^24.
 */
export const MAX_CATEGORICAL_ROWS = 1 << 24;

/** Where each field's values live in the encoded rows and the parameters. */
export interface SchemaLayout {
  /** The schema with only name, kind and cardinality. */
  readonly schema: FeatureSchema;
  /** F, the width of a feature row. */
  readonly fields: number;
  /** Schema positions of the numeric fields, in order. */
  readonly numeric: Int32Array;
  /** Schema positions of the categorical fields, in order. */
  readonly categorical: Int32Array;
  /** Cardinality of each categorical field. */
  readonly cardinality: Int32Array;
  /** First table row of each categorical field. */
  readonly offset: Int32Array;
  /** Rows of the shared categorical table: Σ (cardinality + 1). */
  readonly categoricalRows: number;
}

function isList(value: unknown): boolean {
  return Array.isArray(value);
}

/** Checks a schema and lays it out; a bad one throws a `ConfigError` naming the field. */
export function schemaLayout(schema: FeatureSchema, path = 'schema'): SchemaLayout {
  if (!isList(schema) || schema.length === 0) {
    throw new ConfigError(path, 'must list at least one field');
  }
  const numeric: number[] = [];
  const categorical: number[] = [];
  const cardinality: number[] = [];
  const offset: number[] = [];
  const names = new Set<string>();
  let rows = 0;
  schema.forEach((field, f) => {
    const at = `${path}[${f}]`;
    if (typeof field?.name !== 'string' || field.name.length === 0) {
      throw new ConfigError(`${at}.name`, 'must be a non-empty string');
    }
    if (names.has(field.name)) throw new ConfigError(`${at}.name`, `${field.name} appears twice`);
    names.add(field.name);
    if (field.kind === FieldKind.Numeric) {
      numeric.push(f);
    } else if (field.kind === FieldKind.Categorical) {
      const card = field.cardinality;
      if (card === undefined || !Number.isInteger(card) || card < 1) {
        throw new ConfigError(
          `${at}.cardinality`,
          `must be a positive integer for a categorical field, got ${String(card)}`,
        );
      }
      categorical.push(f);
      cardinality.push(card);
      offset.push(rows);
      rows += card + 1;
      if (rows > MAX_CATEGORICAL_ROWS) {
        throw new ConfigError(
          `${at}.cardinality`,
          `the categorical fields may have ${MAX_CATEGORICAL_ROWS} ids in all`,
        );
      }
    } else {
      throw new ConfigError(`${at}.kind`, `must be 'numeric' or 'categorical'`);
    }
  });
  return {
    // Only what the model reads: a richer feature definition (descriptions, compute functions)
    // passes as a schema, but its extras stay out of manifests and ONNX metadata.
    schema: schema.map((f) =>
      f.kind === FieldKind.Categorical
        ? { name: f.name, kind: f.kind, cardinality: f.cardinality as number }
        : { name: f.name, kind: f.kind },
    ),
    fields: schema.length,
    numeric: Int32Array.from(numeric),
    categorical: Int32Array.from(categorical),
    cardinality: Int32Array.from(cardinality),
    offset: Int32Array.from(offset),
    categoricalRows: rows,
  };
}

/**
 * The number of rows in `features` for rows of `width` values; a wrong length or type throws a
 * `BadRequestError` naming `field`.
 */
export function rowCount(features: Float32Array, width: number, field = 'features'): number {
  if (!(features instanceof Float32Array)) {
    throw new BadRequestError(field, 'must be a Float32Array of rows × fields values');
  }
  if (features.length % width !== 0) {
    throw new BadRequestError(
      field,
      `has ${features.length} values, not a whole number of rows of ${width} features`,
    );
  }
  return features.length / width;
}

/** The table row of categorical id `x` of a field: its own row, or the unknown row. */
export function categoricalRow(x: number, cardinality: number, offset: number): number {
  // NaN fails every comparison, so it lands on the unknown row too.
  return x >= 0 && x < cardinality && Math.floor(x) === x ? offset + x : offset + cardinality;
}

/** Feature rows as the model reads them: `[n × numeric]` and `[n × categorical]` arrays. */
export interface EncodedRows {
  readonly size: number;
  /** Standardised numeric values, 0 where missing. */
  readonly z: Float32Array;
  /** 1 where a numeric value is missing, else 0. */
  readonly missing: Float32Array;
  /** Table row of each categorical value (unknown ids already mapped to the unknown row). */
  readonly rows: Int32Array;
}

/** Room for `size` encoded rows. */
export function allocateEncoded(layout: SchemaLayout, size: number): EncodedRows {
  return {
    size,
    z: new Float32Array(size * layout.numeric.length),
    missing: new Float32Array(size * layout.numeric.length),
    rows: new Int32Array(size * layout.categorical.length),
  };
}

/**
 * Encodes `n` rows of `features` from row `from`, into `out` from row 0. `mean` and `std` are the
 * standardisation of the numeric fields.
 */
export function encodeRows(
  layout: SchemaLayout,
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
  features: Float32Array,
  from: number,
  n: number,
  out: EncodedRows,
): void {
  const { fields, numeric, categorical, cardinality, offset } = layout;
  const fn = numeric.length;
  const fc = categorical.length;
  const { z, missing, rows } = out;
  for (let r = 0; r < n; r++) {
    const base = (from + r) * fields;
    for (let j = 0; j < fn; j++) {
      const x = features[base + (numeric[j] as number)] as number;
      const o = r * fn + j;
      if (Number.isNaN(x)) {
        z[o] = 0;
        missing[o] = 1;
      } else {
        z[o] = (x - (mean[j] as number)) / (std[j] as number);
        missing[o] = 0;
      }
    }
    for (let j = 0; j < fc; j++) {
      const x = features[base + (categorical[j] as number)] as number;
      rows[r * fc + j] = categoricalRow(x, cardinality[j] as number, offset[j] as number);
    }
  }
}

/** Copies encoded rows `index[0 .. n)` of `src` to rows `0 .. n` of `out` (a batch). */
export function gatherEncoded(
  layout: SchemaLayout,
  src: EncodedRows,
  index: ArrayLike<number>,
  from: number,
  n: number,
  out: EncodedRows,
): void {
  const fn = layout.numeric.length;
  const fc = layout.categorical.length;
  for (let r = 0; r < n; r++) {
    const i = index[from + r] as number;
    if (fn > 0) {
      out.z.set(src.z.subarray(i * fn, i * fn + fn), r * fn);
      out.missing.set(src.missing.subarray(i * fn, i * fn + fn), r * fn);
    }
    if (fc > 0) out.rows.set(src.rows.subarray(i * fc, i * fc + fc), r * fc);
  }
}

/**
 * Mean and standard deviation of each numeric field over its present values (float64 sums). A
 * field that is constant or never present gets a standard deviation of 1, so it stays finite.
 */
export function fitStandardisation(
  layout: SchemaLayout,
  features: Float32Array,
): { mean: Float32Array; std: Float32Array } {
  const fn = layout.numeric.length;
  const n = features.length / layout.fields;
  const mean = new Float32Array(fn);
  const std = new Float32Array(fn);
  for (let j = 0; j < fn; j++) {
    const col = layout.numeric[j] as number;
    let count = 0;
    let sum = 0;
    for (let r = 0; r < n; r++) {
      const x = features[r * layout.fields + col] as number;
      if (Number.isNaN(x)) continue;
      count++;
      sum += x;
    }
    const mu = count > 0 ? sum / count : 0;
    let sq = 0;
    for (let r = 0; r < n; r++) {
      const x = features[r * layout.fields + col] as number;
      if (!Number.isNaN(x)) sq += (x - mu) ** 2;
    }
    const sd = count > 1 ? Math.sqrt(sq / count) : 0;
    mean[j] = Number.isFinite(mu) ? mu : 0;
    std[j] = sd > 1e-12 && Number.isFinite(sd) ? sd : 1;
  }
  return { mean, std };
}
