/**
 * A synthetic ranking task whose relevance is decided by feature interactions, for the tests
 * (DeepFM must learn what a first-order model cannot) and the training-speed benchmark.
 *
 * Numeric fields n0 and n1 are independent zero-mean normals, stored shifted and scaled (so the
 * model has to standardise them); relevance grows with their product n0·n1, which no sum of
 * per-feature terms can express. With two categorical fields, c0 and c1 agreeing in parity adds
 * to it, another pure interaction. `firstOrder` adds a plain linear signal on n2, and the other
 * fields are noise, missing (NaN) at `missingRate`.
 */
import { Rng } from '../retrieval/rng.js';
import { FieldKind } from './schema.js';
import type { FeatureField, FeatureSchema } from './schema.js';

export interface SyntheticRankingOptions {
  /** @default 200 */
  readonly queries?: number;
  /** Rows per query group. @default 50 */
  readonly perQuery?: number;
  /** Numeric fields (at least 2). @default 4 */
  readonly numeric?: number;
  /** Categorical fields. @default 2 */
  readonly categorical?: number;
  /** Ids of each categorical field. @default 10 */
  readonly cardinality?: number;
  /** Share of missing values in the noise fields. @default 0.05 */
  readonly missingRate?: number;
  /** Weight of the linear signal on n2. @default 0 */
  readonly firstOrder?: number;
  /** Standard deviation of the noise added to the relevance. @default 0 */
  readonly noise?: number;
  /**
   * `binary`: label 1 when the relevance is positive. `graded`: 0..3 at thresholds 0, 1 and 2.
   * @default 'binary'
   */
  readonly labels?: 'binary' | 'graded';
  /** @default 1 */
  readonly seed?: number;
}

export interface SyntheticRanking {
  readonly schema: FeatureSchema;
  /** `rows × fields`, schema order. */
  readonly features: Float32Array;
  readonly labels: Float32Array;
  readonly groups: Int32Array;
}

export function syntheticRanking(options: SyntheticRankingOptions = {}): SyntheticRanking {
  const queries = options.queries ?? 200;
  const perQuery = options.perQuery ?? 50;
  const numeric = Math.max(2, options.numeric ?? 4);
  const categorical = options.categorical ?? 2;
  const cardinality = options.cardinality ?? 10;
  const missingRate = options.missingRate ?? 0.05;
  const firstOrder = options.firstOrder ?? 0;
  const noise = options.noise ?? 0;
  const graded = (options.labels ?? 'binary') === 'graded';
  const rng = new Rng(options.seed ?? 1);

  // Categorical fields are interleaved with the numeric ones, so schema order is not by kind.
  const schema: FeatureField[] = [];
  for (let j = 0; j < numeric; j++) {
    schema.push({ name: `n${j}`, kind: FieldKind.Numeric });
    if (j < categorical) {
      schema.push({ name: `c${j}`, kind: FieldKind.Categorical, cardinality });
    }
  }
  for (let j = numeric; j < categorical; j++) {
    schema.push({ name: `c${j}`, kind: FieldKind.Categorical, cardinality });
  }
  const width = schema.length;
  const column = (name: string): number => schema.findIndex((f) => f.name === name);
  const n0 = column('n0');
  const n1 = column('n1');
  const n2 = column('n2');
  const c0 = column('c0');
  const c1 = column('c1');

  const rows = queries * perQuery;
  const features = new Float32Array(rows * width);
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * width;
    schema.forEach((field, f) => {
      if (field.kind === FieldKind.Categorical) {
        features[o + f] = rng.int(cardinality);
      } else if (f !== n0 && f !== n1 && rng.next() < missingRate) {
        features[o + f] = NaN;
      } else {
        features[o + f] = rng.normal() * (1 + f) + f;
      }
    });
    const a = ((features[o + n0] as number) - n0) / (1 + n0);
    const b = ((features[o + n1] as number) - n1) / (1 + n1);
    let relevance = a * b;
    if (c0 >= 0 && c1 >= 0) {
      relevance += (features[o + c0] as number) % 2 === (features[o + c1] as number) % 2 ? 1 : -1;
    }
    if (firstOrder !== 0 && n2 >= 0) {
      const x = features[o + n2] as number;
      if (!Number.isNaN(x)) relevance += (firstOrder * (x - n2)) / (1 + n2);
    }
    if (noise > 0) relevance += noise * rng.normal();
    labels[r] = graded
      ? relevance > 2
        ? 3
        : relevance > 1
          ? 2
          : relevance > 0
            ? 1
            : 0
      : relevance > 0
        ? 1
        : 0;
  }
  return { schema, features, labels, groups: new Int32Array(queries).fill(perQuery) };
}
