/**
 * The item-shard actor through the client every caller uses, written once and run on both
 * transports: a small index built in a temporary folder, two shards served by one node.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { itemShardKind, shardOf, unpackItems } from '../../actors/item-shard/index.js';
import type { ItemShardProtocol, SearchReply } from '../../actors/item-shard/index.js';
import { BadRequestError, NoRespondersError } from '../../runtime/errors.js';
import type { RunningNode } from '../../runtime/node.js';
import { prng } from './assertions.js';
import { uniquePrefix } from './cluster.js';
import type { TestCluster, TestClusterOptions } from './cluster.js';
import { itemIndexFixture } from './item-index-fixture.js';
import { clusteredItems, exactTopK, queryNear, recall } from './item-vectors.js';

const DIMS = 16;
const SHARDS = 2;

export function itemShardSuite(
  name: string,
  makeCluster: (options: TestClusterOptions) => Promise<TestCluster>,
): void {
  describe(`item-shard actors on ${name}`, () => {
    const items = clusteredItems(1500, DIMS, { seed: 3 });
    const index = itemIndexFixture(items, {
      dims: DIMS,
      shards: SHARDS,
      expansionSearch: 64,
      modelVersion: 'suite-model',
    });

    const start = async (workers = 1): Promise<RunningNode> => {
      const cluster = index.use(await makeCluster({ prefix: uniquePrefix() }));
      return cluster.node([itemShardKind({ indexDir: index.dir, maxK: 100, workers })], {
        host: { groups: { items: ['0', '1'] } },
      });
    };
    const scatter = async (node: RunningNode, vector: Float32Array, k: number) => {
      const shards = node.client.grouped<ItemShardProtocol>('items');
      const replies = await Promise.all(
        Array.from({ length: SHARDS }, (_, s) =>
          shards.ask(String(s), 'search', { vector, k }, { timeoutMs: 5000 }),
        ),
      );
      return replies
        .flatMap((r) => unpackItems(r))
        .sort((a, b) => b.score - a.score)
        .slice(0, k);
    };

    // 0 workers: the searches run on the actor's thread, with the same answers.
    it.each([1, 0])(
      'answers searches that match exact search, with %i search workers',
      async (workers) => {
        const node = await start(workers);
        const rand = prng(17);
        let total = 0;
        for (let q = 0; q < 20; q++) {
          const query = queryNear(items, rand);
          const found = (await scatter(node, query, 10)).map((i) => i.item_id);
          total += recall(found, exactTopK(items, query, 10, 'ip'));
        }
        expect(total / 20).toBeGreaterThanOrEqual(0.95);
        const reply = await node.client
          .grouped<ItemShardProtocol>('items')
          .ask('1', 'search', { vector: queryNear(items, rand), k: 3 });
        expect(reply.shard).toBe(1);
        expect(reply.index_version).toMatch(/^suite-model@/);
        expect(unpackItems(reply).every((i) => shardOf(i.item_id, SHARDS) === 1)).toBe(true);
      },
    );

    it('answers every bad input with an error naming the field, and keeps serving', async () => {
      const node = await start();
      const shard = node.client.grouped<ItemShardProtocol>('items');
      const ask = (payload: unknown) =>
        node.client.ask({ kind: 'items', group: '0' }, 'search', payload, { timeoutMs: 5000 }).then(
          () => undefined,
          (e: unknown) => e,
        );
      const cases: Array<[unknown, string]> = [
        [{ vector: new Float32Array(DIMS + 1), k: 1 }, 'vector'],
        [
          { vector: Float32Array.from({ length: DIMS }, (_, i) => (i === 3 ? NaN : 0)), k: 1 },
          'vector',
        ],
        [{ vector: Float32Array.from({ length: DIMS }, () => Infinity), k: 1 }, 'vector'],
        [{ vector: new Float32Array(DIMS), k: 0 }, 'k'],
        [{ vector: new Float32Array(DIMS), k: 101 }, 'k'],
        [{ vector: new Float32Array(DIMS), k: 1, filter: {} }, 'filter'],
        [{ vector: new Float32Array(DIMS), k: 1, exclude: [''] }, 'exclude[0]'],
      ];
      for (const [payload, field] of cases) {
        const err = await ask(payload);
        expect(err, field).toBeInstanceOf(BadRequestError);
        expect((err as BadRequestError).field).toBe(field);
      }
      const upsert = await shard
        .ask('0', 'upsert', { items: [{ item_id: 'x', vector: new Float32Array(3) }] })
        .catch((e: unknown) => e);
      expect((upsert as BadRequestError).field).toBe('items[0].vector');
      expect(
        unpackItems(await shard.ask('0', 'search', { vector: queryNear(items, prng(1)), k: 5 })),
      ).toHaveLength(5);
    });

    it('applies filters: excluded ids never return, categories are an allow-list', async () => {
      const node = await start();
      const shard = node.client.grouped<ItemShardProtocol>('items');
      const categoryOf = new Map(items.ids.map((id, row) => [id, items.categories[row]!]));
      const rand = prng(4);
      for (let q = 0; q < 10; q++) {
        const vector = queryNear(items, rand);
        const first = await shard.ask('0', 'search', { vector, k: 10 });
        const exclude = unpackItems(first).map((i) => i.item_id);
        const next = await shard.ask('0', 'search', { vector, k: 10, exclude });
        expect(unpackItems(next)).toHaveLength(10);
        expect(unpackItems(next).filter((i) => exclude.includes(i.item_id))).toEqual([]);
        const only = await shard.ask('0', 'search', {
          vector,
          k: 5,
          categories: ['cat_2', 'cat_5'],
        });
        expect(unpackItems(only)).toHaveLength(5);
        expect(
          unpackItems(only).every((i) => ['cat_2', 'cat_5'].includes(categoryOf.get(i.item_id)!)),
        ).toBe(true);
      }
    });

    it('shows an upsert to the next query and never returns a deleted item', async () => {
      const node = await start();
      const shard = node.client.grouped<ItemShardProtocol>('items');
      const vector = queryNear(items, prng(8));
      const before = await shard.ask('0', 'search', { vector, k: 5 });
      const best = unpackItems(before)[0]!;
      // A fresh item exactly on the query beats everything in the base.
      const upserted = await shard.ask('0', 'upsert', {
        items: [{ item_id: 'fresh_1', vector, category: 'cat_new' }],
      });
      expect(upserted).toEqual({ upserted: 1, delta: 1, seq: 1 });
      const after = await shard.ask('0', 'search', { vector, k: 5 });
      expect(unpackItems(after)[0]!.item_id).toBe('fresh_1');
      expect(unpackItems(after)[0]!.score).toBeCloseTo(1, 4);
      expect(
        unpackItems(after)
          .slice(1)
          .map((i) => i.item_id),
      ).toEqual(
        unpackItems(before)
          .slice(0, 4)
          .map((i) => i.item_id),
      );
      const onlyNew = await shard.ask('0', 'search', { vector, k: 5, categories: ['cat_new'] });
      expect(unpackItems(onlyNew).map((i) => i.item_id)).toEqual(['fresh_1']);

      const deleted = await shard.ask('0', 'delete', {
        item_ids: [best.item_id, 'fresh_1', 'nope'],
      });
      expect(deleted).toEqual({ deleted: 2, tombstones: 1, seq: 2 });
      const ids = (r: SearchReply): string[] => r.item_ids;
      const later = await shard.ask('0', 'search', { vector, k: 5 });
      expect(ids(later)).not.toContain(best.item_id);
      expect(ids(later)).not.toContain('fresh_1');
      expect(ids(later)).toHaveLength(5);
      expect(ids(later).slice(0, 4)).toEqual(ids(before).slice(1, 5));

      const stats = await shard.ask('0', 'stats', {});
      expect(stats).toMatchObject({
        shard: 0,
        delta: 0,
        tombstones: 1,
        dims: DIMS,
        metric: 'ip',
        model_version: 'suite-model',
        workers: 1,
        stream_seq: 2,
        events_skipped: 0,
      });
      expect(stats.vectors).toBe(stats.base_vectors - 1);
    });

    it('keeps a shard with no index file out of its queue group, without crashing', async () => {
      const cluster = index.use(await makeCluster({ prefix: uniquePrefix() }));
      const node = await cluster.node(
        [itemShardKind({ indexDir: join(index.dir, 'missing'), workers: 1 })],
        { host: { groups: { items: ['0'] } } },
      );
      // The replica never became ready, so it takes no traffic: callers see no responders.
      expect(node.host.ready).toBe(false);
      const err = await node.client
        .grouped<ItemShardProtocol>('items')
        .ask('0', 'stats', {}, { timeoutMs: 300 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NoRespondersError);
    });
  });
}
