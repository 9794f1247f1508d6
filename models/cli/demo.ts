/**
 * Demo data for `recsys start` on a fresh machine: a tiny seeded synthetic world and a retrieval
 * model trained on all of it, in a few seconds, so the embedded system has something to serve.
 */
import type { Logger } from 'pino';
import { runDataGenerate } from './data.js';
import { runTrainRetrieval } from './train.js';

export interface DemoModel {
  readonly datasetDir: string;
  readonly modelDir: string;
}

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
  return { datasetDir: generated.out, modelDir: trained.artifact.dir };
}
