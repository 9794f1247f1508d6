import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';

import { BadRequestError, ConfigError, UnavailableError } from '../../runtime/errors.js';
import { parseLightGbmModel } from '../../models/gbdt/lightgbm-format.js';
import { parseTsv } from '../../models/gbdt/libsvm.js';
import { generateLtr } from '../../models/gbdt/ltr-generator.js';
import { predict, predictRaw } from '../../models/gbdt/predict.js';
import {
  DEFAULT_ONNX_MIN_ROWS,
  GbdtOutput,
  GbdtPath,
  GbdtScorer,
  resolveGbdtScorerOptions,
} from '../../models/gbdt/scorer.js';
import type { GbdtScorerOptions } from '../../models/gbdt/scorer.js';

const FIXTURES = new URL('../fixtures/lightgbm/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
const ltr = parseLightGbmModel(read('lambdarank-ltr.model.txt'));
const binary = parseLightGbmModel(read('binary-categorical-nan.model.txt'));

function maxRelative(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as number;
    max = Math.max(max, Math.abs((got[i] as number) - w) / Math.max(1, Math.abs(w)));
  }
  return max;
}

describe('GbdtScorer', () => {
  const open: GbdtScorer[] = [];
  const create = async (model = ltr, options: GbdtScorerOptions = {}): Promise<GbdtScorer> => {
    const scorer = await GbdtScorer.create(model, options);
    open.push(scorer);
    return scorer;
  };
  afterEach(async () => {
    for (const scorer of open.splice(0)) await scorer.close();
  });

  it('resolves its options, naming a bad one', () => {
    expect(resolveGbdtScorerOptions(ltr)).toEqual({
      onnxMinRows: DEFAULT_ONNX_MIN_ROWS,
      intraOpThreads: 1,
      width: 40,
      output: GbdtOutput.Raw,
    });
    const bad: Array<[GbdtScorerOptions, string]> = [
      [{ onnxMinRows: 0 }, 'onnxMinRows'],
      [{ onnxMinRows: 2.5 }, 'onnxMinRows'],
      [{ intraOpThreads: 0 }, 'intraOpThreads'],
      [{ width: 39 }, 'width'],
      [{ output: 'probability' as GbdtOutput }, 'output'],
    ];
    for (const [options, path] of bad) {
      expect(() => resolveGbdtScorerOptions(ltr, options)).toThrow(ConfigError);
      expect(() => resolveGbdtScorerOptions(ltr, options)).toThrow(new RegExp(`^${path}:`));
    }
  });

  it('sends small batches to TypeScript and large ones to onnxruntime, with the same scores', async () => {
    const data = generateLtr({ queries: 10, seed: 33 });
    const rows = Float32Array.from(data.features);
    const auto = await create(ltr, { onnxMinRows: 8 });
    expect(auto.pathFor(7)).toBe(GbdtPath.TypeScript);
    expect(auto.pathFor(8)).toBe(GbdtPath.Onnx);
    const small = rows.subarray(0, 7 * 40);
    // The TypeScript path is predictRaw itself; onnxruntime differs by its float32 sum.
    expect(Array.from(await auto.score(small))).toEqual(Array.from(predictRaw(ltr, small, 40)));
    const onnx = await auto.score(rows);
    expect(maxRelative(onnx, predictRaw(ltr, rows, 40))).toBeLessThanOrEqual(1e-5);
    expect(Array.from(onnx)).not.toEqual(Array.from(predictRaw(ltr, rows, 40)));
    const twoThreads = await create(ltr, { onnxMinRows: 1, intraOpThreads: 2 });
    expect(maxRelative(await twoThreads.score(rows), onnx)).toBeLessThanOrEqual(1e-6);
    const never = await create(ltr, { onnxMinRows: Infinity });
    expect(never.pathFor(1e9)).toBe(GbdtPath.TypeScript);
    expect(Array.from(await never.score(rows))).toEqual(Array.from(predictRaw(ltr, rows, 40)));
  });

  it("gives LightGBM's predictions on both paths when asked, into the caller's buffer", async () => {
    const { features, width } = parseTsv(read('binary-categorical-nan.test.tsv'));
    const rows = Float32Array.from(features);
    const n = rows.length / width;
    const want = predict(binary, rows, width);
    for (const onnxMinRows of [1, Infinity]) {
      const scorer = await create(binary, { onnxMinRows, output: GbdtOutput.Prediction });
      const out = new Float64Array(n);
      expect(await scorer.score(rows, out)).toBe(out);
      expect(maxRelative(out, want)).toBeLessThanOrEqual(1e-5);
      expect(out.every((p) => p > 0 && p < 1)).toBe(true);
    }
  });

  it('takes wider rows, and an empty batch', async () => {
    const scorer = await create(binary, { width: 7, onnxMinRows: 1 });
    const narrow = Float32Array.of(0.5, 1, 2, 3, -0.2, 1, 0.3, 1, 4, 0.9);
    const wide = new Float32Array(14);
    for (let r = 0; r < 2; r++) wide.set(narrow.subarray(r * 5, r * 5 + 5), r * 7);
    expect(maxRelative(await scorer.score(wide), predictRaw(binary, narrow, 5))).toBeLessThan(1e-5);
    expect((await scorer.score(new Float32Array(0))).length).toBe(0);
  });

  it('rejects bad batches, and every call once closed', async () => {
    const scorer = await create(ltr, { onnxMinRows: 1 });
    await expect(scorer.score(new Float32Array(41))).rejects.toThrow(BadRequestError);
    await expect(scorer.score(new Float32Array(41))).rejects.toThrow(/^rows:/);
    await expect(scorer.score(new Float64Array(40) as unknown as Float32Array)).rejects.toThrow(
      /Float32Array/,
    );
    await expect(scorer.score(new Float32Array(80), new Float64Array(1))).rejects.toThrow(/^out:/);
    await scorer.close();
    await expect(scorer.score(new Float32Array(40))).rejects.toThrow(UnavailableError);
  });
});
