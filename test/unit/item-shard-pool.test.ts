import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  SearchPool,
  buildShards,
  compactShardSync,
  openShard,
  readShardManifest,
  searchShard,
  shardFiles,
} from '../../actors/item-shard/index.js';
import { UnavailableError } from '../../runtime/errors.js';
import { prng } from '../helpers/assertions.js';
import { eventually } from '../helpers/eventually.js';
import { clusteredItems, queryNear, randomUnitVector } from '../helpers/item-vectors.js';

const DIMS = 16;
const items = clusteredItems(800, DIMS, { seed: 13 });

describe('search pool', () => {
  let dir: string;
  let pool: SearchPool | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'recsys-pool-'));
    await buildShards({
      vectors: items.vectors,
      dims: DIMS,
      ids: items.ids,
      categories: items.categories,
      shards: 1,
      params: { metric: 'ip', connectivity: 16, expansionAdd: 128, expansionSearch: 64 },
      modelVersion: 'pool-model',
      dir,
    });
  });
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (workers: number): Promise<SearchPool> => {
    pool = new SearchPool({
      workers,
      workerData: {
        manifest: await readShardManifest(dir, 0),
        files: shardFiles(dir, 0),
        expansionSearch: 64,
        testHooks: true,
      },
    });
    expect(await pool.ready()).toHaveLength(workers);
    return pool;
  };

  it('answers the query of a worker that died with an error, replaces it, serves the rest', async () => {
    const p = await start(2);
    const rand = prng(3);
    const queries = Array.from({ length: 40 }, () => queryNear(items, rand));
    const [died, ...answers] = await Promise.allSettled([
      p.run({ op: 'exit' }),
      ...queries.map((vector) => p.run({ op: 'search', vector, k: 5 })),
    ]);
    expect(died.status).toBe('rejected');
    expect((died as PromiseRejectedResult).reason).toBeInstanceOf(UnavailableError);
    expect(answers.every((a) => a.status === 'fulfilled')).toBe(true);
    await eventually(() => expect(p.threads).toBe(2));
    expect(await p.ready()).toHaveLength(2);
    const next = await p.run({ op: 'search', vector: queries[0]!, k: 5 });
    expect('rows' in next && next.rows.length).toBe(5);
  });

  it('replaces a worker killed with terminate(), and the next queries succeed', async () => {
    const p = await start(2);
    const vector = queryNear(items, prng(4));
    const inFlight = Array.from({ length: 20 }, () => p.run({ op: 'search', vector, k: 5 }));
    await p.workerThreads[0]!.terminate();
    // A query the killed thread held fails with `unavailable`; none is left unanswered.
    const settled = await Promise.allSettled(inFlight);
    for (const outcome of settled) {
      if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(UnavailableError);
    }
    await eventually(() => expect(p.threads).toBe(2));
    for (let i = 0; i < 10; i++) {
      const hits = await p.run({ op: 'search', vector, k: 5 });
      expect('rows' in hits && hits.rows.length).toBe(5);
    }
  });

  it('refuses the exit hook unless test hooks are on', async () => {
    pool = new SearchPool({
      workers: 1,
      workerData: {
        manifest: await readShardManifest(dir, 0),
        files: shardFiles(dir, 0),
        expansionSearch: 64,
      },
    });
    await expect(pool.run({ op: 'exit' })).rejects.toThrow(/test hook/);
    expect(pool.threads).toBe(1);
  });

  it('closes only once the searches it was given are answered', async () => {
    const p = await start(1);
    const vector = queryNear(items, prng(5));
    const running = Array.from({ length: 50 }, () => p.run({ op: 'search', vector, k: 5 }));
    const closed = p.close();
    await expect(p.run({ op: 'search', vector, k: 5 })).rejects.toBeInstanceOf(UnavailableError);
    const results = await Promise.all(running);
    expect(results.every((r) => 'rows' in r && r.rows.length === 5)).toBe(true);
    await closed;
    pool = undefined;
  });
});

describe('compaction of a shard file', () => {
  it('drops removed rows, adds the delta under new keys, and counts the generation', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'recsys-compact-'));
    try {
      await buildShards({
        vectors: items.vectors,
        dims: DIMS,
        ids: items.ids,
        shards: 1,
        params: { metric: 'ip', connectivity: 16, expansionAdd: 128, expansionSearch: 64 },
        modelVersion: 'm',
        dir,
      });
      const manifest = await readShardManifest(dir, 0);
      const fresh = randomUnitVector(DIMS, prng(6));
      const replaced = randomUnitVector(DIMS, prng(7));
      const outDir = join(dir, 'g1');
      const built = compactShardSync({
        manifest,
        files: shardFiles(dir, 0),
        outDir,
        expansionSearch: 64,
        remove: ['item_0', 'item_1'],
        upsertIds: ['new_1', 'item_1'],
        upsertCategories: ['c', null],
        upsertVectors: Float32Array.from([...fresh, ...replaced]),
        streamSeq: 7,
      });
      expect(built.manifest).toMatchObject({
        count: items.ids.length + 1 - 1,
        rows: items.ids.length + 2,
        generation: 1,
        baseVersion: `m@${manifest.builtAt}`,
        streamSeq: 7,
      });
      const shard = await openShard(outDir, 0, 64);
      expect(searchShard(shard, { vector: fresh, k: 1 })[0]!.item_id).toBe('new_1');
      expect(searchShard(shard, { vector: replaced, k: 1 })[0]!.item_id).toBe('item_1');
      const row0 = items.vectors.slice(0, DIMS);
      const near0 = searchShard(shard, { vector: row0, k: 50 }).map((i) => i.item_id);
      expect(near0).not.toContain('item_0');
      expect(shard.categories?.at(-2)).toBe('c');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps every item it adds reachable: each is found first at its own vector', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'recsys-compact-'));
    try {
      await buildShards({
        vectors: items.vectors,
        dims: DIMS,
        ids: items.ids,
        shards: 1,
        params: { metric: 'ip', connectivity: 16, expansionAdd: 128, expansionSearch: 128 },
        modelVersion: 'm',
        dir,
      });
      const misses: string[] = [];
      // Forty runs of generations of 20 to 60 items, away from the base's clusters: where a
      // parallel insert used to leave a few of them unreachable.
      for (let run = 0; run < 40; run++) {
        const rand = prng(100 + run);
        const fresh = Array.from({ length: 150 }, (_, i) => ({
          id: `fresh_${i}`,
          vector: randomUnitVector(DIMS, rand),
        }));
        let manifest = await readShardManifest(dir, 0);
        let files = shardFiles(dir, 0);
        for (let start = 0, generation = 0; start < fresh.length; generation++) {
          const batch = fresh.slice(start, start + 20 + Math.floor(rand() * 40));
          start += batch.length;
          const vectors = new Float32Array(batch.length * DIMS);
          batch.forEach((item, i) => vectors.set(item.vector, i * DIMS));
          ({ manifest, files } = compactShardSync({
            manifest,
            files,
            outDir: join(dir, `run${run}-g${generation}`),
            expansionSearch: 128,
            remove: [],
            upsertIds: batch.map((item) => item.id),
            upsertCategories: batch.map(() => null),
            upsertVectors: vectors,
            streamSeq: generation + 1,
          }));
        }
        const shard = await openShard(join(dir, `run${run}-g${manifest.generation! - 1}`), 0, 128);
        for (const { id, vector } of fresh) {
          const first = searchShard(shard, { vector, k: 1 })[0]?.item_id;
          if (first !== id) misses.push(`run ${run}: ${id} -> ${first}`);
        }
      }
      expect(misses).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
