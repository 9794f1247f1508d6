/**
 * The `retrieval` benchmark: the item index, sharded, served by item-shard actors over NATS.
 *
 * Clustered synthetic unit vectors shaped like a tower's embeddings (64 dims; `--items`, default
 * 200,000, 1,000,000 for the full run) are indexed with the shipped config's HNSW parameters into
 * S = 1, 2 and 4 shards. For each S it reports the build time, recall@10 and recall@100 of the
 * merged shard searches against exact search, one shard's single-query latency on the main thread
 * and through a search worker (the thread hop included), and then, with every shard in its own
 * node process (`recsys node --actors items --group items=<s>`) on a real nats-server: the memory
 * of each shard process, the scatter-gather latency with one query in flight, and p50/p99 and
 * throughput under an open-loop load of 500 queries/s (latency counted from each query's scheduled
 * send time, so a stall shows up in the figures instead of slowing the load down).
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as stringifyYaml } from 'yaml';
import {
  SearchPool,
  ShardScatter,
  buildShards,
  openShard,
  readShardManifest,
  searchShard,
  shardFiles,
} from '../../actors/item-shard/index.js';
import type { ItemShardProtocol, OpenShard, ScoredItem } from '../../actors/item-shard/index.js';
import { ActorClient } from '../../runtime/client/client.js';
import { loadConfig } from '../../runtime/config/index.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import { prng } from '../helpers/assertions.js';
import { clusteredItems, queryNear } from '../helpers/item-vectors.js';
import type { ItemVectors } from '../helpers/item-vectors.js';
import { startNatsServer } from '../helpers/servers.js';
import type { NatsServerHandle } from '../helpers/servers.js';
import { makeTempDir, processCpuMs, startChild } from './processes.js';
import type { ChildHandle } from './processes.js';
import type { Benchmark, BenchOptions, BenchReport, Check, Table } from './report.js';
import { LatencyRecorder } from './stats.js';
import type { LatencySummary } from './stats.js';

const DIMS = 64;
const DEFAULT_ITEMS = 200_000;
/** S shards, each in its own node process; and the 4 shards again, all in one process. */
const LAYOUTS: readonly { shards: number; oneProcess: boolean }[] = [
  { shards: 1, oneProcess: false },
  { shards: 2, oneProcess: false },
  { shards: 4, oneProcess: false },
  { shards: 4, oneProcess: true },
];
const RECALL_QUERIES = 200;
const LATENCY_QUERIES = 2000;
const OPEN_LOOP_RATE = 500;
const DEFAULT_SECONDS = 10;
const SCATTER_TIMEOUT_MS = 1000;
const PREFIX = 'benchr';

const TARGET_RECALL_100 = 0.95;
const TARGET_SHARD_P50_MS = 1;
const TARGET_SCATTER_P99_MS = 5;

const CONFIG_PATH = fileURLToPath(new URL('../../configs/config.yaml', import.meta.url));
const CLI_MAIN = fileURLToPath(new URL('../../main.ts', import.meta.url));

interface ShardCountFigures {
  shards: number;
  /** `4`, or `4 (1 proc)` when every shard ran in one node process. */
  label: string;
  oneProcess: boolean;
  buildSeconds: number;
  /** Vectors per shard, shard order. */
  shardSizes: number[];
  recall10: number;
  recall100: number;
  /** One shard (shard 0), k = 100, µs. */
  mainThread: LatencySummary;
  worker: LatencySummary;
  /** RSS of each node process after warm-up, MB. */
  rssMb: number[];
  scatterSequential: LatencySummary;
  /** Open loop with k = 100 (the target's), then k = 10 (to show what the reply size costs). */
  openLoops: OpenLoopFigures[];
}

interface OpenLoopFigures extends LatencySummary {
  k: number;
  sent: number;
  completed: number;
  errors: number;
  degraded: number;
  rate: number;
  /** CPU time per completed query: all shard processes, nats-server, this (calling) process. */
  cpuShardsUsPerQuery: number | undefined;
  cpuNatsUsPerQuery: number | undefined;
  cpuClientUsPerQuery: number | undefined;
}

/** Exact top-k rows by inner product (the shipped metric), by a bounded min-heap. */
function exactTop(items: ItemVectors, query: Float32Array, k: number): string[] {
  const n = items.ids.length;
  const heapScore = new Float64Array(k);
  const heapRow = new Int32Array(k);
  let size = 0;
  const v = items.vectors;
  for (let row = 0; row < n; row++) {
    let dot = 0;
    const base = row * DIMS;
    for (let d = 0; d < DIMS; d++) dot += v[base + d]! * query[d]!;
    if (size < k) {
      // Sift up.
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (heapScore[parent]! <= dot) break;
        heapScore[i] = heapScore[parent]!;
        heapRow[i] = heapRow[parent]!;
        i = parent;
      }
      heapScore[i] = dot;
      heapRow[i] = row;
    } else if (dot > heapScore[0]!) {
      // Replace the root, sift down.
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= k) break;
        const r = l + 1;
        const c = r < k && heapScore[r]! < heapScore[l]! ? r : l;
        if (heapScore[c]! >= dot) break;
        heapScore[i] = heapScore[c]!;
        heapRow[i] = heapRow[c]!;
        i = c;
      }
      heapScore[i] = dot;
      heapRow[i] = row;
    }
  }
  return Array.from(heapRow.subarray(0, size), (row) => items.ids[row]!);
}

function recallOf(found: readonly ScoredItem[], truth: readonly string[], k: number): number {
  const set = new Set(found.slice(0, k).map((i) => i.item_id));
  const top = truth.slice(0, k);
  return top.filter((id) => set.has(id)).length / top.length;
}

function mergeTop(lists: ScoredItem[][], k: number): ScoredItem[] {
  return lists
    .flat()
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}

function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return match === null ? NaN : Number(match[1]) / 1024;
  } catch {
    return NaN;
  }
}

async function sequential(count: number, call: (i: number) => unknown): Promise<LatencySummary> {
  for (let i = 0; i < Math.min(200, count); i++) await call(i);
  const recorder = new LatencyRecorder(count);
  for (let i = 0; i < count; i++) {
    const started = process.hrtime.bigint();
    await call(i);
    recorder.record(Number(process.hrtime.bigint() - started) / 1000);
  }
  return recorder.summary();
}

/** Sends at `rate` per second for `seconds`, each query timed from its scheduled send time. */
async function openLoop(
  rate: number,
  seconds: number,
  call: (i: number) => Promise<{ degraded: boolean }>,
): Promise<{
  latency: LatencySummary;
  sent: number;
  completed: number;
  errors: number;
  degraded: number;
  elapsedMs: number;
}> {
  const recorder = new LatencyRecorder();
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const pending: Promise<void>[] = [];
  let errors = 0;
  let degraded = 0;
  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    // Send every query that is due; a late timer sends a burst rather than falling behind.
    while (sent < total && started + sent * interval <= now) {
      const due = started + sent * interval;
      const i = sent++;
      pending.push(
        call(i).then(
          (result) => {
            if (result.degraded) degraded++;
            recorder.record((performance.now() - due) * 1000);
          },
          () => {
            errors++;
          },
        ),
      );
    }
    const wait = started + sent * interval - performance.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.floor(wait))));
  }
  await Promise.all(pending);
  return {
    latency: recorder.summary(),
    sent,
    completed: recorder.count,
    errors,
    degraded,
    elapsedMs: performance.now() - started,
  };
}

async function benchShardCount(
  shards: number,
  oneProcess: boolean,
  items: ItemVectors,
  queries: Float32Array[],
  truth: string[][],
  server: NatsServerHandle,
  seconds: number,
  progress: (line: string) => void,
): Promise<ShardCountFigures> {
  const config = loadConfig({ path: CONFIG_PATH, env: {} });
  const dataDir = await makeTempDir();
  const version = `bench-s${shards}`;
  const indexDir = join(dataDir, 'indexes', version);
  progress(`S=${shards}: building ${items.ids.length} × ${DIMS} into ${shards} shard(s)`);
  const buildStarted = performance.now();
  const manifests = await buildShards({
    vectors: items.vectors,
    dims: DIMS,
    ids: items.ids,
    categories: items.categories,
    shards,
    params: {
      metric: config.items.metric,
      connectivity: config.items.connectivity,
      expansionAdd: config.items.expansionAdd,
      expansionSearch: config.items.expansionSearch,
    },
    modelVersion: 'bench',
    dir: indexDir,
  });
  const buildSeconds = (performance.now() - buildStarted) / 1000;

  progress(`S=${shards}: recall against exact search, ${queries.length} queries`);
  const opened: OpenShard[] = await Promise.all(
    manifests.map((m) => openShard(indexDir, m.shard, config.items.expansionSearch)),
  );
  let r10 = 0;
  let r100 = 0;
  queries.forEach((vector, q) => {
    const merged = mergeTop(
      opened.map((shard) => searchShard(shard, { vector, k: 100 })),
      100,
    );
    r10 += recallOf(merged, truth[q]!, 10);
    r100 += recallOf(merged, truth[q]!, 100);
  });
  const at = (i: number): Float32Array => queries[i % queries.length]!;
  progress(`S=${shards}: single-query latency of shard 0 (k = 100), main thread and worker`);
  const mainThread = await sequential(LATENCY_QUERIES, (i) =>
    searchShard(opened[0]!, { vector: at(i), k: 100 }),
  );
  const pool = new SearchPool({
    workers: 1,
    workerData: {
      manifest: await readShardManifest(indexDir, 0),
      files: shardFiles(indexDir, 0),
      expansionSearch: config.items.expansionSearch,
    },
  });
  let worker: LatencySummary;
  try {
    await pool.ready();
    worker = await sequential(LATENCY_QUERIES, (i) =>
      pool.run({ op: 'search', vector: at(i), k: 100 }),
    );
  } finally {
    await pool.close();
  }

  const configPath = join(dataDir, 'config.yaml');
  await writeFile(
    configPath,
    stringifyYaml({
      deployment: { prefix: PREFIX, transport: 'nats' },
      nats: { url: server.url },
      metrics: { port: 0 },
      log: { level: 'info' },
      data: { dir: dataDir },
      items: {
        shards,
        index_version: version,
        metric: config.items.metric,
        expansion_search: config.items.expansionSearch,
        workers: config.items.workers,
      },
    }),
  );
  const groups = oneProcess
    ? [Array.from({ length: shards }, (_, s) => String(s)).join(',')]
    : Array.from({ length: shards }, (_, s) => String(s));
  progress(`S=${shards}: starting ${groups.length} node process(es) on NATS`);
  const children: ChildHandle[] = [];
  let transport: NatsTransport | undefined;
  try {
    children.push(
      ...(await Promise.all(
        groups.map((group) =>
          startChild({
            name: `shards ${group} of ${shards}`,
            args: [
              CLI_MAIN,
              'node',
              '--transport',
              'nats',
              '--actors',
              'items',
              '--group',
              `items=${group}`,
              '--config',
              configPath,
            ],
            readyLine: '"evt":"node_ready"',
            readyTimeoutMs: 120_000,
          }),
        ),
      )),
    );
    transport = await NatsTransport.connect({ servers: server.url, name: 'bench-retrieval' });
    const client = new ActorClient({ transport, prefix: PREFIX, defaultTimeoutMs: 5000 });
    const ref = client.grouped<ItemShardProtocol>('items');
    // Every shard open and answering before anything is timed.
    await Promise.all(
      Array.from({ length: shards }, (_, s) =>
        ref.ask(String(s), 'stats', {}, { timeoutMs: 60_000 }),
      ),
    );
    const scatter = new ShardScatter({ client, shards });
    const searchTop = (k: number) => (i: number) =>
      scatter.search({ vector: at(i), k }, { timeoutMs: SCATTER_TIMEOUT_MS });
    progress(`S=${shards}: scatter-gather, one query in flight`);
    const scatterSequential = await sequential(LATENCY_QUERIES, searchTop(100));
    const rss = children.map((child) => rssMb(child.pid));
    const cpu = (): [number, number | undefined, number] => {
      const self = process.cpuUsage();
      return [
        children.reduce((sum, child) => sum + (processCpuMs(child.pid) ?? NaN), 0),
        processCpuMs(server.pid),
        (self.user + self.system) / 1000,
      ];
    };
    const openLoops: OpenLoopFigures[] = [];
    for (const k of [100, 10]) {
      progress(`S=${shards}: scatter-gather, k = ${k}, at ${OPEN_LOOP_RATE} q/s for ${seconds} s`);
      const before = cpu();
      const loop = await openLoop(OPEN_LOOP_RATE, seconds, searchTop(k));
      const after = cpu();
      const perQuery = (a: number | undefined, b: number | undefined): number | undefined =>
        a === undefined || b === undefined || loop.completed === 0
          ? undefined
          : ((b - a) * 1000) / loop.completed;
      openLoops.push({
        k,
        ...loop.latency,
        sent: loop.sent,
        completed: loop.completed,
        errors: loop.errors,
        degraded: loop.degraded,
        rate: (loop.completed * 1000) / loop.elapsedMs,
        cpuShardsUsPerQuery: perQuery(before[0], after[0]),
        cpuNatsUsPerQuery: perQuery(before[1], after[1]),
        cpuClientUsPerQuery: perQuery(before[2], after[2]),
      });
    }
    return {
      shards,
      label: oneProcess ? `${shards} (1 proc)` : String(shards),
      oneProcess,
      buildSeconds,
      shardSizes: manifests.map((m) => m.count),
      recall10: r10 / queries.length,
      recall100: r100 / queries.length,
      mainThread,
      worker,
      rssMb: rss,
      scatterSequential,
      openLoops,
    };
  } finally {
    await transport?.close().catch(() => undefined);
    await Promise.all(children.map((child) => child.stop()));
  }
}

const ms = (micros: number): number => micros / 1000;

function buildReport(
  figures: ShardCountFigures[],
  params: Record<string, unknown>,
  seconds: number,
): BenchReport {
  const index: Table = {
    title: 'Index: build, memory, recall (k = 100 per shard, merged)',
    columns: ['S', 'build s', 'vectors/shard', 'RSS MB/node proc', 'recall@10', 'recall@100'],
    rows: figures.map((f) => [
      f.label,
      f.buildSeconds,
      f.shardSizes.join(' / '),
      f.rssMb.map((m) => m.toFixed(0)).join(' / '),
      f.recall10,
      f.recall100,
    ]),
  };
  const single: Table = {
    title: 'One shard (shard 0), one query at a time, k = 100: ms',
    columns: ['S', 'main p50', 'main p99', 'worker p50', 'worker p99'],
    rows: figures.map((f) => [
      f.label,
      ms(f.mainThread.p50),
      ms(f.mainThread.p99),
      ms(f.worker.p50),
      ms(f.worker.p99),
    ]),
  };
  const sequentialTable: Table = {
    title: 'Scatter-gather over NATS, k = 100, one query in flight: ms',
    columns: ['S', 'p50', 'p90', 'p99', 'max'],
    rows: figures.map((f) => [
      f.label,
      ms(f.scatterSequential.p50),
      ms(f.scatterSequential.p90),
      ms(f.scatterSequential.p99),
      ms(f.scatterSequential.max),
    ]),
  };
  const scatter: Table = {
    title:
      `Scatter-gather over NATS, open loop at ${OPEN_LOOP_RATE} q/s for ${seconds} s: ms ` +
      "(from each query's scheduled send), CPU µs per query per process group",
    columns: [
      'S / k',
      'open p50',
      'open p90',
      'open p99',
      'open max',
      'q/s',
      'errors',
      'degraded',
      'cpu shards',
      'cpu nats',
      'cpu client',
    ],
    rows: figures.flatMap((f) =>
      f.openLoops.map((loop) => [
        `${f.label} / ${loop.k}`,
        ms(loop.p50),
        ms(loop.p90),
        ms(loop.p99),
        ms(loop.max),
        loop.rate,
        loop.errors,
        loop.degraded,
        loop.cpuShardsUsPerQuery ?? '-',
        loop.cpuNatsUsPerQuery ?? '-',
        loop.cpuClientUsPerQuery ?? '-',
      ]),
    ),
  };
  const checks: Check[] = [];
  for (const f of figures.filter((f) => !f.oneProcess)) {
    checks.push(
      {
        name: `S=${f.shards}: recall@100`,
        value: f.recall100,
        target: `>= ${TARGET_RECALL_100}`,
        pass: f.recall100 >= TARGET_RECALL_100,
      },
      {
        name: `S=${f.shards}: shard search p50 in a worker, k = 100 (ms)`,
        value: ms(f.worker.p50),
        target: `<= ${TARGET_SHARD_P50_MS}`,
        pass: ms(f.worker.p50) <= TARGET_SHARD_P50_MS,
      },
    );
  }
  for (const f of figures.filter((f) => f.shards === 4)) {
    const loop = f.openLoops.find((l) => l.k === 100);
    if (loop === undefined) continue;
    const p99 = ms(loop.p99);
    checks.push({
      name: `S=${f.label}: scatter-gather p99, k = 100, at ${OPEN_LOOP_RATE} q/s (ms)`,
      value: p99,
      target: `<= ${TARGET_SCATTER_P99_MS}`,
      pass: p99 <= TARGET_SCATTER_P99_MS && loop.errors === 0 && loop.degraded === 0,
    });
  }
  return {
    name: 'retrieval',
    params,
    tables: [index, single, sequentialTable, scatter],
    checks,
    figures,
    notes: [
      'Every node process (2 search workers per shard) runs beside nats-server and this process ' +
        'on the same machine: with 4 shards in 4 processes, 4 event loops and 8 worker threads ' +
        'share its cores. `4 (1 proc)` serves the same 4 shards from one node process.',
      'Build time is single-process, one shard after another, with usearch using every core.',
    ],
  };
}

async function run(options: BenchOptions): Promise<BenchReport> {
  const count = options.items ?? DEFAULT_ITEMS;
  const seconds = options.seconds ?? DEFAULT_SECONDS;
  options.progress(`generating ${count} clustered ${DIMS}-dim item vectors`);
  const items = clusteredItems(count, DIMS, { seed: 1, categories: 50 });
  const rand = prng(99);
  const queries = Array.from({ length: RECALL_QUERIES }, () => queryNear(items, rand));
  options.progress(`exact top 100 of ${queries.length} queries by brute force`);
  const truth = queries.map((q) => exactTop(items, q, 100).reverse());
  // The heap leaves its rows in heap order: sort them best first by their exact scores.
  truth.forEach((ids, q) => {
    const query = queries[q]!;
    const score = (id: string): number => {
      const row = Number(id.slice('item_'.length));
      let dot = 0;
      for (let d = 0; d < DIMS; d++) dot += items.vectors[row * DIMS + d]! * query[d]!;
      return dot;
    };
    ids.sort((a, b) => score(b) - score(a));
  });
  const server = await startNatsServer();
  const figures: ShardCountFigures[] = [];
  try {
    for (const { shards, oneProcess } of LAYOUTS) {
      const f = await benchShardCount(
        shards,
        oneProcess,
        items,
        queries,
        truth,
        server,
        seconds,
        options.progress,
      );
      options.progress(
        `S=${f.label}: recall@100 ${f.recall100.toFixed(3)}, worker p50 ${ms(f.worker.p50).toFixed(3)} ms, ` +
          `open-loop p99 (k = 100) ${ms(f.openLoops[0]!.p99).toFixed(2)} ms`,
      );
      figures.push(f);
    }
  } finally {
    await server.stop();
  }
  return buildReport(figures, { items: count, dims: DIMS, rate: OPEN_LOOP_RATE, seconds }, seconds);
}

export const retrievalBenchmark: Benchmark = {
  name: 'retrieval',
  description:
    'item index over NATS: build, memory, recall@10/100, shard latency, scatter-gather at 500 q/s',
  run,
};
