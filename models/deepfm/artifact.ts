/**
 * The artifact folder of a trained DeepFM ranker, `<root>/<version>/`:
 *
 *   deepfm.onnx                the graph (input `features` [batch, F], output `score` [batch, 1])
 *   parameters/<name>.f32      every tensor as raw little-endian float32, row-major
 *   manifest.json              schema, architecture, signature, parameter shapes, training
 *                              options and report, metrics, export check
 *
 * The parameter files let TypeScript rebuild the model without parsing ONNX (the in-process
 * scorer for tiny batches, further training); the ONNX file serves. The version is the UTC time
 * plus a short hash of the files, and the folder is written under a temporary name and renamed,
 * so a reader never sees half of one.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeArtifactFolder } from '../common/artifact-folder.js';
import { artifactVersion } from '../retrieval/index.js';
import { DeepFmModel } from './model.js';
import type { DeepFmArchitecture, ResolvedDeepFmOptions } from './model.js';
import {
  DEEPFM_ONNX_FILE,
  DEEPFM_ONNX_OPSET,
  deepFmSignature,
  exportDeepFm,
} from './onnx-export.js';
import type { DeepFmSignature } from './onnx-export.js';
import type { DeepFmExportCheck } from './onnx-runtime.js';
import type { FeatureSchema } from './schema.js';
import type { DeepFmTrainReport, TrainedDeepFm } from './train.js';

export const DEEPFM_MANIFEST_FILE = 'manifest.json';
export const DEEPFM_PARAMETERS_DIR = 'parameters';

/** One parameter file. */
export interface DeepFmParameterFile {
  readonly name: string;
  /** Relative to the artifact folder. */
  readonly file: string;
  readonly dtype: 'float32';
  readonly byteOrder: 'little-endian';
  readonly shape: readonly number[];
}

export interface DeepFmManifest {
  readonly format: 'recsys-deepfm-model';
  readonly formatVersion: 1;
  readonly model: 'deepfm';
  readonly version: string;
  readonly createdAt: string;
  /** The columns of a feature row, in order. */
  readonly schema: FeatureSchema;
  readonly architecture: DeepFmArchitecture;
  readonly signature: DeepFmSignature;
  readonly onnx: { readonly file: string; readonly opset: number };
  readonly parameters: readonly DeepFmParameterFile[];
  readonly training: {
    readonly options: ResolvedDeepFmOptions;
    readonly report: DeepFmTrainReport;
  };
  /** Offline figures (test NDCG and the like), as the caller measured them. */
  readonly metrics: Record<string, unknown>;
  /** Where the training rows came from (data set name, fingerprint, split), as the caller says. */
  readonly data: Record<string, unknown>;
  readonly exportCheck: DeepFmExportCheck | null;
}

export interface DeepFmArtifactInput {
  readonly trained: TrainedDeepFm;
  /** The exported graph. @default exportDeepFm(trained.model) */
  readonly onnx?: Uint8Array;
  readonly exportCheck?: DeepFmExportCheck;
  /** @default {} */
  readonly metrics?: Record<string, unknown>;
  /** @default {} */
  readonly data?: Record<string, unknown>;
  /** @default new Date() */
  readonly now?: Date;
}

export interface WrittenDeepFmArtifact {
  readonly dir: string;
  readonly version: string;
  readonly manifest: DeepFmManifest;
}

export class DeepFmArtifactError extends Error {
  override readonly name = 'DeepFmArtifactError';
  readonly code = 'deepfm_artifact_invalid';
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}

function float32Bytes(values: Float32Array | Float64Array): Uint8Array {
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The files of an artifact folder, by path relative to it, before anything is written. */
export interface BuiltDeepFmArtifact {
  readonly version: string;
  readonly manifest: DeepFmManifest;
  readonly files: ReadonlyMap<string, Uint8Array>;
}

/** Lays out the artifact of a trained model in memory: the manifest, the graph, the parameters. */
export function buildDeepFmArtifact(input: DeepFmArtifactInput): BuiltDeepFmArtifact {
  const { model, options, report } = input.trained;
  const now = input.now ?? new Date();
  const onnxBytes = input.onnx ?? exportDeepFm(model);
  const parameters = model.parameters.map((p) => ({
    entry: {
      name: p.name,
      file: `${DEEPFM_PARAMETERS_DIR}/${p.name}.f32`,
      dtype: 'float32' as const,
      byteOrder: 'little-endian' as const,
      shape: [...p.shape],
    },
    bytes: float32Bytes(p.value),
  }));
  const version = artifactVersion(now, [onnxBytes, ...parameters.map((f) => f.bytes)]);
  const manifest: DeepFmManifest = {
    format: 'recsys-deepfm-model',
    formatVersion: 1,
    model: 'deepfm',
    version,
    createdAt: now.toISOString(),
    schema: model.schema,
    architecture: model.architecture,
    signature: deepFmSignature(model.schema),
    onnx: { file: DEEPFM_ONNX_FILE, opset: DEEPFM_ONNX_OPSET },
    parameters: parameters.map((f) => f.entry),
    training: { options, report },
    metrics: input.metrics ?? {},
    data: input.data ?? {},
    exportCheck: input.exportCheck ?? null,
  };
  const files = new Map<string, Uint8Array>([
    [DEEPFM_MANIFEST_FILE, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`)],
    [DEEPFM_ONNX_FILE, onnxBytes],
    ...parameters.map((f) => [f.entry.file, f.bytes] as [string, Uint8Array]),
  ]);
  return { version, manifest, files };
}

/** Writes a versioned artifact folder under `root` and returns where it went. */
export async function writeDeepFmArtifact(
  root: string,
  input: DeepFmArtifactInput,
): Promise<WrittenDeepFmArtifact> {
  const { version, manifest, files } = buildDeepFmArtifact(input);
  const dir = await writeArtifactFolder(root, version, files);
  return { dir, version, manifest };
}

/** Reads one file of an artifact by its relative path. */
export type ArtifactFileReader = (file: string) => Promise<Uint8Array>;

/** A DeepFM ranker read back from its artifact. */
export interface LoadedDeepFm {
  /** Where it was read from. */
  readonly dir: string;
  readonly manifest: DeepFmManifest;
  /** The model in TypeScript, rebuilt from the parameter files. */
  readonly model: DeepFmModel;
  /** Path of the ONNX graph, for `OnnxDeepFm.load`. */
  readonly onnxPath: string;
}

async function readOrFail(
  read: ArtifactFileReader,
  dir: string,
  file: string,
): Promise<Uint8Array> {
  try {
    return await read(file);
  } catch (err) {
    throw new DeepFmArtifactError(join(dir, file), 'cannot read the file', { cause: err });
  }
}

/**
 * Rebuilds a model from the files of an artifact, read through `read`; `dir` only names the
 * artifact in errors and in the result.
 */
export async function readDeepFmArtifact(
  read: ArtifactFileReader,
  dir: string,
): Promise<LoadedDeepFm> {
  const manifestPath = join(dir, DEEPFM_MANIFEST_FILE);
  let manifest: DeepFmManifest;
  try {
    const text = new TextDecoder().decode(await read(DEEPFM_MANIFEST_FILE));
    manifest = JSON.parse(text) as DeepFmManifest;
  } catch (err) {
    throw new DeepFmArtifactError(manifestPath, 'cannot read the model manifest', { cause: err });
  }
  if (manifest?.format !== 'recsys-deepfm-model' || manifest.formatVersion !== 1) {
    throw new DeepFmArtifactError(manifestPath, 'is not a recsys-deepfm-model version 1 manifest');
  }
  let model: DeepFmModel;
  try {
    model = new DeepFmModel(manifest.schema, manifest.architecture);
  } catch (err) {
    throw new DeepFmArtifactError(
      manifestPath,
      `schema or architecture is invalid: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const entries = new Map((manifest.parameters ?? []).map((p) => [p.name, p]));
  for (const p of model.parameters) {
    const entry = entries.get(p.name);
    if (entry === undefined) {
      throw new DeepFmArtifactError(manifestPath, `lists no parameter ${p.name}`);
    }
    const raw = await readOrFail(read, dir, entry.file);
    if (raw.byteLength !== p.value.length * 4) {
      throw new DeepFmArtifactError(
        join(dir, entry.file),
        `expected ${p.value.length} float32 values (shape ${p.shape.join(' × ')})`,
      );
    }
    // Copy into an aligned buffer (a Buffer from readFile may share a pool at any offset).
    const values = new Float32Array(p.value.length);
    new Uint8Array(values.buffer).set(raw);
    p.value.set(values);
  }
  return { dir, manifest, model, onnxPath: join(dir, manifest.onnx.file) };
}

/** Reads an artifact folder written by {@link writeDeepFmArtifact}. */
export async function loadDeepFmArtifact(dir: string): Promise<LoadedDeepFm> {
  return readDeepFmArtifact((file) => readFile(join(dir, file)), dir);
}
