/**
 * `recsys train …`: model training. `train retrieval` trains the two-tower model on the training
 * part of a temporal split, exports both towers to ONNX, checks them with onnxruntime, evaluates
 * on the test part beside the popularity baselines, and writes a versioned artifact folder
 * `<data.dir>/models/retrieval/<version>/`. Progress goes to stderr, the summary to stdout.
 */
import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { Option } from 'commander';
import type { Command } from 'commander';

import { loadCommandConfig } from '../../runtime/config/index.js';
import type { ResolvedConfig } from '../../runtime/config/index.js';
import { ConfigError } from '../../runtime/errors.js';
import { readDataset } from '../data/dataset-io.js';
import { DataOptionError, DatasetFormatError } from '../data/errors.js';
import { temporalSplit } from '../data/split.js';
import { TRUTH_DIR, loadTruth } from '../data/truth.js';
import type { Truth } from '../data/truth.js';
import type { Dataset, EventTable } from '../data/types.js';
import {
  OracleScorer,
  PopularityScorer,
  RecentPopularityScorer,
  evaluateRetrieval,
  evaluationJson,
  formatEvaluation,
  recallRatios,
} from '../eval/index.js';
import type { SplitInfo } from '../retrieval/artifact.js';
import { ExportCheckError, trainRetrievalPipeline } from '../retrieval/pipeline.js';
import type { RetrievalPipelineResult } from '../retrieval/pipeline.js';
import { choosePopularityHalfLife } from '../retrieval/recency.js';
import type { TwoTowerTrainOptions } from '../retrieval/train.js';
import type { TwoTowerScorer } from '../retrieval/two-tower-scorer.js';
import { resolveDatasetDir } from './data.js';
import { fraction, integer, nonNegativeNumber, positiveNumber } from './args.js';
import { reportFailure } from '../../runtime/cli/exit.js';

/** The `train` command of `program`, created on first use, so other files can attach to it. */
export function trainCommand(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'train');
  if (existing !== undefined) return existing;
  return program.command('train').description('Train models on a data set and write artifacts');
}

export interface TrainRetrievalFlags {
  data: string;
  out?: string;
  config?: string;
  epochs?: number;
  dims?: number;
  batchSize?: number;
  learningRate?: number;
  temperature?: number;
  historyLength?: number;
  hiddenUnits?: number;
  seed?: number;
  halfLifeDays?: number;
  coldHalfLifeDays?: number | 'auto';
  split: 'temporal' | 'none';
  testFraction: number;
  eval?: boolean;
  evalUsers?: number;
  json?: boolean;
}

/**
 * Default recency half-life: a sixth of the training period, so the last sixth of the log weighs
 * about as much as everything before it, whatever the period's length (90 days of a synthetic
 * world, 20 years of MovieLens).
 */
export function defaultHalfLifeDays(train: EventTable): number {
  if (train.length < 2) return 0;
  const span = (train.ts[train.length - 1] as number) - (train.ts[0] as number);
  return span > 0 ? span / 86_400_000 / 6 : 0;
}

function halfLifeOrAuto(value: string): number | 'auto' {
  return value === 'auto' ? 'auto' : nonNegativeNumber(value);
}

/** The recipe: the config's `retrieval` section, with flags over it. */
export function trainOptions(
  config: ResolvedConfig,
  flags: TrainRetrievalFlags,
  train: EventTable,
  itemCount: number,
  log: (line: string) => void = () => undefined,
): TwoTowerTrainOptions {
  let coldHalfLifeDays = flags.coldHalfLifeDays ?? 'auto';
  if (coldHalfLifeDays === 'auto') {
    const choice = choosePopularityHalfLife(train, itemCount);
    coldHalfLifeDays = choice.halfLifeDays;
    log(
      `popularity half-life ${coldHalfLifeDays.toFixed(1)} days (best of ${choice.candidates.length} on the last tenth of the training events, ${choice.validationUsers} users)`,
    );
  }
  const r = config.retrieval;
  return {
    dims: flags.dims ?? r.dims,
    historyLength: flags.historyLength ?? r.historyLength,
    hiddenUnits: flags.hiddenUnits ?? r.hiddenUnits,
    batchSize: flags.batchSize ?? r.batchSize,
    epochs: flags.epochs ?? r.epochs,
    learningRate: flags.learningRate ?? r.learningRate,
    temperature: flags.temperature ?? r.temperature,
    logqCorrection: r.logqCorrection,
    seed: flags.seed ?? r.seed,
    recencyHalfLifeDays: flags.halfLifeDays ?? defaultHalfLifeDays(train),
    coldHalfLifeDays,
  };
}

export interface TrainRetrievalResult extends RetrievalPipelineResult {
  readonly datasetDir: string;
  readonly evaluationText: string | undefined;
  readonly seconds: number;
}

/** Runs `train retrieval` as the flags say. */
export async function runTrainRetrieval(
  flags: TrainRetrievalFlags,
  env: Record<string, string | undefined> = process.env,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<TrainRetrievalResult> {
  const started = performance.now();
  const config = loadCommandConfig(flags.config, env);
  const datasetDir = await resolveDatasetDir(flags.data, flags.config, env);
  log(`reading ${datasetDir}`);
  const dataset: Dataset = await readDataset(datasetDir);
  const split =
    flags.split === 'none'
      ? undefined
      : temporalSplit(dataset, { testFraction: flags.testFraction });
  const train = split?.train ?? dataset.events;
  const splitInfo: SplitInfo =
    split === undefined
      ? { kind: 'none', cutoff: null, trainEvents: train.length, testEvents: 0 }
      : {
          kind: 'temporal',
          cutoff: split.cutoff,
          trainEvents: split.train.length,
          testEvents: split.test.length,
        };
  if (split !== undefined) {
    log(
      `temporal split at ${new Date(split.cutoff).toISOString()}: ${split.train.length} training events, ${split.test.length} test events`,
    );
  }
  const options = trainOptions(config, flags, train, dataset.items.ids.length, log);
  // A synthetic world's ground truth: the oracle joins the evaluation, as in `recsys eval`.
  const truth =
    split === undefined || flags.eval === false ? undefined : await readTruth(datasetDir, dataset);
  let evaluationText: string | undefined;
  const evaluate =
    split === undefined || flags.eval === false || split.test.length === 0
      ? undefined
      : (scorer: TwoTowerScorer) => {
          log('evaluating on the test part');
          const itemCount = dataset.items.ids.length;
          const evaluation = evaluateRetrieval({
            dataset,
            split,
            historyLength: options.historyLength ?? config.retrieval.historyLength,
            scorers: [
              scorer,
              new PopularityScorer(split.train, itemCount),
              new RecentPopularityScorer(split.train, itemCount),
              ...(truth === undefined ? [] : [new OracleScorer(truth)]),
            ],
            ...(flags.evalUsers === undefined ? {} : { maxUsers: flags.evalUsers }),
          });
          evaluationText = formatEvaluation(evaluation);
          return {
            evaluation: evaluationJson(evaluation),
            recallVsPopularity: recallRatios(evaluation, 'popularity')?.[scorer.name] ?? null,
            recallVsOracle: recallRatios(evaluation, 'oracle')?.[scorer.name] ?? null,
          };
        };
  const out = resolve(flags.out ?? join(config.data.dir, 'models', 'retrieval'));
  const result = await trainRetrievalPipeline({
    dataset,
    train,
    split: splitInfo,
    outRoot: out,
    options,
    log,
    ...(evaluate === undefined ? {} : { evaluate }),
  });
  return {
    ...result,
    datasetDir,
    evaluationText,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The generator's ground truth beside a synthetic data set, when it is there and fits. */
async function readTruth(dir: string, dataset: Dataset): Promise<Truth | undefined> {
  try {
    await access(join(dir, TRUTH_DIR));
  } catch {
    return undefined;
  }
  const truth = await loadTruth(dir);
  if (truth.items !== dataset.items.ids.length || truth.users !== dataset.users.ids.length) {
    throw new DatasetFormatError(join(dir, TRUTH_DIR), 'does not match the data set');
  }
  return truth;
}

function fail(err: unknown): void {
  reportFailure(err, [DataOptionError, ConfigError, DatasetFormatError]);
}

/** Adds `train retrieval`. */
export function registerTrainCommands(program: Command): void {
  trainCommand(program)
    .command('retrieval')
    .description(
      'Train the two-tower retrieval model, export both towers to ONNX, check them with onnxruntime, evaluate, and write a versioned artifact',
    )
    .requiredOption(
      '--data <dir>',
      'a data set folder, or the name of one under <data.dir>/datasets',
    )
    .option(
      '--out <dir>',
      'where versioned model folders go (default: <data.dir>/models/retrieval)',
    )
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option(
      '--epochs <n>',
      'passes over the training events (default: retrieval.epochs)',
      integer(1),
    )
    .option('--dims <n>', 'embedding dimensions (default: retrieval.dims)', integer(1))
    .option('--batch-size <n>', 'examples per step (default: retrieval.batch_size)', integer(2))
    .option(
      '--learning-rate <lr>',
      'Adagrad learning rate (default: retrieval.learning_rate)',
      positiveNumber,
    )
    .option(
      '--temperature <t>',
      'softmax temperature (default: retrieval.temperature)',
      positiveNumber,
    )
    .option(
      '--history-length <n>',
      'items pooled into the user tower (default: retrieval.history_length)',
      integer(1),
    )
    .option(
      '--hidden-units <n>',
      'hidden layer width (default: retrieval.hidden_units)',
      integer(1),
    )
    .option('--seed <n>', 'seed (default: retrieval.seed)', integer(0))
    .option(
      '--half-life-days <d>',
      'recency weighting of examples; 0 weighs all alike (default: a sixth of the training period)',
      nonNegativeNumber,
    )
    .option(
      '--cold-half-life-days <d>',
      'recency of the simulated new users and the popularity feature, in days, or auto: measured on the training events (default: auto)',
      halfLifeOrAuto,
    )
    .addOption(
      new Option('--split <kind>', "train on the temporal split's training part, or on every event")
        .choices(['temporal', 'none'])
        .default('temporal'),
    )
    .option(
      '--test-fraction <f>',
      'share of events (the latest) held out for testing',
      fraction,
      0.2,
    )
    .option('--no-eval', 'skip the evaluation on the test part')
    .option('--eval-users <n>', 'evaluate a seeded sample of this many test users', integer(1))
    .option('--json', 'print the manifest as JSON instead of a summary')
    .action(async (flags: TrainRetrievalFlags) => {
      try {
        const result = await runTrainRetrieval(flags);
        const { artifact } = result;
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify(artifact.manifest, null, 2)}\n`);
          return;
        }
        const lines = [
          `wrote ${artifact.dir}`,
          `version ${artifact.version}; ${result.trained.report.examples} examples, ${result.trained.report.epochs.length} epochs in ${result.trained.report.seconds.toFixed(1)} s (total ${result.seconds.toFixed(1)} s)`,
          `export check passed: max |Δ| user ${result.exportCheck.userMaxAbsDiff.toExponential(2)}, item ${result.exportCheck.itemMaxAbsDiff.toExponential(2)}`,
        ];
        if (result.evaluationText !== undefined) lines.push('', result.evaluationText.trimEnd());
        process.stdout.write(`${lines.join('\n')}\n`);
      } catch (err) {
        if (err instanceof ExportCheckError) process.stderr.write('recsys: export check failed\n');
        fail(err);
      }
    });
}
