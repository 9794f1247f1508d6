/**
 * The `user` actor over a real nats-server (JetStream) and redis-server under faults: the last
 * replica of an item shard stops (then the last of the other), the last ranker replica stops and a
 * new one starts, malformed requests arrive as raw NATS messages, and a burst of concurrent
 * requests carries a short deadline. Each test runs a cluster of its own (its own subject prefix)
 * on the servers and world the file shares, so no replica of one test can answer for another's.
 */
import { headers as natsHeaders } from '@nats-io/nats-core';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { shardOf } from '../../actors/item-shard/index.js';
import { createBuiltinKinds } from '../../actors/kinds.js';
import { Degraded } from '../../actors/user/index.js';
import type { RecommendReply, UserProtocol } from '../../actors/user/index.js';
import { ActorClient } from '../../runtime/client/client.js';
import { resolveConfig } from '../../runtime/config/index.js';
import { BadRequestError, RecsysError } from '../../runtime/errors.js';
import type { WireError } from '../../runtime/errors.js';
import { silentLogger } from '../../runtime/log.js';
import type { RunningNode } from '../../runtime/node.js';
import { partitionOf } from '../../runtime/placement/hash.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import { Header } from '../../runtime/wire.js';
import { testCluster, testConfig, uniquePrefix } from '../helpers/cluster.js';
import type { RawConfig, TestCluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/eventually.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer, startRedisServer } from '../helpers/servers.js';
import type { NatsServerHandle, RedisServerHandle } from '../helpers/servers.js';
import {
  WORLD_SHARDS,
  buildUserWorld,
  feedbackEvent,
  mergeRaw,
  recommend,
  startWorldNode,
} from '../helpers/user-world.js';
import type { UserWorld } from '../helpers/user-world.js';

/** The timeout of the requests the fault tests send: every reply must beat it. */
const TIMEOUT_MS = 1000;
const MAX_COUNT = resolveConfig({}).recommend.maxCount;
/**
 * Stage budgets of the user actor in the fault tests, wider than the defaults (60 ms each) and
 * still well within {@link TIMEOUT_MS}: a stage late only because of load would add a reason of
 * its own, and the tests check the reasons the faults give.
 */
const FAULT_BUDGETS: RawConfig = {
  recommend: { retrieval_timeout_ms: 300, ranking_timeout_ms: 200 },
};
const KNOWN_REASONS = new Set<string>(Object.values(Degraded));

const state = (node: RunningNode, user: string) =>
  node.client.keyed<UserProtocol>('user').ask(user, 'state', {}, { timeoutMs: 5000 });

async function timedRecommend(
  node: RunningNode,
  user: string,
  count: number,
): Promise<{ reply: RecommendReply; ms: number }> {
  const started = performance.now();
  const reply = await recommend(node, user, { count }, TIMEOUT_MS);
  return { reply, ms: performance.now() - started };
}

/** Scores best first: a tie is fine, a rise is not. */
function expectNonIncreasing(reply: RecommendReply): void {
  const scores = reply.items.map((item) => item.score);
  for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeLessThanOrEqual(scores[i - 1]!);
}

/** The node's `recommend` messages of the user kind so far, by outcome (ok, error, expired...). */
async function recommendsHandled(node: RunningNode): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const { labels, value } of (await node.metrics.messages.get()).values) {
    if (labels['kind'] === 'user' && labels['op'] === 'recommend')
      out.set(String(labels['outcome']), value);
  }
  return out;
}

const sumOutcomes = (byOutcome: ReadonlyMap<string, number>): number =>
  [...byOutcome.values()].reduce((a, b) => a + b, 0);

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** A raw NATS request as a service in any language would send it: bytes and, unless null, a deadline. */
async function rawRequest(
  nc: NatsConnection,
  subject: string,
  body: string | Uint8Array,
  deadlineMs: number | null = 2000,
): Promise<Msg> {
  if (deadlineMs === null) return nc.request(subject, body, { timeout: 3000 });
  const hdrs = natsHeaders();
  hdrs.set(Header.Deadline, String(Date.now() + deadlineMs));
  return nc.request(subject, body, { timeout: 3000, headers: hdrs });
}

/** Checks `msg` is an error reply of `code` whose wire error names `field`; returns that error. */
function expectErrorReply(msg: Msg, code: string, status: string, field?: string): WireError {
  expect(msg.headers?.get(Header.ErrorCode)).toBe(code);
  expect(msg.headers?.get(Header.ServiceErrorCode)).toBe(status);
  expect(msg.headers?.get(Header.ErrorRetryable)).toBe('false');
  const { error } = msg.json<{ error: WireError }>();
  expect(error.code).toBe(code);
  expect(error.retryable).toBe(false);
  // NATS tools show the header; it must say the same as the body.
  expect(msg.headers?.get(Header.ServiceError)).toBe(error.message);
  if (field !== undefined) {
    expect(error.data?.['field']).toBe(field);
    expect(error.message.startsWith(`${field}: `), error.message).toBe(true);
  }
  return error;
}

describeIntegration('the user actor over NATS and Redis, under faults', () => {
  let nats: NatsServerHandle;
  let redis: RedisServerHandle;
  let world: UserWorld;
  let cluster: TestCluster | undefined;

  beforeAll(async () => {
    [nats, redis, world] = await Promise.all([
      startNatsServer(),
      startRedisServer(),
      buildUserWorld(),
    ]);
  }, 120_000);
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });
  afterAll(async () => {
    await cluster?.close();
    await Promise.all([nats?.stop(), redis?.stop(), world?.close()]);
  });

  /** A node of this test's cluster, on the file's servers and world. */
  const start = (over: RawConfig = {}): Promise<RunningNode> => {
    cluster ??= testCluster(nats.url, { prefix: uniquePrefix('uf') });
    return startWorldNode(cluster, world, {
      over: { redis: { url: redis.url }, ...over },
      natsUrl: nats.url,
    });
  };

  /**
   * A node of this test's cluster without loading the batch features, which an earlier node of
   * the cluster has put in Redis: it serves as soon as it returns.
   */
  const startBare = (over: RawConfig): Promise<RunningNode> => {
    cluster ??= testCluster(nats.url, { prefix: uniquePrefix('uf') });
    const raw = mergeRaw(world.raw, { redis: { url: redis.url }, ...over });
    const config = testConfig('nats', nats.url, raw);
    return cluster.node(createBuiltinKinds({ config, log: silentLogger() }), raw);
  };

  it('answers from the shard left when the last replica of the other stops, then from popular items', async () => {
    const shardZero = await start({ host: { actors: ['items'], groups: { items: ['0'] } } });
    const shardOne = await start({ host: { actors: ['items'], groups: { items: ['1'] } } });
    const front = await start({
      ...FAULT_BUDGETS,
      host: { actors: ['features', 'rank', 'user'] },
    });
    const users = world.users.slice(130, 139);
    // Whole while both shards serve: what degrades below is the stops' doing.
    const whole = await recommend(front, users[0]!, { count: 10 }, 5000);
    expect(whole.degraded).toEqual([]);
    expect(whole.items).toHaveLength(10);

    const partialMs: number[] = [];
    const popularMs: number[] = [];
    await shardOne.stop();
    for (const user of users.slice(1, 5)) {
      const { reply, ms } = await timedRecommend(front, user, 10);
      partialMs.push(ms);
      expect(ms).toBeLessThan(TIMEOUT_MS);
      expect(reply.degraded).toContain(Degraded.ShardsMissing);
      expect(reply.degraded).not.toContain(Degraded.PopularFallback);
      expect(reply.models.retrieval).toBe(whole.models.retrieval);
      expect(reply.items).toHaveLength(10);
      // Candidates come from the shard that still serves, and nowhere else.
      for (const item of reply.items) {
        expect(shardOf(item.item_id, WORLD_SHARDS)).toBe(0);
        expect(item.retrieval_score).toEqual(expect.any(Number));
      }
    }

    await shardZero.stop();
    for (const user of users.slice(5)) {
      const { reply, ms } = await timedRecommend(front, user, 10);
      popularMs.push(ms);
      expect(ms).toBeLessThan(TIMEOUT_MS);
      expect(reply.degraded).toEqual(
        expect.arrayContaining([Degraded.ShardsMissing, Degraded.PopularFallback]),
      );
      expect(reply.models).toEqual({});
      expect(reply.items).toHaveLength(10);
      // The popular items, most popular first (the user's own history left out).
      const ranks = reply.items.map((item) => world.popular.indexOf(item.item_id));
      for (const [i, rank] of ranks.entries()) {
        expect(rank).toBeGreaterThanOrEqual(0);
        if (i > 0) expect(rank).toBeGreaterThan(ranks[i - 1]!);
        expect(reply.items[i]!.retrieval_score).toBeUndefined();
        expect(reply.items[i]!.category).toBe(world.categoryOf.get(reply.items[i]!.item_id));
      }
      expectNonIncreasing(reply);
    }
    console.log(
      `shard 1 gone: replies in ${partialMs.map((ms) => ms.toFixed(0)).join('/')} ms; every shard gone: ${popularMs.map((ms) => ms.toFixed(0)).join('/')} ms`,
    );
    // The first query after a stop waits out its retrieval budget (300 ms here) for the shard to
    // come back; the next ones leave the shard out at once and answer in a fraction of it.
    expect(Math.max(...partialMs.slice(1))).toBeLessThan(150);
    expect(Math.max(...popularMs.slice(1))).toBeLessThan(150);
  });

  it('keeps the retrieval order when the last ranker stops, and ranks again soon after one starts', async () => {
    await start({ host: { actors: ['features', 'items'] } });
    const ranker = await start({ host: { actors: ['rank'] } });
    const front = await start({ ...FAULT_BUDGETS, host: { actors: ['user'] } });
    const users = world.users.slice(150, 160);
    const whole = await recommend(front, users[0]!, { count: 10 }, 5000);
    expect(whole.degraded).toEqual([]);
    expect(whole.models.ranker).toEqual(expect.any(String));

    await ranker.stop();
    const fallbackMs: number[] = [];
    for (const user of users.slice(1, 5)) {
      const { reply, ms } = await timedRecommend(front, user, 10);
      fallbackMs.push(ms);
      expect(ms).toBeLessThan(TIMEOUT_MS);
      expect(reply.degraded).toEqual([Degraded.RankerFallback]);
      expect(reply.models.ranker).toBeUndefined();
      expect(reply.models.retrieval).toBe(whole.models.retrieval);
      expect(reply.items).toHaveLength(10);
      for (const item of reply.items) expect(item.score).toBe(item.retrieval_score);
      expectNonIncreasing(reply);
    }

    // Requests keep coming while a new replica starts, so the slot is freshly marked as having
    // no responders when it arrives: the actor must ask again on its own, not wait for a restart.
    let asking = true;
    const during: { reply: RecommendReply; ms: number }[] = [];
    const background = (async () => {
      for (let i = 0; asking; i++) {
        during.push(await timedRecommend(front, users[5 + (i % 5)]!, 10));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    let up: number;
    try {
      // Started bare (the features are in Redis already): it serves from the moment it returns.
      await startBare({ host: { actors: ['rank'] } });
      up = performance.now();
    } finally {
      asking = false;
      await background;
    }
    expect(during.length).toBeGreaterThan(0);
    for (const { reply, ms } of during) {
      expect(ms).toBeLessThan(TIMEOUT_MS);
      expect(reply.items).toHaveLength(10);
      // Ranked, or said not to be: never an unranked list passed off as ranked.
      if (reply.models.ranker === undefined)
        expect(reply.degraded).toContain(Degraded.RankerFallback);
    }

    let rankedAgain: RecommendReply | undefined;
    let turn = 0;
    while (performance.now() - up < 5000) {
      const { reply, ms } = await timedRecommend(front, users[1 + (turn++ % 9)]!, 10);
      expect(ms).toBeLessThan(TIMEOUT_MS);
      expect(reply.items).toHaveLength(10);
      if (reply.degraded.length === 0) {
        rankedAgain = reply;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const afterMs = performance.now() - up;
    console.log(
      `ranker gone: replies in ${fallbackMs.map((ms) => ms.toFixed(0)).join('/')} ms; ranker back: whole again ${afterMs.toFixed(0)} ms after the new replica was up (${turn} requests)`,
    );
    expect(rankedAgain, 'no whole reply within 5 s of a new ranker replica').toBeDefined();
    expect(rankedAgain!.models.ranker).toEqual(expect.any(String));
    // The slot is asked again about a second after it last had no responders, not never.
    expect(afterMs).toBeLessThan(2000);
  });

  it('refuses malformed requests sent over NATS with bad_request naming the field, and serves on', async () => {
    const node = await start();
    const user = world.users[180]!;
    const other = world.users[181]!;
    // Active before the bad requests, so serving afterwards shows the same actor survived them.
    expect((await recommend(node, user, { count: 5 }, 5000)).items).toHaveLength(5);
    const nc = await connect({ servers: nats.url });
    try {
      const recommendSubject = node.client.subjectFor({ kind: 'user', key: user }, 'recommend');
      const cases: { what: string; body: string | Uint8Array; field: string; says: RegExp }[] = [
        { what: 'not JSON', body: '{"count":', field: 'payload', says: /not valid JSON/ },
        {
          what: 'not UTF-8',
          body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
          field: 'payload',
          says: /UTF-8/,
        },
        { what: 'not an object', body: '[5]', field: 'request', says: /must be an object/ },
        { what: 'count 0', body: '{"count":0}', field: 'count', says: /integer in 1\.\./ },
        {
          what: 'count above max_count',
          body: JSON.stringify({ count: MAX_COUNT + 1 }),
          field: 'count',
          says: new RegExp(`at most ${MAX_COUNT}, got ${MAX_COUNT + 1}`),
        },
        { what: 'count a string', body: '{"count":"5"}', field: 'count', says: /integer/ },
        { what: 'count a fraction', body: '{"count":2.5}', field: 'count', says: /integer/ },
        {
          what: 'unknown field',
          body: '{"count":5,"limit":3}',
          field: 'limit',
          says: /unknown field \(known: count, exclude, categories, now_ms\)/,
        },
        { what: 'exclude a string', body: '{"exclude":"i1"}', field: 'exclude', says: /array/ },
        {
          what: 'exclude with a number',
          body: '{"exclude":["i1",7]}',
          field: 'exclude[1]',
          says: /must be a string/,
        },
        {
          what: 'exclude with an empty id',
          body: '{"exclude":[""]}',
          field: 'exclude[0]',
          says: /string/,
        },
        { what: 'categories empty', body: '{"categories":[]}', field: 'categories', says: /empty/ },
        { what: 'now_ms negative', body: '{"now_ms":-1}', field: 'now_ms', says: /non-negative/ },
      ];
      for (const { what, body, field, says } of cases) {
        const started = performance.now();
        const msg = await rawRequest(nc, recommendSubject, body);
        const ms = performance.now() - started;
        const error = expectErrorReply(msg, 'bad_request', '400', field);
        expect(error.message, what).toMatch(says);
        // Refused before any work, not after a stage timed out.
        expect(ms, what).toBeLessThan(500);
      }

      // The same refusal without any header, as `nats req` sends it.
      expectErrorReply(
        await rawRequest(nc, recommendSubject, '{"count":0}', null),
        'bad_request',
        '400',
        'count',
      );
      // A hand-built subject with the wrong partition is refused, not served beside the owner.
      const partitions = node.client.partitions;
      const wrong = (partitionOf(user, partitions) + 1) % partitions;
      const prefix = node.host.subjects.prefix;
      expectErrorReply(
        await rawRequest(nc, `${prefix}.user.${wrong}.${user}.recommend`, '{}'),
        'bad_request',
        '400',
        'subject',
      );
      expectErrorReply(
        await rawRequest(nc, node.client.subjectFor({ kind: 'user', key: user }, 'explode'), '{}'),
        'unknown_op',
        '404',
      );
      // A key token with a broken escape is refused, not decoded into a key with a NUL in it.
      expectErrorReply(
        await rawRequest(nc, `${prefix}.user.${wrong}.a%ZZ.recommend`, '{}'),
        'bad_request',
        '400',
        'subject',
      );
      // A deadline that is not a time is refused: as NaN it would never expire.
      const garbled = natsHeaders();
      garbled.set(Header.Deadline, 'soon');
      expectErrorReply(
        await nc.request(recommendSubject, '{}', { timeout: 3000, headers: garbled }),
        'bad_request',
        '400',
        Header.Deadline,
      );

      // observe: malformed events, and events of another user, change nothing.
      const observeSubject = node.client.subjectFor({ kind: 'user', key: user }, 'observe');
      const before = await state(node, user);
      const item = world.popular[0]!;
      const own = feedbackEvent(user, item);
      const observeCases: { what: string; body: unknown; field: string; says: RegExp }[] = [
        { what: 'no events', body: { events: [] }, field: 'events', says: /array of 1\.\./ },
        { what: 'events not an array', body: { events: own }, field: 'events', says: /array/ },
        {
          what: 'an event without a type',
          body: { events: [{ ...own, type: undefined }] },
          field: 'events[0].type',
          says: /must be one of/,
        },
        {
          what: 'an event with an unknown field',
          body: { events: [{ ...own, extra: 1 }] },
          field: 'events[0].extra',
          says: /unknown field/,
        },
        {
          what: "another user's event",
          body: { events: [feedbackEvent(other, item)] },
          field: 'events[0].user_id',
          says: new RegExp(`must be this actor's user "${user}"`),
        },
        {
          // The whole request is refused: the valid first event is not applied either.
          what: "an own event, then another user's",
          body: { events: [own, feedbackEvent(other, item)] },
          field: 'events[1].user_id',
          says: /this actor's user/,
        },
      ];
      for (const { what, body, field, says } of observeCases) {
        const msg = await rawRequest(nc, observeSubject, JSON.stringify(body));
        const error = expectErrorReply(msg, 'bad_request', '400', field);
        expect(error.message, what).toMatch(says);
      }
      const after = await state(node, user);
      expect(after.events).toBe(before.events);
      expect(after.seen).toBe(before.seen);
      expect(after.history).toEqual(before.history);

      // The actor serves on: a valid raw request gets a plain JSON reply.
      const valid = await rawRequest(nc, recommendSubject, '{"count":4}');
      expect(valid.headers?.has(Header.ErrorCode) ?? false).toBe(false);
      const reply = valid.json<RecommendReply>();
      expect(reply.user_id).toBe(user);
      expect(reply.items).toHaveLength(4);
      expect(reply.degraded).toEqual([]);
      // A request with no body at all asks for the default count.
      const empty = (
        await rawRequest(nc, recommendSubject, new Uint8Array(0))
      ).json<RecommendReply>();
      expect(empty.items).toHaveLength(resolveConfig({}).recommend.defaultCount);
    } finally {
      await nc.close();
    }

    // Through the typed client, the refusal comes back as the same typed error.
    const refused = await recommend(node, user, { count: 0 }, 2000).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(BadRequestError);
    expect(refused).toMatchObject({ code: 'bad_request', field: 'count', fromReply: true });
    const foreign = await node.client
      .keyed<UserProtocol>('user')
      .ask(
        user,
        'observe',
        { events: [feedbackEvent(other, world.popular[1]!)] },
        { timeoutMs: 2000 },
      )
      .catch((err: unknown) => err);
    expect(foreign).toBeInstanceOf(BadRequestError);
    expect(foreign).toMatchObject({ field: 'events[0].user_id' });
    expect((await recommend(node, user, { count: 3 }, 2000)).items).toHaveLength(3);
  });

  it('settles every request of a concurrent burst by its short deadline', async () => {
    const node = await start();
    const users = world.users.slice(100, 108);
    expect(users).toHaveLength(8);
    // Activated first: the burst measures serving, not the session replay of an activation.
    for (const user of users) await recommend(node, user, { count: 10 }, 5000);
    // A connection of its own, as an outside service's would be.
    const transport = await NatsTransport.connect({ servers: nats.url, name: 'burst' });
    const client = new ActorClient({
      transport,
      prefix: node.host.subjects.prefix,
      partitions: node.client.partitions,
    });
    const ref = client.keyed<UserProtocol>('user');
    const REQUESTS = 200;
    const DEADLINE_MS = 150;
    // Unloaded, the last request settles within about 10 ms of its deadline, and within about
    // 30 ms under heavy outside load: the margin leaves room for that and for a short pause of
    // the whole process, while a caller left waiting on a late reply would still exceed it.
    const MARGIN_MS = 100;
    const handledBefore = await recommendsHandled(node);
    // The nodes share this process's event loop: how long it stalled tells a starved process
    // apart from a late reply when the bound is missed.
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    type Outcome = {
      user: string;
      id: string;
      ms: number;
      reply?: RecommendReply;
      error?: unknown;
    };
    let outcomes: Outcome[];
    try {
      outcomes = await Promise.all(
        Array.from({ length: REQUESTS }, (_, i): Promise<Outcome> => {
          const user = users[i % users.length]!;
          const id = `burst-${i}`;
          const started = performance.now();
          return ref
            .ask(user, 'recommend', { count: 10 }, { timeoutMs: DEADLINE_MS, requestId: id })
            .then(
              (reply) => ({ user, id, ms: performance.now() - started, reply }),
              (error: unknown) => ({ user, id, ms: performance.now() - started, error }),
            );
        }),
      );
    } finally {
      lag.disable();
    }
    const settledAt = performance.now();
    await transport.close();
    const times = outcomes.map((o) => o.ms).sort((a, b) => a - b);
    const replies = outcomes.filter((o) => o.reply !== undefined);
    const degraded = replies.filter((o) => o.reply!.degraded.length > 0);
    const reasons = new Map<string, number>();
    for (const o of degraded)
      for (const reason of o.reply!.degraded) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    const replyTimes = replies.map((o) => o.ms).sort((a, b) => a - b);
    const stalled = `event loop stalled up to ${(lag.max / 1e6).toFixed(1)} ms`;
    console.log(
      `burst of ${REQUESTS} (deadline ${DEADLINE_MS} ms, ${users.length} users): settled p50 ${percentile(times, 0.5).toFixed(1)} ms, p99 ${percentile(times, 0.99).toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms; ${replies.length} replies (p50 ${replyTimes.length === 0 ? '-' : percentile(replyTimes, 0.5).toFixed(1)} ms, per user ${users.map((u) => replies.filter((o) => o.user === u).length).join('/')}), ${degraded.length} degraded ${JSON.stringify(Object.fromEntries(reasons))}, ${REQUESTS - replies.length} timed out; ${stalled}`,
    );

    for (const outcome of outcomes) {
      expect(outcome.ms, stalled).toBeLessThan(DEADLINE_MS + MARGIN_MS);
      if (outcome.error !== undefined) {
        // No reply is only ever the deadline passing, never another failure.
        expect(outcome.error).toBeInstanceOf(RecsysError);
        expect((outcome.error as RecsysError).code).toBe('timeout');
        continue;
      }
      const reply = outcome.reply!;
      // The reply to this very request, not to another of the burst.
      expect(reply.request_id).toBe(outcome.id);
      expect(reply.user_id).toBe(outcome.user);
      expect(reply.items.length).toBeGreaterThan(0);
      expect(reply.items.length).toBeLessThanOrEqual(10);
      expect(new Set(reply.items.map((item) => item.item_id)).size).toBe(reply.items.length);
      for (const item of reply.items) {
        expect(Number.isFinite(item.score)).toBe(true);
        expect(typeof item.category).toBe('string');
      }
      expectNonIncreasing(reply);
      for (const reason of reply.degraded) expect(KNOWN_REASONS.has(reason), reason).toBe(true);
      expect(reply.timings_ms.total).toBeLessThan(DEADLINE_MS);
    }
    expect(replies.length).toBeGreaterThan(0);

    // Every request of the burst is accounted for on the node soon after the last deadline:
    // answered, or dropped as expired; none failed, none is still queued.
    let handled = handledBefore;
    await eventually(
      async () => {
        handled = await recommendsHandled(node);
        return sumOutcomes(handled) - sumOutcomes(handledBefore) === REQUESTS;
      },
      { timeoutMs: 2000, message: 'every request of the burst answered or dropped' },
    );
    const drainedMs = performance.now() - settledAt;
    const delta = (outcome: string) =>
      (handled.get(outcome) ?? 0) - (handledBefore.get(outcome) ?? 0);
    console.log(
      `on the node: ${delta('ok')} answered (${delta('ok') - replies.length} too late for their caller), ${delta('expired')} dropped past their deadline, ${delta('error')} failed; all accounted for ${drainedMs.toFixed(0)} ms after the last caller settled`,
    );
    expect(delta('error')).toBe(0);
    expect(delta('rejected')).toBe(0);
    // Every reply a caller got was sent by the node (the rest it sent came too late for theirs).
    expect(delta('ok')).toBeGreaterThanOrEqual(replies.length);

    // And the node serves whole replies once the burst is over.
    const calm = await recommend(node, users[0]!, { count: 10 }, 5000);
    expect(calm.degraded).toEqual([]);
    expect(calm.items).toHaveLength(10);
  });
});
