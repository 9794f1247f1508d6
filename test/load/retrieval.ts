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
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { stringify as stringifyYaml } from 'yaml';
import {
  SearchPool,
  ShardScatter,
  buildShards,
  hnswParamsOf,
  openShard,
  readShardManifest,
  searchShard,
  shardFiles,
} from '../../actors/item-shard/index.js';
import type { ItemShardProtocol, OpenShard, ScoredItem } from '../../actors/item-shard/index.js';
import { readRetrievalManifest } from '../../models/retrieval/artifact.js';
import { ActorClient } from '../../runtime/client/client.js';
import { loadConfig } from '../../runtime/config/index.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import { prng } from '../helpers/assertions.js';
import { clusteredItems, queryNear } from '../helpers/item-vectors.js';
import type { ItemVectors } from '../helpers/item-vectors.js';
import { startNatsServer } from '../helpers/servers.js';
import type { NatsServerHandle } from '../helpers/servers.js';
import { makeTempDir, processCpuMs, startChild, threadCpuMs } from './processes.js';
import type { ChildHandle } from './processes.js';
import type { Benchmark, BenchOptions, BenchReport, Check, Table } from './report.js';
import { LatencyRecorder } from './stats.js';
import type { LatencySummary } from './stats.js';
import { TICKER_SOURCE, epochNow } from './ticker.js';

const DIMS = 64;
const DEFAULT_ITEMS = 200_000;
/**
 * S shards, each in its own node process; and the 4 shards again, all in one process. `--layouts`
 * picks some by name.
 */
const LAYOUTS: readonly { name: string; shards: number; oneProcess: boolean }[] = [
  { name: '1', shards: 1, oneProcess: false },
  { name: '2', shards: 2, oneProcess: false },
  { name: '4', shards: 4, oneProcess: false },
  { name: '4x1', shards: 4, oneProcess: true },
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
  /** The shard processes' main threads (event loops) alone; the rest is workers, GC and libuv. */
  cpuShardsMainUsPerQuery: number | undefined;
  /** Per-query CPU of each busy thread of the shard processes, `pid/tid`, busiest first. */
  cpuShardThreadsUsPerQuery: Record<string, number>;
  /**
   * How late the load generator sent its queries (µs after their scheduled time): a latency
   * figure includes this, so it must stay small for the figures to be the system's.
   */
  sendLag: LatencySummary;
  cpuNatsUsPerQuery: number | undefined;
  cpuClientUsPerQuery: number | undefined;
}

/** Exact top-k ids by inner product (the shipped metric), best first, by a bounded min-heap. */
function exactTop(items: ItemVectors, query: Float32Array, k: number): string[] {
  const n = items.ids.length;
  const dims = items.dims;
  const heapScore = new Float64Array(k);
  const heapRow = new Int32Array(k);
  let size = 0;
  const v = items.vectors;
  for (let row = 0; row < n; row++) {
    let dot = 0;
    const base = row * dims;
    for (let d = 0; d < dims; d++) dot += v[base + d]! * query[d]!;
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
  // The heap holds its entries in heap order: best first by their exact scores.
  const order = Array.from({ length: size }, (_, i) => i).sort(
    (a, b) => heapScore[b]! - heapScore[a]!,
  );
  return order.map((i) => items.ids[heapRow[i]!]!);
}

/**
 * A trained model's item embeddings (`--model`): the vectors the index holds in production. The
 * queries are then items' own embeddings ("more like this"), as user embeddings need the data set.
 */
async function modelItems(modelDir: string): Promise<ItemVectors> {
  const manifest = await readRetrievalManifest(modelDir);
  const [rows, dims] = manifest.itemEmbeddings.shape;
  const raw = await readFile(join(modelDir, manifest.itemEmbeddings.file));
  const vectors = new Float32Array(rows * dims);
  new Uint8Array(vectors.buffer).set(raw.subarray(0, rows * dims * 4));
  const ids = JSON.parse(await readFile(join(modelDir, manifest.ids.items), 'utf8')) as string[];
  return { ids, categories: [], vectors, dims };
}

/** A query near a random item: its own embedding for a model's items, else a perturbed one. */
function queryFor(items: ItemVectors, fromModel: boolean, rand: () => number): Float32Array {
  if (!fromModel) return queryNear(items, rand);
  const row = Math.floor(rand() * items.ids.length);
  return items.vectors.slice(row * items.dims, (row + 1) * items.dims);
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
  sendLag: LatencySummary;
  sent: number;
  completed: number;
  errors: number;
  degraded: number;
  elapsedMs: number;
}> {
  const recorder = new LatencyRecorder();
  const lag = new LatencyRecorder();
  const total = Math.round(rate * seconds);
  const intervalMs = 1000 / rate;
  const pending: Promise<void>[] = [];
  let errors = 0;
  let degraded = 0;
  let sent = 0;
  const startAt = epochNow() + 20;
  const ticker = new Worker(TICKER_SOURCE, {
    eval: true,
    workerData: { startAt, intervalMs, count: total },
  });
  await new Promise<void>((resolve, reject) => {
    ticker.on('error', reject);
    ticker.on('message', (i: number) => {
      // A late tick (this thread was busy) sends late, and the query is still timed from its due.
      const due = startAt + i * intervalMs;
      lag.record((epochNow() - due) * 1000);
      sent++;
      pending.push(
        call(i).then(
          (result) => {
            if (result.degraded) degraded++;
            recorder.record((epochNow() - due) * 1000);
          },
          () => {
            errors++;
          },
        ),
      );
      if (sent === total) resolve();
    });
  });
  await ticker.terminate();
  await Promise.all(pending);
  return {
    latency: recorder.summary(),
    sendLag: lag.summary(),
    sent,
    completed: recorder.count,
    errors,
    degraded,
    elapsedMs: epochNow() - startAt,
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
  profileDir: string | undefined,
  workers: number | undefined,
): Promise<ShardCountFigures> {
  const config = loadConfig({ path: CONFIG_PATH, env: {} });
  const dataDir = await makeTempDir();
  const version = `bench-s${shards}`;
  const indexDir = join(dataDir, 'indexes', version);
  progress(`S=${shards}: building ${items.ids.length} × ${items.dims} into ${shards} shard(s)`);
  const buildStarted = performance.now();
  const manifests = await buildShards({
    vectors: items.vectors,
    dims: items.dims,
    ids: items.ids,
    ...(items.categories.length === 0 ? {} : { categories: items.categories }),
    shards,
    params: hnswParamsOf(config.items),
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
        workers: workers ?? config.items.workers,
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
            // Main threads only: piscina ends its workers with terminate(), which writes no profile.
            ...(profileDir === undefined
              ? {}
              : {
                  nodeArgs: [
                    '--cpu-prof',
                    '--cpu-prof-dir',
                    join(profileDir, `s${shards}${oneProcess ? 'x1' : ''}`),
                  ],
                }),
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
    const cpu = (): [number, number | undefined, number, number, Map<string, number>] => {
      const self = process.cpuUsage();
      const threads = new Map<string, number>();
      let main = 0;
      for (const child of children) {
        for (const [tid, used] of threadCpuMs(child.pid)) {
          threads.set(`${child.pid}/${tid}`, used);
          if (tid === child.pid) main += used;
        }
      }
      return [
        children.reduce((sum, child) => sum + (processCpuMs(child.pid) ?? NaN), 0),
        processCpuMs(server.pid),
        (self.user + self.system) / 1000,
        main,
        threads,
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
      const threads: Record<string, number> = {};
      const busiest = [...after[4]]
        .map(([id, used]): [string, number] => [id, perQuery(before[4].get(id) ?? 0, used) ?? 0])
        .filter(([, used]) => used >= 10)
        .sort((a, b) => b[1] - a[1]);
      for (const [id, used] of busiest) threads[id] = Math.round(used);
      openLoops.push({
        k,
        ...loop.latency,
        sendLag: loop.sendLag,
        cpuShardsMainUsPerQuery: perQuery(before[3], after[3]),
        cpuShardThreadsUsPerQuery: threads,
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
      'send lag p99',
      'cpu shards',
      '(main thr)',
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
        ms(loop.sendLag.p99),
        loop.cpuShardsUsPerQuery ?? '-',
        loop.cpuShardsMainUsPerQuery ?? '-',
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
      `Every node process (${String(params['workers'])} search workers per shard) runs beside ` +
        'nats-server and this process on the same machine: with 4 shards in 4 processes, 4 event ' +
        'loops and 4 pools of workers share its cores. `4 (1 proc)` serves the same 4 shards ' +
        'from one node process.',
      'Queries are sent on the ticks of a thread of their own (Node timers fire up to 1 ms ' +
        'late); `send lag` is how late they left all the same, when this process was busy.',
      'Build time is single-process, one shard after another, with usearch using every core.',
    ],
  };
}

async function run(options: BenchOptions): Promise<BenchReport> {
  const count = options.items ?? DEFAULT_ITEMS;
  const seconds = options.seconds ?? DEFAULT_SECONDS;
  const layouts =
    options.layouts === undefined
      ? LAYOUTS
      : options.layouts.map((name) => {
          const layout = LAYOUTS.find((l) => l.name === name);
          if (layout === undefined) {
            throw new RangeError(
              `--layouts: unknown layout ${name} (known: ${LAYOUTS.map((l) => l.name).join(', ')})`,
            );
          }
          return layout;
        });
  const fromModel = options.model !== undefined;
  let items: ItemVectors;
  if (options.model !== undefined) {
    options.progress(`reading the item embeddings of the model in ${options.model}`);
    items = await modelItems(options.model);
  } else {
    options.progress(`generating ${count} clustered ${DIMS}-dim item vectors`);
    items = clusteredItems(count, DIMS, { seed: 1, categories: 50 });
  }
  const rand = prng(99);
  const queries = Array.from({ length: RECALL_QUERIES }, () => queryFor(items, fromModel, rand));
  options.progress(`exact top 100 of ${queries.length} queries by brute force`);
  const truth = queries.map((q) => exactTop(items, q, 100));
  const server = await startNatsServer();
  const figures: ShardCountFigures[] = [];
  try {
    for (const { shards, oneProcess } of layouts) {
      const f = await benchShardCount(
        shards,
        oneProcess,
        items,
        queries,
        truth,
        server,
        seconds,
        options.progress,
        options.profileDir,
        options.workers,
      );
      options.progress(
        `S=${f.label}: recall@100 ${f.recall100.toFixed(3)}, worker p50 ${ms(f.worker.p50).toFixed(3)} ms, ` +
          `open-loop p99 (k = 100) ${ms(f.openLoops[0]!.p99).toFixed(2)} ms; shard threads ` +
          `(µs/query, k = 100): ${JSON.stringify(f.openLoops[0]!.cpuShardThreadsUsPerQuery)}`,
      );
      figures.push(f);
    }
  } finally {
    await server.stop();
  }
  const params = {
    items: items.ids.length,
    dims: items.dims,
    vectors: options.model === undefined ? 'clustered synthetic' : `model ${options.model}`,
    rate: OPEN_LOOP_RATE,
    seconds,
    workers: options.workers ?? loadConfig({ path: CONFIG_PATH, env: {} }).items.workers,
  };
  return buildReport(figures, params, seconds);
}

export const retrievalBenchmark: Benchmark = {
  name: 'retrieval',
  description:
    'item index over NATS: build, memory, recall@10/100, shard latency, scatter-gather at 500 q/s',
  run,
};
