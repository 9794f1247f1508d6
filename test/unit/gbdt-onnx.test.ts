/**
 * The ONNX export of a tree ensemble on onnxruntime-node against the TypeScript evaluator, on
 * float32 inputs: the scores to 1e-5 (onnxruntime sums in float32), and every tree's decision
 * exactly (a per-tree view of the same graph, each tree writing its own output column).
 */
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { ConfigError } from '../../runtime/errors.js';
import { parseLightGbmModel } from '../../models/gbdt/lightgbm-format.js';
import { parseLibSvm, parseTsv } from '../../models/gbdt/libsvm.js';
import { generateLtr } from '../../models/gbdt/ltr-generator.js';
import type { GbdtModel, GbdtTree } from '../../models/gbdt/model.js';
import {
  exportGbdtOnnx,
  float32AtLeast,
  float32AtMost,
  GBDT_ONNX_INPUT,
  GBDT_ONNX_OUTPUT,
} from '../../models/gbdt/onnx-export.js';
import { K_ZERO_THRESHOLD, predictRaw } from '../../models/gbdt/predict.js';

const { onnx } = onnxProto;
const FIXTURES = new URL('../fixtures/lightgbm/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

async function run(bytes: Uint8Array, rows: Float32Array, width: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const out = await session.run({
      [GBDT_ONNX_INPUT]: new ort.Tensor('float32', rows, [rows.length / width, width]),
    });
    const data = out[GBDT_ONNX_OUTPUT]?.data;
    if (!(data instanceof Float32Array)) throw new TypeError('no float32 output');
    return data;
  } finally {
    await session.release();
  }
}

/** The same graph with one output column per tree: each tree's leaf value, unsummed. */
function perTree(bytes: Uint8Array, trees: number): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const node = model.graph?.node?.[0];
  if (node?.attribute === undefined || node.attribute === null) throw new Error('no node');
  const attr = (name: string): onnxProto.onnx.IAttributeProto => {
    const a = node.attribute?.find((x) => x.name === name);
    if (a === undefined) throw new Error(`no ${name}`);
    return a;
  };
  attr('n_targets').i = trees;
  attr('base_values').floats = new Array<number>(trees).fill(0);
  attr('target_ids').ints = Array.from(attr('target_treeids').ints ?? [], (id) => Number(id));
  const dim = model.graph?.output?.[0]?.type?.tensorType?.shape?.dim?.[1];
  if (dim === undefined || dim === null) throw new Error('no output shape');
  dim.dimValue = trees;
  return onnx.ModelProto.encode(model).finish();
}

/** float32 of the leaf value each tree picks for each row (row-major rows × trees). */
function leafValues(model: GbdtModel, rows: Float32Array, width: number): Float32Array {
  const n = rows.length / width;
  const out = new Float32Array(n * model.trees.length);
  model.trees.forEach((tree, t) => {
    const scores = predictRaw({ ...model, trees: [tree] }, rows, width);
    for (let r = 0; r < n; r++) out[r * model.trees.length + t] = scores[r] as number;
  });
  return out;
}

function maxRelative(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as number;
    const d = Math.abs((got[i] as number) - w) / Math.max(1, Math.abs(w));
    if (!(d <= max)) max = d;
  }
  return max;
}

function decisionMismatches(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let count = 0;
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) count++;
  return count;
}

interface Case {
  readonly name: string;
  readonly rows: () => { features: Float64Array; width: number };
}

const CASES: readonly Case[] = [
  {
    name: 'binary-categorical-nan',
    rows: () => parseTsv(read('binary-categorical-nan.edge.test.tsv')),
  },
  {
    name: 'regression-zero-missing',
    rows: () => parseTsv(read('regression-zero-missing.edge.test.tsv')),
  },
  { name: 'zero-band', rows: () => parseTsv(read('zero-band.edge.test.tsv')) },
  {
    name: 'lambdarank-example',
    rows: () => parseLibSvm(read('lambdarank-example.test.libsvm'), { width: 301 }),
  },
  {
    name: 'lambdarank-ltr',
    rows: () => {
      const edge = parseTsv(read('lambdarank-ltr.edge.test.tsv'));
      const test = generateLtr({ queries: 50, seed: 33 });
      const features = new Float64Array(edge.features.length + test.features.length);
      features.set(edge.features);
      features.set(test.features, edge.features.length);
      return { features, width: test.width };
    },
  },
];

describe('ONNX export on onnxruntime-node', () => {
  for (const c of CASES) {
    it(`${c.name}: the raw scores to 1e-5 and every tree's decision exactly`, async () => {
      const model = parseLightGbmModel(read(`${c.name}.model.txt`));
      const { features, width } = c.rows();
      const rows = Float32Array.from(features);
      const bytes = exportGbdtOnnx(model);
      const scores = await run(bytes, rows, width);
      expect(maxRelative(scores, predictRaw(model, rows, width))).toBeLessThanOrEqual(1e-5);
      const leaves = await run(perTree(bytes, model.trees.length), rows, width);
      expect(decisionMismatches(leaves, leafValues(model, rows, width))).toBe(0);
    });
  }
});

function tree(fields: Partial<GbdtTree> & Pick<GbdtTree, 'numLeaves'>): GbdtTree {
  const inner = fields.numLeaves - 1;
  return {
    splitFeature: new Int32Array(inner),
    splitGain: new Float64Array(inner).fill(1),
    threshold: new Float64Array(inner),
    decisionType: new Uint8Array(inner),
    leftChild: new Int32Array(inner),
    rightChild: new Int32Array(inner),
    internalValue: new Float64Array(inner),
    internalWeight: new Float64Array(inner),
    internalCount: new Int32Array(inner),
    leafValue: Float64Array.from({ length: fields.numLeaves }, (_, i) => i + 1),
    leafWeight: new Float64Array(fields.numLeaves),
    leafCount: new Int32Array(fields.numLeaves),
    catBoundaries: new Int32Array(0),
    catThreshold: new Uint32Array(0),
    shrinkage: 1,
    ...fields,
  };
}

/** A one-split tree on feature 0: leaf value 1 left, 2 right. */
const stump = (decisionType: number, threshold: number, cat?: readonly number[]): GbdtTree =>
  tree({
    numLeaves: 2,
    threshold: Float64Array.of(threshold),
    decisionType: Uint8Array.of(decisionType),
    leftChild: Int32Array.of(~0),
    rightChild: Int32Array.of(~1),
    catBoundaries: cat === undefined ? new Int32Array(0) : Int32Array.of(0, cat.length),
    catThreshold: cat === undefined ? new Uint32Array(0) : Uint32Array.from(cat),
  });

const ensemble = (trees: GbdtTree[]): GbdtModel => ({
  objective: 'regression',
  maxFeatureIdx: 0,
  featureNames: ['x'],
  featureInfos: ['none'],
  trees,
  averageOutput: false,
  parameters: [],
});

describe('ONNX node layouts, tree by tree', () => {
  const kZ = K_ZERO_THRESHOLD;
  /** float32 probes around the zero band, 0.1 (not a float32) and integers. */
  const probes = Float32Array.from([
    NaN,
    0,
    -0,
    kZ,
    -kZ,
    float32AtLeast(kZ * 1.0000001),
    float32AtMost(-kZ * 1.0000001),
    1e-36,
    -1e-36,
    0.1,
    float32AtMost(0.1),
    float32AtLeast(0.1),
    -0.1,
    float32AtMost(-0.1),
    -0.5,
    -0.999,
    -1,
    -1.5,
    0.5,
    1,
    2,
    2.5,
    3,
    31.5,
    32,
    33,
    33.99,
    34,
    64,
    2 ** 31,
    1e10,
    -1e10,
    Infinity,
    -Infinity,
  ]);

  it('numerical, zero-missing and categorical splits decide every probe as predictRaw does', async () => {
    const trees: GbdtTree[] = [];
    // Missing types None (0, 2), Zero (4, 6) and NaN (8, 10), default right and left, with
    // thresholds below, inside and above the zero band, and one that is no float32.
    for (const type of [0, 2, 4, 6, 8, 10]) {
      for (const threshold of [-0.1, -kZ, -5e-36, 0, 5e-36, kZ, 0.1, 2]) {
        trees.push(stump(type, threshold));
      }
    }
    // Categorical (1) and categorical with NaN missing type (9): runs that start at 0, cross a
    // word, and a last run ending on the last bit.
    trees.push(stump(1, 0, [0b1011]));
    trees.push(stump(9, 0, [0b1100, 0b11]));
    trees.push(stump(1, 0, [0, 0x80000000]));
    trees.push(stump(1, 0, [0]));
    // A tree of one leaf.
    trees.push(tree({ numLeaves: 1, leafValue: Float64Array.of(0.25) }));
    const model = ensemble(trees);
    const bytes = exportGbdtOnnx(model);
    const leaves = await run(perTree(bytes, trees.length), probes, 1);
    expect(decisionMismatches(leaves, leafValues(model, probes, 1))).toBe(0);
    const scores = await run(bytes, probes, 1);
    expect(maxRelative(scores, predictRaw(model, probes, 1))).toBeLessThanOrEqual(1e-5);
  });

  it('takes a wider input than the model reads, and refuses a narrower one', async () => {
    const model = ensemble([stump(2, 0.5)]);
    const rows = Float32Array.of(0.25, 9, 9, 0.75, 9, 9);
    expect(Array.from(await run(exportGbdtOnnx(model, { width: 3 }), rows, 3))).toEqual([1, 2]);
    expect(() =>
      exportGbdtOnnx(ensemble([{ ...stump(2, 0.5), splitFeature: Int32Array.of(2) }])),
    ).toThrow(/split_feature/);
    expect(() =>
      exportGbdtOnnx(
        { ...model, maxFeatureIdx: 3, featureNames: [], featureInfos: [] },
        { width: 2 },
      ),
    ).toThrow(ConfigError);
  });

  it('rounds thresholds to float32 towards -∞, never to nearest', () => {
    // 0.1 rounds up to nearest; the float32 below it keeps `x <= 0.1` exact for float32 x.
    expect(float32AtMost(0.1)).toBeLessThan(0.1);
    expect(Math.fround(float32AtMost(0.1))).toBe(float32AtMost(0.1));
    expect(float32AtMost(0.5)).toBe(0.5);
    expect(float32AtMost(-0.1)).toBe(Math.fround(-0.1));
    expect(float32AtLeast(0.1)).toBe(Math.fround(0.1));
    expect(float32AtMost(1e300)).toBe(3.4028234663852886e38);
    expect(float32AtMost(-1e300)).toBe(-Infinity);
    expect(float32AtMost(0)).toBe(0);
    expect(float32AtMost(1e-50)).toBe(0);
    expect(float32AtMost(-1e-50)).toBe(-1.401298464324817e-45);
  });
});
