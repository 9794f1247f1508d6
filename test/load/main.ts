/**
 * The benchmark harness: `npm run bench -- [name...] [--flags]` runs the named benchmarks (all when
 * none is named), prints each one's table to stdout and writes `.bench/<name>.json` and
 * `.bench/<name>.md`. Progress goes to stderr. Every child process and server a benchmark started
 * is stopped at the end, on an error, and on Ctrl-C.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stopAllServers } from '../helpers/servers.js';
import { deepFmBenchmark } from './deepfm.js';
import { e2eBenchmark } from './e2e.js';
import { featuresBenchmark } from './features.js';
import { gbdtBenchmark } from './gbdt.js';
import { gbdtServeBenchmark } from './gbdt-serve.js';
import { removeTempDirs, stopAllChildren } from './processes.js';
import { describeMachine, formatText, writeReport } from './report.js';
import type { Benchmark, BenchOptions } from './report.js';
import { rankingBenchmark } from './ranking.js';
import { retrievalBenchmark } from './retrieval.js';
import { retrievalTowerBenchmark } from './retrieval-tower.js';
import { runtimeBenchmark } from './runtime.js';

/** Every benchmark, in the order `npm run bench` runs them. */
const BENCHMARKS: readonly Benchmark[] = [
  runtimeBenchmark,
  retrievalTowerBenchmark,
  retrievalBenchmark,
  featuresBenchmark,
  gbdtBenchmark,
  gbdtServeBenchmark,
  deepFmBenchmark,
  rankingBenchmark,
  e2eBenchmark,
];

const DEFAULT_OUT_DIR = '.bench';

function usage(): string {
  const width = Math.max(...BENCHMARKS.map((b) => b.name.length));
  return [
    'usage: npm run bench -- [name...] [options]',
    '',
    'Runs the named benchmarks (default: all), prints a table per benchmark and writes',
    `${DEFAULT_OUT_DIR}/<name>.json and ${DEFAULT_OUT_DIR}/<name>.md.`,
    '',
    'benchmarks:',
    ...BENCHMARKS.map((b) => `  ${b.name.padEnd(width)}  ${b.description}`),
    '',
    'options:',
    '  --requests N   requests per sequential (one in flight) measurement',
    '  --seconds S    duration of each throughput measurement (features: the event-stream measurement)',
    '  --rounds R     repetitions of each measurement; the report shows the median',
    '  --items N      items in the data set of benchmarks that build one (retrieval, features)',
    "  --model DIR    index this retrieval model's item embeddings instead (retrieval)",
    '  --layouts L,.. only these layouts (retrieval: 1, 2, 4, 4x1 = 4 shards in one process)',
    '  --workers N    search worker threads per item shard, 0: inline (retrieval; default: config)',
    '  --scale S      e2e: smoke (small synthetic world) or full (100k users, 1M items)',
    '  --topology T   e2e: embedded (one recsys start), distributed (NATS, Redis, a process per role)\n' +
      '                 or nodes (NATS, Redis, two nodes running every kind)',
    '  --rates R,..   e2e: open-loop arrival rates, requests/s (default 100,250,500,1000)',
    '  --no-search    e2e: skip the search for the highest rate with p99 <= 50 ms',
    '  --profile DIR  write CPU profiles of the node processes started (main threads) to DIR',
    `  --out DIR      where the JSON and Markdown reports go (default ${DEFAULT_OUT_DIR})`,
    '  -h, --help     this text',
    '',
  ].join('\n');
}

function positive(name: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new RangeError(
      `--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${raw}`,
    );
  }
  return value;
}

function oneOf<const T extends string>(name: string, raw: string, known: readonly T[]): T {
  if (!(known as readonly string[]).includes(raw)) {
    throw new RangeError(`--${name} must be one of ${known.join(', ')}, got ${raw}`);
  }
  return raw as T;
}

interface Parsed {
  benchmarks: Benchmark[];
  options: Omit<BenchOptions, 'progress'>;
  outDir: string;
  help: boolean;
}

function parse(argv: string[]): Parsed {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      requests: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      items: { type: 'string' },
      model: { type: 'string' },
      layouts: { type: 'string' },
      workers: { type: 'string' },
      profile: { type: 'string' },
      scale: { type: 'string' },
      topology: { type: 'string' },
      rates: { type: 'string' },
      'no-search': { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const byName = new Map(BENCHMARKS.map((b) => [b.name, b]));
  const benchmarks = positionals.map((name) => {
    const benchmark = byName.get(name);
    if (benchmark === undefined) {
      throw new RangeError(
        `unknown benchmark ${JSON.stringify(name)} (known: ${[...byName.keys()].join(', ')})`,
      );
    }
    return benchmark;
  });
  const options: Omit<BenchOptions, 'progress'> = {};
  const requests = positive('requests', values.requests, true);
  const seconds = positive('seconds', values.seconds, false);
  const rounds = positive('rounds', values.rounds, true);
  if (requests !== undefined) options.requests = requests;
  if (seconds !== undefined) options.seconds = seconds;
  if (rounds !== undefined) options.rounds = rounds;
  const items = positive('items', values.items, true);
  if (items !== undefined) options.items = items;
  // 0 is a setting of its own: searches on the shard's thread.
  const workers = values.workers === '0' ? 0 : positive('workers', values.workers, true);
  if (workers !== undefined) options.workers = workers;
  if (values.model !== undefined) options.model = values.model;
  if (values.layouts !== undefined) options.layouts = values.layouts.split(',');
  if (values.profile !== undefined) options.profileDir = resolve(values.profile);
  if (values.scale !== undefined) options.scale = oneOf('scale', values.scale, ['smoke', 'full']);
  if (values.topology !== undefined) {
    options.topology = oneOf('topology', values.topology, ['embedded', 'distributed', 'nodes']);
  }
  if (values.rates !== undefined) {
    options.rates = values.rates.split(',').map((rate) => positive('rates', rate, false) ?? 0);
  }
  if (values['no-search'] === true) options.search = false;
  return {
    benchmarks: benchmarks.length === 0 ? [...BENCHMARKS] : benchmarks,
    options,
    outDir: values.out ?? DEFAULT_OUT_DIR,
    help: values.help === true,
  };
}

async function cleanUp(): Promise<void> {
  // Children first: a runtime node drains over NATS before it exits.
  await stopAllChildren();
  await stopAllServers().catch(() => undefined);
  await removeTempDirs();
}

let interrupted = false;
function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) process.exit(130);
  interrupted = true;
  process.stderr.write(`\n${signal}: stopping child processes and servers...\n`);
  void cleanUp().finally(() => process.exit(130));
}

async function main(): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(
      `bench: ${err instanceof Error ? err.message : String(err)}\n\n${usage()}`,
    );
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(usage());
    return 0;
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const progress = (line: string): void => {
    process.stderr.write(`[bench] ${line}\n`);
  };
  let failed = 0;
  for (const benchmark of parsed.benchmarks) {
    try {
      progress(`${benchmark.name}: ${benchmark.description}`);
      const report = await benchmark.run({ ...parsed.options, progress });
      const machine = describeMachine();
      process.stdout.write(formatText(report, machine));
      const files = await writeReport(parsed.outDir, report, machine);
      progress(`wrote ${files.join(', ')}`);
    } catch (err) {
      failed++;
      process.stderr.write(
        `bench ${benchmark.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    } finally {
      await cleanUp();
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exit(await main());
