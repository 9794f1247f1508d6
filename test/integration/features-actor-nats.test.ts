/**
 * The `features` actor over NATS with JetStream and the Redis online store, each started by the
 * test: the shared cases, then Redis stopped mid-run (reads degrade, the service goes on, the
 * feedback of the outage lands once Redis is back).
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { resolveConfig } from '../../runtime/config/index.js';
import { openEventsStream, publishFeedback } from '../../runtime/events/index.js';
import { testCluster, uniquePrefix } from '../helpers/cluster.js';
import type { TestCluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/eventually.js';
import {
  featuresActorSuite,
  featuresTestKind,
  feedback,
  getFeatures,
} from '../helpers/features-actor-suite.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer, startRedisServer } from '../helpers/servers.js';
import type { NatsServerHandle, RedisServerHandle } from '../helpers/servers.js';

describeIntegration('the features actor over NATS and Redis', () => {
  let nats: NatsServerHandle;
  let redis: RedisServerHandle;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
  });
  afterAll(async () => {
    await Promise.all([nats?.stop(), redis?.stop()]);
  });

  featuresActorSuite('shared cases', () => ({
    natsUrl: nats.url,
    raw: { redis: { url: redis.url } },
  }));

  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('serves defaults marked degraded while Redis is down, and catches up once it is back', async () => {
    const prefix = uniquePrefix('f');
    cluster = testCluster(nats.url, { prefix });
    const node = await cluster.node([featuresTestKind], {
      redis: { url: redis.url },
      features: { read_timeout_ms: 200, cache_max_entries: 0 },
    });
    const events = resolveConfig({}).events;
    const stream = await openEventsStream(node.streams, prefix, events);
    await publishFeedback(stream, prefix, 64, feedback('u1', 'i1', 'click'));
    await eventually(async () => {
      const reply = await getFeatures(node, { view: 'user_realtime', entities: ['u1'] });
      expect(reply.rows[0]!.values['clicks_5m']).toBe(1);
    });

    await redis.kill();
    const down = await getFeatures(node, { view: 'user_realtime', entities: ['u1'] });
    expect(down.degraded).toBe(true);
    expect(down.rows[0]!.values['clicks_5m']).toBe(0);
    expect(down.rows[0]!.event_time_ms).toBeNull();
    // Accepted by the stream while Redis is down; the writer's batch fails and comes back.
    await publishFeedback(stream, prefix, 64, feedback('u1', 'i1', 'click'));

    await redis.restart();
    // A restarted redis-server without persistence starts empty: the first click's row is gone,
    // so the row after the outage holds the second click alone, written once Redis is back.
    await eventually(
      async () => {
        const reply = await getFeatures(node, { view: 'user_realtime', entities: ['u1'] });
        expect(reply.degraded).toBe(false);
        expect(reply.rows[0]!.values['clicks_5m']).toBe(1);
        expect(reply.rows[0]!.event_time_ms).not.toBeNull();
      },
      { timeoutMs: 20_000 },
    );
  });
});
