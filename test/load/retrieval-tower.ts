/**
 * The user tower on onnxruntime-node, one user at a time (the serving path of the user actor):
 * p50/p90/p99 of `OnnxUserTower.encodeUser` against the target of 50 µs p50, beside the same tower
 * in TypeScript and a batch of 256 users. Weights are random: the cost does not depend on them.
 */
import { TwoTowerModel, shapeFor } from '../../models/retrieval/model.js';
import { exportTowers } from '../../models/retrieval/onnx-export.js';
import { OnnxUserTower } from '../../models/retrieval/onnx-runtime.js';
import { userBatch } from '../../models/retrieval/features.js';
import type { UserQuery } from '../../models/retrieval/scorer.js';
import type { Benchmark, BenchOptions, BenchReport } from './report.js';
import { fmt } from './report.js';
import { measureCalls, median } from './stats.js';
import type { LatencySummary } from './stats.js';

const USERS = 50_000;
const ITEMS = 200_000;
const TARGET_P50_US = 50;

function queries(count: number, historyLength: number): UserQuery[] {
  let seed = 12345;
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  return Array.from({ length: count }, (_, i) => ({
    // One in ten is a cold-start user; histories from empty to full.
    userIndex: i % 10 === 0 ? -1 : next(USERS),
    history: Int32Array.from({ length: next(historyLength + 1) }, () => next(ITEMS)),
  }));
}

async function run(options: BenchOptions): Promise<BenchReport> {
  const requests = options.requests ?? 20_000;
  const rounds = options.rounds ?? 3;
  const shape = shapeFor(
    {
      users: USERS,
      items: ITEMS,
      categories: 50,
      tags: 500,
      ageBands: 6,
      countries: 30,
      devices: 3,
      maxTags: 8,
    },
    { dims: 64, hiddenUnits: 128, historyLength: 20 },
  );
  options.progress(`building a ${shape.dims}-dim model for ${USERS} users and ${ITEMS} items`);
  const model = new TwoTowerModel(shape, { seed: 1 });
  const { userTower } = exportTowers(model);
  const tower = await OnnxUserTower.load(userTower, shape.historyLength);
  const sample = queries(1024, shape.historyLength);
  const at = (i: number): UserQuery => sample[i % sample.length] as UserQuery;
  const onnx: LatencySummary[] = [];
  const ts: LatencySummary[] = [];
  const batch: number[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      options.progress(`round ${round}/${rounds}: onnxruntime, one user at a time`);
      onnx.push(
        await measureCalls(requests, Math.min(1000, requests), (i) => tower.encodeUser(at(i))),
      );
      options.progress(`round ${round}/${rounds}: TypeScript, one user at a time`);
      ts.push(
        await measureCalls(requests, Math.min(1000, requests), (i) =>
          model.encodeUsers(userBatch([at(i)], 20)),
        ),
      );
      const inputs = userBatch(sample.slice(0, 256), shape.historyLength);
      const started = performance.now();
      for (let i = 0; i < 20; i++) await tower.encodeBatch(inputs);
      batch.push(((performance.now() - started) * 1000) / (20 * 256));
    }
  } finally {
    await tower.close();
  }
  const row = (name: string, list: LatencySummary[]): Array<string | number> => [
    name,
    fmt(median(list.map((s) => s.p50))),
    fmt(median(list.map((s) => s.p90))),
    fmt(median(list.map((s) => s.p99))),
  ];
  const p50 = median(onnx.map((s) => s.p50));
  return {
    name: 'retrieval-tower',
    params: { requests, rounds, ...shape },
    tables: [
      {
        title: 'user tower, one user per call (µs)',
        columns: ['path', 'p50', 'p90', 'p99'],
        rows: [row('onnxruntime-node encodeUser', onnx), row('TypeScript encodeUsers', ts)],
      },
      {
        title: 'user tower, batches of 256 on onnxruntime-node',
        columns: ['µs per user'],
        rows: [[fmt(median(batch))]],
      },
    ],
    checks: [
      {
        name: 'onnxruntime user tower p50 (µs)',
        value: p50,
        target: `<= ${TARGET_P50_US}`,
        pass: p50 <= TARGET_P50_US,
      },
    ],
    figures: { onnx, ts, batchMicrosPerUser: batch },
  };
}

export const retrievalTowerBenchmark: Benchmark = {
  name: 'retrieval-tower',
  description: 'two-tower user tower latency for one user on onnxruntime-node (target p50 ≤ 50 µs)',
  run,
};
