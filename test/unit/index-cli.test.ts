import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runIndex } from '../../actors/cli.js';
import { openShard, searchShard } from '../../actors/item-shard/index.js';
import { prepareDatasetDir, writeItems } from '../../models/data/index.js';
import { clusteredItems } from '../helpers/item-vectors.js';

/** The parts of a retrieval artifact `recsys index` reads. */
async function fakeArtifact(dir: string, ids: string[], vectors: Float32Array, dims: number) {
  await writeFile(
    join(dir, 'manifest.json'),
    JSON.stringify({
      format: 'recsys-retrieval-model',
      formatVersion: 1,
      version: 'v-test',
      dims,
      itemEmbeddings: { file: 'item_embeddings.f32', shape: [ids.length, dims] },
      ids: { items: 'item_ids.json' },
    }),
  );
  await writeFile(
    join(dir, 'item_embeddings.f32'),
    new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength),
  );
  await writeFile(join(dir, 'item_ids.json'), JSON.stringify(ids));
}

describe('recsys index', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("splits a model's item embeddings into shard files under <data.dir>/indexes/<version>", async () => {
    dir = await mkdtemp(join(tmpdir(), 'recsys-index-cli-'));
    const items = clusteredItems(300, 8, { seed: 2 });
    await fakeArtifact(dir, items.ids, items.vectors, 8);
    const configPath = join(dir, 'config.yaml');
    await writeFile(configPath, `data:\n  dir: ${join(dir, 'data')}\nitems:\n  shards: 3\n`);
    const result = await runIndex({ model: dir, config: configPath, progress: false }, {});
    expect(result.dir).toBe(join(dir, 'data', 'indexes', 'v-test'));
    expect(result.manifests.map((m) => m.shard)).toEqual([0, 1, 2]);
    expect(result.manifests.reduce((n, m) => n + m.count, 0)).toBe(300);
    const shard = await openShard(result.dir, 1, 64);
    const id = shard.ids[0]!;
    const row = items.ids.indexOf(id);
    const found = searchShard(shard, { vector: items.vectors.slice(row * 8, row * 8 + 8), k: 1 });
    expect(found[0]!.item_id).toBe(id);

    const two = await runIndex(
      { model: dir, config: configPath, shards: 2, out: join(dir, 'two'), progress: false },
      {},
    );
    expect(two.manifests).toHaveLength(2);
  });

  it('gives each item its category from the data set, for category filters', async () => {
    dir = await mkdtemp(join(tmpdir(), 'recsys-index-cli-'));
    const items = clusteredItems(200, 8, { seed: 4 });
    await fakeArtifact(dir, items.ids, items.vectors, 8);
    // The data set knows all but the last item (one added after it was made).
    const known = items.ids.slice(0, -1);
    const names = ['drama', 'comedy', 'horror'];
    await prepareDatasetDir(join(dir, 'dataset'));
    await writeItems(join(dir, 'dataset'), {
      ids: known,
      category: Int32Array.from(known, (_, i) => i % 3),
      categories: names,
      tagOffsets: new Int32Array(known.length + 1),
      tagIds: new Int32Array(0),
      tags: [],
      createdAt: new Float64Array(known.length).fill(Number.NaN),
    });
    const configPath = join(dir, 'config.yaml');
    await writeFile(configPath, `data:\n  dir: ${join(dir, 'data')}\nitems:\n  shards: 2\n`);
    const result = await runIndex(
      { model: dir, data: join(dir, 'dataset'), config: configPath, progress: false },
      {},
    );
    const expected = new Map(known.map((id, i) => [id, names[i % 3]!]));
    let checked = 0;
    for (const { shard: s } of result.manifests) {
      const shard = await openShard(result.dir, s, 64);
      shard.ids.forEach((id, row) => {
        expect(shard.categories?.[row]).toBe(expected.get(id!) ?? null);
        checked++;
      });
      const vector = items.vectors.slice(0, 8);
      const horror = searchShard(shard, { vector, k: 5, categories: ['horror'] });
      expect(horror.every((it) => expected.get(it.item_id) === 'horror')).toBe(true);
    }
    expect(checked).toBe(200);

    await expect(
      runIndex({ model: dir, data: join(dir, 'nowhere'), config: configPath, progress: false }, {}),
    ).rejects.toThrow(/nowhere/);
  });

  it('names the file when the embeddings do not match the manifest', async () => {
    dir = await mkdtemp(join(tmpdir(), 'recsys-index-cli-'));
    const items = clusteredItems(10, 8);
    await fakeArtifact(dir, items.ids, items.vectors.subarray(0, 72), 8);
    const configPath = join(dir, 'config.yaml');
    await writeFile(configPath, `data:\n  dir: ${join(dir, 'data')}\n`);
    await expect(runIndex({ model: dir, config: configPath, progress: false }, {})).rejects.toThrow(
      /item_embeddings\.f32: expected 10 × 8/,
    );
  });
});
