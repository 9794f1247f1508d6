/**
 * `recsys train ranker`: trains the ranking stage on a data set and a trained retrieval model.
 * Point-in-time examples come from the training part of the temporal split (the test part stays
 * unread for `recsys eval ranking`), the last slice of training time validates for early
 * stopping, and each ranker asked for (GBDT, DeepFM or both) is written as a versioned artifact
 * folder, `<data.dir>/models/ranker-gbdt/<version>` and `<data.dir>/models/ranker-deepfm/<version>`.
 * Progress goes to stderr, the summary to stdout.
 *
 * The helpers that open a data set's retrieval model and find model folders are shared with
 * `eval-ranking.ts`.
 */
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { Option } from 'commander';
import type { Command } from 'commander';

import { reportFailure } from '../../runtime/cli/exit.js';
import { loadCommandConfig } from '../../runtime/config/index.js';
import type { ResolvedConfig } from '../../runtime/config/index.js';
import { ConfigError } from '../../runtime/errors.js';
import { readDataset } from '../data/dataset-io.js';
import { DataOptionError, DatasetFormatError } from '../data/errors.js';
import { ProgressBar } from '../data/progress.js';
import { temporalSplit } from '../data/split.js';
import type { Dataset } from '../data/types.js';
import { featureDefinitionsOf } from '../features/definitions.js';
import { RankerArtifactError } from '../ranking/gbdt-artifact.js';
import { RankerKind } from '../ranking/ranker.js';
import {
  DEFAULT_RANKER_GBDT,
  RankerExportCheckError,
  trainRankers,
} from '../ranking/train-rankers.js';
import type { RankerPipelineResult } from '../ranking/train-rankers.js';
import { loadRetrievalArtifact, RetrievalArtifactError } from '../retrieval/artifact.js';
import type { LoadedRetrievalModel } from '../retrieval/artifact.js';
import { userProfiles } from '../retrieval/features.js';
import { TwoTowerScorer } from '../retrieval/two-tower-scorer.js';
import { fraction, integer, positiveNumber } from './args.js';
import { resolveDatasetDir } from './data.js';
import { exists } from './files.js';
import { trainCommand } from './train.js';

const HOUR_MS = 3_600_000;

/** A version folder's name: `<UTC time>-<hash>`, as the artifact writers make it. */
const VERSION_NAME = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;

/**
 * A model folder: `path` itself when it holds a `manifest.json`, else the newest version folder
 * under it (versions start with their UTC time, so the last by name is the newest). Rejects with
 * `DataOptionError` naming `flag` when there is neither.
 */
export async function resolveModelDir(path: string, flag: string): Promise<string> {
  const dir = resolve(path);
  if (await exists(join(dir, 'manifest.json'))) return dir;
  let names: string[] = [];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory() && VERSION_NAME.test(entry.name))
      .map((entry) => entry.name)
      .sort();
  } catch {
    // Not a folder: reported below.
  }
  for (let i = names.length - 1; i >= 0; i--) {
    const candidate = join(dir, names[i] as string);
    if (await exists(join(candidate, 'manifest.json'))) return candidate;
  }
  throw new DataOptionError(
    flag,
    `names no model: ${dir} holds no manifest.json, nor a version folder with one`,
  );
}

/** The retrieval model of a data set, ready to propose candidates. */
export interface OpenedRetrieval {
  readonly loaded: LoadedRetrievalModel;
  readonly scorer: TwoTowerScorer;
  readonly version: string;
  /** Its training events were before this (epoch ms); null when it trained on every event. */
  readonly cutoff: number | null;
}

/**
 * Loads the retrieval model at `dir` for `dataset`; rejects with `RetrievalArtifactError` when it
 * was trained on another data set or another catalogue.
 */
export async function openRetrieval(dir: string, dataset: Dataset): Promise<OpenedRetrieval> {
  const loaded = await loadRetrievalArtifact(dir);
  const { manifest } = loaded;
  const where = join(loaded.dir, 'manifest.json');
  if (manifest.dataset.fingerprint !== dataset.manifest.fingerprint) {
    throw new RetrievalArtifactError(
      where,
      `was trained on data set ${manifest.dataset.name} (fingerprint ${manifest.dataset.fingerprint.slice(0, 12)}), not on ${dataset.manifest.name} (${dataset.manifest.fingerprint.slice(0, 12)})`,
    );
  }
  if (loaded.itemEmbeddings.length !== dataset.items.ids.length * manifest.dims) {
    throw new RetrievalArtifactError(where, 'has a different number of items than the data set');
  }
  const scorer = new TwoTowerScorer(loaded.model, loaded.itemEmbeddings, {
    profiles: userProfiles(dataset.users),
  });
  const cutoff = manifest.split.kind === 'temporal' ? manifest.split.cutoff : null;
  return { loaded, scorer, version: manifest.version, cutoff };
}

/**
 * Throws `RetrievalArtifactError` unless the retrieval model trained only on events before
 * `cutoff` (the start of the test part): else its scores would have seen the test labels.
 */
export function checkRetrievalBefore(retrieval: OpenedRetrieval, cutoff: number): void {
  const { manifest } = retrieval.loaded;
  if (manifest.split.kind === 'temporal' && manifest.split.cutoff !== null) {
    if (manifest.split.cutoff <= cutoff) return;
  }
  throw new RetrievalArtifactError(
    join(retrieval.loaded.dir, 'manifest.json'),
    `was trained on ${manifest.split.kind === 'temporal' ? `events before ${iso(manifest.split.cutoff)}` : `a ${manifest.split.kind} split`}, which includes events of the test part (from ${iso(cutoff)}); train it with the same temporal split`,
  );
}

export function iso(ms: number | null): string {
  return ms === null || !Number.isFinite(ms) ? 'none' : new Date(ms).toISOString();
}

export interface TrainRankerFlags {
  data: string;
  retrieval: string;
  kind: 'gbdt' | 'deepfm' | 'both';
  queries: number;
  sampling: 'users' | 'events';
  candidates: number;
  horizonHours: number;
  split: 'temporal' | 'none';
  testFraction: number;
  validFraction: number;
  trees?: number;
  leaves?: number;
  learningRate?: number;
  minDataInLeaf?: number;
  earlyStopping?: number;
  epochs?: number;
  seed: number;
  out?: string;
  config?: string;
  progress?: boolean;
  json?: boolean;
}

export interface TrainRankerResult extends RankerPipelineResult {
  readonly datasetDir: string;
  readonly retrievalDir: string;
  readonly cutoff: number | null;
  readonly seconds: number;
}

/**
 * The flags of a GBDT ranker that serves a whole data set: nothing held out for a test, a fifth of
 * the query points for validation. What the demo and the end-to-end benchmark train.
 */
export function servingRankerFlags(input: {
  data: string;
  retrieval: string;
  queries: number;
  candidates: number;
  config?: string | undefined;
}): TrainRankerFlags {
  const { config, ...rest } = input;
  return {
    ...rest,
    kind: 'gbdt',
    sampling: 'users',
    horizonHours: 24,
    split: 'none',
    testFraction: 0,
    validFraction: 0.2,
    seed: 42,
    progress: false,
    ...(config === undefined ? {} : { config }),
  };
}

function kindsOf(kind: TrainRankerFlags['kind']): RankerKind[] {
  if (kind === 'both') return [RankerKind.Gbdt, RankerKind.DeepFm];
  if (kind === RankerKind.Gbdt || kind === RankerKind.DeepFm) return [kind];
  throw new DataOptionError('--kind', `must be gbdt, deepfm or both, got ${String(kind)}`);
}

/** Runs `train ranker` as the flags say. */
export async function runTrainRanker(
  flags: TrainRankerFlags,
  env: Record<string, string | undefined> = process.env,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<TrainRankerResult> {
  const started = performance.now();
  const kinds = kindsOf(flags.kind);
  const config: ResolvedConfig = loadCommandConfig(flags.config, env);
  const definitions = featureDefinitionsOf(config);
  const datasetDir = await resolveDatasetDir(flags.data, flags.config, env);
  const retrievalDir = await resolveModelDir(flags.retrieval, '--retrieval');
  log(`reading ${datasetDir}`);
  const dataset = await readDataset(datasetDir);
  const retrieval = await openRetrieval(retrievalDir, dataset);
  let cutoff: number | null = null;
  if (flags.split !== 'none') {
    const split = temporalSplit(dataset, { testFraction: flags.testFraction });
    if (split.train.length === 0 || split.test.length === 0) {
      throw new DataOptionError(
        '--test-fraction',
        `leaves ${split.train.length} training and ${split.test.length} test events; both need some`,
      );
    }
    cutoff = split.cutoff;
    checkRetrievalBefore(retrieval, cutoff);
    log(
      `temporal split at ${iso(cutoff)}: ${split.train.length} training events (the examples' source), ${split.test.length} test events left for evaluation`,
    );
  }
  log(`retrieval model ${retrieval.version}`);
  const modelsRoot = resolve(flags.out ?? join(config.data.dir, 'models'));
  const bars = new Map<string, ProgressBar>();
  const result = await trainRankers({
    dataset,
    retrieval: retrieval.scorer,
    retrievalInfo: { version: retrieval.version, cutoff: retrieval.cutoff },
    definitions,
    windowsMinutes: config.events.windowsMinutes,
    kinds,
    cutoff,
    queries: flags.queries,
    sampling: flags.sampling,
    candidates: flags.candidates,
    horizonMs: Math.round(flags.horizonHours * HOUR_MS),
    validFraction: flags.validFraction,
    historyLength: Math.max(
      config.retrieval.historyLength,
      retrieval.loaded.manifest.shape.historyLength,
    ),
    seed: flags.seed,
    gbdt: {
      ...(flags.trees === undefined ? {} : { numIterations: flags.trees }),
      ...(flags.leaves === undefined ? {} : { numLeaves: flags.leaves }),
      ...(flags.learningRate === undefined ? {} : { learningRate: flags.learningRate }),
      ...(flags.minDataInLeaf === undefined ? {} : { minDataInLeaf: flags.minDataInLeaf }),
      ...(flags.earlyStopping === undefined ? {} : { earlyStoppingRounds: flags.earlyStopping }),
    },
    deepfm: flags.epochs === undefined ? {} : { epochs: flags.epochs },
    outRoot: { gbdt: join(modelsRoot, 'ranker-gbdt'), deepfm: join(modelsRoot, 'ranker-deepfm') },
    log,
    onExamples: (part, done, total) => {
      if (flags.progress === false) return;
      let bar = bars.get(part);
      if (bar === undefined) {
        bar = new ProgressBar({ label: `${part} examples`, total });
        bars.set(part, bar);
      }
      bar.update(done, 'queries');
      if (done === total) bar.finish('queries');
    },
  });
  return {
    ...result,
    datasetDir,
    retrievalDir,
    cutoff,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The summary `train ranker` prints. */
export function formatTrainRanker(result: TrainRankerResult): string {
  const { examples } = result;
  const lines = result.rankers.map((r) => `wrote ${r.dir}`);
  lines.push(
    '',
    `examples (${result.examplesSeconds.toFixed(1)} s): ${examples.training.groups} training queries, ${examples.training.rows} rows, ${examples.training.positives} positive; ${examples.validation.groups} validation queries from ${iso(examples.validStart)}, ${examples.validation.rows} rows`,
    `validation NDCG@10 over ${examples.validation.groups} queries:`,
  );
  const base = result.validRetrievalNdcg;
  const row = (name: string, ndcg: number, detail = ''): string =>
    `  ${name.padEnd(16)} ${Number.isNaN(ndcg) ? '     n/a' : ndcg.toFixed(4).padStart(8)}  × ${base > 0 && !Number.isNaN(ndcg) ? (ndcg / base).toFixed(3) : 'n/a'}${detail}`;
  lines.push(row('retrieval order', base));
  for (const r of result.rankers) {
    const rounds = r.kind === RankerKind.Gbdt ? `${r.rounds} trees` : `epoch ${r.rounds}`;
    lines.push(
      row(
        r.kind,
        r.validNdcg,
        `   (${rounds}${r.stoppedEarly ? ', early stopping' : ''}; trained in ${r.seconds.toFixed(1)} s; onnxruntime max |Δ| ${r.exportMaxAbsDiff.toExponential(1)})`,
      ),
    );
  }
  lines.push(
    row('popularity', result.validPopularityNdcg),
    '',
    `total ${result.seconds.toFixed(1)} s`,
  );
  return `${lines.join('\n')}\n`;
}

/** Ends a ranker command (`train ranker`, `eval ranking`) on an error, as a bad input when it is one. */
export function failRankerCommand(err: unknown): void {
  reportFailure(err, [
    DataOptionError,
    ConfigError,
    DatasetFormatError,
    RetrievalArtifactError,
    RankerArtifactError,
  ]);
}

/** Adds `train ranker` to the `train` command. */
export function registerTrainRankerCommand(program: Command): void {
  trainCommand(program)
    .command('ranker')
    .description(
      'Train the ranking stage (GBDT LambdaRank and/or DeepFM) on point-in-time examples of the training part, and write versioned artifacts',
    )
    .requiredOption(
      '--data <dir>',
      'a data set folder, or the name of one under <data.dir>/datasets',
    )
    .requiredOption(
      '--retrieval <dir>',
      'the retrieval model (from `recsys train retrieval`): its folder, or a folder of versions (the newest)',
    )
    .addOption(
      new Option('--kind <kind>', 'which ranker to train')
        .choices(['gbdt', 'deepfm', 'both'])
        .default('gbdt'),
    )
    .option('--queries <n>', 'query points, training and validation together', integer(2), 4000)
    .addOption(
      new Option(
        '--sampling <how>',
        'draw query points user by user (each user weighs about the same) or uniformly over events',
      )
        .choices(['users', 'events'])
        .default('users'),
    )
    .option('--candidates <k>', "retrieval's top K per query", integer(1), 100)
    .option(
      '--horizon-hours <h>',
      "a candidate's label: the user's events on it within this long after the query",
      positiveNumber,
      24,
    )
    .addOption(
      new Option('--split <kind>', 'keep the temporal test part out, or use every event')
        .choices(['temporal', 'none'])
        .default('temporal'),
    )
    .option('--test-fraction <f>', 'share of events (the latest) left for testing', fraction, 0.2)
    .option(
      '--valid-fraction <f>',
      'share of the training events (the latest) whose queries validate, for early stopping',
      fraction,
      0.2,
    )
    .option(
      '--trees <n>',
      `GBDT: most trees (default: ${DEFAULT_RANKER_GBDT.numIterations})`,
      integer(1),
    )
    .option(
      '--leaves <n>',
      `GBDT: leaves per tree (default: ${DEFAULT_RANKER_GBDT.numLeaves})`,
      integer(2),
    )
    .option(
      '--learning-rate <lr>',
      `GBDT: shrinkage (default: ${DEFAULT_RANKER_GBDT.learningRate})`,
      positiveNumber,
    )
    .option(
      '--min-data-in-leaf <n>',
      `GBDT: fewest rows in a leaf (default: ${DEFAULT_RANKER_GBDT.minDataInLeaf})`,
      integer(1),
    )
    .option(
      '--early-stopping <n>',
      `GBDT: rounds without validation gain before stopping; 0 never stops (default: ${DEFAULT_RANKER_GBDT.earlyStoppingRounds})`,
      integer(0),
    )
    .option('--epochs <n>', 'DeepFM: most epochs (default: 20)', integer(1))
    .option('--seed <n>', 'seeds the query sample and both trainers', integer(0), 42)
    .option(
      '--out <dir>',
      'models root: ranker-gbdt/ and ranker-deepfm/ go under it (default: <data.dir>/models)',
    )
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option('--no-progress', 'no progress bars on stderr')
    .option('--json', 'print the result as JSON instead of a summary')
    .action(async (flags: TrainRankerFlags) => {
      try {
        const result = await runTrainRanker(flags);
        process.stdout.write(
          flags.json === true ? `${JSON.stringify(result, null, 2)}\n` : formatTrainRanker(result),
        );
      } catch (err) {
        if (err instanceof RankerExportCheckError) {
          process.stderr.write('recsys: export check failed\n');
        }
        failRankerCommand(err);
      }
    });
}
