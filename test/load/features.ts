/**
 * The `features` benchmark: the online feature store on the serving path, and the event stream
 * that feeds it.
 *
 * Reads: a redis-server of its own is filled with the `item_profile` and `item_realtime` rows of
 * `--items` items (100k by default) through `RedisOnlineStore.write`, then `OnlineFeatures` reads
 * `item_profile` for 1, 50, 200 and 500 random items, one read in flight: from Redis with the cache
 * off (every entity a miss, one `MGET`), and with a warm cache. Beside it, in the same run, the
 * baseline: a bare ioredis `MGET` of the same keys, whose ratio to ours is the cost of the layer
 * (key building, decoding, default filling, caching); a third system parses the MGET's JSON, the
 * least any reader of the stored values does. Rounds alternate which goes first, and the
 * tables show the median of the rounds. A last measurement draws items from a Zipf law with a
 * cache smaller than the catalogue, for a hit rate under skewed traffic.
 *
 * Stream: a JetStream stream (file storage) on a nats-server of its own, a durable `consume`
 * reader with 256 messages in flight (the batch of the event consumers), and events published at a
 * steady rate; what is measured is publish start to the reader's handler (both in this process,
 * one clock), i.e. how soon an event is visible to the consumers that turn it into features.
 */
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { FeatureRegistry, loadFeatureDefinitions } from '../../runtime/features/definitions.js';
import { OnlineFeatures } from '../../runtime/features/online-features.js';
import { RedisOnlineStore } from '../../runtime/features/redis-store.js';
import type { FeatureDefinitions, FeatureWrite } from '../../runtime/features/types.js';
import { NatsStreamStore } from '../../runtime/stream/nats.js';
import type { StreamReader } from '../../runtime/stream/types.js';
import { startNatsServer, startRedisServer } from '../helpers/servers.js';
import type { NatsServerHandle, RedisServerHandle } from '../helpers/servers.js';
import type { Benchmark, BenchOptions, BenchReport, Check } from './report.js';
import { fmt } from './report.js';
import { LatencyRecorder, measureCalls, median } from './stats.js';
import type { LatencySummary } from './stats.js';

const DEFAULTS = { items: 100_000, requests: 1000, rounds: 3, seconds: 5 };
const SIZES = [1, 50, 200, 500] as const;
const PREFIX = 'bench';
const VIEW = 'item_profile';
const WRITE_BATCH = 1000;
/** Request sets per size the warm cache holds: all of them are read once before measuring. */
const WARM_SETS = 64;
const WARMUP_REQUESTS = 100;
/** Zipf workload: exponent, cache size, entities per read. */
const ZIPF_EXPONENT = 1;
const ZIPF_CACHE_ENTRIES = 20_000;
const ZIPF_SIZE = 200;
/** Stream: events per second, and the warm-up before recording. */
const STREAM_RATE = 500;
const STREAM_WARMUP_SECONDS = 1;
const STREAM_CONCURRENCY = 256;

const TARGET_WARM_P50_MS = 1;
const TARGET_REDIS_P99_MS = 3;
const TARGET_STREAM_P99_MS = 5;

const DEFINITIONS_PATH = fileURLToPath(new URL('../../configs/features.yaml', import.meta.url));

type System = 'ours' | 'raw' | 'parse';

interface SizeFigures {
  cold: Record<System, LatencySummary[]>;
  warm: LatencySummary[];
}

/** A deterministic generator, so every run reads the same items. */
function random(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return Math.floor((state / 2 ** 32) * n);
  };
}

function itemId(i: number): string {
  return `item${i}`;
}

function sets(count: number, size: number, items: number, seed: number): string[][] {
  const next = random(seed);
  return Array.from({ length: count }, () =>
    Array.from({ length: size }, () => itemId(next(items))),
  );
}

/** Rows as a materialised catalogue would hold them. */
function itemRows(i: number, now: number): FeatureWrite[] {
  const tags = Array.from({ length: 3 + (i % 4) }, (_, t) => `tag${(i * 7 + t * 13) % 500}`);
  return [
    {
      view: 'item_profile',
      entity: itemId(i),
      row: {
        values: {
          category: `category${i % 50}`,
          tags,
          created_at_ms: now - (i % 1000) * 86_400_000,
          title: `Item number ${i} of the benchmark catalogue`,
        },
        eventTimeMs: now - (i % 1000) * 86_400_000,
      },
    },
    {
      view: 'item_realtime',
      entity: itemId(i),
      row: {
        values: {
          views_5m: i % 17,
          clicks_5m: i % 3,
          views_30m: i % 97,
          clicks_30m: i % 11,
          ctr_30m: 0.05 + (i % 10) / 100,
          velocity: ((i % 21) - 10) / 10,
        },
        eventTimeMs: now - (i % 300) * 1000,
      },
    },
  ];
}

async function fill(store: RedisOnlineStore, items: number): Promise<void> {
  const now = Date.now();
  let rows: FeatureWrite[] = [];
  for (let i = 0; i < items; i++) {
    rows.push(...itemRows(i, now));
    if (rows.length >= WRITE_BATCH) {
      await store.write({ rows });
      rows = [];
    }
  }
  if (rows.length > 0) await store.write({ rows });
}

/**
 * What any client of the stored layout has to do with a value: `<version>:<eventTimeMs>:<json>`,
 * the JSON parsed (see `runtime/features/redis-store.ts`).
 */
function decodeStored(value: string): unknown {
  const first = value.indexOf(':');
  const second = value.indexOf(':', first + 1);
  return JSON.parse(value.slice(second + 1));
}

/** Zipf ranks by inverse transform over the cumulative weights. */
function zipfSampler(items: number, exponent: number, seed: number): () => number {
  const cumulative = new Float64Array(items);
  let total = 0;
  for (let r = 0; r < items; r++) {
    total += 1 / (r + 1) ** exponent;
    cumulative[r] = total;
  }
  const next = random(seed);
  return () => {
    const target = (next(2 ** 30) / 2 ** 30) * total;
    let lo = 0;
    let hi = items - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

interface ReadFigures {
  sizes: Record<number, SizeFigures>;
  zipf: { latency: LatencySummary; hitRate: number; degraded: number };
  fillSeconds: number;
}

async function benchReads(
  items: number,
  requests: number,
  rounds: number,
  progress: (line: string) => void,
): Promise<ReadFigures> {
  let server: RedisServerHandle | undefined;
  let store: RedisOnlineStore | undefined;
  let raw: Redis | undefined;
  const readers: OnlineFeatures[] = [];
  try {
    server = await startRedisServer();
    const definitions: FeatureDefinitions = loadFeatureDefinitions(DEFINITIONS_PATH);
    const registry = new FeatureRegistry(definitions);
    const redisStore = await RedisOnlineStore.connect({
      url: server.url,
      prefix: PREFIX,
      definitions,
    });
    store = redisStore;
    raw = new Redis(server.url, { lazyConnect: true });
    await raw.connect();
    progress(
      `redis-server ${server.url}; writing ${items} items of item_profile and item_realtime`,
    );
    const fillStarted = performance.now();
    await fill(redisStore, items);
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    progress(`filled in ${fillSeconds.toFixed(1)} s`);

    // Long read timeout: a slow read is to be measured here, not turned into defaults.
    const cold = new OnlineFeatures({ store, registry, cacheMaxEntries: 0, readTimeoutMs: 5_000 });
    const warm = new OnlineFeatures({
      store,
      registry,
      cacheMaxEntries: items * 2,
      cacheTtlMs: 3_600_000,
      readTimeoutMs: 5_000,
    });
    readers.push(cold, warm);
    const coldReader = cold.prepare(VIEW);
    const warmReader = warm.prepare(VIEW);
    const sample = await coldReader.read([itemId(42)]);
    if (sample.rows[0]?.values['category'] !== 'category42' || sample.degraded) {
      throw new Error(`unexpected item42 row: ${JSON.stringify(sample)}`);
    }

    const sizes: Record<number, SizeFigures> = {};
    for (const size of SIZES) {
      const coldSets = sets(1024, size, items, 1000 + size);
      const keySets = coldSets.map((set) => set.map((id) => redisStore.rowKey(VIEW, id)));
      const warmSets = sets(WARM_SETS, size, items, 2000 + size);
      const client = raw;
      const ops: Record<System, (i: number) => Promise<unknown>> = {
        ours: (i) => coldReader.read(coldSets[i % coldSets.length] as string[]),
        raw: (i) => client.mget(keySets[i % keySets.length] as string[]),
        parse: async (i) => {
          const values = await client.mget(keySets[i % keySets.length] as string[]);
          return values.map((value) => (value === null ? null : decodeStored(value)));
        },
      };
      const figures: SizeFigures = { cold: { ours: [], raw: [], parse: [] }, warm: [] };
      for (const set of warmSets) await warmReader.read(set);
      for (let r = 0; r < rounds; r++) {
        const order: System[] = r % 2 === 0 ? ['ours', 'raw', 'parse'] : ['parse', 'raw', 'ours'];
        for (const system of order) {
          figures.cold[system].push(await measureCalls(requests, WARMUP_REQUESTS, ops[system]));
        }
        figures.warm.push(
          await measureCalls(requests, WARMUP_REQUESTS, (i) =>
            warmReader.read(warmSets[i % warmSets.length] as string[]),
          ),
        );
        progress(
          `${size} entities, round ${r + 1}/${rounds}: from Redis p50 ` +
            `${figures.cold.ours.at(-1)?.p50.toFixed(0)} µs (raw MGET ` +
            `${figures.cold.raw.at(-1)?.p50.toFixed(0)} µs), warm cache p50 ` +
            `${figures.warm.at(-1)?.p50.toFixed(0)} µs`,
        );
      }
      sizes[size] = figures;
    }

    progress(
      `zipf(${ZIPF_EXPONENT}) reads of ${ZIPF_SIZE} items, cache of ${ZIPF_CACHE_ENTRIES} rows`,
    );
    const zipf = new OnlineFeatures({
      store,
      registry,
      cacheMaxEntries: ZIPF_CACHE_ENTRIES,
      cacheTtlMs: 5_000,
      readTimeoutMs: 5_000,
    });
    readers.push(zipf);
    const zipfReader = zipf.prepare(VIEW);
    const rank = zipfSampler(items, ZIPF_EXPONENT, 7);
    const draw = (): string[] => Array.from({ length: ZIPF_SIZE }, () => itemId(rank()));
    // Fresh draws for every read: cycling a few sets would count repeats as hits.
    const zipfSets = Array.from({ length: requests }, draw);
    let degraded = 0;
    const zipfRead = async (i: number): Promise<void> => {
      if ((await zipfReader.read(zipfSets[i] as string[])).degraded) degraded++;
    };
    // Warm up on other draws, then count the hit rate of the measured reads only.
    for (let i = 0; i < 512; i++) await zipfReader.read(draw());
    const before = zipf.stats().cache;
    const latency = await measureCalls(requests, 0, zipfRead);
    const after = zipf.stats().cache;
    const hits = after.hits - before.hits;
    const lookups = hits + after.misses - before.misses;
    return {
      sizes,
      zipf: { latency, hitRate: lookups === 0 ? 0 : hits / lookups, degraded },
      fillSeconds,
    };
  } finally {
    await Promise.all(readers.map((reader) => reader.close()));
    await store?.close();
    raw?.disconnect();
    await server?.stop();
  }
}

interface StreamFigures {
  latency: LatencySummary;
  rate: number;
  published: number;
}

async function benchStream(
  seconds: number,
  progress: (line: string) => void,
): Promise<StreamFigures> {
  let server: NatsServerHandle | undefined;
  let nc: NatsConnection | undefined;
  let reader: StreamReader | undefined;
  try {
    server = await startNatsServer();
    nc = await connect({ servers: server.url, name: 'bench-features-stream', noAsyncTraces: true });
    const stream = await new NatsStreamStore(nc).stream('bench_feature_events', {
      subjects: [`${PREFIX}.events.feedback.>`],
      maxAgeMs: 600_000,
    });
    const encoder = new TextEncoder();
    const decoder = new TextDecoder();
    const recorder = new LatencyRecorder(STREAM_RATE * (seconds + STREAM_WARMUP_SECONDS + 1));
    let recording = false;
    let handled = 0;
    reader = await stream.consume(
      'bench-feature-writer',
      (message) => {
        const visibleAt = performance.now();
        const event = JSON.parse(decoder.decode(message.data)) as { sent_at: number };
        handled++;
        if (recording) recorder.record((visibleAt - event.sent_at) * 1000);
      },
      // As many in flight as the event consumers pull in a batch, so the server pushes each
      // event as it is stored instead of waiting for the next pull.
      { ackWaitMs: 30_000, maxDeliver: 5, concurrency: STREAM_CONCURRENCY },
    );
    progress(
      `nats-server ${server.url}; publishing ${STREAM_RATE} events/s for ` +
        `${STREAM_WARMUP_SECONDS} s of warm-up and ${seconds} s measured`,
    );
    const publishAll = async (count: number): Promise<number> => {
      const started = performance.now();
      const intervalMs = 1000 / STREAM_RATE;
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < count; i++) {
        // A steady schedule: event i goes at started + i * interval, not after the last ack.
        const wait = started + i * intervalMs - performance.now();
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
        const id = `e${started}-${i}`;
        const sentAt = performance.now();
        const payload = {
          event_id: id,
          user_id: `user${i % 5000}`,
          item_id: itemId(i % 100_000),
          type: i % 10 === 0 ? 'click' : 'view',
          ts_ms: Date.now(),
          sent_at: sentAt,
        };
        pending.push(
          stream.publish(
            `${PREFIX}.events.feedback.${i % 64}.user${i % 5000}`,
            encoder.encode(JSON.stringify(payload)),
            {
              msgId: id,
            },
          ),
        );
      }
      await Promise.all(pending);
      return (count * 1000) / (performance.now() - started);
    };
    await publishAll(STREAM_RATE * STREAM_WARMUP_SECONDS);
    recording = true;
    const count = Math.round(STREAM_RATE * seconds);
    const before = handled;
    const rate = await publishAll(count);
    const deadline = Date.now() + 10_000;
    while (handled - before < count && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (handled - before < count) {
      throw new Error(`only ${handled - before} of ${count} events reached the reader`);
    }
    return { latency: recorder.summary(), rate, published: count };
  } finally {
    await reader?.stop();
    await nc?.close();
    await server?.stop();
  }
}

const ms = (micros: number): string => fmt(micros / 1000);

async function run(options: BenchOptions): Promise<BenchReport> {
  const items = options.items ?? DEFAULTS.items;
  const requests = options.requests ?? DEFAULTS.requests;
  const rounds = options.rounds ?? DEFAULTS.rounds;
  const seconds = options.seconds ?? DEFAULTS.seconds;
  const reads = await benchReads(items, requests, rounds, options.progress);
  const stream = await benchStream(seconds, options.progress);

  const med = (list: LatencySummary[], key: 'p50' | 'p90' | 'p99'): number =>
    median(list.map((s) => s[key]));
  const coldRows = SIZES.map((size) => {
    const f = reads.sizes[size] as SizeFigures;
    const ours50 = med(f.cold.ours, 'p50');
    const ours99 = med(f.cold.ours, 'p99');
    const raw50 = med(f.cold.raw, 'p50');
    const raw99 = med(f.cold.raw, 'p99');
    return [
      String(size),
      ms(ours50),
      ms(ours99),
      ms(raw50),
      ms(raw99),
      ms(med(f.cold.parse, 'p50')),
      ms(med(f.cold.parse, 'p99')),
      fmt(ours50 / raw50),
      fmt(ours99 / raw99),
    ];
  });
  const warmRows = SIZES.map((size) => {
    const f = reads.sizes[size] as SizeFigures;
    return [
      String(size),
      ms(med(f.warm, 'p50')),
      ms(med(f.warm, 'p90')),
      ms(med(f.warm, 'p99')),
      fmt(med(f.warm, 'p50') / size),
    ];
  });
  const at200 = reads.sizes[200] as SizeFigures;
  const warm200 = med(at200.warm, 'p50') / 1000;
  const redis200 = med(at200.cold.ours, 'p99') / 1000;
  const stream99 = stream.latency.p99 / 1000;
  const checks: Check[] = [
    {
      name: '200 item rows, warm cache, p50 (ms)',
      value: warm200,
      target: `<= ${TARGET_WARM_P50_MS}`,
      pass: warm200 <= TARGET_WARM_P50_MS,
    },
    {
      name: '200 item rows from Redis (cache off), p99 (ms)',
      value: redis200,
      target: `<= ${TARGET_REDIS_P99_MS}`,
      pass: redis200 <= TARGET_REDIS_P99_MS,
    },
    {
      name: 'event publish to consumer handler, p99 (ms)',
      value: stream99,
      target: `<= ${TARGET_STREAM_P99_MS}`,
      pass: stream99 <= TARGET_STREAM_P99_MS,
    },
  ];
  const z = reads.zipf;
  return {
    name: 'features',
    params: { items, requests, rounds, seconds, streamRate: STREAM_RATE },
    tables: [
      {
        title:
          `online read of ${VIEW} from Redis, cache off, one in flight (ms): ours vs a bare ` +
          'ioredis MGET of the same keys, and the MGET with its JSON parsed; ratio = ours / MGET',
        columns: [
          'entities',
          'ours p50',
          'ours p99',
          'MGET p50',
          'MGET p99',
          '+parse p50',
          '+parse p99',
          'ratio p50',
          'ratio p99',
        ],
        rows: coldRows,
      },
      {
        title: `online read of ${VIEW}, warm cache (every row cached), one in flight (ms)`,
        columns: ['entities', 'p50', 'p90', 'p99', 'µs per row (p50)'],
        rows: warmRows,
      },
      {
        title: `zipf(${ZIPF_EXPONENT}) reads of ${ZIPF_SIZE} of ${items} items, cache of ${ZIPF_CACHE_ENTRIES} rows, TTL 5 s (ms)`,
        columns: ['hit rate', 'p50', 'p90', 'p99', 'degraded reads'],
        rows: [
          [fmt(z.hitRate), ms(z.latency.p50), ms(z.latency.p90), ms(z.latency.p99), z.degraded],
        ],
      },
      {
        title: `JetStream event publish start to durable consumer handler, ${STREAM_RATE} events/s (ms)`,
        columns: ['events', 'rate /s', 'p50', 'p90', 'p99', 'max'],
        rows: [
          [
            String(stream.published),
            fmt(stream.rate),
            ms(stream.latency.p50),
            ms(stream.latency.p90),
            ms(stream.latency.p99),
            ms(stream.latency.max),
          ],
        ],
      },
    ],
    checks,
    figures: { reads: reads.sizes, zipf: reads.zipf, stream, fillSeconds: reads.fillSeconds },
    notes: [
      `Filling Redis with ${items} items x 2 views through RedisOnlineStore.write took ${fmt(reads.fillSeconds)} s.`,
    ],
  };
}

export const featuresBenchmark: Benchmark = {
  name: 'features',
  description:
    'online feature reads from Redis (cold, warm cache, vs bare MGET) and event publish-to-consumer latency on JetStream',
  run,
};
