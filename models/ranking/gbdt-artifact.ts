/**
 * The artifact folder of a GBDT ranker, `<root>/<version>/`:
 *
 *   model.txt       the ensemble in LightGBM's text format: it opens in LightGBM itself
 *                   (`lightgbm task=predict input_model=model.txt`, `lgb.Booster(model_file=…)`)
 *   model.onnx      the same ensemble as one `ai.onnx.ml` TreeEnsembleRegressor, for any ONNX
 *                   runtime: input `features` float32 [N, F], output `score` float32 [N, 1]
 *   manifest.json   kind, version, the ranking schema (the F columns, by name), training options
 *                   and history, metrics, the data set and the retrieval model it was trained on,
 *                   and the SHA-256 of both model files
 *
 * model.txt is the source of truth: serving parses it and builds its scorer from it (the ONNX
 * graph is a deterministic function of it). Both files are checked against the manifest's hashes
 * on load, so a folder edited by hand or half-copied is refused rather than served. The version is
 * the UTC time plus a short hash of model.txt, and the folder is written under a temporary name and
 * renamed, so a reader never sees half of one.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeArtifactFolder } from '../common/artifact-folder.js';

import { formatLightGbmModel, parseLightGbmModel } from '../gbdt/lightgbm-format.js';
import type { GbdtModel } from '../gbdt/model.js';
import {
  GBDT_ONNX_INPUT,
  GBDT_ONNX_ML_OPSET,
  GBDT_ONNX_OUTPUT,
  exportGbdtOnnx,
} from '../gbdt/onnx-export.js';
import type { GbdtHistory, ResolvedGbdtOptions } from '../gbdt/train.js';
import { artifactVersion } from '../retrieval/artifact.js';
import { rankingSchemaFromJson, rankingSchemaJson } from './features.js';
import type { RankingFeatureSchema, RankingSchemaJson } from './features.js';

export const GBDT_RANKER_FORMAT = 'recsys-gbdt-ranker';
export const RANKER_MANIFEST_FILE = 'manifest.json';
export const GBDT_MODEL_FILE = 'model.txt';
export const GBDT_ONNX_FILE = 'model.onnx';

/** A ranker artifact that cannot be read, or does not fit the code or data it meets. */
export class RankerArtifactError extends Error {
  override readonly name = 'RankerArtifactError';
  readonly code = 'ranker_artifact_invalid';
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}

/**
 * Where a ranker's training rows came from, as both kinds of artifact record it (the DeepFM
 * manifest under `data`). Plain JSON.
 */
export interface RankerTrainingData {
  readonly dataset: {
    readonly name: string;
    readonly source: string;
    readonly fingerprint: string;
  };
  /** Training queries are before `cutoff` (epoch ms; null without a split). */
  readonly split: { readonly kind: 'temporal' | 'none'; readonly cutoff: number | null };
  /** The retrieval model that proposed the candidates and scored them. */
  readonly retrieval: { readonly version: string; readonly cutoff: number | null };
  /** How the examples were drawn, and how many. */
  readonly examples: Record<string, number | string | null>;
}

/** The training history of a GBDT ranker, as its manifest keeps it. */
export interface GbdtTrainingSummary {
  readonly metric: string | null;
  readonly bestIteration: number;
  readonly stoppedEarly: boolean;
  readonly usedFeatures: number;
  readonly seconds: number;
  /** The validation metric after each iteration (the first validation set). */
  readonly validCurve: readonly number[];
}

export interface GbdtRankerManifest {
  readonly format: typeof GBDT_RANKER_FORMAT;
  readonly formatVersion: 1;
  readonly kind: 'gbdt';
  readonly version: string;
  readonly createdAt: string;
  /** The columns of a feature row, in order. */
  readonly schema: RankingSchemaJson;
  readonly model: {
    readonly file: string;
    readonly sha256: string;
    readonly format: 'lightgbm-text';
    readonly objective: string;
    readonly trees: number;
  };
  readonly onnx: {
    readonly file: string;
    readonly sha256: string;
    readonly mlOpset: number;
    readonly input: string;
    readonly output: string;
    readonly width: number;
  };
  readonly training: {
    readonly options: Record<string, unknown>;
    readonly history: GbdtTrainingSummary | null;
  };
  /** Offline figures (validation NDCG and the like), as the trainer measured them. */
  readonly metrics: Record<string, unknown>;
  readonly data: RankerTrainingData | null;
}

export interface GbdtRankerArtifactInput {
  readonly model: GbdtModel;
  /** The columns the model reads: its feature names must be the schema's, in order. */
  readonly schema: RankingFeatureSchema;
  /** The resolved training options (a progress callback among them is left out). */
  readonly options?: ResolvedGbdtOptions | Record<string, unknown>;
  readonly history?: GbdtHistory;
  /** @default {} */
  readonly metrics?: Record<string, unknown>;
  /** @default null */
  readonly data?: RankerTrainingData;
  /** @default new Date() */
  readonly now?: Date;
}

/** The files of an artifact folder, by name, before anything is written. */
export interface BuiltGbdtRankerArtifact {
  readonly version: string;
  readonly manifest: GbdtRankerManifest;
  readonly files: ReadonlyMap<string, Uint8Array>;
}

export interface WrittenGbdtRankerArtifact {
  readonly dir: string;
  readonly version: string;
  readonly manifest: GbdtRankerManifest;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Throws `RankerArtifactError` at `where` unless the model reads exactly the schema's columns: the
 * same names in the same order (a model trained here names its features after the schema).
 */
function checkModelFitsSchema(model: GbdtModel, schema: RankingFeatureSchema, where: string): void {
  const names = model.featureNames;
  const same =
    model.maxFeatureIdx + 1 === schema.size &&
    names.length === schema.size &&
    names.every((name, i) => name === schema.names[i]);
  if (!same) {
    throw new RankerArtifactError(
      where,
      `the model's features (${names.join(', ')}) are not the schema's (${schema.names.join(', ')})`,
    );
  }
}

function summary(history: GbdtHistory): GbdtTrainingSummary {
  return {
    metric: history.metrics[history.metrics.length - 1] ?? null,
    bestIteration: history.bestIteration,
    stoppedEarly: history.stoppedEarly,
    usedFeatures: history.usedFeatures,
    seconds: history.seconds,
    validCurve: history.iterations.map((record) => {
      const values = record.valid[0] ?? [];
      return values[values.length - 1] ?? Number.NaN;
    }),
  };
}

/** Lays out the artifact of a trained model in memory: manifest, model.txt, model.onnx. */
export function buildGbdtRankerArtifact(input: GbdtRankerArtifactInput): BuiltGbdtRankerArtifact {
  const { model, schema } = input;
  checkModelFitsSchema(model, schema, 'model.featureNames');
  const now = input.now ?? new Date();
  const text = new TextEncoder().encode(formatLightGbmModel(model));
  const onnx = exportGbdtOnnx(model, { width: schema.size });
  const version = artifactVersion(now, [text]);
  const options: Record<string, unknown> = { ...(input.options ?? {}) };
  // A callback is no part of the recipe (and not JSON).
  delete options['onIteration'];
  const manifest: GbdtRankerManifest = {
    format: GBDT_RANKER_FORMAT,
    formatVersion: 1,
    kind: 'gbdt',
    version,
    createdAt: now.toISOString(),
    schema: rankingSchemaJson(schema),
    model: {
      file: GBDT_MODEL_FILE,
      sha256: sha256(text),
      format: 'lightgbm-text',
      objective: model.objective,
      trees: model.trees.length,
    },
    onnx: {
      file: GBDT_ONNX_FILE,
      sha256: sha256(onnx),
      mlOpset: GBDT_ONNX_ML_OPSET,
      input: GBDT_ONNX_INPUT,
      output: GBDT_ONNX_OUTPUT,
      width: schema.size,
    },
    training: {
      options,
      history: input.history === undefined ? null : summary(input.history),
    },
    metrics: input.metrics ?? {},
    data: input.data ?? null,
  };
  const files = new Map<string, Uint8Array>([
    [RANKER_MANIFEST_FILE, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`)],
    [GBDT_MODEL_FILE, text],
    [GBDT_ONNX_FILE, onnx],
  ]);
  return { version, manifest, files };
}

/**
 * Writes a versioned artifact folder under `root` (created if need be) and returns where it went.
 * Throws `RankerArtifactError` when the model's features are not the schema's.
 */
export async function writeGbdtRankerArtifact(
  root: string,
  input: GbdtRankerArtifactInput,
): Promise<WrittenGbdtRankerArtifact> {
  const { version, manifest, files } = buildGbdtRankerArtifact(input);
  const dir = await writeArtifactFolder(root, version, files);
  return { dir, version, manifest };
}

/** Reads and parses a ranker folder's manifest.json; throws `RankerArtifactError` naming it. */
export async function readRankerManifest(dir: string): Promise<Record<string, unknown>> {
  const path = join(dir, RANKER_MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new RankerArtifactError(path, 'cannot read the model manifest', { cause: err });
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (err) {
    throw new RankerArtifactError(path, 'is not valid JSON', { cause: err });
  }
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) {
    throw new RankerArtifactError(path, 'must hold a JSON object');
  }
  return manifest as Record<string, unknown>;
}

/**
 * The ranking schema a model recorded, rebuilt against the features this code computes. Throws
 * `RankerArtifactError` at `where` naming the feature that is unknown here, or the fingerprint that
 * changed (the model would be shown numbers it never learned from).
 */
export function recordedSchema(
  json: unknown,
  where: string,
  path = 'schema',
): RankingFeatureSchema {
  try {
    return rankingSchemaFromJson(json, path);
  } catch (err) {
    throw new RankerArtifactError(where, (err as Error).message, { cause: err });
  }
}

/** A GBDT ranker read back from its artifact folder. */
export interface LoadedGbdtRanker {
  readonly dir: string;
  readonly manifest: GbdtRankerManifest;
  readonly model: GbdtModel;
  readonly schema: RankingFeatureSchema;
}

async function readChecked(dir: string, file: string, expected: string): Promise<Uint8Array> {
  const path = join(dir, file);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new RankerArtifactError(path, 'cannot read the file', { cause: err });
  }
  if (sha256(bytes) !== expected) {
    throw new RankerArtifactError(path, 'does not match the SHA-256 its manifest records');
  }
  return bytes;
}

/**
 * Reads a folder written by {@link writeGbdtRankerArtifact}: checks the manifest, the schema
 * against the features this code computes, both files against their hashes, and parses model.txt.
 * Rejects with `RankerArtifactError` naming the file and what is wrong.
 */
export async function readGbdtRankerArtifact(dir: string): Promise<LoadedGbdtRanker> {
  const raw = await readRankerManifest(dir);
  const where = join(dir, RANKER_MANIFEST_FILE);
  if (raw['format'] !== GBDT_RANKER_FORMAT || raw['formatVersion'] !== 1) {
    throw new RankerArtifactError(where, `is not a ${GBDT_RANKER_FORMAT} version 1 manifest`);
  }
  const manifest = raw as unknown as GbdtRankerManifest;
  if (typeof manifest.model?.file !== 'string' || typeof manifest.onnx?.file !== 'string') {
    throw new RankerArtifactError(where, 'names no model.file or onnx.file');
  }
  const schema = recordedSchema(manifest.schema, where);
  const text = await readChecked(dir, manifest.model.file, manifest.model.sha256);
  await readChecked(dir, manifest.onnx.file, manifest.onnx.sha256);
  const modelPath = join(dir, manifest.model.file);
  let model: GbdtModel;
  try {
    model = parseLightGbmModel(new TextDecoder().decode(text));
  } catch (err) {
    throw new RankerArtifactError(modelPath, (err as Error).message, { cause: err });
  }
  checkModelFitsSchema(model, schema, modelPath);
  return { dir, manifest, model, schema };
}
