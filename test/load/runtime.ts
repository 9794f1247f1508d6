/**
 * The `runtime` benchmark: what the actor runtime costs on top of the messaging it is built on.
 *
 * NATS, two processes: a runtime node in a child process serves the keyed `bench` kind
 * (`echo` returns its payload) and this process asks it through `ActorClient` over a
 * `NatsTransport`, with keys spread over many users so routing, partition ownership, activations,
 * mailboxes and deadline checks are all on the path. Beside it, in the same run, the baseline: a
 * bare nats.js responder in another child (`msg.respond(msg.data)`) asked with bare `nc.request()`
 * and the same payload size. In-process: the same against a node on the in-process transport and a
 * bare `InProcessTransport` responder, all in this process.
 *
 * Each system gets two measurements: sequential round trips (one in flight) and a closed loop with
 * 64 in flight for a fixed time. Rounds alternate which system goes first, so drift on a shared,
 * noisy machine falls on both; the tables show the median of the rounds. CPU time per request is
 * read per process (this one, the responder, nats-server), which on a 2-core machine says more
 * about where time goes than wall-clock latency does.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { ActorClient } from '../../runtime/client/client.js';
import type { TypedRef } from '../../runtime/client/client.js';
import { loadConfig } from '../../runtime/config/index.js';
import type { ResolvedConfig } from '../../runtime/config/index.js';
import { silentLogger } from '../../runtime/log.js';
import { startNode } from '../../runtime/node.js';
import type { RunningNode } from '../../runtime/node.js';
import { partitionOf } from '../../runtime/placement/hash.js';
import { InProcessTransport } from '../../runtime/transport/inproc.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import { getFreePort, startNatsServer } from '../helpers/servers.js';
import type { NatsServerHandle } from '../helpers/servers.js';
import { BENCH_KIND, benchKind } from './bench-kinds.js';
import type { BenchProtocol, EchoPayload } from './bench-kinds.js';
import { makeTempDir, processCpuMs, removeTempDirs, startChild } from './processes.js';
import type { ChildHandle } from './processes.js';
import type { Benchmark, BenchOptions, BenchReport, Check, Table } from './report.js';
import { median, runClosedLoop, runSequential } from './stats.js';
import type { LatencySummary, Operation } from './stats.js';

const DEFAULTS = { requests: 2000, seconds: 3, rounds: 3 };
const CONCURRENCY = 64;
const KEYS = 1000;
const PREFIX = 'bench';
/** The bare side's subjects have the runtime's shape and length: `bench.bare0.<p>.<key>.echo`. */
const BARE_TOKEN = 'bare0';
const TIMEOUT_MS = 5000;
const WARMUP_REQUESTS = 300;
const WARMUP_SECONDS = 0.5;
/** Once per system, before round 1: long enough for the JIT to settle on the hot path. */
const FIRST_WARMUP_SECONDS = 1.5;

const TARGET_P50_RATIO = 1.3;
const TARGET_THROUGHPUT_RATIO = 0.8;

const CONFIG_PATH = fileURLToPath(new URL('../../configs/config.yaml', import.meta.url));
const CLI_MAIN = fileURLToPath(new URL('../../main.ts', import.meta.url));
const KINDS_MODULE = fileURLToPath(new URL('./bench-kinds.ts', import.meta.url));
const BARE_RESPONDER = fileURLToPath(new URL('./bare-responder.ts', import.meta.url));

type TransportName = 'nats' | 'inproc';
type SystemName = 'runtime' | 'bare';

/** Reads the CPU time (ms) a process has used so far. */
type CpuReader = () => number | undefined;

interface System {
  transport: TransportName;
  name: SystemName;
  op: Operation;
  /** The calling side (this process; in-process: everything). */
  clientCpu: CpuReader;
  /** The responding process, when it is another one. */
  serverCpu?: CpuReader;
  natsCpu?: CpuReader;
}

interface SequentialFigures extends LatencySummary {
  rate: number;
}

interface LoadFigures extends LatencySummary {
  rate: number;
  errors: number;
  /** CPU µs per completed request, per process. */
  cpuClientUs: number | undefined;
  cpuServerUs: number | undefined;
  cpuNatsUs: number | undefined;
}

interface Round {
  sequential: SequentialFigures;
  load: LoadFigures;
}

type Figures = Record<TransportName, Record<SystemName, Round[]>>;

const selfCpu: CpuReader = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

const pidCpu =
  (pid: number): CpuReader =>
  () =>
    processCpuMs(pid);

const keys = Array.from({ length: KEYS }, (_, i) => `u${i}`);
const payloads: EchoPayload[] = keys.map((key) => ({ user_id: key, n: 10 }));
const encoder = new TextEncoder();
const payloadBytes = payloads.map((payload) => encoder.encode(JSON.stringify(payload)));

function bareSubjects(partitions: number): string[] {
  return keys.map((key) => `${PREFIX}.${BARE_TOKEN}.${partitionOf(key, partitions)}.${key}.echo`);
}

function runtimeOp(ref: TypedRef<BenchProtocol, string>): Operation {
  return (i) => {
    const k = i % KEYS;
    return ref.ask(keys[k] as string, 'echo', payloads[k] as EchoPayload, {
      timeoutMs: TIMEOUT_MS,
    });
  };
}

/** Asks every key once (retrying while partitions are still being acquired) and checks the echo. */
async function activateAll(ref: TypedRef<BenchProtocol, string>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < KEYS) {
      const k = next++;
      const reply = await ref.ask(keys[k] as string, 'echo', payloads[k] as EchoPayload, {
        timeoutMs: 20_000,
      });
      if (reply.user_id !== keys[k] || reply.n !== 10) {
        throw new Error(`bench echo answered ${JSON.stringify(reply)} for ${keys[k]}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** The shipped config, as the bench process and an in-process node read it. */
function benchConfig(
  transport: TransportName,
  metricsPort: number,
  natsUrl?: string,
): ResolvedConfig {
  return loadConfig({
    path: CONFIG_PATH,
    env: { RECSYS_PREFIX: PREFIX },
    overrides: {
      deployment: { transport },
      metrics: { port: metricsPort },
      ...(natsUrl === undefined ? {} : { nats: { url: natsUrl } }),
    },
  });
}

/**
 * The shipped config with only the `/metrics` port changed to a free one, for the child node: the
 * default port may be taken by another node on this machine.
 */
async function writeChildConfig(dir: string, metricsPort: number): Promise<string> {
  const raw = parseYaml(await readFile(CONFIG_PATH, 'utf8')) as Record<string, unknown>;
  raw['metrics'] = { ...(raw['metrics'] as Record<string, unknown>), port: metricsPort };
  const path = join(dir, 'config.yaml');
  await writeFile(path, stringifyYaml(raw));
  return path;
}

function cpuDelta(
  read: CpuReader | undefined,
  before: number | undefined,
  completed: number,
): number | undefined {
  if (read === undefined || before === undefined || completed === 0) return undefined;
  const after = read();
  return after === undefined ? undefined : ((after - before) * 1000) / completed;
}

async function measureSequential(system: System, requests: number): Promise<SequentialFigures> {
  await runSequential(system.op, Math.min(WARMUP_REQUESTS, requests));
  const result = await runSequential(system.op, requests);
  return { ...result.latency, rate: result.rate };
}

async function measureLoad(system: System, seconds: number): Promise<LoadFigures> {
  await runClosedLoop(system.op, CONCURRENCY, Math.min(WARMUP_SECONDS, seconds));
  const before = [system.clientCpu(), system.serverCpu?.(), system.natsCpu?.()] as const;
  const result = await runClosedLoop(system.op, CONCURRENCY, seconds);
  return {
    ...result.latency,
    rate: result.rate,
    errors: result.errors,
    cpuClientUs: cpuDelta(system.clientCpu, before[0], result.completed),
    cpuServerUs: cpuDelta(system.serverCpu, before[1], result.completed),
    cpuNatsUs: cpuDelta(system.natsCpu, before[2], result.completed),
  };
}

interface Settings {
  requests: number;
  seconds: number;
  rounds: number;
}

/** Warms both systems up, then runs the rounds, alternating which system goes first. */
async function compare(
  pair: Record<SystemName, System>,
  settings: Settings,
  progress: (line: string) => void,
): Promise<Record<SystemName, Round[]>> {
  const transport = pair.runtime.transport;
  for (const system of [pair.runtime, pair.bare]) {
    progress(`${transport}/${system.name}: warm-up`);
    await runClosedLoop(system.op, CONCURRENCY, FIRST_WARMUP_SECONDS);
    await runSequential(system.op, WARMUP_REQUESTS);
  }
  const rounds: Record<SystemName, Round[]> = { runtime: [], bare: [] };
  for (let r = 0; r < settings.rounds; r++) {
    const order = r % 2 === 0 ? [pair.runtime, pair.bare] : [pair.bare, pair.runtime];
    const sequential = new Map<SystemName, SequentialFigures>();
    for (const system of order) {
      sequential.set(system.name, await measureSequential(system, settings.requests));
    }
    for (const system of order) {
      const load = await measureLoad(system, settings.seconds);
      if (load.errors > 0) {
        throw new Error(`${transport}/${system.name}: ${load.errors} requests failed`);
      }
      const seq = sequential.get(system.name) as SequentialFigures;
      rounds[system.name].push({ sequential: seq, load });
      progress(
        `${transport}/${system.name} round ${r + 1}/${settings.rounds}: ` +
          `1 in flight p50 ${seq.p50.toFixed(0)} µs, ${CONCURRENCY} in flight ${load.rate.toFixed(0)} req/s`,
      );
    }
  }
  return rounds;
}

async function benchNats(
  settings: Settings,
  progress: (line: string) => void,
): Promise<Record<SystemName, Round[]>> {
  let server: NatsServerHandle | undefined;
  let node: ChildHandle | undefined;
  let bare: ChildHandle | undefined;
  let transport: NatsTransport | undefined;
  let nc: NatsConnection | undefined;
  try {
    server = await startNatsServer();
    const url = server.url;
    const metricsPort = await getFreePort();
    const partitions = benchConfig('nats', metricsPort, url).runtime.partitions;
    const childConfig = await writeChildConfig(await makeTempDir(), metricsPort);
    progress(`nats-server ${url}; starting a runtime node and a bare responder`);
    [node, bare] = await Promise.all([
      startChild({
        name: 'runtime node',
        args: [
          CLI_MAIN,
          'node',
          '--transport',
          'nats',
          '--nats-url',
          url,
          '--kinds-module',
          KINDS_MODULE,
          '--config',
          childConfig,
        ],
        env: { ...process.env, RECSYS_PREFIX: PREFIX, RECSYS_PARTITIONS: String(partitions) },
        readyLine: '"evt":"node_ready"',
      }),
      startChild({
        name: 'bare responder',
        args: [BARE_RESPONDER, url, `${PREFIX}.${BARE_TOKEN}.>`],
        readyLine: '"evt":"bare_ready"',
      }),
    ]);

    transport = await NatsTransport.connect({ servers: url, name: 'bench-runtime-client' });
    const client = new ActorClient({
      transport,
      prefix: PREFIX,
      partitions,
      defaultTimeoutMs: TIMEOUT_MS,
    });
    const ref = client.keyed<BenchProtocol>(BENCH_KIND);
    progress(`activating ${KEYS} bench actors`);
    await activateAll(ref);

    // The runtime transport connects without async stack traces; the baseline does the same.
    const bareConnection = await connect({
      servers: url,
      name: 'bench-bare-client',
      noAsyncTraces: true,
    });
    nc = bareConnection;
    const subjects = bareSubjects(partitions);
    const natsCpu = pidCpu(server.pid);
    return await compare(
      {
        runtime: {
          transport: 'nats',
          name: 'runtime',
          op: runtimeOp(ref),
          clientCpu: selfCpu,
          serverCpu: pidCpu(node.pid),
          natsCpu,
        },
        bare: {
          transport: 'nats',
          name: 'bare',
          op: (i) => {
            const k = i % KEYS;
            return bareConnection.request(subjects[k] as string, payloadBytes[k], {
              timeout: TIMEOUT_MS,
            });
          },
          clientCpu: selfCpu,
          serverCpu: pidCpu(bare.pid),
          natsCpu,
        },
      },
      settings,
      progress,
    );
  } finally {
    await nc?.close().catch(() => undefined);
    await transport?.close().catch(() => undefined);
    await Promise.all([node?.stop(), bare?.stop()]);
    await server?.stop();
    await removeTempDirs();
  }
}

async function benchInProcess(
  settings: Settings,
  progress: (line: string) => void,
): Promise<Record<SystemName, Round[]>> {
  let node: RunningNode | undefined;
  const bareTransport = new InProcessTransport();
  try {
    const config = benchConfig('inproc', await getFreePort());
    node = await startNode({ config, kinds: [benchKind()], log: silentLogger() });
    const ref = node.client.keyed<BenchProtocol>(BENCH_KIND);
    await activateAll(ref);

    bareTransport.subscribe(`${PREFIX}.${BARE_TOKEN}.>`, (msg) => msg.respond(msg.data));
    const subjects = bareSubjects(config.runtime.partitions);
    return await compare(
      {
        runtime: { transport: 'inproc', name: 'runtime', op: runtimeOp(ref), clientCpu: selfCpu },
        bare: {
          transport: 'inproc',
          name: 'bare',
          op: (i) => {
            const k = i % KEYS;
            return bareTransport.request(subjects[k] as string, payloadBytes[k] as Uint8Array, {
              timeoutMs: TIMEOUT_MS,
            });
          },
          clientCpu: selfCpu,
        },
      },
      settings,
      progress,
    );
  } finally {
    await bareTransport.close();
    await node?.stop();
  }
}

/** Median of one figure over the rounds; `undefined` when no round has it. */
function med(rounds: Round[], pick: (round: Round) => number | undefined): number | undefined {
  const values = rounds.map(pick).filter((v): v is number => v !== undefined);
  return values.length === 0 ? undefined : median(values);
}

const show = (value: number | undefined): string | number => value ?? '-';

function buildReport(figures: Figures, settings: Settings): BenchReport {
  const sequential: Table = {
    title: `Round trip, 1 in flight: µs (median of ${settings.rounds} rounds of ${settings.requests} requests)`,
    columns: ['transport / system', 'p50', 'p90', 'p99', 'max', 'req/s'],
    rows: [],
  };
  const load: Table = {
    title:
      `Closed loop, ${CONCURRENCY} in flight for ${settings.seconds} s: req/s, µs, CPU µs per request ` +
      `(median of ${settings.rounds} rounds)`,
    columns: [
      'transport / system',
      'req/s',
      'p50',
      'p90',
      'p99',
      'max',
      'cpu client',
      'cpu server',
      'cpu nats',
    ],
    rows: [],
  };
  const ratios: Table = {
    title: 'Runtime against bare (medians)',
    columns: ['transport', 'p50 ratio', 'p50 added µs', 'throughput ratio', 'cpu µs/req added'],
    rows: [],
  };
  const checks: Check[] = [];
  for (const transport of ['nats', 'inproc'] as const) {
    for (const name of ['runtime', 'bare'] as const) {
      const rounds = figures[transport][name];
      const label = `${transport} / ${name}`;
      sequential.rows.push([
        label,
        ...[
          med(rounds, (r) => r.sequential.p50),
          med(rounds, (r) => r.sequential.p90),
          med(rounds, (r) => r.sequential.p99),
          med(rounds, (r) => r.sequential.max),
          med(rounds, (r) => r.sequential.rate),
        ].map(show),
      ]);
      load.rows.push([
        label,
        ...[
          med(rounds, (r) => r.load.rate),
          med(rounds, (r) => r.load.p50),
          med(rounds, (r) => r.load.p90),
          med(rounds, (r) => r.load.p99),
          med(rounds, (r) => r.load.max),
          med(rounds, (r) => r.load.cpuClientUs),
          med(rounds, (r) => r.load.cpuServerUs),
          med(rounds, (r) => r.load.cpuNatsUs),
        ].map(show),
      ]);
    }
    const runtime = figures[transport].runtime;
    const bare = figures[transport].bare;
    const p50 = (rounds: Round[]): number => med(rounds, (r) => r.sequential.p50) ?? NaN;
    const rate = (rounds: Round[]): number => med(rounds, (r) => r.load.rate) ?? NaN;
    const cpu = (rounds: Round[]): number =>
      med(rounds, (r) => (r.load.cpuClientUs ?? 0) + (r.load.cpuServerUs ?? 0)) ?? NaN;
    const p50Ratio = p50(runtime) / p50(bare);
    const rateRatio = rate(runtime) / rate(bare);
    ratios.rows.push([
      transport,
      p50Ratio,
      p50(runtime) - p50(bare),
      rateRatio,
      cpu(runtime) - cpu(bare),
    ]);
    // The targets are for NATS, where the runtime sits on a network hop. In process, the bare
    // baseline is a function call and a copy; the added µs there is the runtime's own cost.
    if (transport === 'nats') {
      checks.push(
        {
          name: 'nats: runtime p50 / bare p50 (1 in flight)',
          value: p50Ratio,
          target: `<= ${TARGET_P50_RATIO}`,
          pass: p50Ratio <= TARGET_P50_RATIO,
        },
        {
          name: `nats: runtime / bare throughput (${CONCURRENCY} in flight)`,
          value: rateRatio,
          target: `>= ${TARGET_THROUGHPUT_RATIO}`,
          pass: rateRatio >= TARGET_THROUGHPUT_RATIO,
        },
      );
    }
  }
  return {
    name: 'runtime',
    params: {
      ...settings,
      concurrency: CONCURRENCY,
      keys: KEYS,
      payloadBytes: payloadBytes[123]?.length,
    },
    tables: [sequential, load, ratios],
    checks,
    figures,
    notes: [
      `cpu columns: CPU time per completed request in the calling process (in process: all of it), ` +
        `the responding process and nats-server.`,
      `in process has no target: the bare baseline there is a function call and a copy, so the ` +
        `added µs is the runtime's own per-request cost.`,
    ],
  };
}

async function run(options: BenchOptions): Promise<BenchReport> {
  const settings: Settings = {
    requests: options.requests ?? DEFAULTS.requests,
    seconds: options.seconds ?? DEFAULTS.seconds,
    rounds: options.rounds ?? DEFAULTS.rounds,
  };
  const nats = await benchNats(settings, options.progress);
  const inproc = await benchInProcess(settings, options.progress);
  return buildReport({ nats, inproc }, settings);
}

export const runtimeBenchmark: Benchmark = {
  name: 'runtime',
  description: 'actor runtime vs bare request/reply, over NATS (two processes) and in process',
  run,
};
