import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { loadRetrievalArtifact, readPopularItems } from '../../models/retrieval/artifact.js';
import { emptyUserBatch, itemBatch, userBatch } from '../../models/retrieval/features.js';
import { exportTowers } from '../../models/retrieval/onnx-export.js';
import { checkExport, OnnxItemTower, OnnxUserTower } from '../../models/retrieval/onnx-runtime.js';
import {
  sampleItems,
  sampleQueries,
  trainRetrievalPipeline,
} from '../../models/retrieval/pipeline.js';
import { encodeCatalogue, trainTwoTower } from '../../models/retrieval/train.js';
import { TwoTowerScorer } from '../../models/retrieval/two-tower-scorer.js';
import { plantedWorld } from '../helpers/retrieval-world.js';

const TOLERANCE = 1e-5;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++)
    max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

const world = plantedWorld({ users: 30, items: 40, eventsPerUser: 10 });
const trained = trainTwoTower(
  { dataset: world.dataset, events: world.split.train, referenceTime: world.split.cutoff },
  { dims: 8, hiddenUnits: 16, historyLength: 5, batchSize: 32, epochs: 2, seed: 5 },
);

describe('ONNX export of the towers', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('onnxruntime reproduces both towers to 1e-5, cold start included', async () => {
    const { model, profiles, itemFeatures } = trained;
    const exported = exportTowers(model);
    const queries = [
      ...sampleQueries(world.split.train, world.dataset.users.ids.length, 5),
      {
        userIndex: -1,
        history: new Int32Array(0),
        profile: { ageBand: 1, country: -1, device: 0 },
      },
    ];
    const users = userBatch(queries, 5, profiles);
    const userTower = await OnnxUserTower.load(exported.userTower, 5, profiles);
    const itemTower = await OnnxItemTower.load(exported.itemTower);
    try {
      const onnxUsers = await userTower.encodeBatch(users);
      expect(maxAbsDiff(onnxUsers, model.encodeUsers(users))).toBeLessThan(TOLERANCE);

      const items = itemBatch(itemFeatures, sampleItems(itemFeatures.count));
      items.itemIndex[1] = -1;
      const onnxItems = await itemTower.encodeBatch(items);
      expect(maxAbsDiff(onnxItems, model.encodeItems(items))).toBeLessThan(TOLERANCE);

      // The single-user path gives the same answer as the batch.
      const one = await userTower.encodeUser(queries[0] as (typeof queries)[number]);
      expect(maxAbsDiff(one, onnxUsers.subarray(0, model.shape.dims))).toBeLessThan(1e-6);
      const cold = await userTower.encodeUser({ userIndex: -1, history: new Int32Array(0) });
      const coldTs = model.encodeUsers(emptyUserBatch(1, 5));
      expect(maxAbsDiff(cold, coldTs)).toBeLessThan(TOLERANCE);
    } finally {
      await userTower.close();
      await itemTower.close();
    }
  });

  it('checkExport fails a tower that does not match the model', async () => {
    const exported = exportTowers(trained.model);
    const other = trainTwoTower(
      { dataset: world.dataset, events: world.split.train },
      { dims: 8, hiddenUnits: 16, historyLength: 5, batchSize: 32, epochs: 1, seed: 6 },
    );
    const check = await checkExport({
      model: other.model,
      userTower: exported.userTower,
      itemTower: exported.itemTower,
      queries: sampleQueries(world.split.train, 30, 5),
      profiles: other.profiles,
      itemFeatures: other.itemFeatures,
      items: sampleItems(40),
    });
    expect(check.passed).toBe(false);
  });

  it('writes a versioned artifact that loads back to the same scores', async () => {
    const root = await mkdtemp(join(tmpdir(), 'retrieval-artifact-'));
    dirs.push(root);
    const result = await trainRetrievalPipeline({
      dataset: world.dataset,
      train: world.split.train,
      split: {
        kind: 'temporal',
        cutoff: world.split.cutoff,
        trainEvents: world.split.train.length,
        testEvents: world.split.test.length,
      },
      outRoot: root,
      options: { dims: 8, hiddenUnits: 16, historyLength: 5, batchSize: 32, epochs: 1 },
      evaluate: () => ({ recallAt10: 0.5 }),
    });
    expect(result.exportCheck.passed).toBe(true);
    const { dir, version } = result.artifact;
    expect(version).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    expect((await readdir(dir)).sort()).toEqual([
      'item_embeddings.f32',
      'item_ids.json',
      'item_tower.onnx',
      'manifest.json',
      'popular_items.json',
      'user_ids.json',
      'user_tower.onnx',
      'vocab.json',
    ]);
    const raw = await readFile(join(dir, 'item_embeddings.f32'));
    expect(raw.byteLength).toBe(40 * 8 * 4);

    const loaded = await loadRetrievalArtifact(dir);
    expect(loaded.manifest.metrics).toMatchObject({ recallAt10: 0.5 });
    // The popular items of the fallback: trained-on items, each once, most popular first.
    const popular = await readPopularItems(dir, loaded.manifest);
    expect(popular.length).toBeGreaterThan(0);
    expect(new Set(popular).size).toBe(popular.length);
    expect(loaded.manifest.signatures.userTower.inputs.map((i) => i.name)).toEqual([
      'user_index',
      'profile',
      'history',
      'history_mask',
    ]);
    const queries = sampleQueries(world.split.train, 30, 5);
    const fresh = new TwoTowerScorer(
      result.trained.model,
      encodeCatalogue(result.trained.model, result.trained.itemFeatures),
      { profiles: result.trained.profiles },
    );
    const reloaded = new TwoTowerScorer(loaded.model, loaded.itemEmbeddings, {
      profiles: result.trained.profiles,
    });
    expect(maxAbsDiff(reloaded.scoreBatch(queries), fresh.scoreBatch(queries))).toBeLessThan(1e-6);
  });
});
