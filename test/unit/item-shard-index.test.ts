import { mkdtemp, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SearchPool,
  buildShards,
  compactShardSync,
  openShard,
  readShardManifest,
  resolveWorkerFile,
  searchShard,
  searchShardRows,
  shardFiles,
  shardOf,
} from '../../actors/item-shard/index.js';
import type { OpenShard } from '../../actors/item-shard/index.js';
import { fnv1a32 } from '../../runtime/placement/hash.js';
import { prng } from '../helpers/assertions.js';
import { clusteredItems, exactTopK, queryNear, recall } from '../helpers/item-vectors.js';

const DIMS = 32;
const items = clusteredItems(2000, DIMS, { seed: 7 });
const params = { metric: 'ip', connectivity: 16, expansionAdd: 128, expansionSearch: 64 } as const;

describe('item index files', () => {
  let dir: string;
  let shards: OpenShard[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'recsys-index-'));
    await buildShards({
      vectors: items.vectors,
      dims: DIMS,
      ids: items.ids,
      categories: items.categories,
      shards: 2,
      params,
      modelVersion: 'test-model',
      dir,
    });
    shards = await Promise.all([0, 1].map((s) => openShard(dir, s, 64)));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('assigns each item to shard fnv1a32(id) % S and writes a manifest per shard', async () => {
    expect(shardOf('item_1', 2)).toBe(fnv1a32('item_1') % 2);
    expect(shards[0]!.ids.length + shards[1]!.ids.length).toBe(items.ids.length);
    for (const [s, shard] of shards.entries()) {
      expect(shard.ids.every((id) => id !== null && shardOf(id, 2) === s)).toBe(true);
      const manifest = await readShardManifest(dir, s);
      expect(manifest).toMatchObject({
        shard: s,
        shards: 2,
        count: shard.ids.length,
        dims: DIMS,
        metric: 'ip',
        modelVersion: 'test-model',
      });
      expect(Date.parse(manifest.builtAt)).not.toBeNaN();
    }
  });

  it('finds the exact top 10 with recall >= 0.95 on clustered vectors', () => {
    const rand = prng(11);
    let total = 0;
    const queries = 100;
    for (let q = 0; q < queries; q++) {
      const query = queryNear(items, rand);
      const found = shards
        .flatMap((shard) => searchShard(shard, { vector: query, k: 10 }))
        .sort((a, b) => b.score - a.score)
        .slice(0, 10)
        .map((item) => item.item_id);
      total += recall(found, exactTopK(items, query, 10, 'ip'));
    }
    expect(total / queries).toBeGreaterThanOrEqual(0.95);
  });

  it.each(['f16', 'i8'] as const)(
    'stores vectors as %s: a smaller file, the quantization in the manifest, compactions too',
    async (quantization) => {
      const out = await mkdtemp(join(tmpdir(), 'recsys-index-q-'));
      try {
        await buildShards({
          vectors: items.vectors,
          dims: DIMS,
          ids: items.ids,
          shards: 1,
          params: { ...params, quantization },
          modelVersion: 'test-model',
          dir: out,
        });
        const [full, small] = await Promise.all([
          stat(shardFiles(dir, 0).index),
          stat(shardFiles(out, 0).index),
        ]);
        // Shard 0 of `dir` holds about half the items in f32: compare bytes per vector.
        expect(small.size / items.ids.length).toBeLessThan(full.size / shards[0]!.ids.length);
        const shard = await openShard(out, 0, 64);
        expect(shard.manifest.quantization).toBe(quantization);
        const rand = prng(12);
        let total = 0;
        for (let q = 0; q < 50; q++) {
          const query = queryNear(items, rand);
          const found = searchShard(shard, { vector: query, k: 10 }).map((item) => item.item_id);
          total += recall(found, exactTopK(items, query, 10, 'ip'));
        }
        expect(total / 50).toBeGreaterThanOrEqual(quantization === 'f16' ? 0.95 : 0.8);
        const next = compactShardSync({
          manifest: shard.manifest,
          files: shardFiles(out, 0),
          outDir: join(out, 'g1'),
          expansionSearch: 64,
          remove: [],
          upsertIds: ['fresh'],
          upsertCategories: [null],
          upsertVectors: items.vectors.slice(0, DIMS),
          streamSeq: 1,
        });
        expect(next.manifest.quantization).toBe(quantization);
        expect((await openShard(join(out, 'g1'), 0, 64)).manifest.count).toBe(items.ids.length + 1);
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    },
  );

  it('scores are the metric similarity, best first', () => {
    const query = queryNear(items, prng(3));
    const result = searchShard(shards[0]!, { vector: query, k: 5 });
    const row = items.ids.indexOf(result[0]!.item_id);
    const v = items.vectors.subarray(row * DIMS, (row + 1) * DIMS);
    const dot = v.reduce((sum, x, i) => sum + x * query[i]!, 0);
    expect(result[0]!.score).toBeCloseTo(dot, 4);
    for (let i = 1; i < result.length; i++) {
      expect(result[i]!.score).toBeLessThanOrEqual(result[i - 1]!.score);
    }
  });

  it('never returns an excluded id, and still returns k items', () => {
    const rand = prng(5);
    for (let q = 0; q < 20; q++) {
      const query = queryNear(items, rand);
      const top = searchShard(shards[0]!, { vector: query, k: 20 }).map((i) => i.item_id);
      const exclude = top.slice(0, 15);
      const result = searchShard(shards[0]!, { vector: query, k: 10, exclude });
      expect(result).toHaveLength(10);
      expect(result.filter((i) => exclude.includes(i.item_id))).toEqual([]);
    }
  });

  it('keeps only allowed categories, widening the search when they are rare', () => {
    const categoryOf = new Map(items.ids.map((id, row) => [id, items.categories[row]!]));
    const rand = prng(9);
    for (let q = 0; q < 20; q++) {
      const query = queryNear(items, rand);
      const result = searchShard(shards[1]!, { vector: query, k: 10, categories: ['cat_3'] });
      expect(result).toHaveLength(10);
      expect(result.every((i) => categoryOf.get(i.item_id) === 'cat_3')).toBe(true);
      const truth = exactTopK(
        items,
        query,
        10,
        'ip',
        (row) => items.categories[row] === 'cat_3' && shards[1]!.ids.includes(items.ids[row]!),
      );
      expect(
        recall(
          result.map((i) => i.item_id),
          truth,
        ),
      ).toBeGreaterThanOrEqual(0.8);
    }
    expect(
      searchShard(shards[1]!, { vector: queryNear(items, rand), k: 5, categories: [] }),
    ).toEqual([]);
    expect(
      searchShard(shards[1]!, { vector: queryNear(items, rand), k: 5, categories: ['nope'] }),
    ).toEqual([]);
  });

  it('searches in worker threads loading the TypeScript worker, with the same answers', async () => {
    const pool = new SearchPool({
      workers: 2,
      workerData: {
        manifest: await readShardManifest(dir, 0),
        files: shardFiles(dir, 0),
        expansionSearch: 64,
      },
    });
    try {
      const query = queryNear(items, prng(21));
      const inWorker = await pool.run({ op: 'search', vector: query, k: 10 });
      // Packed: row numbers and float32 scores, moved out of the worker rather than cloned.
      expect(inWorker).toEqual(searchShardRows(shards[0]!, { vector: query, k: 10 }));
      if (!('rows' in inWorker)) throw new Error('expected a packed search answer');
      expect(inWorker.rows).toBeInstanceOf(Int32Array);
      expect(inWorker.scores).toBeInstanceOf(Float32Array);
      expect(inWorker.rows).toHaveLength(10);
      const objects = searchShard(shards[0]!, { vector: query, k: 10 });
      expect(objects.map((i) => i.item_id)).toEqual(
        [...inWorker.rows].map((row) => shards[0]!.ids[row]),
      );
      expect(pool.threads).toBe(2);
    } finally {
      await pool.close();
    }
  });
});

describe('worker file resolution', () => {
  it('prefers the compiled .js beside the module, else the .ts through tsx', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'recsys-worker-'));
    try {
      const base = pathToFileURL(join(dir, 'pool.js')).href;
      await writeFile(join(dir, 'w.ts'), '');
      expect(resolveWorkerFile(base, 'w')).toEqual({
        filename: join(dir, 'w.ts'),
        execArgv: ['--import', 'tsx'],
      });
      await writeFile(join(dir, 'w.js'), '');
      expect(resolveWorkerFile(base, 'w')).toEqual({ filename: join(dir, 'w.js'), execArgv: [] });
      await mkdir(join(dir, 'empty'));
      expect(() => resolveWorkerFile(pathToFileURL(join(dir, 'empty', 'x.js')).href, 'w')).toThrow(
        /not found/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
