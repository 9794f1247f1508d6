/**
 * The `gbdt-serve` benchmark: scoring a batch of rows with the 300-tree lambdarank model LightGBM
 * trained on the learning-to-rank generator (31 leaves, 40 features), on the two evaluators a
 * `GbdtScorer` chooses between: the TypeScript tree walk, and the ONNX export on onnxruntime-node
 * with 1 and 2 intra-op threads. One call in flight, rows from the generator's test set (a new
 * slice each call), p50/p99 per batch size; rounds alternate which path goes first and the tables
 * show the median of the rounds. The switch-over is the smallest batch from which onnxruntime (one
 * thread) is faster at the median: `DEFAULT_ONNX_MIN_ROWS` should sit there.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseLightGbmModel } from '../../models/gbdt/lightgbm-format.js';
import { generateLtr } from '../../models/gbdt/ltr-generator.js';
import { compileGbdt, predictRaw } from '../../models/gbdt/predict.js';
import { DEFAULT_ONNX_MIN_ROWS, GbdtScorer } from '../../models/gbdt/scorer.js';
import type { Benchmark, BenchOptions, BenchReport } from './report.js';
import { fmt } from './report.js';
import { measureCalls, median } from './stats.js';
import type { LatencySummary } from './stats.js';

const MODEL_PATH = fileURLToPath(
  new URL('../fixtures/lightgbm/lambdarank-ltr.model.txt', import.meta.url),
);
const SIZES = [1, 2, 3, 5, 10, 50, 200, 500] as const;
/** Rows scored per measurement and size: calls = clamp(ROW_BUDGET / size, 200, --requests). */
const ROW_BUDGET = 200_000;
const MIN_CALLS = 200;

const Path = {
  TypeScript: 'TypeScript',
  Onnx1: 'onnxruntime, 1 thread',
  Onnx2: 'onnxruntime, 2 threads',
  Scorer: `GbdtScorer (switch at ${DEFAULT_ONNX_MIN_ROWS})`,
} as const;
type Path = (typeof Path)[keyof typeof Path];
const PATHS: readonly Path[] = [Path.TypeScript, Path.Onnx1, Path.Onnx2, Path.Scorer];

async function run(options: BenchOptions): Promise<BenchReport> {
  const rounds = options.rounds ?? 3;
  const maxCalls = options.requests ?? 2000;
  const model = parseLightGbmModel(await readFile(MODEL_PATH, 'utf8'));
  const compiled = compileGbdt(model);
  const data = generateLtr({ queries: 100, seed: 33 });
  const rows = Float32Array.from(data.features);
  const width = data.width;
  options.progress(
    `${model.trees.length} trees, ${width} features, ${data.rows} rows of the generator's test set`,
  );
  const onnx1 = await GbdtScorer.create(model, { onnxMinRows: 1, intraOpThreads: 1 });
  const onnx2 = await GbdtScorer.create(model, { onnxMinRows: 1, intraOpThreads: 2 });
  const auto = await GbdtScorer.create(model);
  const figures = new Map<string, LatencySummary[]>();
  const out = new Float64Array(Math.max(...SIZES));
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const size of SIZES) {
        const calls = Math.max(MIN_CALLS, Math.min(maxCalls, Math.round(ROW_BUDGET / size)));
        const slices = Math.floor(data.rows / size);
        const batch = (i: number): Float32Array => {
          const start = (i % slices) * size * width;
          return rows.subarray(start, start + size * width);
        };
        const call: Record<Path, (i: number) => unknown> = {
          [Path.TypeScript]: (i) => predictRaw(compiled, batch(i), width, out),
          [Path.Onnx1]: (i) => onnx1.score(batch(i), out),
          [Path.Onnx2]: (i) => onnx2.score(batch(i), out),
          [Path.Scorer]: (i) => auto.score(batch(i), out),
        };
        // Alternate the order between rounds, so no path always runs on a warmer machine.
        const order = round % 2 === 1 ? PATHS : [...PATHS].reverse();
        options.progress(`round ${round}/${rounds}: ${size} rows, ${calls} calls per path`);
        for (const path of order) {
          const summary = await measureCalls(calls, Math.min(100, calls), call[path]);
          const key = `${path}|${size}`;
          figures.set(key, [...(figures.get(key) ?? []), summary]);
        }
      }
    }
  } finally {
    await onnx1.close();
    await onnx2.close();
    await auto.close();
  }
  const stat = (path: Path, size: number, q: 'p50' | 'p99'): number =>
    median((figures.get(`${path}|${size}`) ?? []).map((s) => s[q]));
  const crossover = SIZES.find(
    (size) => stat(Path.Onnx1, size, 'p50') < stat(Path.TypeScript, size, 'p50'),
  );
  const table = (q: 'p50' | 'p99') => ({
    title: `${model.trees.length} trees × batch, ${q} per call (µs)`,
    columns: ['path', ...SIZES.map((s) => `${s} rows`)],
    rows: PATHS.map((path) => [path, ...SIZES.map((size) => fmt(stat(path, size, q)))]),
  });
  const perRow = {
    title: 'p50 per row (µs)',
    columns: ['path', ...SIZES.map((s) => `${s} rows`)],
    rows: PATHS.map((path) => [path, ...SIZES.map((size) => fmt(stat(path, size, 'p50') / size))]),
  };
  return {
    name: 'gbdt-serve',
    params: { rounds, maxCalls, trees: model.trees.length, width, sizes: SIZES.join(',') },
    tables: [table('p50'), table('p99'), perRow],
    checks: [],
    notes: [
      `onnxruntime (1 thread) is faster from ${crossover ?? 'none of the measured sizes'} rows at the median; ` +
        `DEFAULT_ONNX_MIN_ROWS is ${DEFAULT_ONNX_MIN_ROWS}.`,
    ],
    figures: Object.fromEntries(figures),
  };
}

export const gbdtServeBenchmark: Benchmark = {
  name: 'gbdt-serve',
  description:
    'GBDT scoring: TypeScript tree walk vs ONNX on onnxruntime (1, 2 threads), 1-500 rows × 300 trees',
  run,
};
