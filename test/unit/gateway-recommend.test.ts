/**
 * The gateway's recommendation routes against the real `user` actor, on the in-process transport
 * over a real small world (the demo's tiny synthetic data set, its two-tower model, GBDT ranker and
 * a 2-shard index, built once for the file): the original design's request, request ids carried
 * into the reply, read-your-writes through `POST /feedback`, the stage metrics, readiness with
 * every actor up, and 504 when the actor cannot answer within the gateway's budget.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUEST_ID_HEADER } from '../../gateway/index.js';
import type { RecommendReply, SessionState, UserProtocol } from '../../actors/user/index.js';
import type { RunningNode } from '../../runtime/node.js';
import { testCluster, testConfig } from '../helpers/cluster.js';
import type { RawConfig, TestCluster } from '../helpers/cluster.js';
import { gatewayOn, storedFeedback } from '../helpers/gateway.js';
import type { TestGateway } from '../helpers/gateway.js';
import { buildUserWorld, mergeRaw, startWorldNode } from '../helpers/user-world.js';
import type { UserWorld } from '../helpers/user-world.js';

const OVER: RawConfig = { runtime: { partitions: 8 } };

describe('the gateway in front of the user actor', () => {
  let world: UserWorld;
  let cluster: TestCluster;
  let node: RunningNode;
  let gw: TestGateway;

  beforeAll(async () => {
    world = await buildUserWorld();
    cluster = testCluster(undefined);
    node = await startWorldNode(cluster, world, { over: OVER });
    // A generous budget here: a machine busy with other suites must not turn these into 504s.
    const gatewayRaw = mergeRaw(world.raw, { ...OVER, recommend: { timeout_ms: 2000 } });
    gw = await gatewayOn(node, testConfig('inproc', undefined, gatewayRaw), {
      readyTimeoutMs: 2000,
    });
  }, 120_000);

  afterAll(async () => {
    await gw?.app.close();
    await cluster?.close();
    await world?.close();
  });

  const state = (user: string): Promise<SessionState> =>
    node.client.keyed<UserProtocol>('user').ask(user, 'state', {}, { timeoutMs: 5000 });

  it("answers the original design's request with the actor's reply and the request id", async () => {
    const user = world.users[0]!;
    const response = await gw.app.inject({
      method: 'POST',
      url: '/recommend',
      payload: { user_id: user, num_recommendations: 10 },
      headers: { 'x-request-id': 'legacy-1' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers[REQUEST_ID_HEADER]).toBe('legacy-1');
    const reply = response.json<RecommendReply>();
    expect(reply.request_id).toBe('legacy-1');
    expect(reply.user_id).toBe(user);
    expect(reply.items).toHaveLength(10);
    for (const item of reply.items) {
      expect(typeof item.item_id).toBe('string');
      expect(Number.isFinite(item.score)).toBe(true);
      expect(world.categoryOf.get(item.item_id)).toBe(item.category);
    }
    expect(reply.variant).toEqual(expect.any(String));
    expect(Array.isArray(reply.degraded)).toBe(true);
    expect(reply.timings_ms.total).toBeGreaterThanOrEqual(0);
    // `count` wins over the former name.
    const both = await gw.app.inject({
      method: 'POST',
      url: '/recommend',
      payload: { user_id: user, count: 4, num_recommendations: 10 },
    });
    expect(both.json<RecommendReply>().items).toHaveLength(4);
  });

  it('answers GET /recommend/:userId?count=N, with a category filter honoured by POST', async () => {
    const user = world.users[1]!;
    const get = await gw.app.inject({ url: `/recommend/${encodeURIComponent(user)}?count=3` });
    expect(get.statusCode).toBe(200);
    expect(get.json<RecommendReply>().items).toHaveLength(3);
    const category = [...world.itemsByCategory.entries()].find(([, ids]) => ids.length >= 20)![0];
    const filtered = await gw.app.inject({
      method: 'POST',
      url: '/recommend',
      payload: { user_id: user, count: 5, categories: [category], context: { page: 'home' } },
    });
    expect(filtered.statusCode).toBe(200);
    const items = filtered.json<RecommendReply>().items;
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((item) => item.category === category)).toBe(true);
  });

  it("reflects feedback in the user's session before the 202 (read-your-writes)", async () => {
    const user = world.users[2]!;
    const shown = (
      await gw.app.inject({ method: 'POST', url: '/recommend', payload: { user_id: user } })
    )
      .json<RecommendReply>()
      .items.map((item) => item.item_id);
    const before = await state(user);
    const clicked = shown.slice(0, 3);
    const response = await gw.app.inject({
      method: 'POST',
      url: '/feedback',
      payload: {
        events: clicked.map((item) => ({ user_id: user, item_id: item, event_type: 'click' })),
      },
    });
    expect(response.statusCode).toBe(202);
    // No waiting: the gateway told the actor before it answered.
    const after = await state(user);
    expect(after.events).toBe(before.events + 3);
    expect(after.history.slice(-3)).toEqual(clicked);
    // And the stream holds them (the source of truth).
    const stored = await storedFeedback(gw.events, 'test');
    const ids = response.json<{ event_ids: string[] }>().event_ids;
    expect(stored.filter((e) => ids.includes(e.event_id))).toHaveLength(3);
    // Items the user clicked are not recommended again.
    const next = (
      await gw.app.inject({ method: 'POST', url: '/recommend', payload: { user_id: user } })
    )
      .json<RecommendReply>()
      .items.map((item) => item.item_id);
    expect(next.filter((item) => clicked.includes(item))).toEqual([]);
  });

  it('counts stages, impressions and engagements by variant in /metrics', async () => {
    const user = world.users[3]!;
    const reply = (
      await gw.app.inject({
        method: 'POST',
        url: '/recommend',
        payload: { user_id: user, count: 5 },
      })
    ).json<RecommendReply>();
    await gw.app.inject({
      method: 'POST',
      url: '/feedback',
      payload: {
        user_id: user,
        item_id: reply.items[0]!.item_id,
        event_type: 'click',
        request_id: reply.request_id,
        variant: reply.variant,
      },
    });
    const text = (await gw.app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(
      /recsys_gateway_recommend_stage_duration_seconds_count\{stage="total"\} \d+/,
    );
    expect(text).toMatch(
      /recsys_gateway_recommend_stage_duration_seconds_count\{stage="ranking"\} \d+/,
    );
    expect(text).toMatch(
      new RegExp(`recsys_gateway_impressions_total\\{variant="${reply.variant}"\\} \\d+`),
    );
    expect(text).toContain(
      `recsys_gateway_engagements_total{variant="${reply.variant}",type="click"}`,
    );
    expect(text).toMatch(/recsys_gateway_observe_total\{outcome="ok"\} \d+/);
    expect(text).toMatch(
      /recsys_gateway_http_request_duration_seconds_count\{method="POST",route="\/recommend",status="200"\} \d+/,
    );
    // The actors' own metrics share the registry.
    expect(text).toContain(
      'recsys_actor_handler_duration_seconds_count{kind="user",op="recommend"}',
    );
  });

  it('is ready when the user actors, every shard, the ranker and the stream answer', async () => {
    const response = await gw.app.inject({ url: '/ready' });
    const report = response.json<{
      ready: boolean;
      not_ready: string[];
      checks: Record<string, { ok: boolean; detail: string }>;
    }>();
    expect(report.not_ready).toEqual([]);
    expect(response.statusCode).toBe(200);
    expect(Object.keys(report.checks)).toEqual([
      'user',
      'items.0',
      'items.1',
      'rank.gbdt',
      'events',
    ]);
    expect(report.checks['user']!.detail).toBe('8/8 partitions owned by 1 host');
  });

  it('answers 504 naming the budget when the actor cannot answer in time', async () => {
    // The gateway's budget is 10 ms (the least the config allows); a burst for one user queues in
    // its actor's serial mailbox, and the requests still waiting at their deadline are dropped
    // by the actor unanswered.
    const tight = await gatewayOn(
      node,
      testConfig(
        'inproc',
        undefined,
        mergeRaw(world.raw, { ...OVER, recommend: { timeout_ms: 10 } }),
      ),
    );
    try {
      const user = world.users[4]!;
      const responses = await Promise.all(
        Array.from({ length: 40 }, () =>
          tight.app.inject({ url: `/recommend/${encodeURIComponent(user)}?count=10` }),
        ),
      );
      const statuses = responses.map((r) => r.statusCode);
      expect(statuses.every((s) => s === 200 || s === 504)).toBe(true);
      const late = responses.find((r) => r.statusCode === 504);
      expect(late, `statuses: ${statuses.join(',')}`).toBeDefined();
      const error = late!.json<{ error: { code: string; message: string } }>().error;
      expect(error.code).toBe('timeout');
      expect(error.message).toBe(
        `the user actor of ${JSON.stringify(user)} (recommend) did not answer within 10 ms (recommend.timeout_ms)`,
      );
    } finally {
      await tight.app.close();
    }
  });
});
