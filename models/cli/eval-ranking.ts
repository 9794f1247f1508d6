/**
 * `recsys eval ranking`: offline evaluation of the ranking stage on the test part of the temporal
 * split. Query points are drawn from the test events (a user at the time of one of their events);
 * each gets the retrieval model's top K candidates as of that time, features as the online store
 * would have served them then, and labels from what the user did next (built exactly as the
 * rankers' training examples are). The same candidate lists are then ordered by retrieval score,
 * by each ranker given and by item popularity at the query time, and NDCG@k of each order is
 * printed with its lift over the retrieval order.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import type { Command } from 'commander';

import { loadCommandConfig } from '../../runtime/config/index.js';
import { readDataset } from '../data/dataset-io.js';
import { DataOptionError } from '../data/errors.js';
import { ProgressBar } from '../data/progress.js';
import { temporalSplit } from '../data/split.js';
import type { Dataset } from '../data/types.js';
import { featureDefinitionsOf } from '../features/definitions.js';
import { buildRankingExamples } from '../ranking/examples.js';
import type { RankingExamples } from '../ranking/examples.js';
import { rankingSchema } from '../ranking/features.js';
import {
  RANKER_MANIFEST_FILE,
  RankerArtifactError,
  readRankerManifest,
} from '../ranking/gbdt-artifact.js';
import type { RankerTrainingData } from '../ranking/gbdt-artifact.js';
import { loadRanker } from '../ranking/ranker.js';
import type { RankerModel } from '../ranking/ranker.js';
import { evaluateRanking, formatRankingTable } from '../ranking/ranking-eval.js';
import type { RankingEvaluation } from '../ranking/ranking-eval.js';
import { integer, positiveNumber } from './args.js';
import { resolveDatasetDir } from './data.js';
import {
  checkRetrievalBefore,
  failRankerCommand,
  iso,
  openRetrieval,
  resolveModelDir,
} from './train-ranker.js';

const HOUR_MS = 3_600_000;

export interface EvalRankingFlags {
  data: string;
  retrieval: string;
  ranker?: string[];
  queries: number;
  candidates: number;
  horizonHours: number;
  testFraction: number;
  k: number[];
  seed: number;
  json?: string;
  config?: string;
  progress?: boolean;
}

export interface EvalRankingResult {
  readonly datasetDir: string;
  readonly retrievalDir: string;
  readonly rankerDirs: readonly string[];
  readonly cutoff: number;
  readonly evaluation: RankingEvaluation;
  readonly examples: Pick<RankingExamples, 'rows' | 'stats'>;
  /** The JSON document `--json` writes. */
  readonly json: Record<string, unknown>;
  /** The report printed on stdout. */
  readonly text: string;
}

/**
 * Throws `RankerArtifactError` unless the ranker at `dir` was trained on this data set and only on
 * events before `cutoff`; returns the version of the retrieval model it was trained with.
 */
async function checkRankerFits(
  dir: string,
  dataset: Dataset,
  cutoff: number,
): Promise<string | undefined> {
  const where = join(dir, RANKER_MANIFEST_FILE);
  const manifest = await readRankerManifest(dir);
  const data = manifest['data'] as Partial<RankerTrainingData> | null | undefined;
  const fingerprint = data?.dataset?.fingerprint;
  if (fingerprint !== dataset.manifest.fingerprint) {
    throw new RankerArtifactError(
      where,
      `was trained on data set ${data?.dataset?.name ?? 'unknown'} (fingerprint ${String(fingerprint).slice(0, 12)}), not on ${dataset.manifest.name} (${dataset.manifest.fingerprint.slice(0, 12)})`,
    );
  }
  const trained = data?.split?.kind === 'temporal' ? (data.split.cutoff ?? null) : null;
  if (trained === null || trained > cutoff) {
    throw new RankerArtifactError(
      where,
      `was trained on ${trained === null ? 'every event' : `events before ${iso(trained)}`}, which includes events of the test part (from ${iso(cutoff)}); train it with the same temporal split`,
    );
  }
  return data?.retrieval?.version;
}

/** Runs `eval ranking` as the flags say. */
export async function runEvalRanking(
  flags: EvalRankingFlags,
  env: Record<string, string | undefined> = process.env,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<EvalRankingResult> {
  const started = performance.now();
  const config = loadCommandConfig(flags.config, env);
  const definitions = featureDefinitionsOf(config);
  const datasetDir = await resolveDatasetDir(flags.data, flags.config, env);
  const retrievalDir = await resolveModelDir(flags.retrieval, '--retrieval');
  const rankerDirs: string[] = [];
  for (const dir of flags.ranker ?? []) rankerDirs.push(await resolveModelDir(dir, '--ranker'));
  log(`reading ${datasetDir}`);
  const dataset = await readDataset(datasetDir);
  const split = temporalSplit(dataset, { testFraction: flags.testFraction });
  if (split.train.length === 0 || split.test.length === 0) {
    throw new DataOptionError(
      '--test-fraction',
      `leaves ${split.train.length} training and ${split.test.length} test events; both need some`,
    );
  }
  const cutoff = split.cutoff;
  const retrieval = await openRetrieval(retrievalDir, dataset);
  checkRetrievalBefore(retrieval, cutoff);
  const notes: string[] = [];
  for (const dir of rankerDirs) {
    const trainedWith = await checkRankerFits(dir, dataset, cutoff);
    if (trainedWith !== retrieval.version) {
      notes.push(
        `note: ${dir} was trained on the candidates of retrieval model ${trainedWith ?? 'unknown'}, not ${retrieval.version}`,
      );
    }
  }
  const rankers: RankerModel[] = [];
  try {
    for (const dir of rankerDirs) rankers.push(await loadRanker(dir));
    const horizonMs = Math.round(flags.horizonHours * HOUR_MS);
    let bar: ProgressBar | undefined;
    const examplesStarted = performance.now();
    const examples = await buildRankingExamples({
      dataset,
      retrieval: retrieval.scorer,
      definitions,
      schema: rankingSchema(),
      from: cutoff,
      queries: flags.queries,
      candidates: flags.candidates,
      horizonMs,
      historyLength: Math.max(
        config.retrieval.historyLength,
        retrieval.loaded.manifest.shape.historyLength,
      ),
      windowsMinutes: config.events.windowsMinutes,
      seed: flags.seed,
      retrievalBatch: 256,
      onProgress: (done, total) => {
        if (flags.progress === false) return;
        bar ??= new ProgressBar({ label: 'test examples', total });
        bar.update(done, 'queries');
      },
    });
    bar?.finish('queries');
    const examplesSeconds = (performance.now() - examplesStarted) / 1000;
    const evaluation = await evaluateRanking({ examples, rankers, ks: flags.k });
    const { stats } = examples;
    const intro = [
      `Ranking on the test part of the temporal split at ${iso(cutoff)}: ${stats.points} query points drawn from the test events (a user at the time of one of their events), each with the retrieval model's top ${flags.candidates} candidates as of that time (items the user had already interacted with, and items not yet created, left out), features as the online store served them then, and labels from the user's events on each candidate within ${flags.horizonHours} h (purchase 4, like 3, click 2, view 1; ratings graded by value).`,
      `${evaluation.queries} queries kept (${stats.withoutPositives} with no positive candidate and ${stats.withoutCandidates} with no candidate left), ${evaluation.rows} rows, ${evaluation.positives} positive. NDCG as LightGBM defines it: gain 2^label - 1, log2 discount, ties in retrieval order. Retrieval model ${retrieval.version}; examples built in ${examplesSeconds.toFixed(1)} s.`,
    ];
    const text = `${wrap(intro.join(' '))}\n${notes.map((note) => `${note}\n`).join('')}\n${formatRankingTable(evaluation)}\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s\n`;
    return {
      datasetDir,
      retrievalDir,
      rankerDirs,
      cutoff,
      evaluation,
      examples: { rows: examples.rows, stats },
      json: {
        datasetDir,
        retrieval: { dir: retrievalDir, version: retrieval.version },
        rankers: rankers.map((r, i) => ({ dir: rankerDirs[i], kind: r.kind, version: r.version })),
        cutoff,
        horizonHours: flags.horizonHours,
        candidates: flags.candidates,
        examples: stats,
        ks: evaluation.ks,
        results: evaluation.contenders.map((c) => ({
          name: c.name,
          kind: c.kind,
          ndcg: Object.fromEntries(evaluation.ks.map((k, i) => [`@${k}`, c.ndcg[i]])),
          liftOverRetrieval: Object.fromEntries(evaluation.ks.map((k, i) => [`@${k}`, c.lift[i]])),
        })),
      },
      text,
    };
  } finally {
    for (const ranker of rankers) await ranker.close();
  }
}

/** Wraps a paragraph at 100 columns. */
function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

/** What the `eval` command parses for its `ranking` subcommand (its options come first). */
interface EvalParentFlags {
  data: string;
  split?: string;
  testFraction: number;
  k: number[];
  seed: number;
  json?: string;
  config?: string;
  progress?: boolean;
}

/**
 * Adds `eval ranking` to the `eval` command (which `registerEvalCommand` adds first). The options
 * the two share are `eval`'s own (`--data`, `--test-fraction`, `--k`, `--seed`, `--json`,
 * `--config`, `--no-progress`): the parent parses them wherever they stand, and the subcommand
 * reads them from there; only `--k` has its own default here (10).
 */
export function registerEvalRankingCommand(program: Command): void {
  const evalCommand = program.commands.find((c) => c.name() === 'eval');
  if (evalCommand === undefined) {
    throw new Error('register the eval command before eval ranking');
  }
  evalCommand
    .command('ranking')
    .description(
      'Offline evaluation of the ranking stage on the test part: NDCG of the retrieval order, each ranker and popularity over the same candidates. Of the global options it reads --data, --test-fraction, --k (default here: 10), --seed (of the query sample), --json, --config and --no-progress',
    )
    .requiredOption(
      '--retrieval <dir>',
      'the retrieval model proposing the candidates: its folder, or a folder of versions (the newest)',
    )
    .option(
      '--ranker <dir...>',
      'ranker artifact folders (GBDT or DeepFM, from `recsys train ranker`), or folders of versions (the newest of each)',
    )
    .option('--queries <n>', 'query points drawn from the test part', integer(1), 2000)
    .option('--candidates <k>', "retrieval's top K per query", integer(1), 100)
    .option(
      '--horizon-hours <h>',
      "a candidate's label: the user's events on it within this long after the query",
      positiveNumber,
      24,
    )
    .configureHelp({ showGlobalOptions: true })
    .action(
      async (
        own: Pick<
          EvalRankingFlags,
          'retrieval' | 'ranker' | 'queries' | 'candidates' | 'horizonHours'
        >,
      ) => {
        try {
          const parent = evalCommand.opts<EvalParentFlags>();
          if (parent.split !== undefined && parent.split !== 'temporal') {
            throw new DataOptionError(
              '--split',
              'must be temporal: the ranking stage is evaluated on the temporal split only',
            );
          }
          const flags: EvalRankingFlags = {
            ...own,
            data: parent.data,
            testFraction: parent.testFraction,
            // eval's own default (10, 50, 100) is for whole-catalogue retrieval, not K candidates.
            k: evalCommand.getOptionValueSource('k') === 'default' ? [10] : parent.k,
            seed: parent.seed,
            ...(parent.json === undefined ? {} : { json: parent.json }),
            ...(parent.config === undefined ? {} : { config: parent.config }),
            ...(parent.progress === undefined ? {} : { progress: parent.progress }),
          };
          const result = await runEvalRanking(flags);
          process.stdout.write(result.text);
          if (flags.json !== undefined) {
            const path = resolve(flags.json);
            await mkdir(dirname(path), { recursive: true });
            await writeFile(path, `${JSON.stringify(result.json, null, 2)}\n`);
            process.stdout.write(`wrote ${path}\n`);
          }
        } catch (err) {
          failRankerCommand(err);
        }
      },
    );
}
