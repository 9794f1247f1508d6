/**
 * Commands of the actors layer. `recsys index` builds the item index from a retrieval model's item
 * embeddings: S per-shard usearch files and manifests under `<data.dir>/indexes/<model version>/`,
 * which the `items` actors then serve. Given the data set, each item carries its category, so
 * searches can filter by category.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';

import { readItems } from '../models/data/dataset-io.js';
import { DatasetFormatError } from '../models/data/errors.js';
import { ProgressBar } from '../models/data/progress.js';
import { RetrievalArtifactError, readRetrievalManifest } from '../models/retrieval/artifact.js';
import { loadCommandConfig } from '../runtime/config/index.js';
import { ConfigError } from '../runtime/errors.js';
import { IndexFileError, buildShards, hnswParamsOf } from './item-shard/index-file.js';
import type { ShardManifest } from './item-shard/index-file.js';
import { reportFailure } from '../runtime/cli/exit.js';
import type { KindModuleContext } from '../runtime/cli/kinds.js';
import { resolveIndexDir } from './kinds.js';

export interface IndexFlags {
  model: string;
  /** The data set the model was trained on: the items' categories come from it. */
  data?: string;
  shards?: number;
  out?: string;
  config?: string;
  progress?: boolean;
}

export interface IndexRunResult {
  readonly dir: string;
  readonly modelVersion: string;
  readonly manifests: readonly ShardManifest[];
  readonly seconds: number;
}

/** The folder an index of `modelVersion` is written to by default. */
export function indexDirFor(dataDir: string, modelVersion: string): string {
  return join(dataDir, 'indexes', modelVersion);
}

/** Reads the model's item embeddings and writes the sharded index, as the flags say. */
export async function runIndex(
  flags: IndexFlags,
  env: Record<string, string | undefined> = process.env,
): Promise<IndexRunResult> {
  const config = loadCommandConfig(flags.config, env);
  const modelDir = resolve(flags.model);
  const manifest = await readRetrievalManifest(modelDir);
  const [rows, dims] = manifest.itemEmbeddings.shape;
  const embeddingsPath = join(modelDir, manifest.itemEmbeddings.file);
  const raw = await readFile(embeddingsPath);
  if (raw.byteLength !== rows * dims * 4) {
    throw new RetrievalArtifactError(embeddingsPath, `expected ${rows} × ${dims} float32 values`);
  }
  // Copy into an aligned buffer (a Buffer from readFile may share a pool at any offset).
  const vectors = new Float32Array(rows * dims);
  new Uint8Array(vectors.buffer).set(raw);
  const idsPath = join(modelDir, manifest.ids.items);
  const ids = JSON.parse(await readFile(idsPath, 'utf8')) as unknown;
  if (!Array.isArray(ids) || ids.length !== rows || !ids.every((id) => typeof id === 'string')) {
    throw new RetrievalArtifactError(idsPath, `expected ${rows} item ids`);
  }
  const categories = flags.data === undefined ? undefined : await itemCategories(flags.data, ids);
  const dir = resolve(flags.out ?? indexDirFor(config.data.dir, manifest.version));
  const progress =
    flags.progress === false ? undefined : new ProgressBar({ label: 'index', total: rows });
  const started = performance.now();
  const manifests = await buildShards({
    vectors,
    dims,
    ids,
    ...(categories === undefined ? {} : { categories }),
    shards: flags.shards ?? config.items.shards,
    params: hnswParamsOf(config.items),
    modelVersion: manifest.version,
    dir,
    ...(progress === undefined
      ? {}
      : { onProgress: (done: number) => progress.update(done, 'items') }),
  });
  progress?.finish('items');
  return {
    dir,
    modelVersion: manifest.version,
    manifests,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * The primary category of each of `ids` in the data set at `dataDir` (`null` for an item the data
 * set does not have, such as one added after it was made).
 */
async function itemCategories(dataDir: string, ids: readonly string[]): Promise<(string | null)[]> {
  const items = await readItems(resolve(dataDir));
  const byId = new Map<string, string>();
  items.ids.forEach((id, i) => {
    const category = items.categories[items.category[i]!];
    if (category !== undefined) byId.set(id, category);
  });
  return ids.map((id) => byId.get(id) ?? null);
}

/** Where {@link prepareDemoIndex} gets a model from; the models layer trains one. */
export type DemoModelSource = (
  configPath: string | undefined,
) => Promise<{ datasetDir: string; modelDir: string }>;

/**
 * `recsys start` on a data folder with no item index: builds one from a demo model, so the item
 * shards start. Does nothing when an index exists (the user's own, or the demo's from before).
 */
export async function prepareDemoIndex(
  context: KindModuleContext & { configPath: string | undefined },
  demoModel: DemoModelSource,
  env: Record<string, string | undefined>,
): Promise<string | undefined> {
  if (resolveIndexDir(context.config) !== undefined) return undefined;
  context.log.info(
    'no item index under data.dir: building demo data (recsys start --no-demo skips)',
  );
  const { datasetDir, modelDir } = await demoModel(context.configPath);
  const index = await runIndex(
    { model: modelDir, data: datasetDir, config: context.configPath, progress: false },
    env,
  );
  context.log.info({ dir: index.dir, items: index.manifests[0]?.count }, 'demo item index built');
  return index.dir;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new InvalidArgumentError(`expected an integer in 1..1024, got ${value}`);
  }
  return n;
}

function fail(err: unknown): void {
  reportFailure(err, [ConfigError, RetrievalArtifactError, IndexFileError, DatasetFormatError]);
}

/** Adds `recsys index`. */
export function registerIndexCommand(program: Command): void {
  program
    .command('index')
    .description(
      "Build the item index from a retrieval model's item embeddings: one usearch HNSW file per shard",
    )
    .requiredOption('--model <dir>', 'a two-tower artifact folder (from `recsys train retrieval`)')
    .option(
      '--data <dir>',
      'the data set the model was trained on: items get their categories, for category filters',
    )
    .option('--shards <S>', 'shards (default: items.shards)', positiveInteger)
    .option('--out <dir>', 'output folder (default: <data.dir>/indexes/<model version>)')
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option('--no-progress', 'no progress bar on stderr')
    .action(async (flags: IndexFlags) => {
      try {
        const result = await runIndex(flags);
        for (const m of result.manifests) {
          process.stdout.write(
            `shard ${m.shard}/${m.shards}: ${m.count} items, ${m.dims} dims, ${m.metric}, ${m.buildSeconds.toFixed(2)} s\n`,
          );
        }
        process.stdout.write(
          `wrote ${result.dir} (model ${result.modelVersion}) in ${result.seconds.toFixed(2)} s\n`,
        );
      } catch (err) {
        fail(err);
      }
    });
}
