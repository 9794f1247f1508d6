/**
 * The `user` actor over a real nats-server (JetStream) and redis-server, started by the test: two
 * hosts share the user partitions by leases, the batch features are in Redis, and the tiny demo
 * world's index, ranker and user tower serve. Recommendations come back whole, and a user's clicks
 * move their next list towards the clicked category, on whichever host owns them; replicas of the
 * ranker and of a shard can stop without a reply degrading; with Redis gone, replies still come
 * back in time, saying the features were missing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RecommendReply } from '../../actors/user/index.js';
import { testCluster, uniquePrefix } from '../helpers/cluster.js';
import type { TestCluster } from '../helpers/cluster.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer, startRedisServer } from '../helpers/servers.js';
import type { NatsServerHandle, RedisServerHandle } from '../helpers/servers.js';
import {
  buildUserWorld,
  feedbackEvent,
  recommend,
  sendFeedback,
  shareOf,
  startWorldNode,
} from '../helpers/user-world.js';
import type { UserWorld } from '../helpers/user-world.js';

describeIntegration('the user actor over NATS and Redis', () => {
  let nats: NatsServerHandle;
  let redis: RedisServerHandle;
  let world: UserWorld;
  let cluster: TestCluster;

  beforeAll(async () => {
    [nats, redis, world] = await Promise.all([
      startNatsServer(),
      startRedisServer(),
      buildUserWorld(),
    ]);
    cluster = testCluster(nats.url, { prefix: uniquePrefix('un') });
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await Promise.all([nats?.stop(), redis?.stop(), world?.close()]);
  });

  it('recommends on two hosts, and reflects clicks at once', async () => {
    const over = { redis: { url: redis.url } };
    const first = await startWorldNode(cluster, world, { over, natsUrl: nats.url });
    const second = await startWorldNode(cluster, world, {
      over: { ...over, host: { actors: ['features', 'user', 'user-feed'] } },
      natsUrl: nats.url,
    });
    const users = world.users.slice(60, 66);
    let before = 0;
    let after = 0;
    const latencies: number[] = [];
    for (const [i, user] of users.entries()) {
      // Either host's client reaches the user's owner.
      const node = i % 2 === 0 ? first : second;
      const reply: RecommendReply = await recommend(node, user, { count: 20 }, 5000);
      expect(reply.items).toHaveLength(20);
      expect(reply.degraded).toEqual([]);
      for (const item of reply.items)
        expect(item.category).toBe(world.categoryOf.get(item.item_id));
      const counts = new Map<string, number>();
      for (const item of reply.items)
        counts.set(item.category, (counts.get(item.category) ?? 0) + 1);
      const category = [...world.itemsByCategory.keys()]
        .filter((c) => world.popular.filter((id) => world.categoryOf.get(id) === c).length >= 30)
        .sort((a, b) => (counts.get(a) ?? 0) - (counts.get(b) ?? 0) || (a < b ? -1 : 1))[i % 3]!;
      const shown = new Set(reply.items.map((item) => item.item_id));
      const clicks = world.popular
        .filter((id) => world.categoryOf.get(id) === category && !shown.has(id))
        .slice(0, 5);
      const now = Date.now();
      await sendFeedback(
        node,
        clicks.map((item, k) => feedbackEvent(user, item, 'click', now - (5 - k) * 1000)),
      );
      const started = performance.now();
      const next = await recommend(node, user, { count: 20 }, 5000);
      latencies.push(performance.now() - started);
      before += shareOf(reply, category);
      after += shareOf(next, category);
    }
    before /= users.length;
    after /= users.length;
    latencies.sort((a, b) => a - b);
    console.log(
      `over NATS: share of the clicked category ${before.toFixed(3)} → ${after.toFixed(3)}; recommend after feedback p50 ${latencies[Math.floor(latencies.length / 2)]!.toFixed(2)} ms`,
    );
    expect(after - before).toBeGreaterThan(0.1);
  });

  it('keeps answering whole when a ranker replica and a shard replica stop', async () => {
    const over = { redis: { url: redis.url } };
    const shardOne = await startWorldNode(cluster, world, {
      over: { ...over, host: { actors: ['items'], groups: { items: ['1'] } } },
      natsUrl: nats.url,
    });
    const ranker = await startWorldNode(cluster, world, {
      over: { ...over, host: { actors: ['rank'] } },
      natsUrl: nats.url,
    });
    const users = world.users.slice(90, 96);
    // The first test's host serves the ranker and both shards too: once these replicas stop, its
    // replicas in the same queue groups take every call, and no reply degrades.
    const client = await startWorldNode(cluster, world, {
      over: { ...over, host: { actors: ['user'] } },
      natsUrl: nats.url,
    });
    const ask = (user: string) => recommend(client, user, { count: 10 }, 1000);
    expect((await ask(users[0]!)).items).toHaveLength(10);
    await ranker.stop();
    await shardOne.stop();
    for (const user of users.slice(1)) {
      const started = performance.now();
      const reply = await ask(user);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(reply.items).toHaveLength(10);
      expect(reply.degraded).toEqual([]);
    }
  });

  it('answers in time without Redis: the feature reads fall back to defaults, marked', async () => {
    const node = await startWorldNode(cluster, world, {
      over: { redis: { url: redis.url }, host: { actors: ['user'] } },
      natsUrl: nats.url,
    });
    await redis.kill();
    // Users no host has served yet: nothing of theirs is in any feature cache.
    for (const user of world.users.slice(120, 124)) {
      const started = performance.now();
      const reply = await recommend(node, user, { count: 10 }, 1000);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(reply.items.length).toBeGreaterThan(0);
      expect(reply.degraded).toContain('features_missing');
    }
  });
});
