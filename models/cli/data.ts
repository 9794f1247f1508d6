/**
 * `recsys data …`: the data set commands. This file creates the `data` command and adds
 * `generate` and `info`; other files attach more subcommands to the same command through
 * {@link dataCommand} (`import` lives in data-import.ts).
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { Option } from 'commander';
import type { Command } from 'commander';

import { loadCommandConfig } from '../../runtime/config/index.js';
import { ConfigError } from '../../runtime/errors.js';
import type { FeatureDefinitions } from '../../runtime/features/types.js';
import { DATA_FILES, MANIFEST_FILE, readManifest } from '../data/dataset-io.js';
import { DataOptionError, DatasetFormatError } from '../data/errors.js';
import { SCALES, generateDataset } from '../data/generate.js';
import type { GenerateProgress, Scale } from '../data/generate.js';
import { ProgressBar } from '../data/progress.js';
import { TRUTH_DIR } from '../data/truth.js';
import type { DatasetManifest } from '../data/types.js';
import { checkBatchDefinitions } from '../features/batch-views.js';
import { featureDefinitionsOf } from '../features/definitions.js';
import {
  FEATURES_DIR,
  buildFeatureTables,
  describeFeatureTables,
} from '../features/feature-tables.js';
import type { FeatureTablesManifest } from '../features/feature-tables.js';
import { integer } from './args.js';
import { exists } from './files.js';
import { reportFailure } from '../../runtime/cli/exit.js';

/** The `data` command of `program`, created on first use, so every file can attach to it. */
export function dataCommand(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'data');
  if (existing !== undefined) return existing;
  return program
    .command('data')
    .description('Data sets: generate a synthetic world, import a real log, inspect a data set');
}

export interface DataGenerateFlags {
  users?: number;
  items?: number;
  days?: number;
  categories?: number;
  seed: number;
  scale: Scale;
  name?: string;
  out?: string;
  config?: string;
  force?: boolean;
  progress?: boolean;
  /** `false` (`--no-features`): no batch feature tables. */
  features?: boolean;
}

/**
 * Builds the batch feature tables of the data set just written to `out`, with the feature
 * definitions the configuration names (`features/` in the data set folder); `undefined` when the
 * flags say not to. Call {@link featureDefinitionsFor} before writing the data, so a broken
 * definitions file fails the command before the long part.
 */
export async function writeDatasetFeatures(
  out: string,
  definitions: FeatureDefinitions | undefined,
): Promise<FeatureTablesManifest | undefined> {
  if (definitions === undefined) return undefined;
  return (await buildFeatureTables(out, definitions)).manifest;
}

/** The feature definitions a data command builds tables with; `undefined` with `--no-features`. */
export function featureDefinitionsFor(
  flags: { config?: string; features?: boolean },
  env: Record<string, string | undefined>,
): FeatureDefinitions | undefined {
  if (flags.features === false) return undefined;
  const definitions = featureDefinitionsOf(loadCommandConfig(flags.config, env));
  checkBatchDefinitions(definitions);
  return definitions;
}

/** Generates a data set as the flags say; returns the folder and its manifest. */
export async function runDataGenerate(
  flags: DataGenerateFlags,
  env: Record<string, string | undefined> = process.env,
): Promise<{
  out: string;
  manifest: DatasetManifest;
  features: FeatureTablesManifest | undefined;
  elapsedMs: number;
}> {
  const preset = SCALES[flags.scale];
  const name = flags.name ?? `synthetic-${flags.scale}`;
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name)) {
    throw new DataOptionError('--name', `must be one folder name of [A-Za-z0-9._-], got ${name}`);
  }
  const out = resolve(
    flags.out ?? join(loadCommandConfig(flags.config, env).data.dir, 'datasets', name),
  );
  if (flags.force !== true && (await exists(join(out, MANIFEST_FILE)))) {
    throw new DataOptionError(
      '--out',
      `${out} already holds a data set; pass --force to replace it`,
    );
  }
  const definitions = featureDefinitionsFor(flags, env);
  const sizes = {
    users: flags.users ?? preset.users,
    items: flags.items ?? preset.items,
    days: flags.days ?? preset.days,
    categories: flags.categories ?? preset.categories,
  };
  const showProgress = flags.progress !== false;
  let bar: ProgressBar | undefined;
  const onProgress = (p: GenerateProgress): void => {
    if (!showProgress) return;
    if (p.phase === 'world' && p.done === 0) {
      process.stderr.write(
        `world: ${count(sizes.users)} users, ${count(sizes.items)} items, ${sizes.categories} categories, ${sizes.days} days\n`,
      );
    } else if (p.phase === 'events') {
      bar ??= new ProgressBar({ label: 'days', total: p.total });
      bar.update(p.done, `${count(p.events)} events`);
    } else if (p.phase === 'finish' && p.done === 0) {
      bar?.finish(`${count(p.events)} events`);
    }
  };
  const started = performance.now();
  const manifest = await generateDataset({
    dir: out,
    ...sizes,
    seed: flags.seed,
    name,
    details: { scale: flags.scale },
    onProgress,
  });
  const features = await writeDatasetFeatures(out, definitions);
  return { out, manifest, features, elapsedMs: performance.now() - started };
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

async function folderSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await folderSize(path) : (await stat(path)).size;
  }
  return total;
}

/** Where `recsys data info <dir>` looks: the path itself, else `<data.dir>/datasets/<dir>`. */
export async function resolveDatasetDir(
  dirOrName: string,
  configPath: string | undefined,
  env: Record<string, string | undefined> = process.env,
): Promise<string> {
  const direct = resolve(dirOrName);
  if (await exists(join(direct, MANIFEST_FILE))) return direct;
  if (/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(dirOrName)) {
    const named = resolve(loadCommandConfig(configPath, env).data.dir, 'datasets', dirOrName);
    if (await exists(join(named, MANIFEST_FILE))) return named;
  }
  throw new DatasetFormatError(direct, 'no data set here (no manifest.json)');
}

/** The human-readable summary `recsys data info` prints. */
export async function formatDatasetInfo(dir: string, manifest: DatasetManifest): Promise<string> {
  const { counts, timeRange, details } = manifest;
  const days = (timeRange.to - timeRange.from) / 86_400_000;
  const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
  const lines = [
    `data set     ${manifest.name} (${dir})`,
    `source       ${manifest.source}`,
    `created      ${manifest.createdAt}`,
    `users        ${count(counts.users)}`,
    `items        ${count(counts.items)}`,
    `events       ${count(counts.events)}`,
    counts.events === 0
      ? 'time range   (no events)'
      : `time range   ${iso(timeRange.from)} .. ${iso(timeRange.to)} (${days.toFixed(1)} days)`,
    `fingerprint  ${manifest.fingerprint}`,
  ];
  const files: string[] = [];
  for (const file of DATA_FILES) {
    const path = join(dir, file);
    files.push(`${file} ${(await exists(path)) ? size((await stat(path)).size) : 'missing'}`);
  }
  if (await exists(join(dir, TRUTH_DIR))) {
    files.push(`${TRUTH_DIR}/ ${size(await folderSize(join(dir, TRUTH_DIR)))}`);
  }
  if (await exists(join(dir, FEATURES_DIR))) {
    files.push(`${FEATURES_DIR}/ ${size(await folderSize(join(dir, FEATURES_DIR)))}`);
  }
  lines.push(`files        ${files.join(', ')}`);
  const summary = Object.entries(details)
    .filter(([, v]) => v === null || ['string', 'number', 'boolean'].includes(typeof v))
    .map(([k, v]) => `${k}=${String(v)}`);
  if (summary.length > 0) lines.push(`details      ${summary.join(' ')}`);
  lines.push('schema');
  for (const [file, columns] of Object.entries(manifest.schema)) {
    lines.push(`  ${file}`);
    for (const [column, type] of Object.entries(columns)) {
      lines.push(`    ${column.padEnd(12)} ${type}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function fail(err: unknown): void {
  reportFailure(err, [DataOptionError, ConfigError, DatasetFormatError]);
}

/** Adds `data generate` and `data info`. */
export function registerDataCommands(program: Command): void {
  const data = dataCommand(program);

  data
    .command('generate')
    .description(
      'Generate a synthetic world: items, users with drifting tastes, sessions in time, and the ground truth',
    )
    .addOption(
      new Option('--scale <scale>', 'size preset; --users, --items, --days override it')
        .choices(Object.keys(SCALES))
        .default('small'),
    )
    .option('--users <n>', 'number of users (tiny 200, small 5,000, full 100,000)', integer(1))
    .option('--items <n>', 'number of items (tiny 500, small 20,000, full 1,000,000)', integer(1))
    .option('--days <d>', 'length of the simulated period in days (tiny 30, else 90)', integer(1))
    .option(
      '--categories <n>',
      'number of item categories (tiny 20, small 30, full 50)',
      integer(1),
    )
    .option('--seed <s>', 'random seed: same seed and sizes, byte-identical data', integer(0), 42)
    .option('--name <name>', 'data set name (default: synthetic-<scale>)')
    .option('--out <dir>', 'output folder (default: <data.dir>/datasets/<name>)')
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option('--force', 'replace a data set already in the output folder')
    .option('--no-progress', 'no progress bar on stderr')
    .option('--no-features', 'no batch feature tables (features/*.parquet)')
    .action(async (flags: DataGenerateFlags) => {
      try {
        const { out, manifest, features, elapsedMs } = await runDataGenerate(flags);
        process.stdout.write(
          `wrote ${out}: ${count(manifest.counts.users)} users, ${count(manifest.counts.items)} items, ` +
            `${count(manifest.counts.events)} events in ${(elapsedMs / 1000).toFixed(1)} s ` +
            `(fingerprint ${manifest.fingerprint.slice(0, 12)})\n` +
            (features === undefined ? '' : `${describeFeatureTables(features)}\n`),
        );
      } catch (err) {
        fail(err);
      }
    });

  data
    .command('info')
    .description('Print the summary of a data set: counts, time range, files, schema, fingerprint')
    .argument('<dir>', 'a data set folder, or the name of one under <data.dir>/datasets')
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option('--json', 'print the manifest as JSON')
    .action(async (dirOrName: string, flags: { config?: string; json?: boolean }) => {
      try {
        const dir = await resolveDatasetDir(dirOrName, flags.config);
        const manifest = await readManifest(dir);
        process.stdout.write(
          flags.json === true
            ? `${JSON.stringify(manifest, null, 2)}\n`
            : await formatDatasetInfo(dir, manifest),
        );
      } catch (err) {
        fail(err);
      }
    });
}
