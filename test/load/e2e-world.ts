/**
 * The world the end-to-end benchmark serves: a synthetic data set made by the project's generator,
 * a two-tower retrieval model trained on it, the item index built from that model's embeddings
 * (sharded as the distributed topology runs it) and a GBDT ranker, all in one data folder laid out
 * as `data.dir` expects (`datasets/`, `models/retrieval/`, `models/ranker-gbdt/`, `indexes/`).
 *
 * A built world is cached under `.bench/worlds/<scale>` with a `world.json` saying what it holds
 * and how long each step took, so a second run reuses it. The batch feature tables are checked
 * against the current feature definitions and rebuilt when they are out of date (a cheap step),
 * so a change of `configs/features.yaml` does not force a rebuild of the models.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as stringifyYaml } from 'yaml';
import { runIndex } from '../../actors/cli.js';
import { runDataGenerate } from '../../models/cli/data.js';
import { defaultHalfLifeDays, runTrainRetrieval, trainOptions } from '../../models/cli/train.js';
import { runTrainRanker, servingRankerFlags } from '../../models/cli/train-ranker.js';
import { readDataset } from '../../models/data/dataset-io.js';
import { SCALES } from '../../models/data/generate.js';
import { sliceEvents } from '../../models/data/split.js';
import { featureDefinitionsOf } from '../../models/features/definitions.js';
import { buildFeatureTables, staleFeatureTables } from '../../models/features/feature-tables.js';
import { POPULAR_ITEMS_FILE, readRetrievalManifest } from '../../models/retrieval/artifact.js';
import { trainRetrievalPipeline } from '../../models/retrieval/pipeline.js';
import { loadConfig } from '../../runtime/config/index.js';

/** `smoke`: a small world built in a minute or two; `full`: 100,000 users and 1,000,000 items. */
export const E2eScale = { Smoke: 'smoke', Full: 'full' } as const;
export type E2eScale = (typeof E2eScale)[keyof typeof E2eScale];

/** Item shards of the index: the distributed topology runs one process per shard. */
export const WORLD_SHARDS = 2;
/** Bumped when what a world holds changes, so an older cached world is rebuilt. */
const WORLD_FORMAT = 1;
const DATASET_NAME = 'e2e';
const BASE_CONFIG = fileURLToPath(new URL('../../configs/config.yaml', import.meta.url));

interface Recipe {
  sizes: { users: number; items: number; days: number; categories: number };
  /** Retrieval: passes over the training events, and how many of the latest events (0: all). */
  epochs: number;
  recentEvents: number;
  /** Ranker: query points (training and validation together). */
  rankerQueries: number;
  rankerCandidates: number;
}

const RECIPES: Record<E2eScale, Recipe> = {
  smoke: {
    sizes: { users: 2_000, items: 10_000, days: 30, categories: 20 },
    epochs: 2,
    recentEvents: 0,
    rankerQueries: 1_500,
    rankerCandidates: 100,
  },
  // The full catalogue and population, trained on the latest 2M of its ~20M events for one epoch:
  // what is measured is serving, and the serving cost does not depend on how well the model fits.
  full: {
    sizes: SCALES.full,
    epochs: 1,
    recentEvents: 2_000_000,
    rankerQueries: 1_000,
    rankerCandidates: 100,
  },
};

/** A built world, as `world.json` records it. */
export interface World {
  format: number;
  scale: E2eScale;
  /** The data folder (`data.dir` of the processes). */
  dir: string;
  datasetDir: string;
  retrievalDir: string;
  indexDir: string;
  rankerDir: string;
  shards: number;
  counts: { users: number; items: number; events: number };
  /** Events the retrieval model trained on. */
  trainedEvents: number;
  /** Seconds each build step took (on the run that built it). */
  steps: Record<string, number>;
  builtAt: string;
}

export interface BuildWorldOptions {
  scale: E2eScale;
  /** Root of the cache (`.bench/worlds`). */
  root: string;
  progress: (line: string) => void;
}

/** The config file the build steps run with: the shipped one, pointed at the world's folder. */
async function writeBuildConfig(dir: string): Promise<string> {
  const path = join(dir, 'build-config.yaml');
  const base = loadConfig({ path: BASE_CONFIG, env: {} });
  await writeFile(
    path,
    stringifyYaml({
      data: { dir },
      items: { shards: WORLD_SHARDS },
      features: { definitions: base.features.definitions },
      log: { level: 'warn' },
    }),
  );
  return path;
}

async function readWorld(dir: string): Promise<World | undefined> {
  try {
    const world = JSON.parse(await readFile(join(dir, 'world.json'), 'utf8')) as World;
    if (world.format !== WORLD_FORMAT) return undefined;
    for (const path of [world.datasetDir, world.retrievalDir, world.indexDir, world.rankerDir]) {
      if (!existsSync(path)) return undefined;
    }
    // The serving fallback's list is part of the retrieval artefact; an older one lacks it.
    if (!existsSync(join(world.retrievalDir, POPULAR_ITEMS_FILE))) return undefined;
    await readRetrievalManifest(world.retrievalDir);
    return world;
  } catch {
    return undefined;
  }
}

async function timed<T>(
  steps: Record<string, number>,
  name: string,
  progress: (line: string) => void,
  run: () => Promise<T>,
): Promise<T> {
  progress(`world: ${name}...`);
  const started = performance.now();
  const result = await run();
  const seconds = (performance.now() - started) / 1000;
  steps[name] = seconds;
  progress(`world: ${name} took ${seconds.toFixed(1)} s`);
  return result;
}

/** Trains on the latest `recent` events only, for `epochs` passes. */
async function trainOnRecent(
  datasetDir: string,
  configPath: string,
  recipe: Recipe,
  log: (line: string) => void,
): Promise<{ dir: string; trainedEvents: number }> {
  const config = loadConfig({ path: configPath, env: {} });
  const dataset = await readDataset(datasetDir);
  const all = dataset.events;
  const train = sliceEvents(all, Math.max(0, all.length - recipe.recentEvents), all.length);
  const flags = {
    data: datasetDir,
    split: 'none' as const,
    testFraction: 0,
    epochs: recipe.epochs,
    halfLifeDays: defaultHalfLifeDays(train),
  };
  const options = trainOptions(config, flags, train, dataset.items.ids.length, log);
  const result = await trainRetrievalPipeline({
    dataset,
    train,
    split: { kind: 'none', cutoff: null, trainEvents: train.length, testEvents: 0 },
    outRoot: resolve(config.data.dir, 'models', 'retrieval'),
    options,
    log,
  });
  return { dir: result.artifact.dir, trainedEvents: train.length };
}

/**
 * What the steps built so far, saved after each one (`build-state.json`), so a build that stopped
 * (a failed step, Ctrl-C) resumes after the last finished step instead of starting over: the
 * full world's data set and retrieval model take many minutes each.
 */
interface BuildState {
  format: number;
  scale: E2eScale;
  steps: Record<string, number>;
  dataset?: { dir: string; counts: World['counts'] };
  retrieval?: { dir: string; trainedEvents: number };
  indexDir?: string;
  rankerDir?: string;
}

const STATE_FILE = 'build-state.json';

async function readState(dir: string, scale: E2eScale): Promise<BuildState | undefined> {
  try {
    const state = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as BuildState;
    return state.format === WORLD_FORMAT && state.scale === scale ? state : undefined;
  } catch {
    return undefined;
  }
}

async function build(dir: string, options: BuildWorldOptions): Promise<World> {
  const { scale, progress } = options;
  const recipe = RECIPES[scale];
  let state = await readState(dir, scale);
  if (state === undefined) {
    await rm(dir, { recursive: true, force: true });
    state = { format: WORLD_FORMAT, scale, steps: {} };
  } else {
    progress(`world: resuming the build in ${dir} after: ${Object.keys(state.steps).join(', ')}`);
  }
  await mkdir(dir, { recursive: true });
  const saved = state;
  const save = (): Promise<void> =>
    writeFile(join(dir, STATE_FILE), `${JSON.stringify(saved, null, 2)}\n`);
  const configPath = await writeBuildConfig(dir);
  const { steps } = state;
  const quiet = (line: string): void => progress(`  ${line}`);

  state.dataset ??= await timed(steps, 'generate data set', progress, async () => {
    const generated = await runDataGenerate(
      {
        scale: scale === 'full' ? 'full' : 'tiny',
        ...recipe.sizes,
        seed: 7,
        name: DATASET_NAME,
        force: true,
        progress: false,
        config: configPath,
      },
      {},
    );
    const { users, items, events } = generated.manifest.counts;
    return { dir: generated.out, counts: { users, items, events } };
  });
  await save();
  const dataset = state.dataset;
  const { counts } = dataset;
  progress(
    `world: ${counts.users} users, ${counts.items} items, ${counts.events} events in ${dataset.dir}`,
  );

  state.retrieval ??= await timed(steps, 'train retrieval', progress, async () => {
    if (recipe.recentEvents > 0 && recipe.recentEvents < counts.events) {
      return trainOnRecent(dataset.dir, configPath, recipe, quiet);
    }
    const trained = await runTrainRetrieval(
      {
        data: dataset.dir,
        config: configPath,
        split: 'none',
        testFraction: 0,
        eval: false,
        epochs: recipe.epochs,
      },
      {},
      quiet,
    );
    return { dir: trained.artifact.dir, trainedEvents: counts.events };
  });
  await save();
  const retrieval = state.retrieval;

  state.indexDir ??= await timed(steps, 'build index', progress, async () => {
    const index = await runIndex(
      {
        model: retrieval.dir,
        data: dataset.dir,
        shards: WORLD_SHARDS,
        config: configPath,
        progress: false,
      },
      {},
    );
    return index.dir;
  });
  await save();

  state.rankerDir ??= await timed(steps, 'train ranker', progress, async () => {
    const ranker = await runTrainRanker(
      servingRankerFlags({
        data: dataset.dir,
        retrieval: retrieval.dir,
        queries: recipe.rankerQueries,
        candidates: recipe.rankerCandidates,
        config: configPath,
      }),
      {},
      quiet,
    );
    const rankerDir = ranker.rankers[0]?.dir;
    if (rankerDir === undefined) throw new Error('the ranker training wrote no GBDT ranker');
    return rankerDir;
  });
  await save();

  const world: World = {
    format: WORLD_FORMAT,
    scale,
    dir,
    datasetDir: dataset.dir,
    retrievalDir: retrieval.dir,
    indexDir: state.indexDir,
    rankerDir: state.rankerDir,
    shards: WORLD_SHARDS,
    counts,
    trainedEvents: retrieval.trainedEvents,
    steps,
    builtAt: new Date().toISOString(),
  };
  await writeFile(join(dir, 'world.json'), `${JSON.stringify(world, null, 2)}\n`);
  return world;
}

/** Rebuilds the batch feature tables when the feature definitions changed since they were made. */
async function refreshFeatureTables(world: World, progress: (line: string) => void): Promise<void> {
  const definitions = featureDefinitionsOf(loadConfig({ path: BASE_CONFIG, env: {} }));
  const stale = await staleFeatureTables(world.datasetDir, definitions);
  if (stale === null) return;
  progress(`world: feature tables out of date (${stale}): rebuilding them`);
  const { durationMs } = await buildFeatureTables(world.datasetDir, definitions);
  progress(`world: feature tables rebuilt in ${(durationMs / 1000).toFixed(1)} s`);
}

/** The cached world of `scale`, built first when there is none (or an outdated one). */
export async function buildWorld(options: BuildWorldOptions): Promise<World & { cached: boolean }> {
  const dir = resolve(options.root, options.scale);
  const cached = await readWorld(dir);
  const world = cached ?? (await build(dir, options));
  if (cached !== undefined) {
    const total = Object.values(cached.steps).reduce((sum, s) => sum + s, 0);
    options.progress(`world: reusing ${dir} (built ${cached.builtAt} in ${total.toFixed(0)} s)`);
  }
  await refreshFeatureTables(world, options.progress);
  return { ...world, cached: cached !== undefined };
}
