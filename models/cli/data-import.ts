/**
 * `recsys data import <path>`: a MovieLens folder or a mapped CSV log into a data set folder, with
 * a report of what was read, kept and skipped (printed, and kept in the manifest's `details`).
 */
import { join, resolve } from 'node:path';

import { Option } from 'commander';
import type { Command } from 'commander';

import { loadCommandConfig } from '../../runtime/config/index.js';
import { ConfigError } from '../../runtime/errors.js';
import {
  IMPORT_FORMATS,
  ImportError,
  UNKNOWN_CATEGORY,
  badTotal,
  defaultDatasetName,
  importDataset,
} from '../data/import/index.js';
import type { ImportOptions, ImportProgressListener, ImportReport } from '../data/import/index.js';
import { ProgressBar, writeDataset } from '../data/index.js';
import type { DatasetManifest } from '../data/index.js';
import { describeFeatureTables } from '../features/feature-tables.js';
import type { FeatureTablesManifest } from '../features/feature-tables.js';
import { dataCommand, featureDefinitionsFor, writeDatasetFeatures } from './data.js';
import { exists } from './files.js';
import { reportFailure } from '../../runtime/cli/exit.js';

/** Options of the importer given as flags, under the same names. */
const PASSED_THROUGH = [
  'format',
  'events',
  'map',
  'items',
  'itemMap',
  'users',
  'userMap',
  'typeMap',
  'eventType',
  'delimiter',
  'encoding',
] as const;

export interface DataImportFlags extends Pick<ImportOptions, (typeof PASSED_THROUGH)[number]> {
  name?: string;
  out?: string;
  config?: string;
  force?: boolean;
  json?: boolean;
  /** Parsed into `maxTagsPerItem`. */
  maxTags?: string;
  progress?: boolean;
  /** `false` (`--no-features`): no batch feature tables. */
  features?: boolean;
}

export interface DataImportResult {
  /** The data set folder written. */
  out: string;
  manifest: DatasetManifest;
  report: ImportReport;
  /** The batch feature tables written; `undefined` with `--no-features`. */
  features: FeatureTablesManifest | undefined;
  elapsedMs: number;
}

/** A data set name is one folder name: letters, digits, `.`, `_`, `-`, not starting with `.`. */
const DATASET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Imports `path` and writes the data set. The output folder is `--out`, else
 * `<data.dir>/datasets/<name>` from the configuration; an existing data set there is replaced only
 * with `--force`.
 */
export async function runDataImport(
  path: string,
  flags: DataImportFlags,
  env: Record<string, string | undefined> = process.env,
): Promise<DataImportResult> {
  const started = performance.now();
  const name = flags.name ?? defaultDatasetName(path);
  if (!DATASET_NAME.test(name)) {
    throw new ImportError(
      `--name: "${name}" is not a valid data set name (letters, digits, '.', '_', '-')`,
      { field: '--name' },
    );
  }
  let maxTagsPerItem: number | undefined;
  if (flags.maxTags !== undefined) {
    maxTagsPerItem = Number(flags.maxTags);
    if (!Number.isInteger(maxTagsPerItem) || maxTagsPerItem < 0) {
      throw new ImportError('--max-tags: must be a non-negative integer', { field: '--max-tags' });
    }
  }
  let out = flags.out;
  if (out === undefined) {
    const config = loadCommandConfig(flags.config, env);
    out = join(config.data.dir, 'datasets', name);
  }
  out = resolve(out);
  if (flags.force !== true && (await exists(join(out, 'manifest.json')))) {
    throw new ImportError(`${out} already holds a data set; pass --force to replace it`, {
      file: out,
      field: '--out',
    });
  }

  const definitions = featureDefinitionsFor(flags, env);
  const options: ImportOptions = {
    path,
    ...pick(flags, PASSED_THROUGH),
    ...(maxTagsPerItem === undefined ? {} : { maxTagsPerItem }),
  };
  if (flags.progress !== false) options.onProgress = progressBars();
  const { tables, source, format, report } = await importDataset(options);
  const manifest = await writeDataset(out, tables, {
    name,
    source,
    details: { importer: { format, path }, report },
  });
  const features = await writeDatasetFeatures(out, definitions);
  return { out, manifest, report, features, elapsedMs: performance.now() - started };
}

/** Files smaller than this import in about a second: no progress bar for them. */
const PROGRESS_MIN_BYTES = 16 * 1024 ** 2;

/** One progress bar on stderr per large input file, in MiB read. */
function progressBars(): ImportProgressListener {
  let bar: ProgressBar | undefined;
  let file: string | undefined;
  const mib = (bytes: number) => Math.ceil(bytes / 1024 ** 2);
  return (p) => {
    if (p.file !== file) {
      file = p.file;
      bar =
        p.totalBytes < PROGRESS_MIN_BYTES
          ? undefined
          : new ProgressBar({ label: `${p.file} MiB`, total: mib(p.totalBytes) });
    }
    const rows = `${p.rows.toLocaleString('en-US')} rows`;
    if (p.done === true) bar?.finish(rows);
    else bar?.update(mib(p.bytes), rows);
  };
}

function pick<T extends object, K extends keyof T>(from: T, keys: readonly K[]): Partial<T> {
  const out: Partial<T> = {};
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key];
  return out;
}

/** The human-readable summary `recsys data import` prints. */
export function formatImportReport(result: DataImportResult): string {
  const { report, manifest } = result;
  const lines: string[] = [];
  lines.push(
    `imported ${report.format} as "${manifest.name}" in ${(result.elapsedMs / 1000).toFixed(2)} s`,
  );
  const width = Math.max(...report.files.map((f) => f.file.length), 4);
  for (const file of report.files) {
    const bad = badTotal(file);
    const reasons = Object.entries(file.bad)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(', ');
    lines.push(
      `  ${file.file.padEnd(width)}  ${file.role.padEnd(6)}  read ${file.read}  imported ${file.imported}  bad ${bad}${reasons === '' ? '' : ` (${reasons})`}${file.blank > 0 ? `  blank ${file.blank}` : ''}`,
    );
    if (file.firstBad.length > 0) {
      const where = file.firstBad.map((b) => `line ${b.line} ${b.reason}`).join('; ');
      lines.push(`  ${' '.repeat(width)}  first bad rows: ${where}`);
    }
  }
  const { counts, timeRange } = report;
  lines.push(
    `users ${counts.users}  items ${counts.items}  events ${counts.events}  from ${timeRange.from ?? '-'} to ${timeRange.to ?? '-'}`,
  );
  const notes: string[] = [];
  if (report.itemsOnlyInEvents > 0) {
    notes.push(`items ${report.itemsOnlyInEvents} (category ${UNKNOWN_CATEGORY})`);
  }
  // Without a users file every user is "only in events"; that is worth saying only when one was read.
  if (report.usersOnlyInEvents > 0 && report.files.some((f) => f.role === 'users')) {
    notes.push(`users ${report.usersOnlyInEvents} (profile unknown)`);
  }
  if (notes.length > 0) lines.push(`only in events (kept): ${notes.join(', ')}`);
  const unknownTypes = Object.entries(report.unknownEventTypes);
  if (unknownTypes.length > 0) {
    lines.push(
      `unknown event types (imported as click): ${unknownTypes.map(([t, n]) => `${t} ${n}`).join(', ')}`,
    );
  }
  const categories = Object.entries(report.categories);
  lines.push(
    `categories ${report.vocabulary.categories}, tags ${report.vocabulary.tags}; items per category: ${categories.map(([c, n]) => `${c} (${n})`).join(', ')}`,
  );
  if (result.features !== undefined) lines.push(describeFeatureTables(result.features));
  lines.push(`wrote ${result.out} (fingerprint ${manifest.fingerprint.slice(0, 12)})`);
  return `${lines.join('\n')}\n`;
}

/** Adds `import` to the `data` command. */
export function registerDataImportCommand(program: Command): void {
  dataCommand(program)
    .command('import')
    .description(
      'Import a real interaction log: a MovieLens folder (100k, 1M, latest/25M) or a CSV with a column mapping',
    )
    .argument(
      '<path>',
      'a MovieLens folder; for csv, the events file or a folder holding the files',
    )
    .addOption(
      new Option('--format <format>', 'input format (default: detected from the files)').choices(
        IMPORT_FORMATS,
      ),
    )
    .option('--name <name>', 'data set name (default: the folder or file name)')
    .option('--out <dir>', 'output folder (default: <data.dir>/datasets/<name>)')
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option('--force', 'replace a data set already in the output folder')
    .option('--json', 'print the manifest as JSON instead of a summary')
    .option('--no-progress', 'no progress bars on stderr')
    .option('--no-features', 'no batch feature tables (features/*.parquet)')
    .option('--max-tags <n>', 'most used free-form tags kept per item (default: 10)')
    .option('--events <file>', 'csv: the events file, relative to <path> when it is a folder')
    .option(
      '--map <mapping>',
      'csv: event columns, user=<col>,item=<col>,time=<col>[,type=<col>][,value=<col>]',
    )
    .option('--items <file>', 'csv: an items file')
    .option(
      '--item-map <mapping>',
      'csv: item columns, id=<col>[,category=<col>][,tags=<col>][,title=<col>][,created=<col>]',
    )
    .option('--users <file>', 'csv: a users file')
    .option(
      '--user-map <mapping>',
      'csv: user columns, id=<col>[,age=<col>|,age_band=<col>][,country=<col>][,device=<col>][,signup=<col>]',
    )
    .option('--type-map <mapping>', 'csv: event type values to types, e.g. transaction=purchase')
    .addOption(
      new Option('--event-type <type>', 'csv: type of every event when --map has no type column')
        .choices(['view', 'click', 'like', 'purchase', 'rating'])
        .default('click'),
    )
    .option('--delimiter <d>', 'csv: , ; | :: or tab (default: from the extension or header)')
    .addOption(
      new Option('--encoding <encoding>', 'csv: file encoding').choices(['utf8', 'latin1']),
    )
    .action(async (path: string, flags: DataImportFlags) => {
      try {
        const result = await runDataImport(path, flags);
        process.stdout.write(
          flags.json === true
            ? `${JSON.stringify({ out: result.out, manifest: result.manifest }, null, 2)}\n`
            : formatImportReport(result),
        );
      } catch (err) {
        reportFailure(err, [ImportError, ConfigError]);
      }
    });
}
