/**
 * The item shards while they serve, written once and run on both transports: compaction under a
 * continuous query load, and the scatter-gather client over several shards, one of them down.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ShardScatter,
  itemEventsStreamName,
  itemEventsSubject,
  itemEventsSubjects,
  itemShardKind,
  shardOf,
  unpackItems,
} from '../../actors/item-shard/index.js';
import type { ItemShardProtocol, ShardStats } from '../../actors/item-shard/index.js';
import { encode } from '../../runtime/codec.js';
import { BadRequestError } from '../../runtime/errors.js';
import type { RunningNode } from '../../runtime/node.js';
import { prng } from './assertions.js';
import { uniquePrefix } from './cluster.js';
import type { TestCluster, TestClusterOptions } from './cluster.js';
import { eventually } from './eventually.js';
import { itemIndexFixture } from './item-index-fixture.js';
import { clusteredItems, exactTopK, queryNear, randomUnitVector } from './item-vectors.js';

const DIMS = 16;
const SHARDS = 3;

export function itemShardLiveSuite(
  name: string,
  makeCluster: (options: TestClusterOptions) => Promise<TestCluster>,
): void {
  describe(`item shards while serving, on ${name}`, () => {
    const items = clusteredItems(1500, DIMS, { seed: 5 });
    const index = itemIndexFixture(items, {
      dims: DIMS,
      shards: SHARDS,
      expansionSearch: 128,
      modelVersion: 'live-model',
    });

    const kind = (compactionThreshold = 10_000, workers = 2) =>
      itemShardKind({
        indexDir: index.dir,
        maxK: 200,
        workers,
        expansionSearch: 128,
        compactionThreshold,
        compactDir: join(index.dir, `compacted-${Math.random().toString(36).slice(2)}`),
      });

    // 0 workers: the shard searches on its own thread and switches files there.
    it.each([2, 0])(
      'compacts under a continuous query load: no query lost, every answer consistent (%i workers)',
      async (workers) => {
        const cluster = index.use(await makeCluster({ shared: false, prefix: uniquePrefix() }));
        const node = await cluster.node([kind(40, workers)], {
          host: { groups: { items: ['0'] } },
        });
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
          .map(({ id, row }) => ({
            id,
            vector: items.vectors.slice(row * DIMS, (row + 1) * DIMS),
          }));
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
      },
    );

    it('keeps serving every upsert from the delta when a compaction fails', async () => {
      const cluster = index.use(await makeCluster({ shared: false, prefix: uniquePrefix() }));
      // A folder under a regular file cannot be created: every compaction fails.
      const node = await cluster.node(
        [
          itemShardKind({
            indexDir: index.dir,
            workers: 1,
            compactionThreshold: 5,
            compactDir: join(index.dir, 'shard-0.json', 'compacted'),
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
      const cluster = index.use(await makeCluster({ shared: true, prefix: uniquePrefix() }));
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
      const cluster = index.use(await makeCluster({ shared: true, prefix: uniquePrefix() }));
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

    /** Checks that every upserted item comes first at its own vector and no deleted one returns. */
    const expectHolds = async (
      node: RunningNode,
      kept: readonly { item_id: string; vector: Float32Array }[],
      gone: readonly { id: string; vector: Float32Array }[],
    ): Promise<void> => {
      const shard = node.client.grouped<ItemShardProtocol>('items');
      for (const { item_id, vector } of kept) {
        const reply = await shard.ask('0', 'search', { vector, k: 1 }, { timeoutMs: 5000 });
        expect(unpackItems(reply)[0]?.item_id).toBe(item_id);
      }
      for (const { id, vector } of gone) {
        const reply = await shard.ask('0', 'search', { vector, k: 20 }, { timeoutMs: 5000 });
        expect(reply.item_ids).not.toContain(id);
      }
    };

    const baseItemsOfShard0 = (count: number) =>
      items.ids
        .map((id, row) => ({ id, row }))
        .filter(({ id }) => shardOf(id, SHARDS) === 0)
        .slice(0, count)
        .map(({ id, row }) => ({ id, vector: items.vectors.slice(row * DIMS, (row + 1) * DIMS) }));

    it('applies every update on every replica; a replica that starts replays what it missed', async () => {
      const cluster = index.use(await makeCluster({ shared: true, prefix: uniquePrefix() }));
      const serveShard0 = { host: { groups: { items: ['0'] } } };
      const first = await cluster.node([kind()], serveShard0);
      const second = await cluster.node([kind()], serveShard0);
      const shard = first.client.grouped<ItemShardProtocol>('items');
      const rand = prng(71);
      const fresh = Array.from({ length: 20 }, (_, i) => ({
        item_id: `everywhere_${i}`,
        vector: randomUnitVector(DIMS, rand),
      }));
      const gone = baseItemsOfShard0(2);
      // Each call reaches one replica of the queue group; the stream takes it to both.
      for (let i = 0; i < fresh.length; i += 5) {
        const reply = await shard.ask('0', 'upsert', { items: fresh.slice(i, i + 5) });
        expect(reply.seq).toBe(i / 5 + 1);
      }
      const deleted = await shard.ask('0', 'delete', { item_ids: gone.map((g) => g.id) });
      expect(deleted).toMatchObject({ deleted: 2, seq: 5 });

      await first.stop();
      await expectHolds(second, fresh, gone);
      // A replica started now reads the stream from the start of its index, then serves.
      const third = await cluster.node([kind()], serveShard0);
      await second.stop();
      await expectHolds(third, fresh, gone);
      const stats = await third.client.grouped<ItemShardProtocol>('items').ask('0', 'stats', {});
      expect(stats).toMatchObject({ stream_seq: 5, delta: 20, tombstones: 2, events_skipped: 0 });
    });

    it('restarts from its newest compacted generation and replays only the events after it', async () => {
      const cluster = index.use(await makeCluster({ shared: true, prefix: uniquePrefix() }));
      // One kind, so the restarted replica looks in the same compaction folder.
      const compacting = kind(10);
      const serveShard0 = { host: { groups: { items: ['0'] } } };
      const node = await cluster.node([compacting], serveShard0);
      const shard = node.client.grouped<ItemShardProtocol>('items');
      const rand = prng(72);
      const fresh = Array.from({ length: 27 }, (_, i) => ({
        item_id: `durable_${i}`,
        vector: randomUnitVector(DIMS, rand),
      }));
      const gone = baseItemsOfShard0(1);
      for (let i = 0; i < fresh.length; i += 3) {
        await shard.ask('0', 'upsert', { items: fresh.slice(i, i + 3) });
      }
      await shard.ask('0', 'delete', { item_ids: gone.map((g) => g.id) });
      let before: ShardStats | undefined;
      await eventually(
        async () => {
          before = await shard.ask('0', 'stats', {});
          expect(before.delta + before.tombstones).toBeLessThan(10);
          expect(before.index_version).toMatch(/\+\d+$/);
        },
        { timeoutMs: 20_000 },
      );
      await node.stop();

      const restarted = await cluster.node([compacting], serveShard0);
      const after = await restarted.client
        .grouped<ItemShardProtocol>('items')
        .ask('0', 'stats', {});
      // Same file, same items, and only the events after that file were read back into the delta.
      expect(after).toMatchObject({
        index_version: before!.index_version,
        vectors: before!.vectors,
        delta: before!.delta,
        tombstones: before!.tombstones,
        stream_seq: 10,
      });
      await expectHolds(restarted, fresh, gone);
    });

    it('passes over a malformed event and an upsert of another model, and keeps serving', async () => {
      const prefix = uniquePrefix();
      const cluster = index.use(await makeCluster({ shared: false, prefix }));
      const node = await cluster.node([kind()], { host: { groups: { items: ['0'] } } });
      const stream = await node.streams.stream(itemEventsStreamName(prefix), {
        subjects: itemEventsSubjects(prefix),
      });
      const subject = itemEventsSubject(prefix, 0);
      const rand = prng(73);
      const stranger = { item_id: 'other_model', vector: randomUnitVector(DIMS, rand) };
      const welcome = { item_id: 'this_model', vector: randomUnitVector(DIMS, rand) };
      await stream.publish(subject, Buffer.from('{"op":"rename"}'));
      const foreign = encode({ op: 'upsert', items: [stranger], model_version: 'other-model' });
      await stream.publish(subject, foreign.data, { headers: foreign.headers });
      const shard = node.client.grouped<ItemShardProtocol>('items');
      expect(await shard.ask('0', 'upsert', { items: [welcome] })).toMatchObject({ seq: 3 });
      await expectHolds(node, [welcome], [{ id: stranger.item_id, vector: stranger.vector }]);
      expect(await shard.ask('0', 'stats', {})).toMatchObject({
        stream_seq: 3,
        events_skipped: 2,
        delta: 1,
      });
    });
  });
}
