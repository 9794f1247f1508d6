/**
 * Offline evaluation of the ranking stage: the same query groups (a user at a time, the retrieval
 * model's top K candidates, labelled by what the user did next) ordered by each contender, and
 * NDCG@k of each order as LightGBM defines it (gain 2^label − 1, log2 discount, ties in row
 * order, averaged over queries). The contenders:
 *
 * - retrieval order: the candidates as the retrieval stage returned them (the rows of a group are
 *   in that order), the baseline a ranker must beat;
 * - popularity order: by the item's interactions as the batch view served them at the query time
 *   (`item_log_interactions`), ties in retrieval order;
 * - each ranker, shown the columns of its own schema.
 *
 * A query without a positive label would count 1 for every order; the examples leave them out.
 */
import { ndcgAtK, queryBoundaries } from '../gbdt/metrics.js';
import type { RankingExamples } from './examples.js';
import type { RankingFeatureSchema } from './features.js';
import type { RankerModel } from './ranker.js';

/** The feature popularity order sorts by. */
export const POPULARITY_FEATURE = 'item_log_interactions';

/** Rows scored per ranker call. */
const SCORE_CHUNK = 8192;

/** One contender's figures. */
export interface RankingEvalRow {
  /** `retrieval order`, `popularity`, or `<kind> <version>`. */
  readonly name: string;
  readonly kind: 'retrieval' | 'popularity' | 'gbdt' | 'deepfm';
  /** NDCG at each of the evaluation's cut-offs. */
  readonly ndcg: readonly number[];
  /** NDCG over the retrieval order's, at each cut-off (NaN where the retrieval order scores 0). */
  readonly lift: readonly number[];
  /** Milliseconds spent scoring (rankers). */
  readonly scoreMs: number;
}

export interface RankingEvaluation {
  readonly ks: readonly number[];
  readonly queries: number;
  readonly rows: number;
  readonly positives: number;
  readonly contenders: readonly RankingEvalRow[];
}

/** Scores that keep each group's rows in order: the retrieval stage's order. */
export function retrievalOrderScores(groups: ArrayLike<number>): Float64Array {
  let rows = 0;
  for (let q = 0; q < groups.length; q++) rows += groups[q] as number;
  const scores = new Float64Array(rows);
  let row = 0;
  for (let q = 0; q < groups.length; q++) {
    const size = groups[q] as number;
    for (let k = 0; k < size; k++) scores[row++] = -k;
  }
  return scores;
}

function column(schema: RankingFeatureSchema, name: string): number {
  const at = schema.names.indexOf(name);
  if (at === -1) {
    throw new RangeError(`the examples' schema has no ${name} column (${schema.names.join(', ')})`);
  }
  return at;
}

/**
 * Popularity order: the item's `item_log_interactions` as of the query time; an item the batch
 * view knew nothing about counts as no interaction.
 */
export function popularityScores(examples: RankingExamples): Float64Array {
  const width = examples.schema.size;
  const at = column(examples.schema, POPULARITY_FEATURE);
  const scores = new Float64Array(examples.rows);
  for (let r = 0; r < examples.rows; r++) {
    const value = examples.features[r * width + at] as number;
    scores[r] = Number.isNaN(value) ? 0 : value;
  }
  return scores;
}

/**
 * The examples' rows as `schema` lays them out: its columns picked by name from the examples' own
 * (which must hold every one of them). The same array when the schemas are the same.
 */
export function projectRows(examples: RankingExamples, schema: RankingFeatureSchema): Float32Array {
  const from = examples.schema;
  if (from.fingerprint === schema.fingerprint) return examples.features;
  const source = schema.names.map((name) => column(from, name));
  const width = schema.size;
  const out = new Float32Array(examples.rows * width);
  for (let r = 0; r < examples.rows; r++) {
    const base = r * from.size;
    for (let f = 0; f < width; f++)
      out[r * width + f] = examples.features[base + (source[f] as number)] as number;
  }
  return out;
}

/** A ranker's scores of every row of the examples (in chunks). */
export async function rankerScores(
  ranker: RankerModel,
  examples: RankingExamples,
): Promise<Float64Array> {
  const rows = projectRows(examples, ranker.schema);
  const width = ranker.schema.size;
  const scores = new Float64Array(examples.rows);
  for (let from = 0; from < examples.rows; from += SCORE_CHUNK) {
    const n = Math.min(SCORE_CHUNK, examples.rows - from);
    scores.set(await ranker.score(rows.subarray(from * width, (from + n) * width), n), from);
  }
  return scores;
}

export interface EvaluateRankingOptions {
  readonly examples: RankingExamples;
  readonly rankers: readonly RankerModel[];
  /** Cut-offs. @default [10] */
  readonly ks?: readonly number[];
}

/** NDCG@k of the retrieval order, each ranker and the popularity order over the same queries. */
export async function evaluateRanking(options: EvaluateRankingOptions): Promise<RankingEvaluation> {
  const { examples } = options;
  const ks = options.ks ?? [10];
  const boundaries = queryBoundaries(examples.groups);
  const ndcg = (scores: ArrayLike<number>): number[] =>
    examples.groups.length === 0
      ? ks.map(() => Number.NaN)
      : ndcgAtK(examples.labels, scores, boundaries, ks);
  const base = ndcg(retrievalOrderScores(examples.groups));
  const lift = (values: readonly number[]): number[] =>
    values.map((v, i) => ((base[i] as number) > 0 ? v / (base[i] as number) : Number.NaN));
  const rows: RankingEvalRow[] = [
    { name: 'retrieval order', kind: 'retrieval', ndcg: base, lift: lift(base), scoreMs: 0 },
  ];
  for (const ranker of options.rankers) {
    const started = performance.now();
    const values = ndcg(await rankerScores(ranker, examples));
    rows.push({
      name: `${ranker.kind} ${ranker.version}`,
      kind: ranker.kind,
      ndcg: values,
      lift: lift(values),
      scoreMs: performance.now() - started,
    });
  }
  const popularity = ndcg(popularityScores(examples));
  rows.push({
    name: 'popularity',
    kind: 'popularity',
    ndcg: popularity,
    lift: lift(popularity),
    scoreMs: 0,
  });
  let positives = 0;
  for (let r = 0; r < examples.rows; r++) if ((examples.labels[r] as number) > 0) positives++;
  return { ks, queries: examples.groups.length, rows: examples.rows, positives, contenders: rows };
}

/** The table `recsys eval ranking` prints: one line per contender, NDCG and lift at each k. */
export function formatRankingTable(evaluation: RankingEvaluation): string {
  const names = evaluation.contenders.map((row) => row.name);
  const width = Math.max(8, ...names.map((name) => name.length));
  const header = [
    'ranking'.padEnd(width),
    ...evaluation.ks.flatMap((k) => [`NDCG@${k}`.padStart(8), '× retrieval'.padStart(12)]),
  ].join('  ');
  const lines = evaluation.contenders.map((row) =>
    [
      row.name.padEnd(width),
      ...row.ndcg.flatMap((value, i) => [
        value.toFixed(4).padStart(8),
        (row.lift[i] as number).toFixed(3).padStart(12),
      ]),
    ].join('  '),
  );
  return `${[header, ...lines].join('\n')}\n`;
}
