/**
 * The on-disk form of the item index: one folder per model version, `<data.dir>/indexes/<version>/`,
 * holding for each shard s of S
 *
 *   shard-<s>.usearch   the usearch HNSW graph; key = the item's row in this shard
 *   shard-<s>.items.json  `{ids: [...], categories: [...] | null}`, row order
 *   shard-<s>.json      the shard manifest ({@link ShardManifest})
 *
 * A compaction (see `compact.ts`) writes the same three files, for the same shard, into a folder of
 * its own; its rows keep their keys, so an item removed by a compaction leaves a `null` id behind.
 *
 * An item goes to shard `fnv1a32(item id) % S` (the hash the runtime uses for partitions), so any
 * service can tell which shard holds an item. Files are written under a temporary name and renamed,
 * so a reader never sees half a file.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Index, MetricKind, ScalarKind } from 'usearch';
import type { IndexMetric, IndexQuantization, ItemsConfig } from '../../runtime/config/index.js';
import { fnv1a32 } from '../../runtime/placement/hash.js';

export const SHARD_MANIFEST_FORMAT = 'recsys-item-shard';

const METRIC_KIND: Record<IndexMetric, MetricKind> = {
  ip: MetricKind.IP,
  cos: MetricKind.Cos,
  l2sq: MetricKind.L2sq,
};

const SCALAR_KIND: Record<IndexQuantization, ScalarKind> = {
  f32: ScalarKind.F32,
  f16: ScalarKind.F16,
  i8: ScalarKind.I8,
};

/** What an empty usearch index needs to be created, or to open a file as it was built. */
export interface IndexShape {
  dims: number;
  metric: IndexMetric;
  /** Absent in manifests written before quantization was a setting: `f32`. */
  quantization?: IndexQuantization | undefined;
  connectivity: number;
  expansionAdd: number;
}

/** An empty index of `shape`, searching with `expansionSearch` candidates. */
export function newIndex(shape: IndexShape, expansionSearch: number): Index {
  return new Index({
    dimensions: shape.dims,
    metric: METRIC_KIND[shape.metric],
    quantization: SCALAR_KIND[shape.quantization ?? 'f32'],
    connectivity: shape.connectivity,
    expansion_add: shape.expansionAdd,
    expansion_search: expansionSearch,
    multi: false,
  });
}

/** The shard an item belongs to among `shards`. */
export function shardOf(itemId: string, shards: number): number {
  return fnv1a32(itemId) % shards;
}

export interface ShardFiles {
  index: string;
  items: string;
  manifest: string;
}

export function shardFiles(dir: string, shard: number): ShardFiles {
  return {
    index: join(dir, `shard-${shard}.usearch`),
    items: join(dir, `shard-${shard}.items.json`),
    manifest: join(dir, `shard-${shard}.json`),
  };
}

/** HNSW parameters of a build. */
export interface HnswParams {
  metric: IndexMetric;
  /** How vectors are stored. @default 'f32' */
  quantization?: IndexQuantization;
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
}

/** The HNSW parameters the `items` config section sets. */
export function hnswParamsOf(items: ItemsConfig): HnswParams {
  return {
    metric: items.metric,
    quantization: items.quantization,
    connectivity: items.connectivity,
    expansionAdd: items.expansionAdd,
    expansionSearch: items.expansionSearch,
  };
}

export interface ShardManifest {
  format: typeof SHARD_MANIFEST_FORMAT;
  formatVersion: 1;
  shard: number;
  shards: number;
  count: number;
  dims: number;
  metric: IndexMetric;
  /** How the file stores vectors; absent (files built before it was a setting) means `f32`. */
  quantization?: IndexQuantization;
  connectivity: number;
  expansionAdd: number;
  /** The retrieval model whose item embeddings were indexed. */
  modelVersion: string;
  /** ISO time the build finished. */
  builtAt: string;
  buildSeconds: number;
  /**
   * Compactions folded into this file since `recsys index` built the first one: 0 for a fresh
   * build. Absent in manifests written before compaction existed (read as 0).
   */
  generation?: number;
  /** Rows (keys) of the graph, removed ones included; absent means `count` (no row removed). */
  rows?: number;
  /** The index version of generation 0, which every later generation carries on. */
  baseVersion?: string;
  /**
   * The last item-events sequence folded into this file: a replica opening it reads the stream
   * from the next one. Absent (read as 0) for a `recsys index` build, which holds no event.
   */
  streamSeq?: number;
}

/**
 * The index version a shard reports: `<model>@<build time>` of the first build, then `+<n>` after
 * n compactions, so a caller can tell two answers from different files apart.
 */
export function indexVersionOf(manifest: ShardManifest): string {
  const base = manifest.baseVersion ?? `${manifest.modelVersion}@${manifest.builtAt}`;
  const generation = manifest.generation ?? 0;
  return generation === 0 ? base : `${base}+${generation}`;
}

export interface ShardItems {
  /** Item id of each row; `null` for a row a compaction removed. */
  ids: (string | null)[];
  /** Category of each row, or null when the build had none. */
  categories: (string | null)[] | null;
}

export interface BuildShardsInput {
  /** Row-major, `ids.length × dims`. */
  vectors: Float32Array;
  dims: number;
  ids: readonly string[];
  /** Category of each row, when known. */
  categories?: readonly (string | null)[];
  shards: number;
  params: HnswParams;
  modelVersion: string;
  /** Output folder (created). */
  dir: string;
  /** Called after each batch of rows is added; `done` counts rows over all shards. */
  onProgress?: (done: number, total: number) => void;
}

const BATCH = 4096;

/** Builds and writes every shard of an index; returns the manifests, shard order. */
export async function buildShards(input: BuildShardsInput): Promise<ShardManifest[]> {
  const { vectors, dims, ids, shards, params } = input;
  if (!Number.isInteger(shards) || shards < 1)
    throw new RangeError('shards must be a positive integer');
  if (vectors.length !== ids.length * dims) {
    throw new RangeError(`vectors hold ${vectors.length} values, expected ${ids.length} × ${dims}`);
  }
  if (input.categories !== undefined && input.categories.length !== ids.length) {
    throw new RangeError('categories must have one entry per id');
  }
  const rowsOf: number[][] = Array.from({ length: shards }, () => []);
  const seen = new Set<string>();
  ids.forEach((id, row) => {
    if (seen.has(id)) throw new RangeError(`item id ${JSON.stringify(id)} appears twice`);
    seen.add(id);
    rowsOf[shardOf(id, shards)]!.push(row);
  });
  await mkdir(input.dir, { recursive: true });
  const manifests: ShardManifest[] = [];
  let done = 0;
  for (let shard = 0; shard < shards; shard++) {
    const started = performance.now();
    const rows = rowsOf[shard]!;
    const index = newIndex({ dims, ...params }, params.expansionSearch);
    for (let start = 0; start < rows.length; start += BATCH) {
      const end = Math.min(rows.length, start + BATCH);
      const keys = new BigUint64Array(end - start);
      const batch = new Float32Array((end - start) * dims);
      for (let i = start; i < end; i++) {
        keys[i - start] = BigInt(i);
        const row = rows[i]!;
        batch.set(vectors.subarray(row * dims, (row + 1) * dims), (i - start) * dims);
      }
      // One flat batch: usearch splits it into rows by the index's dimensions.
      index.add(keys, batch);
      done += end - start;
      input.onProgress?.(done, ids.length);
    }
    const files = shardFiles(input.dir, shard);
    const items: ShardItems = {
      ids: rows.map((row) => ids[row]!),
      categories:
        input.categories === undefined ? null : rows.map((row) => input.categories![row] ?? null),
    };
    const manifest: ShardManifest = {
      format: SHARD_MANIFEST_FORMAT,
      formatVersion: 1,
      shard,
      shards,
      count: rows.length,
      dims,
      metric: params.metric,
      quantization: params.quantization ?? 'f32',
      connectivity: params.connectivity,
      expansionAdd: params.expansionAdd,
      modelVersion: input.modelVersion,
      builtAt: new Date().toISOString(),
      buildSeconds: 0,
    };
    index.save(`${files.index}.partial`);
    await rename(`${files.index}.partial`, files.index);
    await writeAtomic(files.items, JSON.stringify(items));
    manifest.buildSeconds = (performance.now() - started) / 1000;
    // The manifest goes last: its presence says the shard is complete.
    await writeAtomic(files.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    manifests.push(manifest);
  }
  return manifests;
}

export async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.partial`, text);
  await rename(`${path}.partial`, path);
}

export class IndexFileError extends Error {
  override readonly name = 'IndexFileError';
  readonly code = 'index_file_invalid';
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}

export async function readShardManifest(dir: string, shard: number): Promise<ShardManifest> {
  const path = shardFiles(dir, shard).manifest;
  let manifest: ShardManifest;
  try {
    manifest = JSON.parse(await readFile(path, 'utf8')) as ShardManifest;
  } catch (err) {
    throw new IndexFileError(path, 'cannot read the shard manifest', { cause: err });
  }
  if (manifest.format !== SHARD_MANIFEST_FORMAT || manifest.formatVersion !== 1) {
    throw new IndexFileError(path, `is not a ${SHARD_MANIFEST_FORMAT} version 1 manifest`);
  }
  if (manifest.shard !== shard) {
    throw new IndexFileError(path, `describes shard ${manifest.shard}, not ${shard}`);
  }
  return manifest;
}

/** An opened shard: the memory-mapped graph and its rows' ids and categories. */
export interface OpenShard {
  readonly manifest: ShardManifest;
  readonly index: Index;
  readonly ids: readonly (string | null)[];
  readonly categories: readonly (string | null)[] | null;
}

/**
 * Opens a shard for searching. The graph is memory-mapped (`view`), so several workers opening the
 * same file share its pages; it is read-only, which is all a base file ever is.
 */
export function openShardSync(
  manifest: ShardManifest,
  files: ShardFiles,
  items: ShardItems,
  expansionSearch: number,
): OpenShard {
  const index = newIndex(manifest, expansionSearch);
  index.view(files.index);
  if (index.size() !== manifest.count || items.ids.length !== (manifest.rows ?? manifest.count)) {
    throw new IndexFileError(
      files.index,
      `holds ${index.size()} vectors and ${items.ids.length} ids, the manifest says ${manifest.count}`,
    );
  }
  return { manifest, index, ids: items.ids, categories: items.categories };
}

export async function openShard(
  dir: string,
  shard: number,
  expansionSearch: number,
): Promise<OpenShard> {
  const manifest = await readShardManifest(dir, shard);
  const files = shardFiles(dir, shard);
  const items = JSON.parse(await readFile(files.items, 'utf8')) as ShardItems;
  return openShardSync(manifest, files, items, expansionSearch);
}
