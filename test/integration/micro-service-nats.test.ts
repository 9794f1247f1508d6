/**
 * Our micro protocol over a real nats-server, judged by the reference: the `@nats-io/services`
 * client must see our services with the right fields and types (what `nats micro list/info/stats`
 * relies on), and our replies must have exactly the keys a real `@nats-io/services` Service sends.
 */
import { Svcm, type Service, type ServiceClient } from '@nats-io/services';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import {
  MicroService,
  ServiceResponseType,
  controlSubject,
  discoverServices,
  type ServiceVerb,
} from '../../runtime/services/index.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer, type NatsServerHandle } from '../helpers/servers.js';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** Everything an async iterator yields, e.g. the replies the reference client collected. */
async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/**
 * The key structure of a JSON value: objects become their sorted key lists (recursively, arrays
 * by their first element), so two replies compare equal exactly when they use the same fields.
 */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length === 0 ? [] : [shape(value[0])];
  if (typeof value !== 'object' || value === null) return typeof value;
  const entries = Object.entries(value as Record<string, unknown>)
    // `metadata` and `data` are free-form maps: only their presence is part of the protocol.
    .map(([k, v]) => [k, k === 'metadata' || k === 'data' ? 'map' : shape(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return Object.fromEntries(entries);
}

describeIntegration('micro protocol on nats-server', () => {
  let server: NatsServerHandle;
  let transport: NatsTransport;
  let nc: NatsConnection;
  let client: ServiceClient;
  const ours: MicroService[] = [];
  const reference: Service[] = [];

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
  });

  afterAll(async () => {
    await server.stop();
  });

  beforeEach(async () => {
    transport = await NatsTransport.connect({ servers: server.url });
    nc = await connect({ servers: server.url });
    // Collect for a fixed window: every instance answers within it on a local server.
    client = new Svcm(nc).client({ strategy: 'timer', maxWait: 500 });
  });

  afterEach(async () => {
    for (const s of ours.splice(0)) await s.stop();
    for (const s of reference.splice(0)) await s.stop();
    await transport.close();
    await nc.close();
  });

  /** Starts one of our services and waits until the server has its subscriptions. */
  async function startOurs(s: MicroService): Promise<MicroService> {
    ours.push(s);
    s.start();
    await transport.flush();
    return s;
  }

  async function startReference(...args: Parameters<Svcm['add']>): Promise<Service> {
    const s = await new Svcm(nc).add(...args);
    reference.push(s);
    await nc.flush();
    return s;
  }

  /** The raw JSON reply of one instance. */
  async function ask(verb: ServiceVerb, name: string, id: string): Promise<unknown> {
    const reply = await nc.request(controlSubject(verb, name, id), '', { timeout: 2_000 });
    return reply.json();
  }

  it('is seen by the reference client on PING, INFO and STATS with the right fields', async () => {
    const user = await startOurs(
      new MicroService(
        transport,
        { name: 'user', version: '1.4.0', description: 'user actors', metadata: { host: 'h1' } },
        (endpoint) => ({ endpoint, partitions: 3 }),
      ),
    );
    const recorder = user.addEndpoint({ name: 'partition-3', subject: 'recsys.user.3.>' });
    recorder.record(2_000_000);
    recorder.record(1_000_001, { code: 409, message: 'not owner' });
    const items = await startOurs(
      new MicroService(transport, { name: 'items', version: '0.1.0-rc.1' }),
    );
    items.addEndpoint({
      name: 'shard-0',
      subject: 'recsys.items.0.*',
      queueGroup: 'recsys.items.0',
      metadata: { shard: '0' },
    });

    const pings = await collect(await client.ping());
    expect(pings.map((p) => p.id).sort()).toEqual([user.id, items.id].sort());
    const userPing = pings.find((p) => p.id === user.id);
    expect(userPing).toEqual({
      type: ServiceResponseType.Ping,
      name: 'user',
      id: user.id,
      version: '1.4.0',
      metadata: { host: 'h1' },
    });

    const [userInfo] = await collect(await client.info('user'));
    expect(userInfo).toEqual({
      type: ServiceResponseType.Info,
      name: 'user',
      id: user.id,
      version: '1.4.0',
      description: 'user actors',
      metadata: { host: 'h1' },
      endpoints: [{ name: 'partition-3', subject: 'recsys.user.3.>', queue_group: '' }],
    });
    const [itemsInfo] = await collect(await client.info('items', items.id));
    expect(itemsInfo?.endpoints).toEqual([
      {
        name: 'shard-0',
        subject: 'recsys.items.0.*',
        queue_group: 'recsys.items.0',
        metadata: { shard: '0' },
      },
    ]);

    const stats = await collect(await client.stats('user', user.id));
    expect(stats).toHaveLength(1);
    const [userStats] = stats;
    expect(userStats).toMatchObject({
      type: ServiceResponseType.Stats,
      name: 'user',
      id: user.id,
      version: '1.4.0',
      metadata: { host: 'h1' },
    });
    expect(userStats?.started).toMatch(ISO_UTC);
    expect(userStats?.endpoints).toEqual([
      {
        name: 'partition-3',
        subject: 'recsys.user.3.>',
        queue_group: '',
        num_requests: 2,
        num_errors: 1,
        last_error: '409:not owner',
        processing_time: 3_000_001,
        // Integer nanoseconds: the Go tools decode it into an int64.
        average_processing_time: 1_500_001,
        data: { endpoint: 'partition-3', partitions: 3 },
      },
    ]);
  });

  it('replies with exactly the keys a real @nats-io/services Service sends', async () => {
    // Fully populated: metadata everywhere, a recorded error, custom stats data.
    const ref = await startReference({
      name: 'reference',
      version: '1.0.0',
      description: 'the reference',
      metadata: { host: 'h1' },
      statsHandler: () => Promise.resolve({ partitions: 3 }),
    });
    ref.addEndpoint('main', {
      subject: 'ref.main',
      metadata: { kind: 'keyed' },
      handler: () => {
        throw new Error('boom');
      },
    });
    await nc.request('ref.main', '', { timeout: 2_000 }).catch(() => undefined);
    const mine = await startOurs(
      new MicroService(
        transport,
        { name: 'mine', version: '1.0.0', description: 'ours', metadata: { host: 'h1' } },
        () => ({ partitions: 3 }),
      ),
    );
    mine
      .addEndpoint({ name: 'main', subject: 'mine.main', metadata: { kind: 'keyed' } })
      .record(1_000, { code: 500, message: 'boom' });

    // Bare: no metadata, no errors yet, no stats handler.
    // `metadata: {}` because the JS reference drops the service's `metadata` key when none is
    // configured, while the Go reference (and we) always send it, as `{}`.
    const bareRef = await startReference({
      name: 'bare-reference',
      version: '1.0.0',
      metadata: {},
    });
    bareRef.addEndpoint('main', {
      subject: 'bare.ref.main',
      handler: (_err, msg) => msg.respond(),
    });
    const bareMine = await startOurs(
      new MicroService(transport, { name: 'bare', version: '1.0.0' }),
    );
    bareMine.addEndpoint({ name: 'main', subject: 'bare.mine.main', queueGroup: 'q' });

    for (const verb of ['PING', 'INFO', 'STATS'] as const) {
      const [refFull, mineFull, refBare, mineBare] = await Promise.all([
        ask(verb, 'reference', ref.info().id),
        ask(verb, 'mine', mine.id),
        ask(verb, 'bare-reference', bareRef.info().id),
        ask(verb, 'bare', bareMine.id),
      ]);
      expect(shape(mineFull), `${verb}, fully populated`).toEqual(shape(refFull));
      expect(shape(mineBare), `${verb}, bare`).toEqual(shape(refBare));
    }
  });

  it('discovers our services and reference services alike', async () => {
    const ref = await startReference({ name: 'reference', version: '1.0.0' });
    ref.addEndpoint('main', { subject: 'ref.main', handler: (_err, msg) => msg.respond() });
    const mine = await startOurs(new MicroService(transport, { name: 'mine', version: '2.0.0' }));
    mine.addEndpoint({ name: 'main', subject: 'mine.main' });

    const pings = await discoverServices(transport, 'PING');
    expect(pings.map((p) => `${p.name}@${p.version}`)).toEqual(['mine@2.0.0', 'reference@1.0.0']);

    const [refStats] = await discoverServices(transport, 'STATS', {
      name: 'reference',
      id: ref.info().id,
    });
    expect(refStats?.endpoints.map((e) => e.subject)).toEqual(['ref.main']);

    await mine.stop();
    const after = await discoverServices(transport, 'INFO', { name: 'mine' });
    expect(after).toEqual([]);
  });
});
