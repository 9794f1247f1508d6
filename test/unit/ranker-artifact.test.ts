/**
 * Ranker artifacts: a GBDT and a DeepFM ranker written and opened again by `loadRanker`, which
 * must score exactly as the in-memory model (onnxruntime to float32 rounding); the LightGBM text
 * in the GBDT folder parses to the same ensemble; a schema this code no longer computes, a file
 * changed behind the manifest's back and malformed batches are refused, naming what is wrong.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { Rng } from '../../models/data/rng.js';
import { writeDeepFmArtifact } from '../../models/deepfm/artifact.js';
import { trainDeepFm } from '../../models/deepfm/train.js';
import type { TrainedDeepFm } from '../../models/deepfm/train.js';
import { parseLightGbmModel } from '../../models/gbdt/lightgbm-format.js';
import type { GbdtModel } from '../../models/gbdt/model.js';
import { predictRaw } from '../../models/gbdt/predict.js';
import { trainGbdt } from '../../models/gbdt/train.js';
import { rankingSchema, rankingSchemaJson } from '../../models/ranking/features.js';
import {
  GBDT_MODEL_FILE,
  GBDT_ONNX_FILE,
  RANKER_MANIFEST_FILE,
  RankerArtifactError,
  readGbdtRankerArtifact,
  writeGbdtRankerArtifact,
} from '../../models/ranking/gbdt-artifact.js';
import {
  DEEPFM_RANKING_SCHEMA_KEY,
  RankerKind,
  loadRanker,
  rankerKindOf,
} from '../../models/ranking/ranker.js';
import type { RankerModel } from '../../models/ranking/ranker.js';
import { BadRequestError, ConfigError, UnavailableError } from '../../runtime/errors.js';

const schema = rankingSchema();
const F = schema.size;
const PER_QUERY = 20;
const QUERIES = 60;
const ROWS = PER_QUERY * QUERIES;

/**
 * Rows of the full ranking schema with a planted answer: relevance rises with the retrieval score
 * and the user-category match; a tenth of the values are missing.
 */
function plantedRows(seed: number): {
  features: Float32Array;
  labels: Float32Array;
  groups: Int32Array;
} {
  const rng = new Rng(seed, 3);
  const features = new Float32Array(ROWS * F);
  const labels = new Float32Array(ROWS);
  const score = schema.names.indexOf('retrieval_score');
  const match = schema.names.indexOf('user_category_match');
  const category = schema.names.indexOf('item_category');
  for (let r = 0; r < ROWS; r++) {
    for (let f = 0; f < F; f++) {
      features[r * F + f] = rng.next() < 0.1 ? Number.NaN : rng.next() * 4 - 1;
    }
    features[r * F + score] = rng.next();
    features[r * F + match] = rng.next() < 0.5 ? 1 : 0;
    features[r * F + category] = Math.floor(rng.next() * 50);
    const signal = 2 * (features[r * F + score] as number) + (features[r * F + match] as number);
    labels[r] = Math.max(0, Math.min(4, Math.floor(signal + rng.next() - 0.5)));
  }
  return { features, labels, groups: new Int32Array(QUERIES).fill(PER_QUERY) };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++)
    max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

describe('ranker artifacts', () => {
  let root: string;
  let gbdt: GbdtModel;
  let deepfm: TrainedDeepFm;
  const data = plantedRows(1);
  const probe = plantedRows(2).features;
  const open: RankerModel[] = [];

  const load = async (dir: string, options = {}): Promise<RankerModel> => {
    const ranker = await loadRanker(dir, options);
    open.push(ranker);
    return ranker;
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'recsys-ranker-artifact-'));
    gbdt = trainGbdt(
      {
        train: { ...data, numFeatures: F, featureNames: schema.names },
      },
      { objective: 'lambdarank', numIterations: 15, numLeaves: 7, minDataInLeaf: 10, evalAt: [10] },
    ).model;
    deepfm = trainDeepFm(
      { schema: schema.features, train: data },
      {
        epochs: 2,
        hiddenLayers: [8],
        embeddingDims: 4,
        batchSize: 128,
        earlyStoppingRounds: 0,
        seed: 3,
      },
    );
  });

  afterEach(async () => {
    for (const ranker of open.splice(0)) await ranker.close();
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  // A folder of versions per write: the same model written at the same time is the same version.
  let writes = 0;
  const writeGbdt = (): ReturnType<typeof writeGbdtRankerArtifact> =>
    writeGbdtRankerArtifact(join(root, `ranker-gbdt-${++writes}`), {
      model: gbdt,
      schema,
      metrics: { validNdcg10: 0.5 },
      now: new Date(Date.UTC(2025, 0, 2, 3, 4, 5)),
    });

  const writeDeepFm = (): ReturnType<typeof writeDeepFmArtifact> =>
    writeDeepFmArtifact(join(root, `ranker-deepfm-${++writes}`), {
      trained: deepfm,
      data: { [DEEPFM_RANKING_SCHEMA_KEY]: rankingSchemaJson(schema) },
      now: new Date(Date.UTC(2025, 0, 2, 3, 4, 5)),
    });

  it('writes a GBDT folder whose model.txt is the ensemble in LightGBM text and whose ranker scores as the model', async () => {
    const written = await writeGbdt();
    expect(written.dir).toBe(join(root, `ranker-gbdt-${writes}`, written.version));
    expect(written.version).toMatch(/^20250102T030405Z-[0-9a-f]{8}$/);
    expect(written.manifest).toMatchObject({
      format: 'recsys-gbdt-ranker',
      kind: 'gbdt',
      schema: { fingerprint: schema.fingerprint },
      model: { file: GBDT_MODEL_FILE, objective: 'lambdarank', trees: gbdt.trees.length },
      onnx: { file: GBDT_ONNX_FILE, width: F },
    });
    const text = await readFile(join(written.dir, GBDT_MODEL_FILE), 'utf8');
    expect(text.startsWith('tree\nversion=v4\n')).toBe(true);
    const parsed = parseLightGbmModel(text);
    expect(parsed.featureNames).toEqual(schema.names);
    const want = predictRaw(gbdt, probe, F);
    expect(maxAbsDiff(predictRaw(parsed, probe, F), want)).toBe(0);

    expect(await rankerKindOf(written.dir)).toBe(RankerKind.Gbdt);
    const typescript = await load(written.dir, { onnxMinRows: Infinity });
    expect(typescript).toMatchObject({ kind: 'gbdt', version: written.version });
    expect(typescript.schema.names).toEqual(schema.names);
    const n = probe.length / F;
    // The TypeScript path is the float64 walk, rounded to float32 once.
    expect(maxAbsDiff(await typescript.score(probe, n), Float32Array.from(want))).toBe(0);
    const onnx = await load(written.dir, { onnxMinRows: 1 });
    expect(maxAbsDiff(await onnx.score(probe, n), want)).toBeLessThan(1e-5);
  });

  it('writes a DeepFM folder that loadRanker opens by its manifest and scores as the model', async () => {
    const written = await writeDeepFm();
    expect(await rankerKindOf(written.dir)).toBe(RankerKind.DeepFm);
    const n = probe.length / F;
    const want = deepfm.model.score(probe);
    const typescript = await load(written.dir, { onnxMinRows: Infinity });
    expect(typescript).toMatchObject({ kind: 'deepfm', version: written.version });
    expect(maxAbsDiff(await typescript.score(probe, n), want)).toBe(0);
    const onnx = await load(written.dir, { onnxMinRows: 1 });
    expect(maxAbsDiff(await onnx.score(probe, n), want)).toBeLessThan(1e-5);
  });

  it('refuses a schema naming a feature this code no longer computes, naming it', async () => {
    for (const written of [await writeGbdt(), await writeDeepFm()]) {
      const path = join(written.dir, RANKER_MANIFEST_FILE);
      const manifest = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      const recorded = (
        written.manifest.format === 'recsys-gbdt-ranker'
          ? manifest['schema']
          : (manifest['data'] as Record<string, unknown>)[DEEPFM_RANKING_SCHEMA_KEY]
      ) as { features: Array<{ name: string }> };
      (recorded.features[3] as { name: string }).name = 'item_retired_feature';
      await writeFile(path, JSON.stringify(manifest));
      const err: unknown = await loadRanker(written.dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RankerArtifactError);
      expect((err as Error).message).toContain(path);
      expect((err as Error).message).toMatch(
        /features\[3\]: unknown ranking feature item_retired_feature/,
      );
    }
  });

  it('refuses a schema whose features changed meaning (the fingerprint)', async () => {
    const written = await writeGbdt();
    const path = join(written.dir, RANKER_MANIFEST_FILE);
    const manifest = JSON.parse(await readFile(path, 'utf8')) as { schema: { version: number } };
    manifest.schema.version = 0;
    await writeFile(path, JSON.stringify(manifest));
    await expect(loadRanker(written.dir)).rejects.toThrow(/schema\.fingerprint: .*version 0/);
  });

  it('refuses a model file that is not the one its manifest records', async () => {
    const written = await writeGbdt();
    const path = join(written.dir, GBDT_MODEL_FILE);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('shrinkage=', 'shrinkage= '));
    await expect(readGbdtRankerArtifact(written.dir)).rejects.toThrow(
      `${path}: does not match the SHA-256 its manifest records`,
    );
  });

  it('refuses a folder that holds no ranker', async () => {
    const dir = join(root, 'not-a-ranker');
    await writeGbdt();
    await rm(dir, { recursive: true, force: true });
    await expect(rankerKindOf(dir)).rejects.toThrow(RankerArtifactError);
    const other = await writeDeepFmArtifact(join(root, 'plain-deepfm'), { trained: deepfm });
    await expect(loadRanker(other.dir)).rejects.toThrow(/has no data\.rankingSchema/);
  });

  it('refuses to write a model whose features are not the schema', async () => {
    await expect(
      writeGbdtRankerArtifact(join(root, 'wrong'), {
        model: gbdt,
        schema: rankingSchema(['retrieval_score']),
      }),
    ).rejects.toThrow(RankerArtifactError);
  });

  it('answers a malformed batch with the field, an empty one with no scores, and nothing once closed', async () => {
    const written = await writeGbdt();
    for (const options of [{ onnxMinRows: Infinity }, { onnxMinRows: 1 }]) {
      const ranker = await load(written.dir, options);
      await expect(ranker.score(new Float32Array(F), 2)).rejects.toThrow(/^rows: holds/);
      await expect(ranker.score(new Float32Array(F), 1.5)).rejects.toThrow(BadRequestError);
      await expect(ranker.score(new Float32Array(F), -1)).rejects.toThrow(/^n: /);
      await expect(ranker.score([1, 2] as unknown as Float32Array, 1)).rejects.toThrow(/^rows: /);
      expect(await ranker.score(new Float32Array(0), 0)).toEqual(new Float32Array(0));
      // Values past n rows are ignored.
      const one = await ranker.score(probe.subarray(0, F), 1);
      expect(await ranker.score(probe.subarray(0, 3 * F), 1)).toEqual(one);
      await ranker.close();
      await expect(ranker.score(probe.subarray(0, F), 1)).rejects.toThrow(UnavailableError);
    }
    await expect(loadRanker(written.dir, { onnxMinRows: 0 })).rejects.toThrow(ConfigError);
  });
});
