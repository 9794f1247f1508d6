/**
 * The `ranking` benchmark: what the `rank` actor does for one request, in one process: read the
 * user's and 200 candidates' feature views through the warm cache, assemble the feature rows, and
 * score them with a GBDT ranker (onnxruntime for a batch this size), then sort. The ranker is a
 * trained artefact given with `--model <dir>` (from `recsys train ranker`), or, without one, a
 * model trained here on synthetic rows of the ranking schema, larger than the training command's
 * default (300 trees of 31 leaves): the cost of scoring depends on the trees, not on what they
 * learnt, so this is an upper bound.
 *
 * The store holds every view of 10,000 items and 1,000 users (memory store: the warm-cache path
 * never reaches it); each request picks a user and 200 items.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainGbdt } from '../../models/gbdt/index.js';
import {
  assembleFeatures,
  onlineRankingInputs,
  rankingSchema,
} from '../../models/ranking/features.js';
import { writeGbdtRankerArtifact } from '../../models/ranking/gbdt-artifact.js';
import { loadRanker } from '../../models/ranking/ranker.js';
import type { RankerModel } from '../../models/ranking/ranker.js';
import { resolveConfig } from '../../runtime/config/index.js';
import { FeatureRegistry, loadConfiguredDefinitions } from '../../runtime/features/definitions.js';
import { MemoryOnlineStore } from '../../runtime/features/memory-store.js';
import { OnlineFeatures } from '../../runtime/features/online-features.js';
import type { FeatureWrite } from '../../runtime/features/types.js';
import type { Benchmark, BenchOptions, BenchReport } from './report.js';
import { fmt } from './report.js';
import { measureCalls, median } from './stats.js';
import type { LatencySummary } from './stats.js';

const ITEMS = 10_000;
const USERS = 1_000;
const CANDIDATES = 200;
const CATEGORIES = ['drama', 'comedy', 'jazz', 'rock', 'news', 'sport', 'kids', 'food'];

/** Deterministic pseudo-random numbers in [0, 1). */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

function storeRows(now: number): FeatureWrite[] {
  const random = lcg(7);
  const rows: FeatureWrite[] = [];
  const row = (view: string, entity: string, values: Record<string, unknown>): void => {
    rows.push({ view, entity, row: { values: values as never, eventTimeMs: now - 60_000 } });
  };
  for (let i = 0; i < ITEMS; i++) {
    const item = `i${i}`;
    const category = CATEGORIES[i % CATEGORIES.length]!;
    row('item_profile', item, { category, created_at_ms: now - random() * 3e10 });
    row('item_popularity', item, {
      interactions: Math.floor(random() * 5000),
      interactions_30d: Math.floor(random() * 500),
      users: Math.floor(random() * 2000),
      ctr: 0.02 + random() * 0.1,
      popularity_rank: i,
    });
    row('item_realtime', item, {
      views_5m: Math.floor(random() * 20),
      clicks_5m: Math.floor(random() * 4),
      views_30m: Math.floor(random() * 100),
      clicks_30m: Math.floor(random() * 10),
      ctr_30m: 0.05,
      velocity: random() - 0.5,
    });
  }
  for (let u = 0; u < USERS; u++) {
    const user = `u${u}`;
    row('user_profile', user, {
      interactions: Math.floor(random() * 300),
      top_categories: [CATEGORIES[u % 8]!, CATEGORIES[(u + 3) % 8]!],
    });
    row('user_realtime', user, {
      views_5m: Math.floor(random() * 10),
      clicks_5m: Math.floor(random() * 3),
      top_categories_5m: [CATEGORIES[u % 8]!],
      last_event_ms: now - 30_000,
    });
  }
  return rows;
}

/** A ranker larger than the training default (300 trees of 31 leaves), on synthetic rows. */
async function defaultSizeRanker(dir: string): Promise<string> {
  const schema = rankingSchema();
  const random = lcg(11);
  const groups = 400;
  const perGroup = 50;
  const n = groups * perGroup;
  const features = new Float64Array(n * schema.size);
  const labels = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let signal = 0;
    for (let f = 0; f < schema.size; f++) {
      const x = random() * 2 - 1;
      features[i * schema.size + f] = x;
      if (f < 6) signal += x * (f % 2 === 0 ? 1 : -0.5);
    }
    labels[i] = Math.max(0, Math.min(4, Math.round(signal + random())));
  }
  const { model } = trainGbdt(
    {
      train: {
        features,
        numFeatures: schema.size,
        labels,
        groups: new Int32Array(groups).fill(perGroup),
        featureNames: schema.names,
      },
    },
    { objective: 'lambdarank', numIterations: 300, numLeaves: 31, minDataInLeaf: 20 },
  );
  return (await writeGbdtRankerArtifact(dir, { model, schema })).dir;
}

async function run(options: BenchOptions): Promise<BenchReport> {
  const rounds = options.rounds ?? 3;
  const requests = options.requests ?? 2000;
  const scratch = await mkdtemp(join(tmpdir(), 'recsys-bench-ranking-'));
  let ranker: RankerModel | undefined;
  try {
    let dir = options.model;
    if (dir === undefined) {
      options.progress('training a 300-tree, 31-leaf GBDT ranker on synthetic rows');
      dir = await defaultSizeRanker(scratch);
    }
    ranker = await loadRanker(dir);
    const config = resolveConfig({});
    const definitions = loadConfiguredDefinitions(config.features);
    const store = new MemoryOnlineStore({ definitions });
    const now = Date.now();
    const rows = storeRows(now);
    for (let i = 0; i < rows.length; i += 5000)
      await store.write({ rows: rows.slice(i, i + 5000) });
    const features = new OnlineFeatures({
      ...config.features,
      cacheMaxEntries: 200_000,
      cacheTtlMs: 3_600_000,
      store,
      registry: new FeatureRegistry(definitions),
    });
    const model = ranker;
    const request = async (i: number): Promise<void> => {
      const user = `u${i % USERS}`;
      const start = (i * 37) % (ITEMS - CANDIDATES);
      const candidates = Array.from({ length: CANDIDATES }, (_, k) => ({
        itemId: `i${start + k}`,
        score: 1 - k / CANDIDATES,
      }));
      const inputs = await onlineRankingInputs(features, user, candidates, now);
      const featureRows = assembleFeatures(model.schema, inputs.contexts);
      const scores = await model.score(featureRows, CANDIDATES);
      Array.from({ length: CANDIDATES }, (_, k) => k).sort(
        (a, b) => (scores[b] as number) - (scores[a] as number),
      );
    };
    // Warm the cache with every item and user a request can touch.
    for (let i = 0; i < USERS + ITEMS / 37; i++) await request(i);
    const results: LatencySummary[] = [];
    for (let round = 1; round <= rounds; round++) {
      const summary = await measureCalls(requests, 100, request);
      results.push(summary);
      options.progress(
        `round ${round}/${rounds}: p50 ${fmt(summary.p50 / 1000)} ms, p99 ${fmt(summary.p99 / 1000)} ms`,
      );
    }
    const p50 = median(results.map((r) => r.p50)) / 1000;
    const p99 = median(results.map((r) => r.p99)) / 1000;
    const hitRate = features.stats().hitRate;
    await features.close();
    return {
      name: 'ranking',
      params: { requests, rounds, candidates: CANDIDATES, model: dir, version: model.version },
      tables: [
        {
          title: `ranking ${CANDIDATES} candidates: feature reads (warm cache), assembly, scoring, sort; one request in flight (ms, median of ${rounds} rounds)`,
          columns: ['ranker', 'p50', 'p90', 'p99', 'cache hit rate'],
          rows: [
            [
              `${model.kind} ${model.version}`,
              fmt(p50),
              fmt(median(results.map((r) => r.p90)) / 1000),
              fmt(p99),
              fmt(hitRate),
            ],
          ],
        },
      ],
      checks: [
        {
          name: `rank ${CANDIDATES} candidates, warm cache, p50 (ms)`,
          value: p50,
          target: '<= 1',
          pass: p50 <= 1,
        },
        {
          name: `rank ${CANDIDATES} candidates, warm cache, p99 (ms)`,
          value: p99,
          target: '<= 3',
          pass: p99 <= 3,
        },
      ],
      figures: { rounds: results },
    };
  } finally {
    await ranker?.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

export const rankingBenchmark: Benchmark = {
  name: 'ranking',
  description:
    'rank 200 candidates: feature reads through the warm cache, assembly and GBDT scoring (--model: a trained ranker)',
  run,
};
