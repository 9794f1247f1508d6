/**
 * DeepFM training speed and scoring latency on a synthetic 100k × 20 ranking task (16 numeric
 * fields, 4 categorical fields of 100 ids, 50 rows per query, relevance decided by feature
 * interactions): wall time and rows per second of the default recipe with early stopping, the
 * validation NDCG@10 it reaches beside a first-order-only model, and the latency of scoring 200
 * candidates in TypeScript and on onnxruntime-node (one thread).
 */
import {
  auc,
  exportDeepFm,
  ndcgAt,
  syntheticRanking,
  trainDeepFm,
} from '../../models/deepfm/index.js';
import type { TrainedDeepFm } from '../../models/deepfm/index.js';
import { OnnxDeepFm } from '../../models/deepfm/onnx-runtime.js';
import type { Benchmark, BenchOptions, BenchReport } from './report.js';
import { fmt } from './report.js';
import { measureCalls, median } from './stats.js';
import type { LatencySummary } from './stats.js';

const PER_QUERY = 50;
const CANDIDATES = 200;
const TARGET_TRAIN_SECONDS = 60;

async function run(options: BenchOptions): Promise<BenchReport> {
  const rows = options.items ?? 100_000;
  const rounds = options.rounds ?? 3;
  const requests = options.requests ?? 5_000;
  const task = {
    perQuery: PER_QUERY,
    numeric: 16,
    categorical: 4,
    cardinality: 100,
    labels: 'graded',
    noise: 0.3,
    firstOrder: 0.5,
  } as const;
  const train = syntheticRanking({ ...task, queries: Math.ceil(rows / PER_QUERY), seed: 1 });
  const valid = syntheticRanking({ ...task, queries: Math.ceil(rows / PER_QUERY / 5), seed: 2 });
  const fields = train.schema.length;
  const seconds: number[] = [];
  const rowsPerSecond: number[] = [];
  const epochs: number[] = [];
  const quality: Array<{ ndcg: number; auc: number }> = [];
  let trained: TrainedDeepFm | undefined;
  for (let round = 1; round <= rounds; round++) {
    options.progress(`round ${round}/${rounds}: training on ${train.labels.length} × ${fields}`);
    trained = trainDeepFm({ schema: train.schema, train, validation: valid }, { seed: round });
    seconds.push(trained.report.seconds);
    rowsPerSecond.push(median(trained.report.epochs.map((e) => e.rowsPerSecond)));
    epochs.push(trained.report.epochs.length);
    const scores = trained.model.score(valid.features);
    quality.push({
      ndcg: ndcgAt(scores, valid.labels, valid.groups, 10),
      auc: auc(scores, valid.labels),
    });
  }
  options.progress('first-order-only reference');
  const linear = trainDeepFm(
    { schema: train.schema, train, validation: valid },
    { fm: false, mlp: false },
  );
  const linearScores = linear.model.score(valid.features);
  const model = (trained as TrainedDeepFm).model;
  const sample = valid.features.subarray(0, CANDIDATES * fields);
  const session = await OnnxDeepFm.load(exportDeepFm(model), fields);
  const ts: LatencySummary[] = [];
  const onnx: LatencySummary[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      options.progress(`round ${round}/${rounds}: scoring ${CANDIDATES} candidates`);
      ts.push(await measureCalls(requests, 500, () => Promise.resolve(model.score(sample))));
      onnx.push(await measureCalls(requests, 500, () => session.score(sample)));
    }
  } finally {
    await session.close();
  }
  const latency = (name: string, list: LatencySummary[]): Array<string | number> => [
    name,
    fmt(median(list.map((s) => s.p50))),
    fmt(median(list.map((s) => s.p90))),
    fmt(median(list.map((s) => s.p99))),
  ];
  const trainSeconds = median(seconds);
  return {
    name: 'deepfm',
    params: { rows, fields, rounds, requests, candidates: CANDIDATES, options: linear.options },
    tables: [
      {
        title: `training, default recipe (median of ${rounds})`,
        columns: [
          'rows',
          'epochs run',
          'seconds',
          'rows/s per epoch',
          'valid NDCG@10',
          'valid AUC',
        ],
        rows: [
          [
            train.labels.length,
            median(epochs),
            fmt(trainSeconds),
            fmt(median(rowsPerSecond)),
            fmt(median(quality.map((q) => q.ndcg))),
            fmt(median(quality.map((q) => q.auc))),
          ],
          [
            'first order only',
            linear.report.epochs.length,
            fmt(linear.report.seconds),
            fmt(median(linear.report.epochs.map((e) => e.rowsPerSecond))),
            fmt(ndcgAt(linearScores, valid.labels, valid.groups, 10)),
            fmt(auc(linearScores, valid.labels)),
          ],
        ],
      },
      {
        title: `scoring ${CANDIDATES} candidates per call (µs)`,
        columns: ['path', 'p50', 'p90', 'p99'],
        rows: [latency('TypeScript model.score', ts), latency('onnxruntime-node, 1 thread', onnx)],
      },
    ],
    checks: [
      {
        name: `training ${rows} × ${fields} (s)`,
        value: trainSeconds,
        target: `<= ${TARGET_TRAIN_SECONDS}`,
        pass: trainSeconds <= TARGET_TRAIN_SECONDS,
      },
    ],
    figures: { seconds, rowsPerSecond, epochs, quality, ts, onnx },
  };
}

export const deepFmBenchmark: Benchmark = {
  name: 'deepfm',
  description: 'DeepFM training on 100k × 20 synthetic rows (target ≤ 60 s) and scoring latency',
  run,
};
