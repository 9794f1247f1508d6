/**
 * The serving contract of a ranker, whichever model is behind it: a schema (the F ranking
 * features a row holds, in order) and `score(rows, n)`, larger is better. The GBDT and the DeepFM
 * ranker both meet it, so the ranker actor, the offline evaluation and the experiments treat them
 * alike, and {@link loadRanker} opens either kind of artifact folder by what its manifest says.
 *
 * Loading checks the recorded schema against the features this code computes
 * (`rankingSchemaFromJson`): a model trained on a feature that no longer exists, or whose meaning
 * changed, is refused at start-up, naming the feature, instead of being shown numbers it never
 * learned from.
 *
 * Both kinds score a batch on whichever path is faster for its size: the TypeScript evaluator for
 * a few rows (no call overhead), onnxruntime-node for more. This module loads onnxruntime-node: use
 * it on the main thread of a process only (the native addon has crashed processes when loaded in
 * several worker threads); for parallelism, raise `intraOpThreads`.
 */
import { join } from 'node:path';

import { BadRequestError, ConfigError, UnavailableError } from '../../runtime/errors.js';
import { DeepFmArtifactError, loadDeepFmArtifact } from '../deepfm/artifact.js';
import type { DeepFmManifest, LoadedDeepFm } from '../deepfm/artifact.js';
import type { DeepFmModel } from '../deepfm/model.js';
import { OnnxDeepFm } from '../deepfm/onnx-runtime.js';
import type { GbdtModel } from '../gbdt/model.js';
import { GbdtScorer, resolveServingOptions } from '../gbdt/scorer.js';
import type { RankingFeatureSchema } from './features.js';
import {
  GBDT_RANKER_FORMAT,
  RANKER_MANIFEST_FILE,
  RankerArtifactError,
  readGbdtRankerArtifact,
  readRankerManifest,
  recordedSchema,
} from './gbdt-artifact.js';

/** The kinds of ranker. A const object plus a same-named type. */
export const RankerKind = {
  Gbdt: 'gbdt',
  DeepFm: 'deepfm',
} as const;
export type RankerKind = (typeof RankerKind)[keyof typeof RankerKind];

/** What serving asks of a ranker. */
export interface RankerModel {
  readonly kind: RankerKind;
  /** The artifact version (`<UTC time>-<hash>`), or what the caller named an in-memory model. */
  readonly version: string;
  /** The columns of a row, in order. */
  readonly schema: RankingFeatureSchema;
  /**
   * Scores n rows (`n × schema.size` float32 values, row-major, NaN = missing; values past them
   * are ignored); larger is better. Rejects with `BadRequestError` naming `rows` or `n` for a
   * malformed batch, and with `UnavailableError` once closed.
   */
  score(rows: Float32Array, n: number): Promise<Float32Array>;
  /** Releases the onnxruntime session; later calls to `score` reject. */
  close(): Promise<void>;
}

/**
 * Where the DeepFM artifact of a ranker keeps the ranking schema it was trained on: under this key
 * of its manifest's `data` (the DeepFM manifest's own `schema` has only names, kinds and
 * cardinalities, not the feature version and fingerprint).
 */
export const DEEPFM_RANKING_SCHEMA_KEY = 'rankingSchema';

export interface LoadRankerOptions {
  /**
   * Batches of at least this many rows run on onnxruntime, smaller ones in TypeScript. `Infinity`
   * never loads onnxruntime; 1 sends every batch to it.
   * @default DEFAULT_ONNX_MIN_ROWS of the GBDT scorer (3)
   */
  readonly onnxMinRows?: number;
  /** onnxruntime's intra-op threads per scoring call. @default 1 */
  readonly intraOpThreads?: number;
}

export interface ResolvedLoadRankerOptions {
  readonly onnxMinRows: number;
  readonly intraOpThreads: number;
}

/** Applies the defaults; throws `ConfigError` naming a bad option. */
export function resolveLoadRankerOptions(
  options: LoadRankerOptions = {},
): ResolvedLoadRankerOptions {
  return resolveServingOptions(options);
}

/**
 * The rows of a batch, checked: `n` rows of `width` values from the start of `rows`. Throws
 * `BadRequestError` naming `rows` or `n`.
 */
function batchRows(rows: Float32Array, n: number, width: number): Float32Array {
  if (!(rows instanceof Float32Array)) {
    throw new BadRequestError('rows', 'must be a Float32Array of n × features values');
  }
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new BadRequestError('n', `must be a non-negative integer, got ${String(n)}`);
  }
  if (rows.length < n * width) {
    throw new BadRequestError(
      'rows',
      `holds ${rows.length} values; ${n} rows of ${width} features need ${n * width}`,
    );
  }
  return rows.length === n * width ? rows : rows.subarray(0, n * width);
}

/** A GBDT ranker: a tree ensemble over the schema's columns. */
export class GbdtRanker implements RankerModel {
  readonly kind = RankerKind.Gbdt;
  private closed = false;

  private constructor(
    readonly version: string,
    readonly schema: RankingFeatureSchema,
    readonly model: GbdtModel,
    private readonly scorer: GbdtScorer,
  ) {}

  /**
   * A ranker of an in-memory model whose features are the schema's columns (the same width; the
   * trainer names them after the schema). Loads onnxruntime unless `onnxMinRows` is Infinity.
   */
  static async create(
    model: GbdtModel,
    schema: RankingFeatureSchema,
    version: string,
    options: LoadRankerOptions = {},
  ): Promise<GbdtRanker> {
    const resolved = resolveLoadRankerOptions(options);
    if (model.maxFeatureIdx + 1 > schema.size) {
      throw new ConfigError(
        'model.maxFeatureIdx',
        `the model reads ${model.maxFeatureIdx + 1} features; the schema has ${schema.size}`,
      );
    }
    const scorer = await GbdtScorer.create(model, {
      width: schema.size,
      onnxMinRows: resolved.onnxMinRows,
      intraOpThreads: resolved.intraOpThreads,
    });
    return new GbdtRanker(version, schema, model, scorer);
  }

  async score(rows: Float32Array, n: number): Promise<Float32Array> {
    if (this.closed) throw new UnavailableError(`ranker gbdt ${this.version} is closed`);
    const batch = batchRows(rows, n, this.schema.size);
    if (n === 0) return new Float32Array(0);
    return Float32Array.from(await this.scorer.score(batch));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.scorer.close();
  }
}

/** A DeepFM ranker: the TypeScript model for small batches, its ONNX graph for the others. */
export class DeepFmRanker implements RankerModel {
  readonly kind = RankerKind.DeepFm;
  private closed = false;

  private constructor(
    readonly version: string,
    readonly schema: RankingFeatureSchema,
    readonly model: DeepFmModel,
    private readonly session: OnnxDeepFm | undefined,
    private readonly onnxMinRows: number,
  ) {}

  /**
   * A ranker of a model whose fields are the schema's columns. `onnx` is its graph (path of
   * `deepfm.onnx`, or the bytes); not loaded when `onnxMinRows` is Infinity. Throws `ConfigError`
   * when the model's fields are not the schema's.
   */
  static async create(
    model: DeepFmModel,
    onnx: string | Uint8Array,
    schema: RankingFeatureSchema,
    version: string,
    options: LoadRankerOptions = {},
  ): Promise<DeepFmRanker> {
    const resolved = resolveLoadRankerOptions(options);
    const mismatch = schemaMismatch(model, schema);
    if (mismatch !== undefined) throw new ConfigError('model.schema', mismatch);
    const session =
      resolved.onnxMinRows === Infinity
        ? undefined
        : await OnnxDeepFm.load(onnx, schema.size, {
            intraOpNumThreads: resolved.intraOpThreads,
          });
    return new DeepFmRanker(version, schema, model, session, resolved.onnxMinRows);
  }

  async score(rows: Float32Array, n: number): Promise<Float32Array> {
    if (this.closed) throw new UnavailableError(`ranker deepfm ${this.version} is closed`);
    const batch = batchRows(rows, n, this.schema.size);
    if (n === 0) return new Float32Array(0);
    if (this.session === undefined || n < this.onnxMinRows) return this.model.score(batch);
    return this.session.score(batch);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session?.close();
  }
}

/** Why the model's fields are not the schema's columns (name, kind, cardinality), if they are not. */
function schemaMismatch(model: DeepFmModel, schema: RankingFeatureSchema): string | undefined {
  const fields = model.schema;
  if (fields.length !== schema.size) {
    return `the model has ${fields.length} fields; the ranking schema has ${schema.size}`;
  }
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    const feature = schema.features[i];
    if (
      field === undefined ||
      feature === undefined ||
      field.name !== feature.name ||
      field.kind !== feature.kind ||
      (field.cardinality ?? null) !== (feature.cardinality ?? null)
    ) {
      return `field ${i} is ${field?.name ?? '?'} (${field?.kind ?? '?'}); the ranking schema has ${feature?.name ?? '?'} (${feature?.kind ?? '?'}) there`;
    }
  }
  return undefined;
}

/** The kind of ranker a folder holds, by its manifest; `RankerArtifactError` when it is neither. */
export async function rankerKindOf(dir: string): Promise<RankerKind> {
  const manifest = await readRankerManifest(dir);
  if (manifest['format'] === GBDT_RANKER_FORMAT) return RankerKind.Gbdt;
  if (manifest['format'] === 'recsys-deepfm-model' && manifest['model'] === 'deepfm') {
    return RankerKind.DeepFm;
  }
  throw new RankerArtifactError(
    join(dir, RANKER_MANIFEST_FILE),
    `is neither a GBDT (${GBDT_RANKER_FORMAT}) nor a DeepFM (recsys-deepfm-model) ranker manifest`,
  );
}

async function loadDeepFmRanker(dir: string, options: LoadRankerOptions): Promise<DeepFmRanker> {
  const where = join(dir, RANKER_MANIFEST_FILE);
  let loaded: LoadedDeepFm;
  try {
    loaded = await loadDeepFmArtifact(dir);
  } catch (err) {
    if (err instanceof DeepFmArtifactError) {
      throw new RankerArtifactError(err.path, err.message.slice(err.path.length + 2), {
        cause: err,
      });
    }
    throw err;
  }
  const manifest: DeepFmManifest = loaded.manifest;
  const recorded = manifest.data?.[DEEPFM_RANKING_SCHEMA_KEY];
  if (recorded === undefined) {
    throw new RankerArtifactError(
      where,
      `has no data.${DEEPFM_RANKING_SCHEMA_KEY}: the model was not trained on the ranking features`,
    );
  }
  const schema = recordedSchema(recorded, where, `data.${DEEPFM_RANKING_SCHEMA_KEY}`);
  const mismatch = schemaMismatch(loaded.model, schema);
  if (mismatch !== undefined) throw new RankerArtifactError(where, mismatch);
  return DeepFmRanker.create(loaded.model, loaded.onnxPath, schema, manifest.version, options);
}

/**
 * Opens a ranker artifact folder of either kind (`manifest.json` says which): a GBDT folder from
 * `writeGbdtRankerArtifact`, or a DeepFM folder whose manifest records the ranking schema under
 * `data.rankingSchema`. Rejects with `RankerArtifactError` naming the file for a folder that cannot
 * be read, a file that does not match its manifest, or a schema this code no longer computes (the
 * feature is named), and with `ConfigError` for bad options.
 */
export async function loadRanker(
  dir: string,
  options: LoadRankerOptions = {},
): Promise<RankerModel> {
  resolveLoadRankerOptions(options);
  const kind = await rankerKindOf(dir);
  if (kind === RankerKind.DeepFm) return loadDeepFmRanker(dir, options);
  const loaded = await readGbdtRankerArtifact(dir);
  return GbdtRanker.create(loaded.model, loaded.schema, loaded.manifest.version, options);
}
