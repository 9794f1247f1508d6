/**
 * Parity with LightGBM: its text model format both ways, and the TypeScript evaluator against the
 * predictions LightGBM made itself (the fixtures in `test/fixtures/lightgbm/`, see its README).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { BadRequestError } from '../../runtime/errors.js';
import { formatLightGbmModel, parseLightGbmModel } from '../../models/gbdt/lightgbm-format.js';
import { parseLibSvm, parseQueryFile, parseTsv } from '../../models/gbdt/libsvm.js';
import { generateLtr, generateLtrWithText } from '../../models/gbdt/ltr-generator.js';
import type { GbdtModel, GbdtTree } from '../../models/gbdt/model.js';
import {
  K_ZERO_THRESHOLD,
  objectiveOutput,
  OutputTransform,
  predict,
  predictRaw,
} from '../../models/gbdt/predict.js';

const FIXTURES = new URL('../fixtures/lightgbm/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const numbers = (name: string): number[] => read(name).trim().split('\n').map(Number);

/** Largest |got - want| / max(1, |want|): relative above 1, absolute below. */
function maxDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as number;
    const d = Math.abs((got[i] as number) - w) / Math.max(1, Math.abs(w));
    if (!(d <= max)) max = d;
  }
  return max;
}

function exactMismatches(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) count++;
  return count;
}

interface Case {
  readonly name: string;
  readonly rows: () => { features: Float64Array; width: number };
  /** LightGBM's predictions (after the objective's transform). */
  readonly pred: string;
  /** LightGBM's raw scores, when the fixture has them apart. */
  readonly raw?: string;
}

const model = (name: string): GbdtModel => parseLightGbmModel(read(`${name}.model.txt`));

const CASES: readonly Case[] = [
  {
    name: 'binary-categorical-nan',
    rows: () => parseTsv(read('binary-categorical-nan.test.tsv')),
    pred: 'binary-categorical-nan.pred.txt',
    raw: 'binary-categorical-nan.raw.txt',
  },
  {
    name: 'regression-zero-missing',
    rows: () => parseTsv(read('regression-zero-missing.test.tsv')),
    pred: 'regression-zero-missing.pred.txt',
  },
  {
    name: 'lambdarank-example',
    rows: () => parseLibSvm(read('lambdarank-example.test.libsvm'), { width: 301 }),
    pred: 'lambdarank-example.pred.txt',
  },
  {
    name: 'lambdarank-ltr',
    rows: () => generateLtr({ queries: 1000, seed: 33 }),
    pred: 'lambdarank-ltr.test.pred.txt',
  },
];

/** Rows that sit on every threshold, its neighbours, the zero band, categories ± fractions. */
const EDGE_CASES = [
  'binary-categorical-nan',
  'regression-zero-missing',
  'lambdarank-ltr',
  'zero-band',
] as const;

describe('the evaluator against LightGBM', () => {
  for (const c of CASES) {
    it(`${c.name}: LightGBM's predictions to 1e-12`, () => {
      const m = model(c.name);
      const { features, width } = c.rows();
      const want = numbers(c.pred);
      expect(features.length / width).toBe(want.length);
      expect(maxDiff(predict(m, features, width), want)).toBeLessThanOrEqual(1e-12);
      if (c.raw !== undefined) {
        // The raw scores are LightGBM's to the last bit: same decisions, same order of additions.
        expect(exactMismatches(predictRaw(m, features, width), numbers(c.raw))).toBe(0);
      } else if (m.objective !== 'binary sigmoid:1') {
        expect(exactMismatches(predictRaw(m, features, width), want)).toBe(0);
      }
    });
  }

  for (const name of EDGE_CASES) {
    it(`${name}: bit-exact raw scores on rows probing every decision rule`, () => {
      const m = model(name);
      const { features, width } = parseTsv(read(`${name}.edge.test.tsv`));
      const want = numbers(`${name}.edge.raw.txt`);
      expect(exactMismatches(predictRaw(m, features, width), want)).toBe(0);
    });
  }

  it('scores float32 rows as their float64 values, and the same with `out` reused', () => {
    const m = model('binary-categorical-nan');
    const { features, width } = parseTsv(read('binary-categorical-nan.edge.test.tsv'));
    const f32 = Float32Array.from(features);
    const out = new Float64Array(f32.length / width + 3).fill(7);
    const scored = predictRaw(m, f32, width, out);
    expect(scored).toBe(out);
    expect(Array.from(out.subarray(0, f32.length / width))).toEqual(
      Array.from(predictRaw(m, Float64Array.from(f32), width)),
    );
    expect(Array.from(out.subarray(f32.length / width))).toEqual([7, 7, 7]);
  });

  it('refuses a batch narrower than the model or not a whole number of rows', () => {
    const m = model('regression-zero-missing');
    expect(() => predictRaw(m, new Float64Array(8), 4)).toThrow(BadRequestError);
    expect(() => predictRaw(m, new Float64Array(11), 5)).toThrow(/not a multiple of width 5/);
    expect(() => predictRaw(m, new Float64Array(10), 5, new Float64Array(1))).toThrow(/out/);
  });
});

/** A one-split tree on feature 0 (left leaf 1, right leaf 2). */
function stump(decisionType: number, threshold: number, cat?: readonly number[]): GbdtTree {
  return {
    numLeaves: 2,
    splitFeature: Int32Array.of(0),
    splitGain: Float64Array.of(1),
    threshold: Float64Array.of(threshold),
    decisionType: Uint8Array.of(decisionType),
    leftChild: Int32Array.of(~0),
    rightChild: Int32Array.of(~1),
    internalValue: Float64Array.of(0),
    internalWeight: Float64Array.of(0),
    internalCount: Int32Array.of(2),
    leafValue: Float64Array.of(1, 2),
    leafWeight: Float64Array.of(1, 1),
    leafCount: Int32Array.of(1, 1),
    catBoundaries: cat === undefined ? new Int32Array(0) : Int32Array.of(0, cat.length),
    catThreshold: cat === undefined ? new Uint32Array(0) : Uint32Array.from(cat),
    shrinkage: 1,
  };
}

function single(tree: GbdtTree, objective = 'regression'): GbdtModel {
  return {
    objective,
    maxFeatureIdx: 0,
    featureNames: ['x'],
    featureInfos: ['none'],
    trees: [tree],
    averageOutput: false,
    parameters: [],
  };
}

/** 1 for left, 2 for right, per value. */
const sides = (tree: GbdtTree, values: readonly number[]): number[] =>
  Array.from(predictRaw(single(tree), Float64Array.from(values), 1));

describe('the decision rules, one by one', () => {
  const kZ = K_ZERO_THRESHOLD;

  it('missing type None: NaN is 0; values within ±kZeroThreshold are 0', () => {
    // Decision type 0: numerical, default right, missing type None.
    expect(sides(stump(0, 0.5), [0.5, 0.6, NaN, -1])).toEqual([1, 2, 1, 1]);
    expect(sides(stump(0, -0.5), [NaN, -0.5, -0.4])).toEqual([2, 1, 2]);
    // A threshold inside the zero band: LightGBM zeroes the input first, so -kZ goes right.
    expect(sides(stump(0, -5e-36), [-kZ, -6e-36, 0, -1e-30])).toEqual([2, 2, 2, 1]);
  });

  it('missing type Zero: NaN and the zero band take the default direction', () => {
    // 4: Zero, default right; 6: Zero, default left.
    expect(sides(stump(4, -1), [0, kZ, -kZ, NaN, -2, 1])).toEqual([2, 2, 2, 2, 1, 2]);
    expect(sides(stump(6, -1), [0, kZ, -kZ, NaN, -2, 1, 2 * kZ])).toEqual([1, 1, 1, 1, 1, 2, 2]);
    expect(sides(stump(4, 1), [0, 0.5, -0.5, 2 * kZ])).toEqual([2, 1, 1, 1]);
  });

  it('missing type NaN: NaN takes the default direction, 0 is a value', () => {
    // 8: NaN, default right; 10: NaN, default left.
    expect(sides(stump(8, 0), [NaN, 0, 1])).toEqual([2, 1, 2]);
    expect(sides(stump(10, 0), [NaN, 0, 1])).toEqual([1, 1, 2]);
  });

  it('categorical: trunc(value) in the bitset; NaN, <= -1 and past int32 go right', () => {
    // Categories 0, 2 and 33 go left (bit 0 and 2 of word 0, bit 1 of word 1).
    const tree = stump(1, 0, [0b101, 0b10]);
    expect(
      sides(tree, [0, -0.5, 0.99, 1, 2, 2.7, 3, 33, 33.5, 34, 64, -1, -3, NaN, 2 ** 31, 1e10]),
    ).toEqual([1, 1, 1, 2, 1, 1, 2, 1, 1, 2, 2, 2, 2, 2, 2, 2]);
    // Missing type NaN on a categorical split: NaN still goes right.
    expect(sides(stump(9, 0, [0b1]), [NaN, 0])).toEqual([2, 1]);
  });

  it('applies the objective transform, and averages in random forest mode', () => {
    const tree = stump(0, 0);
    const rows = Float64Array.of(-1, 1);
    expect(Array.from(predict(single(tree, 'binary sigmoid:2'), rows, 1))).toEqual([
      1 / (1 + Math.exp(-2)),
      1 / (1 + Math.exp(-4)),
    ]);
    expect(Array.from(predict(single(tree, 'poisson'), rows, 1))).toEqual([Math.E, Math.exp(2)]);
    const forest: GbdtModel = { ...single(tree), trees: [tree, tree, tree], averageOutput: true };
    expect(Array.from(predictRaw(forest, rows, 1))).toEqual([3, 6]);
    expect(Array.from(predict(forest, rows, 1))).toEqual([1, 2]);
  });

  it('knows the output transform of each single-output objective', () => {
    expect(objectiveOutput('binary sigmoid:1.5')).toEqual({
      transform: OutputTransform.Sigmoid,
      sigmoid: 1.5,
    });
    for (const name of ['lambdarank', 'rank_xendcg', 'regression', 'huber', 'quantile', '']) {
      expect(objectiveOutput(name).transform).toBe(OutputTransform.Identity);
    }
    expect(objectiveOutput('regression sqrt').transform).toBe(OutputTransform.SignedSquare);
    expect(objectiveOutput('cross_entropy').transform).toBe(OutputTransform.Sigmoid);
    expect(objectiveOutput('cross_entropy_lambda').transform).toBe(OutputTransform.Log1pExp);
    expect(objectiveOutput('tweedie').transform).toBe(OutputTransform.Exp);
    expect(() => objectiveOutput('multiclass num_class:3')).toThrow(/multiclass/);
    expect(() => objectiveOutput('binary sigmoid:-1')).toThrow(/sigmoid:-1/);
    expect(() => objectiveOutput('mystery')).toThrow(/unknown objective/);
  });
});

/** Keys whose numbers this module spells differently from LightGBM (see the header comment). */
const RESPELLED = new Set([
  'tree_sizes',
  'split_gain',
  'threshold',
  'leaf_value',
  'leaf_weight',
  'internal_value',
  'internal_weight',
]);

describe('the text format', () => {
  for (const c of CASES) {
    it(`${c.name}: parse → format → parse keeps every number and prediction`, () => {
      const original = read(`${c.name}.model.txt`);
      const first = parseLightGbmModel(original);
      const written = formatLightGbmModel(first);
      const second = parseLightGbmModel(written);
      expect(second).toEqual(first);
      // Writing is a fixed point: the second round trip gives the same text, byte for byte.
      expect(formatLightGbmModel(second)).toBe(written);
      const { features, width } = c.rows();
      expect(
        exactMismatches(predictRaw(second, features, width), predictRaw(first, features, width)),
      ).toBe(0);

      // Against LightGBM's own text: the same lines, except numbers spelled in their shortest
      // exact form (LightGBM writes 17 digits, or %g), and tree_sizes following from that.
      const theirs = original.split('\n');
      const ours = written.split('\n');
      expect(ours.length).toBe(theirs.length);
      let respelled = 0;
      theirs.forEach((line, i) => {
        const mine = ours[i] as string;
        if (mine === line) return;
        const key = line.slice(0, line.indexOf('='));
        expect(RESPELLED.has(key), `line ${i + 1}: ${key}`).toBe(true);
        if (key === 'tree_sizes') return;
        const a = line.slice(key.length + 1).split(' ');
        const b = mine.slice(key.length + 1).split(' ');
        expect(b.map(Number)).toEqual(a.map(Number));
        respelled++;
      });
      expect(respelled).toBeGreaterThan(0);
    });
  }

  it('writes tree_sizes that locate each tree block to the byte', () => {
    const written = formatLightGbmModel(model('binary-categorical-nan'));
    const sizes = /^tree_sizes=(.*)$/m.exec(written)?.[1]?.split(' ').map(Number) ?? [];
    let offset = written.indexOf('Tree=0\n');
    sizes.forEach((size, i) => {
      expect(written.startsWith(`Tree=${i}\n`, offset)).toBe(true);
      offset += size;
    });
    expect(written.startsWith('end of trees\n', offset)).toBe(true);
  });

  it('writes the split-count importances LightGBM wrote', () => {
    const original = read('lambdarank-example.model.txt');
    const section = (text: string): string =>
      text.slice(text.indexOf('feature_importances:'), text.indexOf('parameters:'));
    expect(section(formatLightGbmModel(parseLightGbmModel(original)))).toBe(section(original));
  });

  it('round-trips a model with a one-leaf tree, average_output and no objective', () => {
    const leaf: GbdtTree = {
      ...stump(0, 0),
      numLeaves: 1,
      splitFeature: new Int32Array(0),
      splitGain: new Float64Array(0),
      threshold: new Float64Array(0),
      decisionType: new Uint8Array(0),
      leftChild: new Int32Array(0),
      rightChild: new Int32Array(0),
      internalValue: new Float64Array(0),
      internalWeight: new Float64Array(0),
      internalCount: new Int32Array(0),
      leafValue: Float64Array.of(-0.25),
      leafWeight: Float64Array.of(3),
      leafCount: Int32Array.of(9),
      shrinkage: 0.1,
    };
    const m: GbdtModel = {
      ...single(stump(6, 0.1 + 0.2)),
      objective: '',
      trees: [leaf, stump(6, 0.1 + 0.2), stump(1, 0, [4294967295, 1])],
      averageOutput: true,
      parameters: ['[boosting: rf]', '[num_leaves: 2]'],
    };
    const text = formatLightGbmModel(m);
    expect(text).toContain('\naverage_output\n');
    expect(text).not.toContain('objective=');
    expect(text).toContain('threshold=0.30000000000000004\n');
    expect(text).toContain('\nparameters:\n[boosting: rf]\n[num_leaves: 2]\n\nend of parameters\n');
    expect(parseLightGbmModel(text)).toEqual(m);
  });
});

/** A small valid model text, to break one line at a time. */
function tinyText(): string {
  return formatLightGbmModel(single(stump(2, 0.5), 'binary sigmoid:1'));
}

function parseError(text: string): BadRequestError {
  try {
    parseLightGbmModel(text);
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequestError);
    return err as BadRequestError;
  }
  throw new Error('parsed without error');
}

function lineOf(text: string, prefix: string): number {
  return text.split('\n').findIndex((l) => l.startsWith(prefix)) + 1;
}

describe('what the reader refuses, naming the key and line', () => {
  it('multiclass models', () => {
    const text = tinyText().replace('num_class=1', 'num_class=3');
    const err = parseError(text);
    expect(err.field).toBe('num_class');
    expect(err.data.line).toBe(3);
    expect(err.message).toMatch(/num_class: line 3: multiclass/);
    const perIteration = parseError(
      tinyText().replace('num_tree_per_iteration=1', 'num_tree_per_iteration=3'),
    );
    expect(perIteration.field).toBe('num_tree_per_iteration');
  });

  it('linear trees', () => {
    const text = tinyText().replace('is_linear=0', 'is_linear=1');
    const err = parseError(text);
    expect(err.field).toBe('is_linear');
    expect(err.data.line).toBe(lineOf(text, 'is_linear='));
    expect(err.message).toMatch(/linear trees/);
    const coefficients = tinyText().replace('is_linear=0', 'is_linear=0\nleaf_const=0 0');
    expect(parseError(coefficients).field).toBe('leaf_const');
  });

  it('unknown decision bits', () => {
    // Missing type 3 does not exist; bit 4 and up are not LightGBM's.
    for (const bits of ['14', '16']) {
      const text = tinyText().replace('decision_type=2', `decision_type=${bits}`);
      const err = parseError(text);
      expect(err.field).toBe('decision_type');
      expect(err.data.line).toBe(lineOf(text, 'decision_type='));
      expect(err.message).toMatch(/unknown decision bits/);
    }
  });

  it('tree sizes that do not match the trees', () => {
    const text = tinyText().replace(/tree_sizes=\d+/, 'tree_sizes=17');
    const err = parseError(text);
    expect(err.field).toBe('tree_sizes');
    expect(err.message).toMatch(/Tree=0 takes \d+ bytes, tree_sizes says 17/);
  });

  it('broken structure: counts, children, features, numbers, keys', () => {
    const cases: Array<[string, string, string]> = [
      ['leaf_value=1 2', 'leaf_value=1', 'leaf_value'],
      // Refused by the leaf count before anything of that size is allocated.
      ['num_leaves=2', 'num_leaves=2000000000', 'leaf_value'],
      ['left_child=-1', 'left_child=0', 'left_child'],
      ['split_feature=0', 'split_feature=3', 'split_feature'],
      ['threshold=0.5', 'threshold=0.5x', 'threshold'],
      ['num_leaves=2', 'num_leaves=2\ncolour=blue', 'colour'],
      ['objective=binary sigmoid:1', 'objective=multiclassova num_class:3', 'objective'],
      ['version=v4', 'version=v9', 'version'],
      ['feature_names=x', 'feature_names=x y', 'feature_names'],
      ['end of trees', 'end of tree', 'end of trees'],
    ];
    for (const [from, to, field] of cases) {
      const text = tinyText().replace(from, to);
      const err = parseError(text);
      expect(err.field, `${from} → ${to}`).toBe(field);
      expect(err.data.line, `${from} → ${to}`).toBeGreaterThan(0);
    }
    expect(parseError('gbdt\n').field).toBe('model');
  });

  it('the writer checks the model too', () => {
    const bad = single({ ...stump(0, 0), leftChild: Int32Array.of(0) });
    expect(() => formatLightGbmModel(bad)).toThrow(/trees\[0\]\.left_child/);
    expect(() => formatLightGbmModel({ ...single(stump(0, 0)), featureNames: ['a b'] })).toThrow(
      /feature_names/,
    );
  });
});

describe('the data readers', () => {
  it('read LibSVM (sparse, qid skipped), TSV (nan, inf) and query files', () => {
    const svm = parseLibSvm('1 0:1.5 3:nan qid:7\n0 2:-2e-3\n', {});
    expect(svm.width).toBe(4);
    expect(Array.from(svm.labels)).toEqual([1, 0]);
    expect(Array.from(svm.features)).toEqual([1.5, 0, 0, NaN, 0, 0, -0.002, 0]);
    expect(parseLibSvm('1 0:1 9:2\n', { width: 2 }).features).toEqual(Float64Array.of(1, 0));
    const tsv = parseTsv('0\t1\tnan\n1\t-inf\tNA\n');
    expect(Array.from(tsv.features)).toEqual([1, NaN, -Infinity, NaN]);
    expect(Array.from(parseQueryFile('3\n2\n'))).toEqual([3, 2]);
    expect(() => parseLibSvm('1 x:2\n')).toThrow(/line 1/);
    expect(() => parseTsv('0\t1\n0\t1\t2\n')).toThrow(/line 2: 3 columns/);
    expect(() => parseQueryFile('3\n0\n')).toThrow(/line 2/);
  });
});

/** The generator script's output for `ltr.test 1000 33 a` and a variant-b set (checked by hand). */
const LTR_TEST_SHA256 = 'c8a266b5be7cd1fbf278bfa94d2023559060e1ce18d7f1ee4161bf46ac7143d2';
const LTR_TEST_QUERY_SHA256 = '4dfdbe5a1b838faae6fb45241beb0ebd039c2e0a118d76e815a9ef42484ac86c';
const LTR_B_SHA256 = '8e1bed6409ab62118387d40b5032f2664aff41018857ae036c1ed980aa604642';
const LTR_TEST_HEAD = [
  '0 0:0.25485 1:-0.12113 2:0.09442 3:0.38864 4:-0.8724 5:6 6:0.84536 7:-0.21264 8:-1.00558',
  '2 0:-2.07829 1:0.69642 2:-0.01535 3:0.99121 4:0.14941 5:8 6:0.47779 7:1.03977 8:',
];
const LTR_TEST_QUERY_HEAD = '42\n23\n56\n';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('the learning-to-rank generator port', () => {
  it("writes the script's files byte for byte, and rows as LightGBM reads them", () => {
    const { data, text } = generateLtrWithText({ queries: 1000, seed: 33 });
    const lines = text.data.split('\n');
    expect(lines[0]?.startsWith(LTR_TEST_HEAD[0] as string)).toBe(true);
    expect(lines[1]?.startsWith(LTR_TEST_HEAD[1] as string)).toBe(true);
    expect(text.query.startsWith(LTR_TEST_QUERY_HEAD)).toBe(true);
    expect(sha256(text.data)).toBe(LTR_TEST_SHA256);
    expect(sha256(text.query)).toBe(LTR_TEST_QUERY_SHA256);
    expect(data.rows).toBe(39558);

    const parsed = parseLibSvm(text.data, { width: data.width });
    expect(exactMismatches(data.features, parsed.features)).toBe(0);
    expect(exactMismatches(data.labels, parsed.labels)).toBe(0);
    expect(Array.from(data.groups)).toEqual(Array.from(parseQueryFile(text.query)));
    expect(exactMismatches(generateLtr({ queries: 1000, seed: 33 }).features, data.features)).toBe(
      0,
    );
  });

  it('variant b', () => {
    expect(sha256(generateLtrWithText({ queries: 200, seed: 5, variant: 'b' }).text.data)).toBe(
      LTR_B_SHA256,
    );
  });
});
