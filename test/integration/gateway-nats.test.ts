/**
 * `recsys gateway` as its own process against a real nats-server (JetStream): it connects, opens
 * the events stream, listens, stores feedback on JetStream before answering 202 (once per event
 * id), says on /ready what is missing, answers 503 for a recommendation nobody serves, and shuts
 * down on SIGTERM.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decode } from '../../runtime/codec.js';
import { resolveConfig } from '../../runtime/config/index.js';
import { feedbackSubject, openEventsStream } from '../../runtime/events/index.js';
import type { FeedbackEvent } from '../../runtime/events/index.js';
import { NatsStreamStore } from '../../runtime/stream/index.js';
import type { EventStream, StreamMessage } from '../../runtime/stream/index.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import { uniquePrefix } from '../helpers/cluster.js';
import { spawnGateway } from '../helpers/gateway.js';
import type { GatewayProcess } from '../helpers/gateway.js';
import { writeConfig } from '../helpers/host-process.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer } from '../helpers/servers.js';
import type { NatsServerHandle } from '../helpers/servers.js';

const PARTITIONS = 16;

/** The feedback events JetStream holds on `user`'s subject. */
async function storedFor(
  stream: EventStream,
  prefix: string,
  user: string,
): Promise<FeedbackEvent[]> {
  const subject = feedbackSubject(prefix, PARTITIONS, user);
  const last = await stream.lastSeqOf(subject);
  const out: FeedbackEvent[] = [];
  if (last === 0) return out;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const reader = await stream.read(subject, 1, (message: StreamMessage) => {
    out.push(decode(message.data) as FeedbackEvent);
    if (message.seq >= last) done();
  });
  await finished;
  await reader.stop();
  return out;
}

describeIntegration('recsys gateway on NATS', () => {
  let nats: NatsServerHandle;
  let gateway: GatewayProcess | undefined;
  let transport: NatsTransport;
  let stream: EventStream;
  const prefix = uniquePrefix('gw');

  beforeAll(async () => {
    nats = await startNatsServer();
    const configPath = writeConfig({
      deployment: { prefix, transport: 'nats' },
      nats: { url: nats.url },
      runtime: { partitions: PARTITIONS },
      items: { shards: 2 },
      log: { level: 'info' },
      metrics: { default_metrics: false, port: 0 },
      gateway: { host: '127.0.0.1' },
      recommend: { timeout_ms: 200 },
    });
    gateway = await spawnGateway(configPath);
    transport = await NatsTransport.connect({ servers: nats.url });
    stream = await openEventsStream(
      new NatsStreamStore(transport.connection),
      prefix,
      resolveConfig({}).events,
    );
  }, 60_000);

  afterAll(async () => {
    if (gateway !== undefined && gateway.child.exitCode === null) {
      gateway.child.kill('SIGKILL');
      await gateway.exited;
    }
    await transport?.close();
    await nats?.stop();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${gateway!.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('stores feedback on JetStream before answering 202, once per event id', async () => {
    const event = { user_id: 'user_123', item_id: 'item_456', event_type: 'click' };
    const response = await post('/feedback', event, { 'x-request-id': 'fb-1' });
    expect(response.status).toBe(202);
    expect(response.headers.get('x-request-id')).toBe('fb-1');
    const body = (await response.json()) as { accepted: number; event_ids: string[] };
    expect(body.accepted).toBe(1);
    // Read back from JetStream by another connection, without waiting.
    const stored = await storedFor(stream, prefix, 'user_123');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      event_id: body.event_ids[0],
      user_id: 'user_123',
      item_id: 'item_456',
      type: 'click',
    });

    const again = { ...event, user_id: 'user_9', event_id: 'retry-1' };
    expect(await (await post('/feedback', again)).json()).toMatchObject({ duplicates: 0 });
    expect(await (await post('/feedback', again)).json()).toMatchObject({ duplicates: 1 });
    expect(await storedFor(stream, prefix, 'user_9')).toHaveLength(1);
  });

  it('says on /ready what is missing, and answers 503 for a recommendation nobody serves', async () => {
    const ready = await fetch(`${gateway!.url}/ready`);
    expect(ready.status).toBe(503);
    const report = (await ready.json()) as {
      not_ready: string[];
      checks: Record<string, { ok: boolean; detail: string }>;
    };
    expect(report.not_ready).toEqual(['user', 'items.0', 'items.1', 'rank.gbdt']);
    expect(report.checks['user']!.detail).toBe('no host runs the user actor');
    expect(report.checks['events']!.ok).toBe(true);
    expect(report.checks['events']!.detail).toContain(`stream ${prefix}_events`);

    const recommend = await post('/recommend', { user_id: 'user_123', num_recommendations: 10 });
    expect(recommend.status).toBe(503);
    expect(((await recommend.json()) as { error: { code: string } }).error.code).toBe(
      'no_responders',
    );
    const health = await fetch(`${gateway!.url}/health`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`${gateway!.url}/metrics`)).text();
    expect(metrics).toContain(
      'recsys_gateway_feedback_events_total{type="click",outcome="stored"} 2',
    );
    expect(metrics).toContain('recsys_client_retries_total{kind="user",code="no_responders"}');
  });

  it('shuts down on SIGTERM', async () => {
    gateway!.child.kill('SIGTERM');
    expect(await gateway!.exited).toBe(0);
  });
});
