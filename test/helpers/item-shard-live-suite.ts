/**
 * The item shards while they serve, written once and run on both transports: compaction under a
 * continuous query load, and the scatter-gather client over several shards, one of them down.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ShardScatter,
  itemShardKind,
  shardOf,
  unpackItems,
} from '../../actors/item-shard/index.js';
import type { ItemShardProtocol } from '../../actors/item-shard/index.js';
import { BadRequestError } from '../../runtime/errors.js';
import type { RunningNode } from '../../runtime/node.js';
import { prng } from './assertions.js';
import type { TestCluster } from './cluster.js';
import { eventually } from './eventually.js';
import {
  buildTestIndex,
  clusteredItems,
  exactTopK,
  queryNear,
  randomUnitVector,
} from './item-vectors.js';

const DIMS = 16;
const SHARDS = 3;

export function itemShardLiveSuite(
  name: string,
  makeCluster: (options: { shared: boolean }) => Promise<TestCluster>,
): void {
  describe(`item shards while serving, on ${name}`, () => {
    const items = clusteredItems(1500, DIMS, { seed: 5 });
    let dir: string;
    let cluster: TestCluster | undefined;
    beforeAll(async () => {
      dir = await buildTestIndex(items, {
        dims: DIMS,
        shards: SHARDS,
        expansionSearch: 128,
        modelVersion: 'live-model',
      });
    });
    afterEach(async () => {
      await cluster?.close();
      cluster = undefined;
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    const kind = (compactionThreshold = 10_000) =>
      itemShardKind({
        indexDir: dir,
        maxK: 200,
        workers: 2,
        expansionSearch: 128,
        compactionThreshold,
        compactDir: join(dir, `compacted-${Math.random().toString(36).slice(2)}`),
      });

    it('compacts under a continuous query load: no query lost, every answer consistent', async () => {
      cluster = await makeCluster({ shared: false });
      const node = await cluster.node([kind(40)], { host: { groups: { items: ['0'] } } });
      const shard = node.client.grouped<ItemShardProtocol>('items');
      const rand = prng(31);
      // Fresh items, each alone at its own spot: a query there must find it first once upserted.
      const fresh = Array.from({ length: 150 }, (_, i) => ({
        item_id: `fresh_${i}`,
        vector: randomUnitVector(DIMS, rand),
      }));
      // Base items of shard 0 to delete: a query at their own vector must never return them after.
      const doomed = items.ids
        .map((id, row) => ({ id, row }))
        .filter(({ id }) => shardOf(id, SHARDS) === 0)
        .slice(0, 30)
        .map(({ id, row }) => ({ id, vector: items.vectors.slice(row * DIMS, (row + 1) * DIMS) }));
      const upserted: typeof fresh = [];
      const deleted: typeof doomed = [];
      const versions = new Set<string>();
      const failures: string[] = [];
      let searches = 0;
      let writing = true;

      const searcher = async (n: number): Promise<void> => {
        for (let i = n; writing; i++) {
          // Only what was acknowledged before the query was sent must show in its answer.
          const mustFind = upserted.length === 0 ? undefined : upserted[i % upserted.length];
          const gone = deleted.slice();
          const mustNot = gone.length === 0 ? undefined : gone[i % gone.length];
          const vector =
            i % 2 === 0
              ? (mustFind?.vector ?? queryNear(items, rand))
              : (mustNot?.vector ?? queryNear(items, rand));
          try {
            const reply = await shard.ask('0', 'search', { vector, k: 5 }, { timeoutMs: 10_000 });
            searches++;
            versions.add(reply.index_version);
            const ids = unpackItems(reply).map((it) => it.item_id);
            if (ids.length !== 5) failures.push(`${ids.length} items`);
            if (i % 2 === 0 && mustFind !== undefined && ids[0] !== mustFind.item_id) {
              failures.push(
                `${mustFind.item_id} not first (${reply.index_version}): ${ids.join()}`,
              );
            }
            const back = gone.filter((d) => ids.includes(d.id));
            if (back.length > 0) {
              failures.push(`deleted ${back[0]!.id} came back (${reply.index_version})`);
            }
          } catch (err) {
            failures.push(`search failed: ${(err as Error).message}`);
          }
        }
      };
      const writer = async (): Promise<void> => {
        try {
          for (let i = 0; i < fresh.length; i += 10) {
            const batch = fresh.slice(i, i + 10);
            await shard.ask('0', 'upsert', { items: batch }, { timeoutMs: 10_000 });
            upserted.push(...batch);
            const gone = doomed.slice(i / 5, i / 5 + 2);
            if (gone.length > 0) {
              await shard.ask('0', 'delete', { item_ids: gone.map((d) => d.id) });
              deleted.push(...gone);
            }
            // Let searches run against each state, compactions included.
            await new Promise((resolve) => setTimeout(resolve, 30));
          }
          await eventually(
            async () => {
              const stats = await shard.ask('0', 'stats', {});
              expect(stats.delta + stats.tombstones).toBeLessThan(40);
            },
            { timeoutMs: 20_000 },
          );
        } finally {
          writing = false;
        }
      };
      await Promise.all([writer(), ...Array.from({ length: 6 }, (_, n) => searcher(n))]);

      expect(failures).toEqual([]);
      expect(searches).toBeGreaterThan(100);
      // Compactions happened while the searches ran, each under a new index version.
      expect(versions.size).toBeGreaterThanOrEqual(3);
      const stats = await shard.ask('0', 'stats', {});
      expect(stats.index_version).toMatch(/^live-model@.*\+\d+$/);
      const baseCount = items.ids.filter((id) => shardOf(id, SHARDS) === 0).length;
      expect(stats.vectors).toBe(baseCount + fresh.length - doomed.length);
      for (const { item_id, vector } of fresh) {
        const reply = await shard.ask('0', 'search', { vector, k: 1 });
        expect(unpackItems(reply)[0]!.item_id).toBe(item_id);
      }
      for (const { id, vector } of deleted) {
        const reply = await shard.ask('0', 'search', { vector, k: 20 });
        expect(unpackItems(reply).map((it) => it.item_id)).not.toContain(id);
      }
    });

    it('keeps serving every upsert from the delta when a compaction fails', async () => {
      cluster = await makeCluster({ shared: false });
      // A folder under a regular file cannot be created: every compaction fails.
      const node = await cluster.node(
        [
          itemShardKind({
            indexDir: dir,
            workers: 1,
            compactionThreshold: 5,
            compactDir: join(dir, 'shard-0.json', 'compacted'),
          }),
        ],
        { host: { groups: { items: ['0'] } } },
      );
      const shard = node.client.grouped<ItemShardProtocol>('items');
      const rand = prng(12);
      const fresh = Array.from({ length: 12 }, (_, i) => ({
        item_id: `kept_${i}`,
        vector: randomUnitVector(DIMS, rand),
      }));
      for (const item of fresh) await shard.ask('0', 'upsert', { items: [item] });
      for (const { item_id, vector } of fresh) {
        const reply = await shard.ask('0', 'search', { vector, k: 1 });
        expect(unpackItems(reply)[0]!.item_id).toBe(item_id);
        expect(reply.index_version).not.toMatch(/\+/);
      }
      const stats = await shard.ask('0', 'stats', {});
      expect(stats.delta).toBe(fresh.length);
    });

    it('scatter-gather over every shard gives the merged exact top k', async () => {
      cluster = await makeCluster({ shared: true });
      const node = await cluster.node([kind()], {
        host: { groups: { items: ['0', '1', '2'] } },
      });
      const scatter = new ShardScatter({ client: node.client, shards: SHARDS });
      const rand = prng(44);
      let hits = 0;
      let total = 0;
      for (let q = 0; q < 20; q++) {
        const vector = queryNear(items, rand);
        const result = await scatter.search({ vector, k: 10 }, { timeoutMs: 5000 });
        expect(result.missing_shards).toEqual([]);
        expect(result.degraded).toBe(false);
        expect(unpackItems(result)).toHaveLength(10);
        const truth = exactTopK(items, vector, 10, 'ip');
        hits += unpackItems(result).filter((it) => truth.includes(it.item_id)).length;
        total += 10;
        for (let i = 1; i < unpackItems(result).length; i++) {
          expect(unpackItems(result)[i]!.score).toBeLessThanOrEqual(
            unpackItems(result)[i - 1]!.score,
          );
        }
      }
      // HNSW at this size and ef is exact or within a rare miss of it.
      expect(hits / total).toBeGreaterThanOrEqual(0.98);
      const bad = await scatter
        .search({ vector: new Float32Array(DIMS + 1), k: 10 }, { timeoutMs: 5000 })
        .catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(BadRequestError);
      expect((bad as BadRequestError).field).toBe('vector');
    });

    it('scatter-gather with one shard host stopped: partial results naming it, in time', async () => {
      cluster = await makeCluster({ shared: true });
      const keep: RunningNode = await cluster.node([kind()], {
        host: { groups: { items: ['0', '2'] } },
      });
      const doomed = await cluster.node([kind()], { host: { groups: { items: ['1'] } } });
      const scatter = new ShardScatter({ client: keep.client, shards: SHARDS });
      const vector = queryNear(items, prng(9));
      const all = await scatter.search({ vector, k: 10 }, { timeoutMs: 5000 });
      expect(all.missing_shards).toEqual([]);
      await doomed.stop();
      const deadlineMs = 300;
      const started = Date.now();
      const partial = await scatter.search({ vector, k: 10 }, { timeoutMs: deadlineMs });
      const elapsed = Date.now() - started;
      expect(partial.degraded).toBe(true);
      expect(partial.missing_shards).toEqual([1]);
      expect(unpackItems(partial)).toHaveLength(10);
      expect(unpackItems(partial).every((it) => shardOf(it.item_id, SHARDS) !== 1)).toBe(true);
      const survivors = unpackItems(all).filter((it) => shardOf(it.item_id, SHARDS) !== 1);
      expect(unpackItems(partial).slice(0, survivors.length)).toEqual(survivors);
      // The answer comes by the deadline (plus scheduling slack), not after it.
      expect(elapsed).toBeLessThan(deadlineMs + 150);
    });
  });
}
