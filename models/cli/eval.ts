/**
 * `recsys eval`: offline evaluation of retrieval on a data set. Splits the events, builds the
 * baselines (popularity, recent popularity), the oracle when the data set is synthetic, and the
 * two-tower model when `--model` names an artifact, then ranks the whole catalogue for every test
 * user with each of them and prints recall, NDCG, hit rate and coverage side by side.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';

import { loadCommandConfig } from '../../runtime/config/index.js';
import { ConfigError } from '../../runtime/errors.js';
import { readDataset } from '../data/dataset-io.js';
import { DataOptionError, DatasetFormatError } from '../data/errors.js';
import { ProgressBar } from '../data/progress.js';
import { randomSplit, temporalSplit } from '../data/split.js';
import { TRUTH_DIR, loadTruth } from '../data/truth.js';
import type { Dataset } from '../data/types.js';
import { OracleScorer, PopularityScorer, RecentPopularityScorer } from '../eval/baselines.js';
import { evaluateRetrieval } from '../eval/evaluate.js';
import type { EvalSplit, RetrievalEvaluation } from '../eval/evaluate.js';
import { evaluationJson, formatEvaluation } from '../eval/report.js';
import { loadRetrievalArtifact, RetrievalArtifactError } from '../retrieval/artifact.js';
import type { LoadedRetrievalModel } from '../retrieval/artifact.js';
import type { RetrievalScorer } from '../retrieval/scorer.js';
import { userProfiles } from '../retrieval/features.js';
import { TwoTowerScorer } from '../retrieval/two-tower-scorer.js';
import { resolveDatasetDir } from './data.js';
import { fraction, integer, positiveNumber } from './args.js';
import { exists } from './files.js';
import { reportFailure } from '../../runtime/cli/exit.js';

export interface EvalFlags {
  data: string;
  model?: string;
  split: 'temporal' | 'random';
  testFraction: number;
  k: number[];
  json?: string;
  historyLength?: number;
  windowDays?: number;
  windowShare: number;
  halfLifeDays?: number;
  maxUsers?: number;
  seed: number;
  batchSize?: number;
  config?: string;
  progress?: boolean;
}

export interface EvalRunResult {
  readonly dataDir: string;
  readonly evaluation: RetrievalEvaluation;
  /** The JSON document `--json` writes. */
  readonly json: Record<string, unknown>;
  /** The report printed on stdout. */
  readonly text: string;
}

/** Loads, splits, builds the scorers and evaluates them, as the flags say. */
export async function runEval(
  flags: EvalFlags,
  env: Record<string, string | undefined> = process.env,
): Promise<EvalRunResult> {
  const config = loadCommandConfig(flags.config, env);
  const dataDir = await resolveDatasetDir(flags.data, flags.config, env);
  const dataset = await readDataset(dataDir);
  const split = splitOf(dataset, flags);
  if (split.train.length === 0 || split.test.length === 0) {
    throw new DataOptionError(
      '--test-fraction',
      `leaves ${split.train.length} training and ${split.test.length} test events; both need some`,
    );
  }
  const itemCount = dataset.items.ids.length;
  const recent = new RecentPopularityScorer(split.train, itemCount, {
    windowShare: flags.windowShare,
    ...(flags.windowDays === undefined ? {} : { windowDays: flags.windowDays }),
    ...(flags.halfLifeDays === undefined ? {} : { halfLifeDays: flags.halfLifeDays }),
  });
  const scorers: RetrievalScorer[] = [new PopularityScorer(split.train, itemCount), recent];
  if (await exists(join(dataDir, TRUTH_DIR))) {
    const truth = await loadTruth(dataDir);
    if (truth.items !== itemCount || truth.users !== dataset.users.ids.length) {
      throw new DatasetFormatError(
        join(dataDir, TRUTH_DIR),
        `holds ${truth.users} users × ${truth.items} items; the data set has ${dataset.users.ids.length} × ${itemCount}`,
      );
    }
    scorers.push(new OracleScorer(truth));
  }
  let historyLength = flags.historyLength ?? config.retrieval.historyLength;
  if (flags.model !== undefined) {
    const loaded = await loadRetrievalArtifact(resolve(flags.model));
    checkModelFits(loaded, dataset, split);
    // The model pools its own last N items; give it at least that many.
    if (flags.historyLength === undefined) {
      historyLength = Math.max(historyLength, loaded.manifest.shape.historyLength);
    }
    // Profiles let the user tower serve users without training history (cold start) as trained.
    scorers.push(
      new TwoTowerScorer(loaded.model, loaded.itemEmbeddings, {
        profiles: userProfiles(dataset.users),
      }),
    );
  }

  let bar: ProgressBar | undefined;
  const evaluation = evaluateRetrieval({
    dataset,
    split,
    scorers,
    ks: flags.k,
    historyLength,
    seed: flags.seed,
    ...(split.kind === 'random' ? { at: lastEventTime(dataset) + 1 } : {}),
    ...(flags.batchSize === undefined ? {} : { batchSize: flags.batchSize }),
    ...(flags.maxUsers === undefined ? {} : { maxUsers: flags.maxUsers }),
    onProgress: (done, total) => {
      if (flags.progress === false) return;
      bar ??= new ProgressBar({ label: 'evaluating', total });
      bar.update(done, 'users');
    },
  });
  bar?.finish();
  const window = recent.windowAt(evaluation.protocol.at);
  const windowText =
    `${recent.name} counts the ${window.events} training events of the ${window.days.toFixed(1)} days before the query time` +
    (recent.windowMs === undefined ? ` (the last ${recent.windowShare * 100}% of them)` : '') +
    (recent.halfLifeMs === undefined
      ? ''
      : `, decayed with a half-life of ${recent.halfLifeMs / 86_400_000} days`) +
    '; ties go to the all-time count.';
  return {
    dataDir,
    evaluation,
    json: {
      dataDir,
      ...evaluationJson(evaluation),
      recentPopularity: {
        ...window,
        windowShare: recent.windowMs === undefined ? recent.windowShare : null,
        halfLifeDays: recent.halfLifeMs === undefined ? null : recent.halfLifeMs / 86_400_000,
      },
    },
    text: `${formatEvaluation(evaluation)}${windowText}\n`,
  };
}

function splitOf(dataset: Dataset, flags: EvalFlags): EvalSplit {
  if (flags.split === 'random') {
    return {
      ...randomSplit(dataset, { testFraction: flags.testFraction, seed: flags.seed }),
      kind: 'random',
    };
  }
  return { ...temporalSplit(dataset, { testFraction: flags.testFraction }), kind: 'temporal' };
}

function lastEventTime(dataset: Dataset): number {
  const { events } = dataset;
  return events.length === 0 ? 0 : (events.ts[events.length - 1] as number);
}

/**
 * A model is judged only on the data set and split it was trained for: the same item and user
 * index spaces, and no test event in its training data.
 */
function checkModelFits(loaded: LoadedRetrievalModel, dataset: Dataset, split: EvalSplit): void {
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
  const trained = manifest.split;
  if (split.kind === 'temporal') {
    // Trained on events up to its own cutoff: fine if that is no later than ours.
    if (trained.kind !== 'temporal' || trained.cutoff === null || trained.cutoff > split.cutoff) {
      throw new RetrievalArtifactError(
        where,
        `was trained on ${trained.kind === 'temporal' ? `events before ${iso(trained.cutoff)}` : `a ${trained.kind} split`}, which includes test events of this evaluation (cutoff ${iso(split.cutoff)}); train it with the same temporal split`,
      );
    }
  } else if (
    trained.kind !== 'random' ||
    trained.trainEvents !== split.train.length ||
    trained.testEvents !== split.test.length
  ) {
    throw new RetrievalArtifactError(
      where,
      `was not trained on this random split (${trained.trainEvents} training events, ${trained.kind} split; this one has ${split.train.length}); use the same --test-fraction and --seed`,
    );
  }
}

function iso(ms: number | null): string {
  return ms === null || !Number.isFinite(ms) ? 'none' : new Date(ms).toISOString();
}

/** `10,50,100` → [10, 50, 100]. */
export function parseKs(value: string): number[] {
  const ks = value.split(',').map((k) => Number(k.trim()));
  if (ks.length === 0 || ks.some((k) => !Number.isInteger(k) || k < 1)) {
    throw new InvalidArgumentError(`expected positive integers separated by commas, got ${value}`);
  }
  return ks;
}

function fail(err: unknown): void {
  reportFailure(err, [DataOptionError, ConfigError, DatasetFormatError, RetrievalArtifactError]);
}

/** Adds `recsys eval`. */
export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description(
      'Offline evaluation of retrieval: recall, NDCG, hit rate and coverage at K of the baselines, the oracle and a model',
    )
    .requiredOption(
      '--data <dir>',
      'a data set folder, or the name of one under <data.dir>/datasets',
    )
    .option('--model <dir>', 'a two-tower artifact folder (from `recsys train retrieval`)')
    .addOption(
      new Option('--split <kind>', 'temporal (honest) or random (comparison only)')
        .choices(['temporal', 'random'])
        .default('temporal'),
    )
    .option('--test-fraction <f>', 'share of events in the test period', fraction, 0.2)
    .addOption(
      new Option('--k <list>', 'cut-offs, comma-separated')
        .argParser(parseKs)
        .default([10, 50, 100], '10,50,100'),
    )
    .option('--json <file>', 'also write the results as JSON')
    .option(
      '--history-length <n>',
      'training items per query (default: retrieval.history_length, or the longer history of the model)',
      integer(1),
    )
    .option(
      '--window-share <f>',
      'recent popularity counts this most recent share of the training events',
      fraction,
      0.05,
    )
    .option('--window-days <d>', 'recent popularity counts the last d days instead', positiveNumber)
    .option(
      '--half-life-days <d>',
      'decay recent-popularity events with this half-life',
      positiveNumber,
    )
    .option('--max-users <n>', 'evaluate a seeded sample of this many test users', integer(1))
    .option('--seed <s>', 'seed of the random split and of the user sample', integer(0), 0)
    .option(
      '--batch-size <n>',
      'users scored per call (default: 64 MiB of scores, at most 512)',
      integer(1),
    )
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option('--no-progress', 'no progress bar on stderr')
    .action(async (flags: EvalFlags) => {
      try {
        const result = await runEval(flags);
        process.stdout.write(result.text);
        if (flags.json !== undefined) {
          const path = resolve(flags.json);
          await mkdir(dirname(path), { recursive: true });
          await writeFile(path, `${JSON.stringify(result.json, null, 2)}\n`);
          process.stdout.write(`wrote ${path}\n`);
        }
      } catch (err) {
        fail(err);
      }
    });
}
