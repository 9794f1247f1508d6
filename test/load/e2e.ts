/**
 * The `e2e` benchmark: the whole system through its HTTP gateway, at fixed arrival rates.
 *
 * `--scale smoke|full` picks the world (built once and cached under `.bench/worlds/<scale>`),
 * `--topology embedded|distributed|nodes` how it runs (one `recsys start` process; nats-server,
 * redis-server and one process per role; or the servers and two nodes running every kind),
 * `--rates` the arrival rates measured for `--seconds` each (`--rounds N`: N times, the round
 * with the median p99 standing for the rate); then, unless `--no-search`, higher rates in steps
 * of half again until one misses p99 <= 50 ms, the last passing one being the highest
 * sustainable rate. During each rate a probe measures read-your-writes (a click, then the next
 * recommendation).
 *
 * Modules: `e2e-world.ts` (build and cache the world), `e2e-topology.ts` (start the processes),
 * `e2e-workload.ts` (who asks what), `e2e-load.ts` (the open loop and the probe), `e2e-http.ts`,
 * `e2e-metrics.ts` (CPU and /metrics), `e2e-report.ts`.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { USER_IDS_FILE } from '../../models/retrieval/artifact.js';
import { GatewayClient } from './e2e-http.js';
import { probeReadYourWrites, runLoad } from './e2e-load.js';
import type { StateOf } from './e2e-load.js';
import { snapshot, usageBetween } from './e2e-metrics.js';
import type { WatchedProcess } from './e2e-metrics.js';
import { buildE2eReport, errorRate, passes } from './e2e-report.js';
import type { RateFigures } from './e2e-report.js';
import { startSystem } from './e2e-topology.js';
import type { E2eTopology } from './e2e-topology.js';
import { Workload } from './e2e-workload.js';
import { buildWorld } from './e2e-world.js';
import type { E2eScale } from './e2e-world.js';
import type { Benchmark, BenchOptions, BenchReport } from './report.js';
import { fmt } from './report.js';

const DEFAULT_RATES = [100, 250, 500, 1000];
const DEFAULT_SECONDS = 10;
/**
 * Warm-up before the first rate. The full world needs longer: with 100,000 users and 1,000,000
 * items, the first seconds activate users, fill the feature caches and page in the index files,
 * and a first rate measured straight after a short warm-up pays for that start, not for the rate.
 */
const WARMUP_SECONDS: Record<E2eScale, number> = { smoke: 5, full: 30 };
const WARMUP_RATE = 100;
/** The search stops here whatever happens: a safety net, far beyond two cores. */
const SEARCH_CEILING = 20_000;
const WORLDS_DIR = '.bench/worlds';

interface Measure {
  client: GatewayClient;
  workload: Workload;
  stateOf: StateOf | undefined;
  processes: WatchedProcess[];
  seconds: number;
  progress: (line: string) => void;
}

async function measureRate(m: Measure, rate: number, search: boolean): Promise<RateFigures> {
  const before = await snapshot(m.processes);
  const started = performance.now();
  let stopProbe = (): void => undefined;
  const stop = new Promise<void>((resolve) => {
    stopProbe = resolve;
  });
  const probe = probeReadYourWrites(
    { client: m.client, workload: m.workload, stateOf: m.stateOf },
    stop,
  );
  const load = await runLoad({
    client: m.client,
    workload: m.workload,
    rate,
    seconds: m.seconds,
  }).finally(stopProbe);
  const readYourWrites = await probe;
  const after = await snapshot(m.processes);
  const usage = usageBetween(before, after, performance.now() - started);
  m.progress(
    `${rate}/s${search ? ' (search)' : ''}: ${fmt(load.throughput)} done/s, p50 ` +
      `${fmt(load.recommend.p50)} ms, p99 ${fmt(load.recommend.p99)} ms, errors ` +
      `${load.errorCount}${load.errorCount > 0 ? ` ${JSON.stringify(load.errors)}` : ''}, degraded ` +
      `${load.degraded}, read-your-writes p99 ${fmt(readYourWrites.latency.p99)} ms ` +
      `(${readYourWrites.latency.count} probes)`,
  );
  return { load, readYourWrites, usage, search };
}

/**
 * `rounds` measurements of one rate, one after another; the one with the median p99 stands for
 * the rate (the lower of the middle two for an even count), with every round's p99 beside it. On
 * a shared machine the tail moves from run to run, and one run is a poor witness of it.
 */
async function measureRounds(
  m: Measure,
  rate: number,
  search: boolean,
  rounds: number,
): Promise<RateFigures> {
  const runs: RateFigures[] = [];
  for (let r = 0; r < rounds; r++) runs.push(await measureRate(m, rate, search));
  if (rounds === 1) return runs[0]!;
  const byP99 = [...runs].sort((a, b) => a.load.recommend.p99 - b.load.recommend.p99);
  const median = byP99[Math.floor((rounds - 1) / 2)]!;
  return {
    ...median,
    rounds: {
      p99: runs.map((f) => f.load.recommend.p99),
      readYourWritesP99: runs.map((f) => f.readYourWrites.latency.p99),
    },
  };
}

/** The next rate of the search: half again, rounded to 50. */
function nextRate(rate: number): number {
  return Math.max(rate + 50, Math.round((rate * 1.5) / 50) * 50);
}

async function run(options: BenchOptions): Promise<BenchReport> {
  const scale: E2eScale = options.scale ?? 'smoke';
  const topology: E2eTopology = options.topology ?? 'embedded';
  const seconds = options.seconds ?? DEFAULT_SECONDS;
  const rates = [...new Set(options.rates ?? DEFAULT_RATES)].sort((a, b) => a - b);
  const search = options.search ?? true;
  const rounds = options.rounds ?? 1;
  const { progress } = options;

  const world = await buildWorld({ scale, root: resolve(WORLDS_DIR), progress });
  const users = JSON.parse(
    await readFile(join(world.retrievalDir, USER_IDS_FILE), 'utf8'),
  ) as string[];
  const system = await startSystem(
    { topology, world, progress, readyTimeoutMs: scale === 'full' ? 1_200_000 : 180_000 },
    users[0] ?? 'u0',
  );
  const client = new GatewayClient({ baseUrl: system.gatewayUrl, maxSockets: 512 });
  try {
    const workload = new Workload({ users });
    const warmSeconds = WARMUP_SECONDS[scale];
    progress(`warm-up: ${WARMUP_RATE}/s for ${warmSeconds} s`);
    const warm = await runLoad({ client, workload, rate: WARMUP_RATE, seconds: warmSeconds });
    progress(
      `warm-up: p50 ${fmt(warm.recommend.p50)} ms, p99 ${fmt(warm.recommend.p99)} ms, errors ` +
        `${JSON.stringify(warm.errors)}, degraded ${JSON.stringify(warm.degradedReasons)}`,
    );
    if (warm.recommend.count === 0) {
      throw new Error(`every warm-up request failed: ${JSON.stringify(warm.errors)}`);
    }
    const m: Measure = {
      client,
      workload,
      stateOf: system.stateOf,
      processes: system.processes,
      seconds,
      progress,
    };
    const measured: RateFigures[] = [];
    for (const rate of rates) measured.push(await measureRounds(m, rate, false, rounds));

    let maxRate: number | undefined;
    if (search) {
      const firstMiss = measured.findIndex((f) => !passes(f.load));
      if (firstMiss !== -1) {
        maxRate = firstMiss === 0 ? 0 : measured[firstMiss - 1]!.load.rate;
      } else {
        let rate = measured.at(-1)!.load.rate;
        maxRate = rate;
        for (;;) {
          rate = nextRate(rate);
          if (rate > SEARCH_CEILING) break;
          const f = await measureRounds(m, rate, true, rounds);
          measured.push(f);
          if (!passes(f.load)) break;
          maxRate = rate;
        }
      }
      progress(`highest rate with p99 <= 50 ms: ${maxRate}/s`);
    }
    const worst = measured.find((f) => errorRate(f.load) > 0.5);
    if (worst !== undefined) {
      progress(`${worst.load.rate}/s: most requests failed: ${JSON.stringify(worst.load.errors)}`);
    }
    return buildE2eReport({
      scale,
      topology,
      world,
      seconds,
      rounds,
      rates: measured,
      maxRate,
      startup: system.startup,
      layout: system.layout,
      processNames: system.processes.map((p) => p.name),
    });
  } finally {
    client.close();
    await system.stop();
  }
}

export const e2eBenchmark: Benchmark = {
  name: 'e2e',
  description:
    'the whole system through the HTTP gateway, open loop at fixed rates (--scale, --topology, --rates, --no-search)',
  run,
};
