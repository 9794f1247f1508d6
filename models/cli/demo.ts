/**
 * Demo data for `recsys start` on a fresh machine: a tiny seeded synthetic world, a retrieval
 * model and a GBDT ranker trained on all of it, in seconds, so the embedded system has the whole
 * pipeline to serve.
 */
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { reportFailure } from '../../runtime/cli/exit.js';
import { loadCommandConfig } from '../../runtime/config/index.js';
import { ConfigError } from '../../runtime/errors.js';
import { DataOptionError, DatasetFormatError } from '../data/errors.js';
import { runDataGenerate } from './data.js';
import { formatMaterializeResult, runMaterialize } from './materialize.js';
import { runTrainRetrieval } from './train.js';
import { runTrainRanker, servingRankerFlags } from './train-ranker.js';

export interface DemoModel {
  readonly datasetDir: string;
  readonly modelDir: string;
  /** The demo's GBDT ranker folder (`<data.dir>/models/ranker-gbdt/<version>`). */
  readonly rankerDir: string;
}

/**
 * Query points of the demo ranker: enough for a ranker that beats retrieval order on the demo
 * world, few enough to train in a few seconds.
 */
const DEMO_RANKER_QUERIES = 1500;

/** Writes `<data.dir>/datasets/demo` (replacing an earlier one) and a model trained on it. */
export async function buildDemoModel(
  configPath: string | undefined,
  env: Record<string, string | undefined>,
  log: Logger,
): Promise<DemoModel> {
  const generated = await runDataGenerate(
    { scale: 'tiny', seed: 42, name: 'demo', force: true, progress: false, config: configPath },
    env,
  );
  log.info({ dir: generated.out }, 'demo data set generated');
  // No split: a demo serves every item and user it has, nothing is held out for evaluation.
  const trained = await runTrainRetrieval(
    { data: generated.out, config: configPath, split: 'none', testFraction: 0, eval: false },
    env,
    (line) => log.debug(line),
  );
  log.info({ dir: trained.artifact.dir }, 'demo retrieval model trained');
  const ranked = await runTrainRanker(
    servingRankerFlags({
      data: generated.out,
      retrieval: trained.artifact.dir,
      queries: DEMO_RANKER_QUERIES,
      candidates: 100,
      config: configPath,
    }),
    env,
    (line) => log.debug(line),
  );
  const rankerDir = ranked.rankers[0]?.dir ?? '';
  log.info({ dir: rankerDir }, 'demo GBDT ranker trained');
  return { datasetDir: generated.out, modelDir: trained.artifact.dir, rankerDir };
}

/** Builds the demo's item index when `<data.dir>` has none; `actors/cli.ts` `prepareDemoIndex`. */
export type PrepareDemo = (configPath: string | undefined) => Promise<string | undefined>;

interface DemoFlags {
  config?: string;
}

/**
 * Adds `recsys demo`: what `recsys start` prepares on a fresh machine, as a step of its own, for a
 * distributed deployment whose processes share a data folder (the compose file's `setup`): the
 * demo data set, models and item index when `<data.dir>` has no index, then, with transport nats,
 * the demo's batch features loaded into Redis (`recsys materialize`).
 */
export function registerDemoCommand(program: Command, prepare: PrepareDemo): void {
  program
    .command('demo')
    .description(
      'Build the demo data set, models and item index when data.dir has none; with transport nats, load its batch features into Redis',
    )
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .action(async (flags: DemoFlags) => {
      try {
        const built = await prepare(flags.config);
        process.stdout.write(
          built === undefined
            ? 'an item index exists already: nothing built\n'
            : `built the demo item index ${built}\n`,
        );
        const config = loadCommandConfig(flags.config, process.env);
        if (config.deployment.transport === 'nats' && config.features.embeddedDataset !== '') {
          const result = await runMaterialize({
            data: config.features.embeddedDataset,
            progress: false,
            ...(flags.config === undefined ? {} : { config: flags.config }),
          });
          process.stdout.write(formatMaterializeResult(result));
        }
      } catch (err) {
        reportFailure(err, [ConfigError, DataOptionError, DatasetFormatError]);
      }
    });
}
