import { describe, expect, it } from 'vitest';

import {
  DeepFmArtifactError,
  DeepFmModel,
  FieldKind,
  auc,
  buildDeepFmArtifact,
  exportDeepFm,
  listwiseLoss,
  ndcgAt,
  pointwiseLoss,
  readDeepFmArtifact,
  resolveDeepFmOptions,
  schemaLayout,
  syntheticRanking,
  trainDeepFm,
} from '../../models/deepfm/index.js';
import type {
  DeepFmArchitecture,
  DeepFmLoss,
  DeepFmOptions,
  DeepFmParam,
  FeatureSchema,
  TrainedDeepFm,
} from '../../models/deepfm/index.js';
import { checkDeepFmExport, OnnxDeepFm } from '../../models/deepfm/onnx-runtime.js';
import { allocateEncoded } from '../../models/deepfm/schema.js';
import type { EncodedRows } from '../../models/deepfm/schema.js';
import { Rng } from '../../models/retrieval/rng.js';
import { BadRequestError, ConfigError } from '../../runtime/errors.js';

/** Numeric and categorical fields interleaved, so schema order differs from the kind blocks. */
const SCHEMA: FeatureSchema = [
  { name: 'retrieval_score', kind: FieldKind.Numeric },
  { name: 'category', kind: FieldKind.Categorical, cardinality: 4 },
  { name: 'popularity', kind: FieldKind.Numeric },
  { name: 'age_days', kind: FieldKind.Numeric },
  { name: 'device', kind: FieldKind.Categorical, cardinality: 3 },
];
const F = SCHEMA.length;

/**
 * Eight rows: missing numerics, and categories unknown by being -1, too large, fractional, NaN.
 * No row has category 2, so its table row must get no gradient.
 */
const ROWS = Float32Array.from(
  [
    [0.5, 0, 10, 3, 1],
    [-1.2, 3, NaN, 7, 2],
    [2.0, -1, 4, NaN, 0],
    [0.1, 1, 25, 1, NaN],
    [NaN, 4, 8, 2, 1],
    [1.7, 2.5, NaN, NaN, 5],
    [-0.3, 1, 14, 0, 0],
    [0.9, NaN, 3, 9, 2],
  ].flat(),
);
const N = ROWS.length / F;
const LABELS = Float64Array.from([2, 0, 1, 0, 0, 0, 3, 1]);
/** The third group has no relevant row: the listwise loss must skip it. */
const GROUPS = Int32Array.from([2, 3, 1, 2]);

const ARCH: DeepFmArchitecture = { embeddingDims: 3, hiddenLayers: [5, 4], fm: true, mlp: true };

/** A float64 model with every parameter drawn at random, so no gradient is trivially zero. */
function randomModel(arch: DeepFmArchitecture = ARCH, seed = 3): DeepFmModel {
  const model = new DeepFmModel(SCHEMA, arch, { precision: 'float64', seed });
  const rng = new Rng(seed + 100);
  for (const p of model.trainable) {
    for (let i = 0; i < p.value.length; i++) p.value[i] = rng.normal() * 0.5;
  }
  model.mean.value.set([0.4, 9, 3]);
  model.std.value.set([1.1, 7, 3.5]);
  return model;
}

function encoded(model: DeepFmModel): EncodedRows {
  const rows = allocateEncoded(model.layout, N);
  model.encode(ROWS, 0, N, rows);
  return rows;
}

type LossKind = 'pointwise' | 'listwise';

function lossOf(
  model: DeepFmModel,
  batch: EncodedRows,
  kind: LossKind,
  backward: boolean,
  dropout: number,
): number {
  const ws = model.workspace();
  // A fresh source with the same seed draws the same dropout mask for every evaluation.
  const drop = dropout > 0 ? { rate: dropout, rng: new Rng(11) } : undefined;
  const logits = model.forward(batch, N, ws, drop);
  const d = new Float64Array(N);
  const loss =
    kind === 'pointwise'
      ? pointwiseLoss(logits, LABELS, N, d)
      : listwiseLoss(logits, LABELS, GROUPS, GROUPS.length, d).loss;
  if (backward) model.backward(ws, d);
  return loss;
}

/**
 * Relative error, with a floor under the scale: a central difference of a loss near 1 with a step
 * of 1e-6 carries about 1e-10 of rounding, which would dominate gradients that small.
 */
function relativeError(analytic: number, numerical: number): number {
  return Math.abs(analytic - numerical) / Math.max(Math.abs(analytic) + Math.abs(numerical), 1e-4);
}

function checkGradients(
  kind: LossKind,
  arch: DeepFmArchitecture,
  dropout: number,
): Map<string, { worst: number; nonZero: number; size: number }> {
  const model = randomModel(arch);
  const batch = encoded(model);
  model.zeroGrad();
  lossOf(model, batch, kind, true, dropout);
  const out = new Map<string, { worst: number; nonZero: number; size: number }>();
  const h = 1e-6;
  for (const p of model.trainable) {
    let worst = 0;
    let nonZero = 0;
    for (let i = 0; i < p.value.length; i++) {
      const saved = p.value[i] as number;
      p.value[i] = saved + h;
      const up = lossOf(model, batch, kind, false, dropout);
      p.value[i] = saved - h;
      const down = lossOf(model, batch, kind, false, dropout);
      p.value[i] = saved;
      const numerical = (up - down) / (2 * h);
      const analytic = p.grad[i] as number;
      if (analytic !== 0) nonZero++;
      worst = Math.max(worst, relativeError(analytic, numerical));
    }
    out.set(p.name, { worst, nonZero, size: p.value.length });
  }
  return out;
}

const PARAM_GROUPS = [
  'bias',
  'numeric.weight',
  'numeric.missing_weight',
  'numeric.embedding',
  'numeric.missing_embedding',
  'categorical.weight',
  'categorical.embedding',
  'mlp.0.weight',
  'mlp.0.bias',
  'mlp.1.weight',
  'mlp.1.bias',
  'mlp.out.weight',
];

describe('DeepFM gradients against finite differences', () => {
  const cases: Array<[string, LossKind, DeepFmArchitecture, number]> = [
    ['pointwise', 'pointwise', ARCH, 0],
    ['listwise', 'listwise', ARCH, 0],
    ['pointwise with dropout', 'pointwise', ARCH, 0.4],
    ['listwise, MLP without hidden layers', 'listwise', { ...ARCH, hiddenLayers: [] }, 0],
  ];
  it.each(cases)('%s: every parameter group', (_name, kind, arch, dropout) => {
    const result = checkGradients(kind, arch, dropout);
    const expected =
      arch.hiddenLayers.length === 0
        ? PARAM_GROUPS.filter((g) => !g.startsWith('mlp.') || g === 'mlp.out.weight')
        : PARAM_GROUPS;
    expect([...result.keys()]).toEqual(expected);
    for (const [name, r] of result) {
      expect(r.worst, name).toBeLessThan(1e-5);
      expect(r.nonZero, `${name} has a non-zero gradient`).toBeGreaterThan(0);
    }
    // Every table row but category 2's is read.
    expect(result.get('categorical.weight')).toMatchObject({ nonZero: 8, size: 9 });
  });

  it('the listwise loss skips a group without a relevant row', () => {
    const logits = Float64Array.from([0.3, -1, 2, 0.5, 0.1, 4, -2, 1]);
    const d = new Float64Array(N);
    const result = listwiseLoss(logits, LABELS, GROUPS, GROUPS.length, d);
    expect(result.groups).toBe(3);
    expect(d[5]).toBe(0);
    // Within a counted group the gradient sums to zero (softmax minus a distribution).
    expect((d[0] as number) + (d[1] as number)).toBeCloseTo(0, 12);
  });
});

describe('DeepFM forward pass', () => {
  it('the FM term equals the brute-force sum over field pairs', () => {
    const model = randomModel({ ...ARCH, mlp: false });
    const logits = model.forward(encoded(model), N, model.workspace());
    const { numeric, categorical, cardinality, offset } = model.layout;
    const k = model.dims;
    for (let r = 0; r < N; r++) {
      // Each field's embedding and first-order term, straight from the definition.
      const e: number[][] = [];
      let first = model.bias.value[0] as number;
      numeric.forEach((f, j) => {
        const x = ROWS[r * F + f] as number;
        const v = Array.from({ length: k }, (_, d) => model.numericEmbedding.value[j * k + d] ?? 0);
        const m = Array.from({ length: k }, (_, d) => model.missingEmbedding.value[j * k + d] ?? 0);
        if (Number.isNaN(x)) {
          e.push(m);
          first += model.missingWeight.value[j] as number;
        } else {
          // Encoded rows hold z in float32.
          const z = Math.fround(
            (x - (model.mean.value[j] as number)) / (model.std.value[j] as number),
          );
          e.push(v.map((w) => w * z));
          first += (model.numericWeight.value[j] as number) * z;
        }
      });
      categorical.forEach((f, j) => {
        const x = ROWS[r * F + f] as number;
        const card = cardinality[j] as number;
        const known = Number.isInteger(x) && x >= 0 && x < card;
        const row = (offset[j] as number) + (known ? x : card);
        e.push(
          Array.from({ length: k }, (_, d) => model.categoricalEmbedding.value[row * k + d] ?? 0),
        );
        first += model.categoricalWeight.value[row] as number;
      });
      let pairs = 0;
      for (let a = 0; a < e.length; a++) {
        for (let b = a + 1; b < e.length; b++) {
          for (let d = 0; d < k; d++) pairs += (e[a]?.[d] ?? 0) * (e[b]?.[d] ?? 0);
        }
      }
      expect(logits[r]).toBeCloseTo(first + pairs, 10);
    }
  });

  it('reads every kind of unknown category from the same unknown row', () => {
    const model = randomModel();
    const base = [0.5, 1, 10, 3, 1];
    const rows = Float32Array.from(
      [-1, 4, 2.5, NaN, Infinity, 1e9].flatMap((c) => [base[0], c, base[2], base[3], base[4]]),
    );
    const scores = model.score(rows);
    for (const s of scores) expect(s).toBe(scores[0]);
    expect(model.score(Float32Array.from(base))[0]).not.toBe(scores[0]);
  });
});

describe('DeepFM options and input checks', () => {
  const bad: Array<[string, DeepFmOptions]> = [
    ['embeddingDims', { embeddingDims: 0 }],
    ['embeddingDims', { embeddingDims: 2.5 }],
    ['hiddenLayers[1]', { hiddenLayers: [8, 0] }],
    ['dropout', { dropout: 1 }],
    ['learningRate', { learningRate: -0.1 }],
    ['learningRate', { learningRate: Number.NaN }],
    ['epochs', { epochs: 0 }],
    ['batchSize', { batchSize: 0 }],
    ['l2', { l2: -1 }],
    ['seed', { seed: -1 }],
    ['loss', { loss: 'pairwise' as never }],
    ['fm', { fm: 'yes' as never }],
    ['earlyStoppingRounds', { earlyStoppingRounds: -1 }],
    ['ndcgAt', { ndcgAt: 0 }],
    ['precision', { precision: 'float16' as never }],
  ];
  it.each(bad)('names %s in a ConfigError', (path, options) => {
    expect(() => resolveDeepFmOptions(options)).toThrow(ConfigError);
    try {
      resolveDeepFmOptions(options);
    } catch (err) {
      expect((err as ConfigError).path).toBe(path);
    }
  });

  it('applies the defaults', () => {
    expect(resolveDeepFmOptions()).toMatchObject({
      embeddingDims: 8,
      hiddenLayers: [64, 32],
      fm: true,
      mlp: true,
      dropout: 0,
      epochs: 20,
      batchSize: 512,
      loss: 'listwise',
      earlyStoppingRounds: 3,
      ndcgAt: 10,
    });
  });

  const badSchemas: Array<[string, unknown]> = [
    ['schema', []],
    ['schema[1].cardinality', [SCHEMA[0], { name: 'c', kind: 'categorical' }]],
    ['schema[1].cardinality', [SCHEMA[0], { name: 'c', kind: 'categorical', cardinality: 0 }]],
    ['schema[1].name', [SCHEMA[0], { ...SCHEMA[0] }]],
    ['schema[0].kind', [{ name: 'x', kind: 'text' }]],
    ['schema[0].name', [{ name: '', kind: 'numeric' }]],
  ];
  it.each(badSchemas)('names %s in a schema ConfigError', (path, schema) => {
    try {
      schemaLayout(schema as FeatureSchema);
      expect.unreachable('the schema was accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).path).toBe(path);
    }
  });

  it('keeps only name, kind and cardinality of a richer feature definition', () => {
    const rich = SCHEMA.map((f) => ({ ...f, description: 'shown to people', compute: () => 0 }));
    const numericWithCardinality = [{ name: 'x', kind: FieldKind.Numeric, cardinality: 3 }];
    expect(new DeepFmModel(rich, ARCH).schema).toEqual(SCHEMA);
    expect(new DeepFmModel(numericWithCardinality, ARCH).schema).toEqual([
      { name: 'x', kind: 'numeric' },
    ]);
  });

  function badRequestField(run: () => unknown): string {
    try {
      run();
    } catch (err) {
      expect(err).toBeInstanceOf(BadRequestError);
      return (err as BadRequestError).field;
    }
    throw new Error('no BadRequestError');
  }

  it('rejects rows of the wrong width when scoring, naming features', () => {
    const model = randomModel();
    expect(badRequestField(() => model.score(new Float32Array(F + 1)))).toBe('features');
    expect(badRequestField(() => model.score(Array.from(ROWS) as unknown as Float32Array))).toBe(
      'features',
    );
    expect(model.score(new Float32Array(0))).toHaveLength(0);
  });

  it('rejects bad training data, naming the field', () => {
    const train = { features: ROWS, labels: LABELS, groups: GROUPS };
    const run =
      (input: object, options: DeepFmOptions = {}) =>
      () =>
        trainDeepFm({ schema: SCHEMA, train, ...input }, { epochs: 1, ...options });
    expect(badRequestField(run({ train: { ...train, features: ROWS.subarray(1) } }))).toBe(
      'train.features',
    );
    expect(badRequestField(run({ train: { ...train, labels: LABELS.subarray(1) } }))).toBe(
      'train.labels',
    );
    expect(
      badRequestField(run({ train: { ...train, labels: LABELS.map((l, i) => (i ? l : NaN)) } })),
    ).toBe('train.labels');
    expect(badRequestField(run({ train: { ...train, groups: [2, 3] } }))).toBe('train.groups');
    expect(badRequestField(run({ train: { ...train, groups: [0, 8] } }))).toBe('train.groups');
    expect(badRequestField(run({ train: { features: ROWS, labels: LABELS } }))).toBe(
      'train.groups',
    );
    expect(badRequestField(run({ validation: { features: ROWS, labels: LABELS } }))).toBe(
      'validation.groups',
    );
    expect(
      badRequestField(run({ validation: { ...train, features: new Float32Array(F * 2 + 1) } })),
    ).toBe('validation.features');
    // Pointwise training needs no groups.
    expect(() =>
      trainDeepFm(
        { schema: SCHEMA, train: { features: ROWS, labels: LABELS } },
        { epochs: 1, loss: 'pointwise' },
      ),
    ).not.toThrow();
  });

  it('onnxruntime scoring rejects rows of the wrong width', async () => {
    const model = randomModel();
    const session = await OnnxDeepFm.load(exportDeepFm(model), F);
    try {
      await expect(session.score(new Float32Array(F + 2))).rejects.toThrow(BadRequestError);
    } finally {
      await session.close();
    }
  });
});

describe('ranking metrics', () => {
  it('NDCG@k as LightGBM defines it', () => {
    // Scores put the labels in order 0, 1, 2: DCG = 1/log2(3) + 3/log2(4), IDCG = 3 + 1/log2(3).
    const dcg = 1 / Math.log2(3) + 3 / 2;
    const idcg = 3 + 1 / Math.log2(3);
    expect(ndcgAt([3, 2, 1], [0, 1, 2], [3], 10)).toBeCloseTo(dcg / idcg, 12);
    // A group without a relevant row counts as 1; the cut-off drops ranks past k.
    expect(ndcgAt([3, 2, 1, 5, 4], [0, 1, 2, 0, 0], [3, 2], 10)).toBeCloseTo(
      (dcg / idcg + 1) / 2,
      12,
    );
    expect(ndcgAt([3, 2, 1], [0, 1, 2], [3], 1)).toBe(0);
  });

  it('AUC with ties counted as one half', () => {
    expect(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
    expect(auc([1, 1, 1, 1], [0, 1, 0, 1])).toBeCloseTo(0.5, 12);
    expect(auc([0.2, 0.9], [0, 2])).toBe(1);
  });
});

/** A task where n0·n1 and the parity agreement of c0 and c1 decide the label. */
const TASK = { perQuery: 50, numeric: 4, categorical: 2, cardinality: 6 } as const;
const TRAIN = syntheticRanking({ ...TASK, queries: 40, seed: 1 });
const TEST = syntheticRanking({ ...TASK, queries: 20, seed: 2 });
const SMALL: DeepFmOptions = {
  epochs: 15,
  embeddingDims: 4,
  hiddenLayers: [16],
  batchSize: 64,
  learningRate: 0.01,
  loss: 'pointwise',
};

function testAuc(options: DeepFmOptions): number {
  const trained = trainDeepFm({ schema: TRAIN.schema, train: TRAIN }, { ...SMALL, ...options });
  return auc(trained.model.score(TEST.features), TEST.labels);
}

describe('DeepFM learns feature interactions', () => {
  // No sum of per-feature terms separates the classes: the best first-order model is near chance.
  const THRESHOLD = 0.85;
  const firstOrderOnly = testAuc({ fm: false, mlp: false });

  it('a first-order-only model stays near chance', () => {
    expect(firstOrderOnly).toBeLessThan(0.6);
  });

  it.each([
    ['DeepFM, pointwise', {}],
    ['DeepFM, listwise', { loss: 'listwise' }],
    ['FM alone', { mlp: false }],
    ['MLP alone', { fm: false }],
  ] as Array<[string, DeepFmOptions]>)('%s passes the threshold', (_name, options) => {
    const value = testAuc(options);
    expect(value).toBeGreaterThan(THRESHOLD);
    expect(firstOrderOnly).toBeLessThan(THRESHOLD);
  });

  it('early stopping keeps the epoch with the best validation NDCG', () => {
    const graded = { ...TASK, labels: 'graded', noise: 0.5 } as const;
    const train = syntheticRanking({ ...graded, queries: 40, seed: 3 });
    const valid = syntheticRanking({ ...graded, queries: 10, seed: 4 });
    const trained = trainDeepFm(
      { schema: train.schema, train, validation: valid },
      { ...SMALL, loss: 'listwise', epochs: 40, earlyStoppingRounds: 2 },
    );
    const { epochs, bestEpoch, bestValidNdcg } = trained.report;
    const best = Math.max(...epochs.map((e) => e.validNdcg ?? 0));
    expect(bestValidNdcg).toBe(best);
    expect(epochs[bestEpoch - 1]?.validNdcg).toBe(best);
    expect(epochs.length).toBe(Math.min(40, bestEpoch + 2));
    const scores = trained.model.score(valid.features);
    expect(ndcgAt(scores, valid.labels, valid.groups, 10)).toBeCloseTo(best, 5);
  });
});

describe('DeepFM training is deterministic', () => {
  const run = (seed: number, loss: DeepFmLoss): TrainedDeepFm =>
    trainDeepFm(
      { schema: TRAIN.schema, train: TRAIN, validation: TEST },
      { ...SMALL, epochs: 3, dropout: 0.2, loss, seed, earlyStoppingRounds: 0 },
    );
  const values = (t: TrainedDeepFm): number[][] =>
    t.model.parameters.map((p: DeepFmParam) => Array.from(p.value));

  it.each(['pointwise', 'listwise'] as const)(
    '%s: the same seed gives the same parameters and report, bit for bit',
    (loss) => {
      const a = run(7, loss);
      const b = run(7, loss);
      expect(values(a)).toEqual(values(b));
      expect(a.report.epochs.map((e) => [e.loss, e.validNdcg])).toEqual(
        b.report.epochs.map((e) => [e.loss, e.validNdcg]),
      );
    },
  );

  it('another seed gives another model', () => {
    expect(values(run(8, 'listwise'))).not.toEqual(values(run(7, 'listwise')));
  });
});

describe('DeepFM ONNX export', () => {
  const trained = trainDeepFm(
    { schema: SCHEMA, train: { features: ROWS, labels: LABELS, groups: GROUPS } },
    {
      epochs: 2,
      embeddingDims: 4,
      hiddenLayers: [8, 4],
    },
  );

  const architectures: Array<[string, Partial<DeepFmArchitecture>]> = [
    ['DeepFM', {}],
    ['FM only', { mlp: false }],
    ['MLP without hidden layers, no FM', { fm: false, hiddenLayers: [] }],
    ['first order only', { fm: false, mlp: false }],
  ];
  it.each(architectures)(
    '%s: onnxruntime matches the TypeScript forward pass to 1e-5 on NaN and unknown ids',
    async (_name, change) => {
      const model = new DeepFmModel(SCHEMA, { ...ARCH, ...change }, { seed: 5 });
      // Random weights of a trained model's size, not the small initial values.
      const rng = new Rng(9);
      for (const p of model.trainable) {
        for (let i = 0; i < p.value.length; i++) p.value[i] = rng.normal() * 0.5;
      }
      model.mean.value.set([0.4, 9, 3]);
      model.std.value.set([1.1, 7, 3.5]);
      const bytes = exportDeepFm(model);
      const session = await OnnxDeepFm.load(bytes, F);
      try {
        const onnx = await session.score(ROWS);
        const ts = model.score(ROWS);
        expect(onnx).toHaveLength(N);
        for (let i = 0; i < N; i++)
          expect(Math.abs((onnx[i] as number) - (ts[i] as number))).toBeLessThan(1e-5);
      } finally {
        await session.close();
      }
      const check = await checkDeepFmExport({ model, onnx: bytes, features: ROWS });
      expect(check.passed).toBe(true);
      expect(check.rows).toBe(N + 1 + 4 * 2);
    },
  );

  it('the trained model passes the export check, the synthetic task too', async () => {
    const check = await checkDeepFmExport({
      model: trained.model,
      onnx: exportDeepFm(trained.model),
      features: ROWS,
    });
    expect(check).toMatchObject({ passed: true, tolerance: 1e-5 });
    const task = trainDeepFm({ schema: TRAIN.schema, train: TRAIN }, { ...SMALL, epochs: 2 });
    const taskCheck = await checkDeepFmExport({
      model: task.model,
      onnx: exportDeepFm(task.model),
      features: TEST.features.subarray(0, 200 * TRAIN.schema.length),
    });
    expect(taskCheck.passed).toBe(true);
    expect(taskCheck.maxAbsDiff).toBeLessThan(1e-5);
  });

  it('a numeric-only schema exports too', async () => {
    const schema: FeatureSchema = [
      { name: 'a', kind: FieldKind.Numeric },
      { name: 'b', kind: FieldKind.Numeric },
    ];
    const model = new DeepFmModel(schema, ARCH, { seed: 1 });
    const rows = Float32Array.from([1, 2, NaN, 0.5, 3, NaN, NaN, NaN]);
    const check = await checkDeepFmExport({ model, onnx: exportDeepFm(model), features: rows });
    expect(check.passed).toBe(true);
  });

  describe('artifact', () => {
    const now = new Date('2025-01-02T03:04:05Z');
    const built = buildDeepFmArtifact({
      trained,
      metrics: { testNdcg10: 0.5 },
      data: { name: 'hand-made' },
      now,
    });
    const reader = (files: ReadonlyMap<string, Uint8Array>) => (file: string) => {
      const bytes = files.get(file);
      return bytes === undefined
        ? Promise.reject(new Error(`no file ${file}`))
        : Promise.resolve(bytes);
    };

    it('round-trips: the same scores from the parameter files and the ONNX file', async () => {
      expect(built.version).toMatch(/^20250102T030405Z-[0-9a-f]{8}$/);
      const { manifest } = built;
      expect(manifest.schema).toEqual(SCHEMA);
      expect(manifest.signature.inputs[0]).toMatchObject({ name: 'features', shape: ['batch', F] });
      expect(manifest.parameters.map((p) => p.name)).toEqual(
        trained.model.parameters.map((p) => p.name),
      );
      expect(manifest.training.options.embeddingDims).toBe(4);
      expect(manifest.metrics).toEqual({ testNdcg10: 0.5 });

      const loaded = await readDeepFmArtifact(reader(built.files), 'model-dir');
      expect(loaded.onnxPath).toBe('model-dir/deepfm.onnx');
      const expected = trained.model.score(ROWS);
      expect(loaded.model.score(ROWS)).toEqual(expected);
      const session = await OnnxDeepFm.load(built.files.get('deepfm.onnx') as Uint8Array, F);
      try {
        const onnx = await session.score(ROWS);
        for (let i = 0; i < N; i++)
          expect(Math.abs((onnx[i] as number) - (expected[i] as number))).toBeLessThan(1e-5);
      } finally {
        await session.close();
      }
    });

    it('refuses a truncated parameter file, a missing one, and a foreign manifest', async () => {
      const truncated = new Map(built.files);
      truncated.set('parameters/mlp.0.weight.f32', new Uint8Array(12));
      await expect(readDeepFmArtifact(reader(truncated), 'd')).rejects.toThrow(
        /mlp\.0\.weight\.f32: expected 160 float32 values/,
      );
      const missing = new Map(built.files);
      missing.delete('parameters/bias.f32');
      await expect(readDeepFmArtifact(reader(missing), 'd')).rejects.toThrow(DeepFmArtifactError);
      const foreign = new Map(built.files);
      foreign.set('manifest.json', new TextEncoder().encode('{"format":"other"}'));
      await expect(readDeepFmArtifact(reader(foreign), 'd')).rejects.toThrow(
        /not a recsys-deepfm-model version 1 manifest/,
      );
    });
  });
});
