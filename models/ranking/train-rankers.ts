/**
 * `recsys train ranker` as a function: point-in-time examples from the training part of the log,
 * the last slice of training time held out for early stopping, a GBDT (LambdaRank) and/or a
 * DeepFM trained on them, each checked on onnxruntime against its TypeScript self and written as
 * a versioned artifact folder that {@link loadRanker} opens and must score exactly as the trained
 * model did.
 *
 * Time, from the first event to the cutoff (the test part starts there and is never read):
 *
 *   first event ─── training queries ───┤ validStart ─── validation queries ───┤ cutoff
 *
 * A training query's labels (what the user did within the horizon) end before `validStart`, and a
 * validation query's before the cutoff: no example reads an event of a later part.
 */
import { rm } from 'node:fs/promises';

import { ConfigError } from '../../runtime/errors.js';
import type { FeatureDefinitions } from '../../runtime/features/types.js';
import { Rng } from '../data/rng.js';
import type { Dataset } from '../data/types.js';
import { writeDeepFmArtifact } from '../deepfm/artifact.js';
import type { DeepFmOptions } from '../deepfm/model.js';
import { exportDeepFm } from '../deepfm/onnx-export.js';
import { checkDeepFmExport } from '../deepfm/onnx-runtime.js';
import type { DeepFmExportCheck } from '../deepfm/onnx-runtime.js';
import { trainDeepFm } from '../deepfm/train.js';
import type { DeepFmEpoch } from '../deepfm/train.js';
import { ndcgAtK, queryBoundaries } from '../gbdt/metrics.js';
import { compileGbdt, predictRaw } from '../gbdt/predict.js';
import { GbdtObjective, resolveGbdtOptions, trainGbdt } from '../gbdt/train.js';
import type { GbdtIterationRecord, GbdtTrainOptions } from '../gbdt/train.js';
import type { RetrievalScorer } from '../retrieval/scorer.js';
import { buildRankingExamples } from './examples.js';
import type { RankingExamples, RankingExamplesStats, RankingQueryPoint } from './examples.js';
import { RANKING_FEATURES, rankingSchema, rankingSchemaJson } from './features.js';
import type { RankingFeatureSchema } from './features.js';
import { writeGbdtRankerArtifact } from './gbdt-artifact.js';
import type { RankerTrainingData } from './gbdt-artifact.js';
import { DEEPFM_RANKING_SCHEMA_KEY, GbdtRanker, RankerKind, loadRanker } from './ranker.js';
import type { RankerModel } from './ranker.js';
import { evaluateRanking, projectRows } from './ranking-eval.js';

const DAY_MS = 86_400_000;

/** How training query points are drawn. A const object plus a same-named type. */
export const QuerySampling = {
  /**
   * Every user with events in the window takes a turn, one of their events at a time (in a
   * seeded random order), until the count is reached: each user weighs about the same.
   */
  Users: 'users',
  /** Uniformly over the window's events: a user weighs as much as they are active. */
  Events: 'events',
} as const;
export type QuerySampling = (typeof QuerySampling)[keyof typeof QuerySampling];

/**
 * `count` query points from the events with times in `[from, until]`, user by user (see
 * {@link QuerySampling.Users}): the users in a seeded random order take turns, each giving one of
 * their events (a seeded random order of their own) per round, until `count` points are drawn or
 * every event is. A (user, time) drawn twice is kept once. Sorted by time, then user.
 */
export function userBalancedQueryPoints(
  dataset: Dataset,
  count: number,
  from: number,
  until: number,
  seed: number,
): RankingQueryPoint[] {
  const { ts, user } = dataset.events;
  const lo = lowerBound(ts, dataset.events.length, from);
  const hi = lowerBound(ts, dataset.events.length, until, true);
  const users = dataset.users.ids.length;
  // The window's events of each user: user u's are byUser[offsets[u] .. offsets[u + 1]).
  const offsets = new Int32Array(users + 1);
  for (let e = lo; e < hi; e++) offsets[(user[e] as number) + 1]!++;
  for (let u = 0; u < users; u++) offsets[u + 1]! += offsets[u] as number;
  const fill = offsets.slice(0, users);
  const byUser = new Int32Array(Math.max(0, hi - lo));
  for (let e = lo; e < hi; e++) byUser[fill[user[e] as number]!++] = e;
  const rng = new Rng(seed, 13);
  const shuffle = (values: Int32Array): void => {
    for (let i = values.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const tmp = values[i] as number;
      values[i] = values[j] as number;
      values[j] = tmp;
    }
  };
  for (let u = 0; u < users; u++) {
    shuffle(byUser.subarray(offsets[u], offsets[u + 1]));
  }
  const active = Int32Array.from({ length: users }, (_, u) => u).filter(
    (u) => (offsets[u + 1] as number) > (offsets[u] as number),
  );
  shuffle(active);
  const seen = new Set<string>();
  const points: RankingQueryPoint[] = [];
  for (let round = 0, any = true; any && points.length < count; round++) {
    any = false;
    for (let k = 0; k < active.length && points.length < count; k++) {
      const u = active[k] as number;
      const at = (offsets[u] as number) + round;
      if (at >= (offsets[u + 1] as number)) continue;
      any = true;
      const timeMs = ts[byUser[at] as number] as number;
      const key = `${u}@${timeMs}`;
      if (seen.has(key)) continue;
      seen.add(key);
      points.push({ user: u, timeMs });
    }
  }
  return points.sort((a, b) => a.timeMs - b.timeMs || a.user - b.user);
}

/** First position with `ts >= value` (or `ts > value` when `after`) in a sorted prefix. */
function lowerBound(ts: ArrayLike<number>, n: number, value: number, after = false): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const t = ts[mid] as number;
    if (after ? t > value : t >= value) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The features a ranker learns from unless told otherwise: every ranking feature but the raw
 * counts of an item's use (`item_log_interactions`, `item_log_interactions_30d`, `item_log_users`).
 * Those grow with the catalogue's age, so a log spanning years shows the test period values the
 * training period never had; the rank, share and rate features say the same without drifting.
 */
export const DEFAULT_RANKER_FEATURES: readonly string[] = Object.freeze(
  RANKING_FEATURES.map((feature) => feature.name).filter(
    (name) =>
      !['item_log_interactions', 'item_log_interactions_30d', 'item_log_users'].includes(name),
  ),
);

/**
 * The GBDT recipe of a ranker unless told otherwise: LambdaRank on NDCG@10, 150 trees at a
 * learning rate of 0.03, small, well-filled leaves (7 leaves of at least 500 rows, L2 10, 70 % of
 * the features and rows per tree), and no early stopping. A ranking log's signal beyond the
 * retrieval score is weak and its users are few: on ml-latest-small (about 500 training users)
 * 31-leaf trees learned the training users rather than the task. Its validation part (the last
 * fifth of the training time, a few hundred queries) is too small and too unlike the later test
 * part to pick the number of trees: early stopping on it kept 1 to 90 trees from one seed to the
 * next, and the test lift followed the seed, not the validation figure. A fixed, slow ensemble of
 * strongly regularised trees kept a lift over the retrieval order on every seed there and on the
 * synthetic world (figures in models/ranking/README.md); pass `earlyStoppingRounds` to stop on
 * the validation part instead.
 */
export const DEFAULT_RANKER_GBDT: Readonly<GbdtTrainOptions> = Object.freeze({
  objective: GbdtObjective.Lambdarank,
  numIterations: 150,
  learningRate: 0.03,
  numLeaves: 7,
  minDataInLeaf: 500,
  lambdaL2: 10,
  featureFraction: 0.7,
  baggingFraction: 0.7,
  baggingFreq: 1,
  earlyStoppingRounds: 0,
  evalAt: Object.freeze([10]),
});

/** The exported graph disagrees with the trained model, or the written folder with either. */
export class RankerExportCheckError extends Error {
  override readonly name = 'RankerExportCheckError';
  readonly code = 'ranker_export_mismatch';
  constructor(
    readonly kind: RankerKind,
    readonly maxAbsDiff: number,
    readonly tolerance: number,
    what: string,
  ) {
    super(
      `${kind}: ${what} (max |Δ| ${maxAbsDiff.toExponential(2)}, tolerance ${tolerance.toExponential(0)})`,
    );
  }
}

export interface RankerPipelineOptions {
  readonly dataset: Dataset;
  /** Proposes and scores the candidates (the two-tower model). */
  readonly retrieval: RetrievalScorer;
  /** What the artifacts record about the retrieval model. */
  readonly retrievalInfo: { readonly version: string; readonly cutoff: number | null };
  /** The feature views (`configs/features.yaml`). */
  readonly definitions: FeatureDefinitions;
  /** The stream views' windows (`events.windows_minutes`). @default [5, 30] */
  readonly windowsMinutes?: readonly number[];
  /** The examples' columns. @default rankingSchema(): every ranking feature */
  readonly schema?: RankingFeatureSchema;
  /**
   * The columns the rankers learn from and are served, a subset of {@link schema}'s.
   * @default rankingSchema(DEFAULT_RANKER_FEATURES)
   */
  readonly modelSchema?: RankingFeatureSchema;
  /** @default ['gbdt'] */
  readonly kinds?: readonly RankerKind[];
  /** Nothing at or after it is read (the test part). @default null: the whole log */
  readonly cutoff?: number | null;
  /** Query points, training and validation together. @default 4000 */
  readonly queries?: number;
  /** How the training and validation query points are drawn. @default 'users' */
  readonly sampling?: QuerySampling;
  /** Candidates per query. @default 100 */
  readonly candidates?: number;
  /** Labels: the user's events within this long after the query. @default 86400000 (a day) */
  readonly horizonMs?: number;
  /** Share of the training events (the latest) whose queries validate. @default 0.2 */
  readonly validFraction?: number;
  /** Items of the user's history given to the retrieval model. @default 50 */
  readonly historyLength?: number;
  /** Seeds the query sample, the GBDT and the DeepFM. @default 42 */
  readonly seed?: number;
  /**
   * Queries scored per retrieval call, as of the earliest of their times; exact for a scorer that
   * does not depend on the time (the two-tower model). @default 256
   */
  readonly retrievalBatch?: number;
  /** Over {@link DEFAULT_RANKER_GBDT}. */
  readonly gbdt?: GbdtTrainOptions;
  /** Over the DeepFM defaults. */
  readonly deepfm?: DeepFmOptions;
  /** Where each kind's versioned folders go. */
  readonly outRoot: { readonly gbdt: string; readonly deepfm: string };
  /** Progress lines (stderr in the command). */
  readonly log?: (line: string) => void;
  /** Progress of example building: `done` of `total` queries of the named part. */
  readonly onExamples?: (part: 'training' | 'validation', done: number, total: number) => void;
  /** @default new Date() */
  readonly now?: Date;
}

export interface ResolvedRankerPipelineOptions {
  readonly schema: RankingFeatureSchema;
  readonly modelSchema: RankingFeatureSchema;
  readonly kinds: readonly RankerKind[];
  readonly cutoff: number | null;
  readonly queries: number;
  readonly sampling: QuerySampling;
  readonly candidates: number;
  readonly horizonMs: number;
  readonly validFraction: number;
  readonly historyLength: number;
  readonly seed: number;
  readonly retrievalBatch: number;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(name, `must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** Applies the defaults and validates once; a bad option throws `ConfigError` naming it. */
export function resolveRankerPipelineOptions(
  options: RankerPipelineOptions,
): ResolvedRankerPipelineOptions {
  const kinds = options.kinds ?? [RankerKind.Gbdt];
  const known: readonly string[] = Object.values(RankerKind);
  if (kinds.length === 0 || kinds.some((kind) => !known.includes(kind))) {
    throw new ConfigError('kinds', `must list some of ${known.join(', ')}`);
  }
  const validFraction = options.validFraction ?? 0.2;
  if (!(validFraction > 0 && validFraction < 1)) {
    throw new ConfigError('validFraction', `must be in (0, 1), got ${String(validFraction)}`);
  }
  const cutoff = options.cutoff ?? null;
  if (cutoff !== null && !Number.isFinite(cutoff)) {
    throw new ConfigError('cutoff', 'must be a finite epoch-ms time or null');
  }
  const seed = options.seed ?? 42;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ConfigError('seed', 'must be a non-negative integer');
  }
  const queries = positiveInteger(options.queries ?? 4000, 'queries');
  const sampling = options.sampling ?? QuerySampling.Users;
  if (sampling !== QuerySampling.Users && sampling !== QuerySampling.Events) {
    throw new ConfigError('sampling', `must be users or events, got ${String(sampling)}`);
  }
  if (queries < 2) throw new ConfigError('queries', 'must be at least 2 (training and validation)');
  const schema = options.schema ?? rankingSchema();
  const modelSchema =
    options.modelSchema ??
    rankingSchema(DEFAULT_RANKER_FEATURES.filter((name) => schema.names.includes(name)));
  const missing = modelSchema.names.find((name) => !schema.names.includes(name));
  if (missing !== undefined) {
    throw new ConfigError('modelSchema', `${missing} is not a column of the examples' schema`);
  }
  return {
    schema,
    modelSchema,
    kinds: [...new Set(kinds)],
    cutoff,
    queries,
    sampling,
    candidates: positiveInteger(options.candidates ?? 100, 'candidates'),
    horizonMs: positiveInteger(options.horizonMs ?? DAY_MS, 'horizonMs'),
    validFraction,
    historyLength: positiveInteger(options.historyLength ?? 50, 'historyLength'),
    seed,
    retrievalBatch: positiveInteger(options.retrievalBatch ?? 256, 'retrievalBatch'),
  };
}

/** Where the pipeline drew its examples from, and what it got. */
export interface RankerExamplesSummary {
  readonly from: number;
  readonly validStart: number;
  readonly to: number;
  readonly training: RankingExamplesStats & { readonly rows: number };
  readonly validation: RankingExamplesStats & { readonly rows: number };
}

/** One trained ranker. */
export interface TrainedRanker {
  readonly kind: RankerKind;
  readonly dir: string;
  readonly version: string;
  /** NDCG@10 on the validation queries (NaN without any). */
  readonly validNdcg: number;
  readonly seconds: number;
  /** Trees kept (GBDT) or the best epoch (DeepFM). */
  readonly rounds: number;
  readonly stoppedEarly: boolean;
  /** onnxruntime against the TypeScript model on the validation rows. */
  readonly exportMaxAbsDiff: number;
}

export interface RankerPipelineResult {
  readonly examples: RankerExamplesSummary;
  /** NDCG@10 of the retrieval order and of the popularity order on the validation queries. */
  readonly validRetrievalNdcg: number;
  readonly validPopularityNdcg: number;
  readonly rankers: readonly TrainedRanker[];
  /** Seconds building the examples (both parts). */
  readonly examplesSeconds: number;
}

/** Rows of the validation part handed to the export checks (the first ones). */
const CHECK_ROWS = 2048;
/** onnxruntime sums the trees in float32: its raw scores may differ from float64 by about this. */
const GBDT_ONNX_TOLERANCE = 1e-4;

/** The first `n` rows of the examples (whole or not), for checks. */
function sampleRows(examples: RankingExamples, n: number): Float32Array {
  return examples.features.subarray(0, Math.min(n, examples.rows) * examples.schema.size);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (!(d <= max)) max = d;
  }
  return max;
}

/**
 * Opens the folder just written and checks that it scores the sample exactly as the trained model
 * does in TypeScript; removes the folder and throws {@link RankerExportCheckError} otherwise.
 */
async function checkWritten(
  kind: RankerKind,
  dir: string,
  rows: Float32Array,
  expected: Float32Array,
): Promise<void> {
  const ranker: RankerModel = await loadRanker(dir, { onnxMinRows: Infinity });
  let diff: number;
  try {
    const n = rows.length / ranker.schema.size;
    diff = maxAbsDiff(await ranker.score(rows, n), expected);
  } finally {
    await ranker.close();
  }
  if (diff !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new RankerExportCheckError(kind, diff, 0, `the folder written does not score as trained`);
  }
}

/** Trains the rankers the options ask for and writes their artifacts; see the top of the file. */
export async function trainRankers(options: RankerPipelineOptions): Promise<RankerPipelineResult> {
  const o = resolveRankerPipelineOptions(options);
  const log = options.log ?? (() => undefined);
  const { dataset } = options;
  const { events } = dataset;
  // The training part: the events before the cutoff.
  const end = o.cutoff === null ? events.length : lowerBound(events.ts, events.length, o.cutoff);
  if (end < 2) throw new ConfigError('cutoff', 'leaves fewer than two training events');
  const from = events.ts[0] as number;
  const to = o.cutoff ?? (events.ts[events.length - 1] as number) + 1;
  const validStart = events.ts[Math.floor(end * (1 - o.validFraction))] as number;
  if (validStart - o.horizonMs <= from || to - o.horizonMs <= validStart) {
    throw new ConfigError(
      'horizonMs',
      `leaves no query time in the training part or in the validation part (${new Date(from).toISOString()} .. ${new Date(validStart).toISOString()} .. ${new Date(to).toISOString()}); shorten it`,
    );
  }
  const validQueries = Math.max(1, Math.round(o.queries * o.validFraction));
  const common = {
    dataset,
    retrieval: options.retrieval,
    definitions: options.definitions,
    schema: o.schema,
    candidates: o.candidates,
    horizonMs: o.horizonMs,
    historyLength: o.historyLength,
    seed: o.seed,
    retrievalBatch: o.retrievalBatch,
    ...(options.windowsMinutes === undefined ? {} : { windowsMinutes: options.windowsMinutes }),
  };
  const examplesStarted = performance.now();
  log(
    `examples: ${o.queries - validQueries} training queries from ${iso(from)}, ${validQueries} validation queries from ${iso(validStart)}, up to ${iso(to)}, drawn by ${o.sampling}; ${o.candidates} candidates each, labels within ${o.horizonMs / 3_600_000} h`,
  );
  // Query times leave each label window inside its part.
  const points = (
    start: number,
    stop: number,
    count: number,
    seed: number,
  ): { points?: RankingQueryPoint[] } =>
    o.sampling === QuerySampling.Users
      ? { points: userBalancedQueryPoints(dataset, count, start, stop - o.horizonMs, seed) }
      : {};
  const train = await buildRankingExamples({
    ...common,
    from,
    to: validStart,
    queries: o.queries - validQueries,
    ...points(from, validStart, o.queries - validQueries, o.seed),
    onProgress: (done, total) => options.onExamples?.('training', done, total),
  });
  const valid = await buildRankingExamples({
    ...common,
    from: validStart,
    to,
    queries: validQueries,
    seed: o.seed + 1,
    ...points(validStart, to, validQueries, o.seed + 1),
    onProgress: (done, total) => options.onExamples?.('validation', done, total),
  });
  const examplesSeconds = (performance.now() - examplesStarted) / 1000;
  log(
    `examples: ${train.stats.groups} training queries (${train.rows} rows, ${train.stats.positives} positive), ${valid.stats.groups} validation queries (${valid.rows} rows) in ${examplesSeconds.toFixed(1)} s`,
  );
  if (train.stats.groups === 0) {
    throw new ConfigError(
      'queries',
      'no training query has a candidate with a positive label: draw more queries, more candidates or a longer horizon',
    );
  }
  const hasValid = valid.stats.groups > 0;
  if (!hasValid) log('no validation query has a positive label: training without early stopping');

  const baseline = hasValid ? await evaluateRanking({ examples: valid, rankers: [] }) : undefined;
  const validRetrievalNdcg = baseline?.contenders[0]?.ndcg[0] ?? Number.NaN;
  const validPopularityNdcg = baseline?.contenders[1]?.ndcg[0] ?? Number.NaN;
  const summary: RankerExamplesSummary = {
    from,
    validStart,
    to,
    training: { ...train.stats, rows: train.rows },
    validation: { ...valid.stats, rows: valid.rows },
  };
  const data: RankerTrainingData = {
    dataset: {
      name: dataset.manifest.name,
      source: dataset.manifest.source,
      fingerprint: dataset.manifest.fingerprint,
    },
    split: { kind: o.cutoff === null ? 'none' : 'temporal', cutoff: o.cutoff },
    retrieval: { ...options.retrievalInfo },
    examples: {
      from,
      validStart,
      to,
      sampling: o.sampling,
      candidates: o.candidates,
      horizonMs: o.horizonMs,
      historyLength: o.historyLength,
      seed: o.seed,
      trainingQueries: train.stats.groups,
      trainingRows: train.rows,
      trainingPositives: train.stats.positives,
      validationQueries: valid.stats.groups,
      validationRows: valid.rows,
      validationPositives: valid.stats.positives,
    },
  };
  const now = options.now ?? new Date();
  // The rankers see the model's columns; the baselines above read the examples' own.
  const modelTrain = projectExamples(train, o.modelSchema);
  const modelValid = hasValid ? projectExamples(valid, o.modelSchema) : undefined;
  const rankers: TrainedRanker[] = [];
  for (const kind of o.kinds) {
    rankers.push(
      kind === RankerKind.Gbdt
        ? await trainGbdtRanker(options, o, modelTrain, modelValid, data, now, log)
        : await trainDeepFmRanker(options, o, modelTrain, modelValid, data, now, log),
    );
  }
  return {
    examples: summary,
    validRetrievalNdcg,
    validPopularityNdcg,
    rankers,
    examplesSeconds,
  };
}

/** The examples with only `schema`'s columns, in its order. */
function projectExamples(examples: RankingExamples, schema: RankingFeatureSchema): RankingExamples {
  return { ...examples, schema, features: projectRows(examples, schema) };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

async function trainGbdtRanker(
  options: RankerPipelineOptions,
  o: ResolvedRankerPipelineOptions,
  train: RankingExamples,
  valid: RankingExamples | undefined,
  data: RankerTrainingData,
  now: Date,
  log: (line: string) => void,
): Promise<TrainedRanker> {
  const schema = o.modelSchema;
  const recipe: GbdtTrainOptions = {
    ...DEFAULT_RANKER_GBDT,
    seed: o.seed,
    ...options.gbdt,
    ...(valid === undefined ? { earlyStoppingRounds: 0 } : {}),
  };
  const resolved = resolveGbdtOptions(recipe);
  log(
    `gbdt: ${resolved.numIterations} trees at most, ${resolved.numLeaves} leaves, learning rate ${resolved.learningRate}, min ${resolved.minDataInLeaf} rows a leaf, early stopping ${resolved.earlyStoppingRounds}`,
  );
  const every = Math.max(1, Math.round(resolved.numIterations / 10));
  const result = trainGbdt(
    {
      train: {
        features: train.features,
        numFeatures: schema.size,
        labels: train.labels,
        groups: train.groups,
        featureNames: schema.names,
      },
      ...(valid === undefined
        ? {}
        : {
            valid: [
              {
                features: valid.features,
                numFeatures: schema.size,
                labels: valid.labels,
                groups: valid.groups,
              },
            ],
          }),
    },
    {
      ...recipe,
      onIteration: (record: GbdtIterationRecord) => {
        if (record.iteration % every !== 0) return;
        const metric = record.valid[0]?.[record.valid[0].length - 1];
        log(
          `gbdt: ${record.iteration} trees${metric === undefined ? '' : `, validation NDCG@10 ${metric.toFixed(4)}`} (${record.seconds.toFixed(1)} s)`,
        );
      },
    },
  );
  const { model, history } = result;
  log(
    `gbdt: kept ${history.bestIteration} trees${history.stoppedEarly ? ' (early stopping)' : ''} in ${history.seconds.toFixed(1)} s`,
  );
  const checkRows = valid ?? train;
  const sample = sampleRows(checkRows, CHECK_ROWS);
  const n = sample.length / schema.size;
  const expected = new Float64Array(n);
  predictRaw(compileGbdt(model), sample, schema.size, expected);
  // onnxruntime on every batch, against the float64 TypeScript walk.
  const onnx = await GbdtRanker.create(model, schema, 'export-check', { onnxMinRows: 1 });
  let exportDiff: number;
  try {
    exportDiff = maxAbsDiff(await onnx.score(sample, n), expected);
  } finally {
    await onnx.close();
  }
  if (!(exportDiff <= GBDT_ONNX_TOLERANCE)) {
    throw new RankerExportCheckError(
      RankerKind.Gbdt,
      exportDiff,
      GBDT_ONNX_TOLERANCE,
      'onnxruntime does not reproduce the trained ensemble',
    );
  }
  const validNdcg =
    valid === undefined
      ? Number.NaN
      : ndcg10(valid, predictRaw(compileGbdt(model), valid.features, schema.size));
  const written = await writeGbdtRankerArtifact(options.outRoot.gbdt, {
    model,
    schema,
    options: resolved,
    history,
    metrics: { validNdcg10: validNdcg, exportMaxAbsDiff: exportDiff },
    data,
    now,
  });
  await checkWritten(RankerKind.Gbdt, written.dir, sample, Float32Array.from(expected));
  return {
    kind: RankerKind.Gbdt,
    dir: written.dir,
    version: written.version,
    validNdcg,
    seconds: history.seconds,
    rounds: history.bestIteration,
    stoppedEarly: history.stoppedEarly,
    exportMaxAbsDiff: exportDiff,
  };
}

async function trainDeepFmRanker(
  options: RankerPipelineOptions,
  o: ResolvedRankerPipelineOptions,
  train: RankingExamples,
  valid: RankingExamples | undefined,
  data: RankerTrainingData,
  now: Date,
  log: (line: string) => void,
): Promise<TrainedRanker> {
  const schema = o.modelSchema;
  const recipe: DeepFmOptions = { seed: o.seed, ...options.deepfm };
  const started = performance.now();
  const trained = trainDeepFm(
    {
      schema: schema.features,
      train: { features: train.features, labels: train.labels, groups: train.groups },
      ...(valid === undefined
        ? {}
        : {
            validation: { features: valid.features, labels: valid.labels, groups: valid.groups },
          }),
    },
    valid === undefined ? { ...recipe, earlyStoppingRounds: 0 } : recipe,
    {
      onEpoch: (epoch: DeepFmEpoch) =>
        log(
          `deepfm: epoch ${epoch.epoch}, loss ${epoch.loss.toFixed(4)}${epoch.validNdcg === null ? '' : `, validation NDCG@${recipe.ndcgAt ?? 10} ${epoch.validNdcg.toFixed(4)}`} (${epoch.seconds.toFixed(1)} s)`,
        ),
    },
  );
  const seconds = (performance.now() - started) / 1000;
  const { report } = trained;
  log(
    `deepfm: kept epoch ${report.bestEpoch} of ${report.epochs.length}${report.stoppedEarly ? ' (early stopping)' : ''} in ${seconds.toFixed(1)} s`,
  );
  const sample = sampleRows(valid ?? train, CHECK_ROWS);
  const onnx = exportDeepFm(trained.model);
  const check: DeepFmExportCheck = await checkDeepFmExport({
    model: trained.model,
    onnx,
    features: sample,
  });
  if (!check.passed) {
    throw new RankerExportCheckError(
      RankerKind.DeepFm,
      check.maxAbsDiff,
      check.tolerance,
      'onnxruntime does not reproduce the trained model',
    );
  }
  const validNdcg =
    valid === undefined ? Number.NaN : ndcg10(valid, trained.model.score(valid.features));
  const input = {
    trained,
    onnx,
    exportCheck: check,
    metrics: { validNdcg10: validNdcg },
    data: { ...data, [DEEPFM_RANKING_SCHEMA_KEY]: rankingSchemaJson(schema) },
    now,
  };
  const written = await writeDeepFmArtifact(options.outRoot.deepfm, input);
  await checkWritten(RankerKind.DeepFm, written.dir, sample, trained.model.score(sample));
  return {
    kind: RankerKind.DeepFm,
    dir: written.dir,
    version: written.version,
    validNdcg,
    seconds,
    rounds: report.bestEpoch,
    stoppedEarly: report.stoppedEarly,
    exportMaxAbsDiff: check.maxAbsDiff,
  };
}

/** NDCG@10 of the examples' queries ordered by `scores`, as LightGBM defines it. */
function ndcg10(examples: RankingExamples, scores: ArrayLike<number>): number {
  return ndcgAtK(examples.labels, scores, queryBoundaries(examples.groups), [10])[0] as number;
}
