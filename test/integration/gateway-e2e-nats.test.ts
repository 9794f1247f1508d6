/**
 * The whole system end to end through HTTP, on NATS: `recsys gateway` as its own process in front
 * of actor nodes (item shards and the feature writer on one, the ranker on its own, the user
 * actors and their feed on a third) over a nats-server and a redis-server the test starts, with
 * the tiny demo world's models, index and batch features. Over real HTTP: the original design's
 * request is answered whole, an unknown user is served cold and then moved by its clicks, a known
 * user reads their own writes, bad input is refused in the one error format naming the field, the
 * gateway is ready while everything runs, the ranker's node stopping degrades replies rather than
 * failing them, and the user actors' node stopping is answered 503 in time.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBuiltinKinds } from '../../actors/kinds.js';
import type { RecommendReply } from '../../actors/user/index.js';
import { resolveConfig } from '../../runtime/config/index.js';
import { FEEDBACK_TYPES } from '../../runtime/events/index.js';
import { silentLogger } from '../../runtime/log.js';
import type { RunningNode } from '../../runtime/node.js';
import { testCluster, testConfig, uniquePrefix } from '../helpers/cluster.js';
import type { RawConfig, TestCluster } from '../helpers/cluster.js';
import { spawnGateway } from '../helpers/gateway.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { writeConfig } from '../helpers/host-process.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer, startRedisServer } from '../helpers/servers.js';
import type { NatsServerHandle, RedisServerHandle } from '../helpers/servers.js';
import { WORLD_SHARDS, buildUserWorld, mergeRaw, startWorldNode } from '../helpers/user-world.js';
import type { UserWorld } from '../helpers/user-world.js';

const PARTITIONS = 16;
/** The gateway's `recommend.timeout_ms`: every recommendation, degraded or not, must beat it. */
const RECOMMEND_TIMEOUT_MS = 1000;
const DEFAULTS = resolveConfig({});
const MAX_COUNT = DEFAULTS.recommend.maxCount;
const BODY_LIMIT = DEFAULTS.gateway.bodyLimitBytes;
/**
 * The user actors' stage budgets, wider than the defaults (60 ms each) and well within the
 * gateway's: a stage late only because of load would add a degradation reason of its own, and
 * the tests check that a reply is whole, or degraded for the one reason a fault gives.
 */
const STAGE_BUDGETS = { retrieval_timeout_ms: 300, ranking_timeout_ms: 300 };
/**
 * Served items may be served again at once: the next reply then differs from the last only by
 * what feedback did, so a clicked item missing from it was left out because of the click, not
 * because it had just been served.
 */
const SERVED_AGAIN = { served_ttl_minutes: 0 };

interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  ms: number;
}

interface ErrorBody {
  error: { code: string; message: string; field?: string; request_id: string };
}

interface FeedbackAnswer {
  accepted: number;
  event_ids: string[];
  duplicates: number;
}

describeIntegration('the system end to end through the HTTP gateway, on NATS', () => {
  let nats: NatsServerHandle;
  let redis: RedisServerHandle;
  let world: UserWorld;
  let cluster: TestCluster;
  let gateway: GatewayProcess;
  let rankerNode: RunningNode;
  let userNode: RunningNode;
  const prefix = uniquePrefix('e2e');

  /** A node running `actors` only, on the file's servers, world and subject prefix. */
  const startNode = (actors: string[], over: RawConfig = {}): Promise<RunningNode> => {
    const raw = mergeRaw(world.raw, {
      redis: { url: redis.url },
      runtime: { partitions: PARTITIONS },
      ...over,
      host: { actors },
    });
    // The batch features are in Redis already (the first node put them there): it serves as
    // soon as it returns.
    const config = testConfig('nats', nats.url, raw);
    return cluster.node(createBuiltinKinds({ config, log: silentLogger() }), raw);
  };

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    const configPath = writeConfig({
      deployment: { prefix, transport: 'nats' },
      nats: { url: nats.url },
      runtime: { partitions: PARTITIONS },
      items: { shards: WORLD_SHARDS },
      log: { level: 'info' },
      metrics: { default_metrics: false, port: 0 },
      gateway: { host: '127.0.0.1' },
      recommend: { timeout_ms: RECOMMEND_TIMEOUT_MS },
    });
    // The gateway needs only NATS: it starts while the world is built.
    const [built, spawned] = await Promise.all([buildUserWorld(), spawnGateway(configPath)]);
    world = built;
    gateway = spawned;
    cluster = testCluster(nats.url, { prefix });
    // The first node loads the data set's batch features into Redis, where the others read them.
    await startWorldNode(cluster, world, {
      over: {
        redis: { url: redis.url },
        runtime: { partitions: PARTITIONS },
        host: { actors: ['items', 'features'] },
      },
      natsUrl: nats.url,
    });
    [rankerNode, userNode] = await Promise.all([
      startNode(['rank']),
      startNode(['user', 'user-feed'], { recommend: { ...STAGE_BUDGETS, ...SERVED_AGAIN } }),
    ]);
  }, 120_000);

  afterAll(async () => {
    if (gateway !== undefined && gateway.child.exitCode === null) {
      gateway.child.kill('SIGKILL');
      await gateway.exited;
    }
    await cluster?.close();
    await Promise.all([nats?.stop(), redis?.stop(), world?.close()]);
  });

  /** One HTTP request to the gateway; a JSON body is parsed, anything else kept as text. */
  async function http<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    options: { raw?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpAnswer<T>> {
    const started = performance.now();
    const response = await fetch(`${gateway.url}${path}`, {
      method,
      headers: {
        ...(body === undefined && options.raw === undefined
          ? {}
          : { 'content-type': 'application/json' }),
        ...options.headers,
      },
      ...(options.raw !== undefined
        ? { body: options.raw }
        : body === undefined
          ? {}
          : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    const ms = performance.now() - started;
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON: kept as text.
    }
    return { status: response.status, headers: response.headers, body: parsed as T, ms };
  }

  const recommend = (user: string, count: number) =>
    http<RecommendReply>('POST', '/recommend', { user_id: user, count });

  /** A recommendation that must come back whole: 200, `count` items, nothing degraded. */
  async function wholeReply(user: string, count: number): Promise<RecommendReply> {
    const answer = await recommend(user, count);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.degraded).toEqual([]);
    expect(answer.body.items).toHaveLength(count);
    return answer.body;
  }

  const ids = (reply: RecommendReply): string[] => reply.items.map((item) => item.item_id);

  const shareOf = (reply: RecommendReply, category: string): number =>
    reply.items.filter((item) => item.category === category).length / reply.items.length;

  /** Checks `answer` is the one error format: `status`, `code`, and the field it names, if any. */
  function expectError(
    answer: HttpAnswer,
    status: number,
    code: string,
    field?: string,
  ): ErrorBody['error'] {
    expect(answer.status, JSON.stringify(answer.body)).toBe(status);
    const body = answer.body as ErrorBody;
    expect(Object.keys(body)).toEqual(['error']);
    const { error } = body;
    expect(error.code).toBe(code);
    expect(typeof error.message).toBe('string');
    // The request id of the error is the answer's, so a client can find it in the logs.
    expect(error.request_id).toEqual(expect.any(String));
    expect(answer.headers.get('x-request-id')).toBe(error.request_id);
    if (field === undefined) {
      expect(error).not.toHaveProperty('field');
    } else {
      expect(error.field).toBe(field);
      expect(error.message.startsWith(`${field}: `), error.message).toBe(true);
    }
    return error;
  }

  /**
   * What a user clicks after `reply`: five items of one category (the `turn`-th least shown of
   * those the reply shows and with enough popular items), the first two of them shown in `reply`
   * and in `again` (the same request asked twice, so they are items the user is recommended
   * steadily), the others popular items of the category the user was not shown.
   */
  function clicksAfter(
    reply: RecommendReply,
    again: RecommendReply,
    turn: number,
  ): { category: string; clicks: string[]; shownClicked: string[] } {
    const counts = new Map<string, number>();
    for (const item of reply.items) counts.set(item.category, (counts.get(item.category) ?? 0) + 1);
    const repeated = new Set(ids(again));
    const steady = (c: string) =>
      reply.items.filter((item) => item.category === c && repeated.has(item.item_id));
    const popularOf = (c: string) => world.popular.filter((id) => world.categoryOf.get(id) === c);
    const eligible = [...world.itemsByCategory.keys()]
      .filter((c) => popularOf(c).length >= 30 && steady(c).length > 0)
      .sort((a, b) => counts.get(a)! - counts.get(b)! || (a < b ? -1 : 1));
    expect(eligible.length, 'categories shown steadily').toBeGreaterThan(0);
    const category = eligible[turn % Math.min(3, eligible.length)]!;
    const shownClicked = steady(category)
      .slice(0, 2)
      .map((item) => item.item_id);
    const shown = new Set(ids(reply));
    const unseen = popularOf(category)
      .filter((id) => !shown.has(id))
      .slice(0, 5 - shownClicked.length);
    return { category, clicks: [...shownClicked, ...unseen], shownClicked };
  }

  /**
   * For each user: a reply, the clicks on one category through `POST /feedback` (`send`), then
   * the next reply. Returns the mean share of the clicked category before and after, and checks
   * no clicked item comes back.
   */
  async function clickAndMeasure(
    users: readonly string[],
    send: (user: string, clicks: readonly string[]) => Promise<void>,
    expectCold: boolean,
  ): Promise<{ before: number; after: number; kept: number; afterMs: number[] }> {
    let before = 0;
    let after = 0;
    let kept = 0;
    const afterMs: number[] = [];
    for (const [i, user] of users.entries()) {
      const first = await wholeReply(user, 20);
      expect(first.cold_start).toBe(expectCold);
      const again = await wholeReply(user, 20);
      const { category, clicks, shownClicked } = clicksAfter(first, again, i);
      expect(clicks).toHaveLength(5);
      expect(shownClicked.length).toBeGreaterThan(0);
      await send(user, clicks);
      const started = performance.now();
      const next = await wholeReply(user, 20);
      afterMs.push(performance.now() - started);
      // Read-your-writes: every clicked item is gone at once, the steadily shown ones included.
      expect(ids(next).filter((id) => clicks.includes(id))).toEqual([]);
      for (const item of next.items) expect(item.category).toBe(world.categoryOf.get(item.item_id));
      // Items shown and not clicked may come back (served items are not held back here): the
      // clicked ones are gone because of the clicks.
      kept += ids(next).filter((id) => ids(again).includes(id)).length;
      before += shareOf(first, category);
      after += shareOf(next, category);
    }
    return { before: before / users.length, after: after / users.length, kept, afterMs };
  }

  it('is ready while every actor and the events stream answer', async () => {
    const answer = await http<{
      ready: boolean;
      not_ready: string[];
      checks: Record<string, { ok: boolean; detail: string }>;
    }>('GET', '/ready');
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.ready).toBe(true);
    expect(answer.body.not_ready).toEqual([]);
    expect(Object.keys(answer.body.checks)).toEqual([
      'user',
      'items.0',
      'items.1',
      'rank.gbdt',
      'events',
    ]);
    for (const [name, check] of Object.entries(answer.body.checks))
      expect(check.ok, `${name}: ${check.detail}`).toBe(true);
    expect(answer.body.checks['user']!.detail).toBe(
      `${PARTITIONS}/${PARTITIONS} partitions owned by 1 host`,
    );
    for (const shard of ['items.0', 'items.1'])
      expect(answer.body.checks[shard]!.detail).toMatch(/^[1-9]\d* items, index \S+$/);
    expect(answer.body.checks['events']!.detail).toContain(`stream ${prefix}_events`);
  });

  it("answers the original design's request whole, with the request id, and GET ?count=N", async () => {
    const user = world.users[0]!;
    const answer = await http<RecommendReply>('POST', '/recommend', {
      user_id: user,
      num_recommendations: 10,
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const reply = answer.body;
    // No request id was sent: the gateway made one, and the header and the reply agree on it.
    expect(reply.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.headers.get('x-request-id')).toBe(reply.request_id);
    expect(reply.user_id).toBe(user);
    expect(reply.items).toHaveLength(10);
    expect(new Set(ids(reply)).size).toBe(10);
    for (const [i, item] of reply.items.entries()) {
      expect(typeof item.item_id).toBe('string');
      expect(Number.isFinite(item.score)).toBe(true);
      if (i > 0) expect(item.score).toBeLessThanOrEqual(reply.items[i - 1]!.score);
      // The category comes from the item profiles in Redis, and is the data set's.
      expect(item.category).toBe(world.categoryOf.get(item.item_id));
    }
    expect(reply.variant).toEqual(expect.any(String));
    expect(reply.variant.length).toBeGreaterThan(0);
    expect(reply.degraded).toEqual([]);
    expect(reply.cold_start).toBe(false);
    // Both stages ran: retrieval on the shards' node, ranking on the ranker's.
    expect(reply.models.retrieval).toEqual(expect.any(String));
    expect(reply.models.ranker).toEqual(expect.any(String));
    expect(answer.ms).toBeLessThan(RECOMMEND_TIMEOUT_MS);

    // A request id the caller sends is carried through the actors and back.
    const traced = await http<RecommendReply>(
      'POST',
      '/recommend',
      { user_id: user, num_recommendations: 3 },
      { headers: { 'x-request-id': 'e2e-trace-1' } },
    );
    expect(traced.status).toBe(200);
    expect(traced.headers.get('x-request-id')).toBe('e2e-trace-1');
    expect(traced.body.request_id).toBe('e2e-trace-1');
    expect(traced.body.items).toHaveLength(3);

    const get = await http<RecommendReply>('GET', `/recommend/${encodeURIComponent(user)}?count=5`);
    expect(get.status, JSON.stringify(get.body)).toBe(200);
    expect(get.body.user_id).toBe(user);
    expect(get.body.items).toHaveLength(5);
    expect(get.body.degraded).toEqual([]);
    expect(get.headers.get('x-request-id')).toBe(get.body.request_id);
    for (const item of get.body.items)
      expect(item.category).toBe(world.categoryOf.get(item.item_id));
  });

  it('serves an unknown user cold, then moves their next reply towards what they clicked', async () => {
    const users = Array.from({ length: 4 }, () => `new-user-${randomUUID().slice(0, 8)}`);
    // The original design's body, one event per request, for the first two clicks; a batch for
    // the rest.
    const send = async (user: string, clicks: readonly string[]): Promise<void> => {
      for (const item of clicks.slice(0, 2)) {
        const answer = await http<FeedbackAnswer>('POST', '/feedback', {
          user_id: user,
          item_id: item,
          event_type: 'click',
        });
        expect(answer.status, JSON.stringify(answer.body)).toBe(202);
        expect(answer.body.accepted).toBe(1);
        expect(answer.body.event_ids).toHaveLength(1);
        expect(answer.body.duplicates).toBe(0);
      }
      const batch = await http<FeedbackAnswer>('POST', '/feedback', {
        events: clicks
          .slice(2)
          .map((item) => ({ user_id: user, item_id: item, event_type: 'click' })),
      });
      expect(batch.status, JSON.stringify(batch.body)).toBe(202);
      expect(batch.body.accepted).toBe(clicks.length - 2);
      expect(new Set(batch.body.event_ids).size).toBe(clicks.length - 2);
      expect(batch.body.duplicates).toBe(0);
    };
    const { before, after, kept, afterMs } = await clickAndMeasure(users, send, true);
    console.log(
      `cold start over HTTP: share of the clicked category ${before.toFixed(3)} → ${after.toFixed(3)}; ${kept} unclicked items shown again; next reply in ${afterMs.map((ms) => ms.toFixed(0)).join('/')} ms`,
    );
    expect(after - before).toBeGreaterThan(0.1);
  });

  it("reflects a known user's clicks in their very next reply (read-your-writes)", async () => {
    const users = world.users.slice(60, 64);
    const send = async (user: string, clicks: readonly string[]): Promise<void> => {
      const batch = await http<FeedbackAnswer>('POST', '/feedback', {
        events: clicks.map((item) => ({ user_id: user, item_id: item, event_type: 'click' })),
      });
      expect(batch.status, JSON.stringify(batch.body)).toBe(202);
      expect(batch.body.accepted).toBe(clicks.length);
    };
    const { before, after, kept, afterMs } = await clickAndMeasure(users, send, false);
    console.log(
      `known users over HTTP: share of the clicked category ${before.toFixed(3)} → ${after.toFixed(3)}; ${kept} unclicked items shown again; next reply in ${afterMs.map((ms) => ms.toFixed(0)).join('/')} ms`,
    );
    expect(after - before).toBeGreaterThan(0.1);
  });

  it('refuses bad input with 400 (413 when too large) in the one error format, naming the field', async () => {
    const user = world.users[1]!;
    const item = world.popular[0]!;
    const cases: Array<{
      what: string;
      send: () => Promise<HttpAnswer>;
      status?: number;
      code?: string;
      field?: string;
      says: RegExp;
    }> = [
      {
        what: 'no user_id',
        send: () => http('POST', '/recommend', { num_recommendations: 10 }),
        field: 'user_id',
        says: /^user_id: is required$/,
      },
      {
        what: 'count 0',
        send: () => http('POST', '/recommend', { user_id: user, count: 0 }),
        field: 'count',
        says: new RegExp(`^count: must be an integer in 1\\.\\.${MAX_COUNT}$`),
      },
      {
        what: 'count above max_count',
        send: () => http('POST', '/recommend', { user_id: user, count: MAX_COUNT + 1 }),
        field: 'count',
        says: new RegExp(`^count: must be an integer in 1\\.\\.${MAX_COUNT}$`),
      },
      {
        what: 'num_recommendations above max_count',
        send: () => http('POST', '/recommend', { user_id: user, num_recommendations: 1000 }),
        field: 'num_recommendations',
        says: /^num_recommendations: must be an integer in 1\.\./,
      },
      {
        what: 'count a string',
        send: () => http('POST', '/recommend', { user_id: user, count: '10' }),
        field: 'count',
        says: /^count: must be an integer/,
      },
      {
        what: 'count 0 in the query',
        send: () => http('GET', `/recommend/${encodeURIComponent(user)}?count=0`),
        field: 'count',
        says: /^count: must be an integer in 1\.\./,
      },
      {
        what: 'count above max_count in the query',
        send: () => http('GET', `/recommend/${encodeURIComponent(user)}?count=${MAX_COUNT + 1}`),
        field: 'count',
        says: /^count: must be an integer in 1\.\./,
      },
      {
        what: 'a misspelt field',
        send: () => http('POST', '/recommend', { user_id: user, cuont: 5 }),
        field: 'cuont',
        says: /^cuont: unknown field/,
      },
      {
        what: 'an unknown event_type',
        send: () =>
          http('POST', '/feedback', { user_id: user, item_id: item, event_type: 'hover' }),
        field: 'event_type',
        says: new RegExp(`^event_type: must be one of ${FEEDBACK_TYPES.join(', ')}$`),
      },
      {
        what: 'an unknown event_type in a batch',
        send: () =>
          http('POST', '/feedback', {
            events: [
              { user_id: user, item_id: item, event_type: 'click' },
              { user_id: user, item_id: item, event_type: 'hover' },
            ],
          }),
        field: 'events[1].event_type',
        says: /^events\[1\]\.event_type: must be one of /,
      },
      {
        what: 'no event_type',
        send: () => http('POST', '/feedback', { user_id: user, item_id: item }),
        field: 'event_type',
        says: /^event_type: is required/,
      },
      {
        what: 'item_id a number',
        send: () => http('POST', '/feedback', { user_id: user, item_id: 42, event_type: 'click' }),
        field: 'item_id',
        says: /^item_id: must be a string/,
      },
      {
        what: 'a body that is not JSON',
        send: () => http('POST', '/recommend', undefined, { raw: '{"user_id": "u1", "count":' }),
        field: 'body',
        says: /^body: .*not valid JSON/,
      },
      {
        what: 'a feedback body that is not JSON',
        send: () => http('POST', '/feedback', undefined, { raw: 'user_id=u1&item_id=i1' }),
        field: 'body',
        says: /^body: .*not valid JSON/,
      },
      {
        what: 'a body over the limit',
        send: () =>
          http('POST', '/feedback', {
            user_id: user,
            item_id: item,
            event_type: 'click',
            request_id: 'x'.repeat(BODY_LIMIT),
          }),
        status: 413,
        code: 'payload_too_large',
        says: /gateway\.body_limit_bytes/,
      },
    ];
    for (const { what, send, status, code, field, says } of cases) {
      const answer = await send();
      const error = expectError(answer, status ?? 400, code ?? 'bad_request', field);
      expect(error.message, what).toMatch(says);
      // Refused before any actor was asked.
      expect(answer.ms, what).toBeLessThan(500);
    }
  });

  it('degrades to the retrieval order when the ranker node stops, and answers 503 in time when the user node stops', async () => {
    const users = world.users.slice(100, 105);
    expect((await wholeReply(users[0]!, 10)).models.ranker).toEqual(expect.any(String));

    await rankerNode.stop();
    const fallbackMs: number[] = [];
    for (const user of users.slice(1)) {
      const answer = await recommend(user, 10);
      fallbackMs.push(answer.ms);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.ms).toBeLessThan(RECOMMEND_TIMEOUT_MS);
      const reply = answer.body;
      expect(reply.degraded).toEqual(['ranker_fallback']);
      expect(reply.models.ranker).toBeUndefined();
      expect(reply.items).toHaveLength(10);
      // Unranked: the order is retrieval's, and says so.
      for (const [i, item] of reply.items.entries()) {
        expect(item.score).toBe(item.retrieval_score);
        if (i > 0) expect(item.score).toBeLessThanOrEqual(reply.items[i - 1]!.score);
      }
    }
    const ready = await http<{ not_ready: string[] }>('GET', '/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.not_ready).toEqual(['rank.gbdt']);

    await userNode.stop();
    const unserved = users[1]!;
    const answer = await recommend(unserved, 10);
    const error = expectError(answer, 503, 'no_responders');
    expect(error.message).toBe(
      `the user actor of ${JSON.stringify(unserved)} (recommend) is not reachable: no host serves it right now`,
    );
    expect(answer.headers.get('retry-after')).toBe('1');
    // The gateway retries within its budget and then answers: never a caller left hanging.
    expect(answer.ms).toBeLessThan(RECOMMEND_TIMEOUT_MS + 300);
    const get = await http('GET', `/recommend/${encodeURIComponent(unserved)}?count=3`);
    expectError(get, 503, 'no_responders');
    expect(get.ms).toBeLessThan(RECOMMEND_TIMEOUT_MS + 300);
    console.log(
      `ranker node gone: replies in ${fallbackMs.map((ms) => ms.toFixed(0)).join('/')} ms; user node gone: 503 in ${answer.ms.toFixed(0)}/${get.ms.toFixed(0)} ms`,
    );
  });
});
