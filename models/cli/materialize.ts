/**
 * `recsys materialize`: a data set's batch feature tables into the deployment's Redis online
 * store, incrementally (only rows newer than what was loaded before) unless `--full`; and
 * `recsys data features`: (re)build those tables for an existing data set.
 *
 * Only a distributed deployment (`deployment.transport: nats`) has a store outside any process to
 * load. The embedded node (`inproc`) keeps its store in memory and loads the batch features of its
 * data set itself when it starts, so the command refuses, saying so, rather than fill a store that
 * vanishes when it exits.
 */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';

import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { loadCommandConfig } from '../../runtime/config/index.js';
import type { ResolvedConfig } from '../../runtime/config/index.js';
import { BadRequestError, ConfigError } from '../../runtime/errors.js';
import { openOnlineStore } from '../../runtime/features/open.js';
import type { OnlineStore } from '../../runtime/features/types.js';
import { reportFailure } from '../../runtime/cli/exit.js';
import type { RunningNode } from '../../runtime/node.js';
import { MANIFEST_FILE } from '../data/dataset-io.js';
import { exists } from './files.js';
import { DataOptionError, DatasetFormatError } from '../data/errors.js';
import { ProgressBar } from '../data/progress.js';
import type { ProgressStream } from '../data/progress.js';
import {
  buildFeatureTables,
  describeFeatureTables,
  staleFeatureTables,
} from '../features/feature-tables.js';
import type { FeatureTablesManifest } from '../features/feature-tables.js';
import { featureDefinitionsOf } from '../features/definitions.js';
import {
  DEFAULT_MATERIALIZE_BATCH,
  loadBatchFeatures,
  materializeDataset,
  selectBatchViews,
} from '../features/materialize.js';
import type { MaterializeProgress, MaterializeResult } from '../features/materialize.js';
import { integer } from './args.js';
import { dataCommand, resolveDatasetDir } from './data.js';

export interface MaterializeFlags {
  /** A data set folder, or the name of one under `<data.dir>/datasets`. */
  data: string;
  full?: boolean;
  /** Comma-separated batch views; all of them when absent. */
  views?: string;
  config?: string;
  /** Overrides `redis.url`. */
  redisUrl?: string;
  batchSize?: number;
  progress?: boolean;
}

export interface MaterializeRunResult extends MaterializeResult {
  /** The data set folder loaded. */
  readonly dir: string;
  /** The Redis URL written to. */
  readonly redisUrl: string;
  readonly prefix: string;
}

/** Longest a Redis command may take: a batch is one script call over up to 10,000 rows. */
const COMMAND_TIMEOUT_MS = 30_000;

/** `--views a,b` → `['a', 'b']`. */
export function parseViews(value: string): string[] {
  const views = value.split(',').map((v) => v.trim());
  if (views.some((v) => v === '')) {
    throw new InvalidArgumentError(`expected view names separated by commas, got "${value}"`);
  }
  return views;
}

/**
 * Refuses a deployment whose online store is not Redis: with `inproc`, the store is the memory of
 * the `recsys start` process.
 */
export function checkMaterializeTarget(config: Pick<ResolvedConfig, 'deployment'>): void {
  if (config.deployment.transport !== 'nats') {
    throw new ConfigError(
      'deployment.transport',
      `is ${config.deployment.transport}: the embedded node (recsys start) keeps its online store ` +
        'in memory and loads the batch features of its data set when it starts, so there is ' +
        'nothing to materialize into. `recsys materialize` writes to the Redis online store ' +
        '(redis.url) of a deployment with deployment.transport nats (RECSYS_TRANSPORT=nats).',
    );
  }
}

/** One progress bar per view on `stream`, in rows. */
function progressBars(stream?: ProgressStream): (p: MaterializeProgress) => void {
  let bar: ProgressBar | undefined;
  let view: string | undefined;
  return (p) => {
    if (p.view !== view) {
      view = p.view;
      bar = new ProgressBar({
        label: p.view,
        total: p.total,
        ...(stream === undefined ? {} : { stream }),
      });
    }
    const suffix = `${p.written.toLocaleString('en-US')} written`;
    if (p.done >= p.total) bar?.finish(suffix);
    else bar?.update(p.done, suffix);
  };
}

/**
 * Loads the batch feature tables of `flags.data` into the Redis store the configuration names.
 * Rejects with `ConfigError` for an `inproc` deployment, `BadRequestError` for a bad view list,
 * `DatasetFormatError` for a missing data set or out-of-date tables, `UnavailableError` when Redis
 * cannot be reached.
 */
export async function runMaterialize(
  flags: MaterializeFlags,
  env: Record<string, string | undefined> = process.env,
  options: { progressStream?: ProgressStream } = {},
): Promise<MaterializeRunResult> {
  const config = loadCommandConfig(
    flags.config,
    env,
    flags.redisUrl === undefined ? undefined : { redis: { url: flags.redisUrl } },
  );
  checkMaterializeTarget(config);
  const views = flags.views === undefined ? undefined : parseViews(flags.views);
  const definitions = featureDefinitionsOf(config);
  selectBatchViews(definitions, views);
  const dir = await resolveDatasetDir(flags.data, flags.config, env);
  // Everything that can be checked without Redis is, before connecting to it.
  const stale = await staleFeatureTables(dir, definitions);
  if (stale !== null) {
    throw new DatasetFormatError(
      dir,
      `${stale}; rebuild them with \`recsys data features --data ${flags.data}\``,
    );
  }
  const store: OnlineStore = await openOnlineStore({
    transport: config.deployment.transport,
    redisUrl: config.redis.url,
    prefix: config.deployment.prefix,
    definitions,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
  });
  try {
    const result = await materializeDataset(store, definitions, dir, {
      full: flags.full === true,
      batchSize: flags.batchSize ?? DEFAULT_MATERIALIZE_BATCH,
      ...(views === undefined ? {} : { views }),
      ...(flags.progress === false ? {} : { onProgress: progressBars(options.progressStream) }),
    });
    return { ...result, dir, redisUrl: config.redis.url, prefix: config.deployment.prefix };
  } finally {
    await store.close();
  }
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function time(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** The summary `recsys materialize` prints: one line per view. */
export function formatMaterializeResult(result: MaterializeRunResult): string {
  const header = ['view', 'read', 'written', 'skipped', 'stale', 'watermark'];
  const rows = result.views.map((v) => [
    v.view,
    count(v.read),
    count(v.written),
    count(v.skipped),
    count(v.stale),
    time(v.watermarkMs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const lines = [
    `materialized ${result.dataset} (${result.fingerprint.slice(0, 12)}) into ${result.redisUrl} ` +
      `prefix ${result.prefix} in ${(result.durationMs / 1000).toFixed(2)} s`,
    ...[header, ...rows].map((r) =>
      `  ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ')}`.trimEnd(),
    ),
  ];
  return `${lines.join('\n')}\n`;
}

export interface DataFeaturesFlags {
  data: string;
  config?: string;
}

/** Builds the feature tables of an existing data set, replacing what was there. */
export async function runDataFeatures(
  flags: DataFeaturesFlags,
  env: Record<string, string | undefined> = process.env,
): Promise<{ dir: string; manifest: FeatureTablesManifest; durationMs: number }> {
  const config = loadCommandConfig(flags.config, env);
  const definitions = featureDefinitionsOf(config);
  const dir = await resolveDatasetDir(flags.data, flags.config, env);
  const { manifest, durationMs } = await buildFeatureTables(dir, definitions);
  return { dir, manifest, durationMs };
}

const INPUT_ERRORS = [ConfigError, BadRequestError, DataOptionError, DatasetFormatError];

/** Adds `materialize` and `data features`. */
export function registerMaterializeCommands(program: Command): void {
  program
    .command('materialize')
    .description(
      "Load a data set's batch feature tables into the Redis online store (deployment.transport nats), only rows newer than the last load unless --full",
    )
    .requiredOption(
      '--data <name|path>',
      'a data set folder, or the name of one under <data.dir>/datasets',
    )
    .option('--full', 'rewrite every row, ignoring what was loaded before')
    .option('--views <views>', 'comma-separated batch views to load (default: all)')
    .option('--redis-url <url>', 'Redis URL (default: redis.url)')
    .option(
      '--batch-size <n>',
      `rows per write (default: ${DEFAULT_MATERIALIZE_BATCH})`,
      integer(1),
    )
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option('--no-progress', 'no progress bars on stderr')
    .action(async (flags: MaterializeFlags) => {
      try {
        const result = await runMaterialize(flags);
        process.stdout.write(formatMaterializeResult(result));
      } catch (err) {
        reportFailure(err, INPUT_ERRORS);
      }
    });

  dataCommand(program)
    .command('features')
    .description(
      "(Re)build a data set's batch feature tables (features/*.parquet) from its data and the feature definitions",
    )
    .requiredOption(
      '--data <name|path>',
      'a data set folder, or the name of one under <data.dir>/datasets',
    )
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .action(async (flags: DataFeaturesFlags) => {
      try {
        const { dir, manifest, durationMs } = await runDataFeatures(flags);
        process.stdout.write(
          `${describeFeatureTables(manifest)}\nwrote ${dir}/features in ${(durationMs / 1000).toFixed(2)} s\n`,
        );
      } catch (err) {
        reportFailure(err, INPUT_ERRORS);
      }
    });
}

/**
 * `recsys start`'s after-start step: an embedded node keeps its online store in memory, empty at
 * start, so it loads the batch features of `features.embedded_dataset` (the demo data set by
 * default) itself. Nothing to do for a NATS deployment, whose Redis `recsys materialize` fills,
 * or when that data set does not exist (said once in the log).
 */
export async function loadEmbeddedBatchFeatures(context: {
  config: ResolvedConfig;
  log: Logger;
  node: RunningNode;
}): Promise<void> {
  const { config, log, node } = context;
  const wanted = config.features.embeddedDataset;
  if (config.deployment.transport !== 'inproc' || wanted === '') return;
  const candidates = [resolve(wanted), resolve(config.data.dir, 'datasets', wanted)];
  let dir: string | undefined;
  for (const candidate of candidates) {
    if (await exists(join(candidate, MANIFEST_FILE))) {
      dir = candidate;
      break;
    }
  }
  if (dir === undefined) {
    log.info(
      { dataset: wanted },
      'no data set for features.embedded_dataset: batch features read as their defaults',
    );
    return;
  }
  const result = await loadBatchFeatures(
    node.features.store,
    node.features.registry.definitions,
    dir,
  );
  log.info(
    {
      dataset: result.dataset,
      rows: Object.fromEntries(result.views.map((view) => [view.view, view.written])),
      rebuilt: result.rebuilt,
      ms: Math.round(result.durationMs),
    },
    'batch features loaded',
  );
}
