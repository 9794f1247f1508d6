/**
 * The artifact folder of a trained two-tower model, `<data.dir>/models/retrieval/<version>/`:
 *
 *   user_tower.onnx       the user tower (signature in manifest.json and README.md)
 *   item_tower.onnx       the item tower
 *   item_embeddings.f32   raw little-endian float32, items × dims, in item-index order
 *   item_ids.json         item id of each row
 *   user_ids.json         user id of each user_index
 *   vocab.json            categories, tags, age bands, countries, devices (the index spaces)
 *   popular_items.json    the most popular item ids, most first (the serving fallback)
 *   manifest.json         signatures, shape, training config and report, data set fingerprint,
 *                         split, metrics, export check
 *
 * The version is the UTC time plus a short hash of the model files, so two trainings never share
 * a folder and a folder's name says when it was made. The folder is written under a temporary
 * name and renamed, so a reader never sees half of one.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeArtifactFolder } from '../common/artifact-folder.js';
import type { Dataset } from '../data/types.js';
import { AGE_BUCKETS, MAX_TAGS, POPULARITY_BUCKETS, PROFILE_FIELDS } from './features.js';
import { TwoTowerModel } from './model.js';
import type { TwoTowerShape } from './model.js';
import { readInitializers, ONNX_OPSET } from './onnx-export.js';
import type { ExportedTowers } from './onnx-export.js';
import type { ExportCheck } from './onnx-runtime.js';
import { ITEM_TOWER_FILE, USER_TOWER_FILE } from './signatures.js';
import type { TowerSignature } from './signatures.js';
import type { EpochProgress, ResolvedTwoTowerTrainOptions, TrainedTwoTower } from './train.js';

export const RETRIEVAL_MANIFEST_FILE = 'manifest.json';
export const ITEM_EMBEDDINGS_FILE = 'item_embeddings.f32';
export const ITEM_IDS_FILE = 'item_ids.json';
export const USER_IDS_FILE = 'user_ids.json';
export const VOCAB_FILE = 'vocab.json';
export const POPULAR_ITEMS_FILE = 'popular_items.json';
/** Popular items an artefact lists unless told otherwise. */
export const DEFAULT_POPULAR_ITEMS = 1000;

/** Which events the model learned from, and which it was kept away from. */
export interface SplitInfo {
  readonly kind: 'temporal' | 'random' | 'none';
  /** Epoch ms: training events are before it (temporal split). */
  readonly cutoff: number | null;
  readonly trainEvents: number;
  readonly testEvents: number;
}

export interface RetrievalManifest {
  readonly format: 'recsys-retrieval-model';
  readonly formatVersion: 1;
  readonly model: 'two-tower';
  readonly version: string;
  readonly createdAt: string;
  readonly dims: number;
  readonly shape: TwoTowerShape;
  readonly signatures: { readonly userTower: TowerSignature; readonly itemTower: TowerSignature };
  readonly onnx: { readonly opset: number; readonly files: readonly string[] };
  readonly itemEmbeddings: {
    readonly file: string;
    readonly dtype: 'float32';
    readonly byteOrder: 'little-endian';
    readonly shape: readonly [number, number];
    readonly rows: string;
    readonly normalised: true;
  };
  readonly ids: { readonly items: string; readonly users: string; readonly vocab: string };
  /**
   * The most popular items, for serving when retrieval cannot run. Absent in artefacts written
   * before it existed: they have no popular items to fall back on.
   */
  readonly popular?: { readonly file: string; readonly count: number; readonly rule: string };
  readonly features: {
    readonly unknownIndex: -1;
    readonly profileFields: readonly string[];
    readonly referenceTime: number;
    readonly ageBucket: string;
    readonly popularityBucket: string;
    readonly maxTagsCap: number;
  };
  readonly training: {
    readonly config: Omit<ResolvedTwoTowerTrainOptions, 'onEpoch'>;
    readonly positives: string;
    readonly examples: number;
    readonly epochs: readonly EpochProgress[];
    readonly seconds: number;
    readonly trainedUsers: number;
    readonly trainedItems: number;
  };
  readonly dataset: {
    readonly name: string;
    readonly source: string;
    readonly fingerprint: string;
    readonly counts: Dataset['manifest']['counts'];
  };
  readonly split: SplitInfo;
  readonly metrics: Record<string, unknown>;
  readonly exportCheck: ExportCheck;
}

export interface RetrievalArtifactInput {
  readonly trained: TrainedTwoTower;
  readonly dataset: Dataset;
  readonly split: SplitInfo;
  readonly exported: ExportedTowers;
  readonly itemEmbeddings: Float32Array;
  readonly exportCheck: ExportCheck;
  /** Loss, and the evaluator's figures when it ran. */
  readonly metrics: Record<string, unknown>;
  /** How many of the most popular items `popular_items.json` lists. @default 1000 */
  readonly popularItems?: number;
  /** @default new Date() */
  readonly now?: Date;
}

export interface WrittenArtifact {
  readonly dir: string;
  readonly version: string;
  readonly manifest: RetrievalManifest;
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** `20250102T030405Z-1a2b3c4d`: creation time plus a hash of the model files. */
export function artifactVersion(now: Date, files: readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const f of files) hash.update(f);
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${hash.digest('hex').slice(0, 8)}`;
}

/** Writes a versioned artifact folder under `root` and returns where it went. */
export async function writeRetrievalArtifact(
  root: string,
  input: RetrievalArtifactInput,
): Promise<WrittenArtifact> {
  const { trained, dataset, exported, itemEmbeddings } = input;
  const now = input.now ?? new Date();
  const embeddingBytes = bytesOf(itemEmbeddings);
  const version = artifactVersion(now, [exported.userTower, exported.itemTower, embeddingBytes]);
  const shape = trained.model.shape;
  const popular = popularItemIds(
    trained.itemPopularity,
    dataset.items.ids,
    input.popularItems ?? DEFAULT_POPULAR_ITEMS,
  );
  // Everything but the progress callback, which is no part of the recipe.
  const config: Omit<ResolvedTwoTowerTrainOptions, 'onEpoch'> = { ...trained.options };
  delete (config as Partial<ResolvedTwoTowerTrainOptions>).onEpoch;
  const manifest: RetrievalManifest = {
    format: 'recsys-retrieval-model',
    formatVersion: 1,
    model: 'two-tower',
    version,
    createdAt: now.toISOString(),
    dims: shape.dims,
    shape,
    signatures: { userTower: exported.userSignature, itemTower: exported.itemSignature },
    onnx: { opset: ONNX_OPSET, files: [USER_TOWER_FILE, ITEM_TOWER_FILE] },
    itemEmbeddings: {
      file: ITEM_EMBEDDINGS_FILE,
      dtype: 'float32',
      byteOrder: 'little-endian',
      shape: [shape.items, shape.dims],
      rows: `item index order (${ITEM_IDS_FILE})`,
      normalised: true,
    },
    ids: { items: ITEM_IDS_FILE, users: USER_IDS_FILE, vocab: VOCAB_FILE },
    popular: {
      file: POPULAR_ITEMS_FILE,
      count: popular.length,
      rule: `items with training interactions, most first by Σ of 0.5 ** (days before referenceTime / ${trained.options.recencyHalfLifeDays || Infinity}) (the popularity bucket's count); ties to the lower item index`,
    },
    features: {
      unknownIndex: -1,
      profileFields: [...PROFILE_FIELDS],
      referenceTime: trained.referenceTime,
      ageBucket: `min(${AGE_BUCKETS - 1}, floor(log2(1 + max(0, referenceTime - createdAt) / 86400000))); -1 when createdAt is unknown`,
      popularityBucket: `min(${POPULARITY_BUCKETS - 1}, floor(log2(1 + Σ over the item's training interactions of 0.5 ** (days before referenceTime / ${trained.options.recencyHalfLifeDays || Infinity}))))`,
      maxTagsCap: MAX_TAGS,
    },
    training: {
      config,
      positives: trained.report.positives,
      examples: trained.report.examples,
      epochs: trained.report.epochs,
      seconds: trained.report.seconds,
      trainedUsers: trained.report.trainedUsers,
      trainedItems: trained.report.trainedItems,
    },
    dataset: {
      name: dataset.manifest.name,
      source: dataset.manifest.source,
      fingerprint: dataset.manifest.fingerprint,
      counts: dataset.manifest.counts,
    },
    split: input.split,
    metrics: input.metrics,
    exportCheck: input.exportCheck,
  };
  const { items, users } = dataset;
  const vocab = {
    categories: items.categories,
    tags: items.tags,
    ageBands: users.ageBands,
    countries: users.countries,
    devices: users.devices,
  };
  const dir = await writeArtifactFolder(root, version, [
    [USER_TOWER_FILE, exported.userTower],
    [ITEM_TOWER_FILE, exported.itemTower],
    [ITEM_EMBEDDINGS_FILE, embeddingBytes],
    [ITEM_IDS_FILE, JSON.stringify(items.ids)],
    [USER_IDS_FILE, JSON.stringify(users.ids)],
    [VOCAB_FILE, JSON.stringify(vocab)],
    [POPULAR_ITEMS_FILE, JSON.stringify(popular)],
    [RETRIEVAL_MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`],
  ]);
  return { dir, version, manifest };
}

/**
 * The ids of the `count` items with the largest `popularity` (> 0), most first; ties go to the
 * lower item index, so the list is the same for the same model.
 */
export function popularItemIds(
  popularity: ArrayLike<number>,
  ids: readonly string[],
  count: number,
): string[] {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError('popularItems must be a non-negative integer');
  }
  const order: number[] = [];
  for (let i = 0; i < ids.length; i++) if ((popularity[i] ?? 0) > 0) order.push(i);
  order.sort((a, b) => (popularity[b] as number) - (popularity[a] as number) || a - b);
  return order.slice(0, count).map((i) => ids[i] as string);
}

/**
 * The popular items an artefact folder lists, most first; empty for an artefact written before
 * they were (no `popular` in its manifest).
 */
export async function readPopularItems(
  dir: string,
  manifest: RetrievalManifest,
): Promise<string[]> {
  if (manifest.popular === undefined) return [];
  const path = join(dir, manifest.popular.file);
  let ids: unknown;
  try {
    ids = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new RetrievalArtifactError(path, 'cannot read the popular items', { cause: err });
  }
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) {
    throw new RetrievalArtifactError(path, 'expected an array of item ids');
  }
  return ids;
}

export class RetrievalArtifactError extends Error {
  override readonly name = 'RetrievalArtifactError';
  readonly code = 'retrieval_artifact_invalid';
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}

export async function readRetrievalManifest(dir: string): Promise<RetrievalManifest> {
  const path = join(dir, RETRIEVAL_MANIFEST_FILE);
  let manifest: RetrievalManifest;
  try {
    manifest = JSON.parse(await readFile(path, 'utf8')) as RetrievalManifest;
  } catch (err) {
    throw new RetrievalArtifactError(path, 'cannot read the model manifest', { cause: err });
  }
  if (manifest.format !== 'recsys-retrieval-model' || manifest.formatVersion !== 1) {
    throw new RetrievalArtifactError(path, 'is not a recsys-retrieval-model version 1 manifest');
  }
  return manifest;
}

/** A model read back from its artifact folder. */
export interface LoadedRetrievalModel {
  readonly dir: string;
  readonly manifest: RetrievalManifest;
  /** The towers rebuilt in TypeScript from the ONNX initializers (for synchronous scoring). */
  readonly model: TwoTowerModel;
  readonly itemEmbeddings: Float32Array;
  readonly itemIds: readonly string[];
  readonly userIds: readonly string[];
}

/**
 * Reads an artifact folder written by {@link writeRetrievalArtifact}. The TypeScript towers are
 * rebuilt from the initializers of the two ONNX files, so the files stay the one source of truth.
 */
export async function loadRetrievalArtifact(dir: string): Promise<LoadedRetrievalModel> {
  const manifest = await readRetrievalManifest(dir);
  const model = new TwoTowerModel(manifest.shape, { seed: 0 });
  for (const [file, tower] of [
    [USER_TOWER_FILE, model.user],
    [ITEM_TOWER_FILE, model.item],
  ] as const) {
    const path = join(dir, file);
    const initializers = readInitializers(await readFile(path));
    const targets: Array<[string, Float32Array | Float64Array]> = [
      ...tower.tables.map((t) => [t.name, t.weights] as [string, Float32Array | Float64Array]),
      ...tower.denseParams.map((p) => [p.name, p.value] as [string, Float32Array | Float64Array]),
    ];
    for (const [name, target] of targets) {
      const found = initializers.get(name);
      if (found?.values.length !== target.length) {
        throw new RetrievalArtifactError(
          path,
          `initializer ${name} is missing or has the wrong size for the manifest's shape`,
        );
      }
      target.set(found.values);
    }
  }
  const embeddingsPath = join(dir, manifest.itemEmbeddings.file);
  const raw = await readFile(embeddingsPath);
  const [rows, dims] = manifest.itemEmbeddings.shape;
  if (raw.byteLength !== rows * dims * 4) {
    throw new RetrievalArtifactError(embeddingsPath, `expected ${rows} × ${dims} float32 values`);
  }
  // Copy into an aligned buffer (a Buffer from readFile may share a pool at any offset).
  const itemEmbeddings = new Float32Array(rows * dims);
  new Uint8Array(itemEmbeddings.buffer).set(raw);
  const itemIds = JSON.parse(await readFile(join(dir, manifest.ids.items), 'utf8')) as string[];
  const userIds = JSON.parse(await readFile(join(dir, manifest.ids.users), 'utf8')) as string[];
  return { dir, manifest, model, itemEmbeddings, itemIds, userIds };
}
