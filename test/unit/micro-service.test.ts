import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BadRequestError } from '../../runtime/errors.js';
import {
  MicroService,
  SERVICE_ERROR_CODE_HEADER,
  SERVICE_ERROR_HEADER,
  ServiceResponseType,
  controlSubject,
  discoverServices,
  newServiceId,
  type MicroServiceConfig,
  type ServiceIdentity,
  type ServiceInfo,
  type ServiceStats,
  type ServiceVerb,
  type StatsData,
} from '../../runtime/services/index.js';
import { InProcessTransport } from '../../runtime/transport/inproc.js';
import type { Reply } from '../../runtime/transport/types.js';

const EMPTY = new Uint8Array(0);
const decoder = new TextDecoder();
const json = (reply: Reply): unknown => JSON.parse(decoder.decode(reply.data));

let transport: InProcessTransport;
const services: MicroService[] = [];

function service(config: MicroServiceConfig, statsData?: StatsData): MicroService {
  const s = new MicroService(transport, config, statsData);
  services.push(s);
  return s;
}

/** Every reply to one `$SRV` request; the bus is in-process, so a short window collects them all. */
async function ask(subject: string): Promise<unknown[]> {
  const replies = await transport.requestMany(subject, EMPTY, { timeoutMs: 50 });
  return replies.map(json);
}

/** The three subject forms a verb is served on, for one service. */
function subjectForms(verb: ServiceVerb, s: MicroService): string[] {
  return [controlSubject(verb), controlSubject(verb, s.name), controlSubject(verb, s.name, s.id)];
}

beforeEach(() => {
  transport = new InProcessTransport();
});

afterEach(async () => {
  vi.useRealTimers();
  for (const s of services.splice(0)) await s.stop();
  await transport.close();
});

describe('MicroService identity and validation', () => {
  it('generates a 22-character alphanumeric id, different per instance', () => {
    const a = service({ name: 'user', version: '1.0.0' });
    const b = service({ name: 'user', version: '1.0.0' });
    expect(a.id).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(b.id).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(a.id).not.toBe(b.id);
    expect(newServiceId()).toMatch(/^[A-Za-z0-9]{22}$/);
  });

  it('keeps a given id', () => {
    expect(service({ name: 'user', version: '1.0.0', id: 'host-1' }).id).toBe('host-1');
  });

  it.each(['', 'a.b', 'a b', 'user*', '>', 'é'])('rejects the name %j', (name) => {
    const make = (): MicroService => new MicroService(transport, { name, version: '1.0.0' });
    expect(make).toThrow(BadRequestError);
    expect(make).toThrow(/^name: /);
  });

  it.each(['', '1', '1.0', 'v1.0.0', '01.0.0', '1.0.0-', '1.0.0+', 'latest'])(
    'rejects the version %j',
    (version) => {
      const make = (): MicroService => new MicroService(transport, { name: 'user', version });
      expect(make).toThrow(BadRequestError);
      expect(make).toThrow(/^version: /);
    },
  );

  it.each(['0.0.1', '1.2.3', '10.20.30-rc.1', '1.0.0-alpha+build.7', '1.0.0+sha.5114f85'])(
    'accepts the version %j',
    (version) => {
      expect(service({ name: 'user', version }).version).toBe(version);
    },
  );

  it('rejects a bad id, endpoint name, subject, queue group and duplicate endpoint', () => {
    expect(() => new MicroService(transport, { name: 'u', version: '1.0.0', id: 'a.b' })).toThrow(
      /^id: /,
    );
    const s = service({ name: 'user', version: '1.0.0' });
    expect(() => s.addEndpoint({ name: 'a.b', subject: 'x' })).toThrow(/^endpoint\.name: /);
    for (const subject of ['', 'a..b', 'a b', 'a.>.b', 'a.b*', 'a.>x']) {
      expect(() => s.addEndpoint({ name: 'e', subject })).toThrow(/^endpoint\.subject: /);
    }
    expect(() => s.addEndpoint({ name: 'e', subject: 'x', queueGroup: 'a b' })).toThrow(
      /^endpoint\.queueGroup: /,
    );
    s.addEndpoint({ name: 'e', subject: 'recsys.user.*.>' });
    expect(() => s.addEndpoint({ name: 'e', subject: 'other' })).toThrow(/already declared/);
  });
});

describe('MicroService over the in-process transport', () => {
  it('answers PING on all three subject forms', async () => {
    const s = service({ name: 'user', version: '1.2.3', metadata: { host: 'h1' } });
    s.start();
    for (const subject of subjectForms('PING', s)) {
      expect(await ask(subject)).toEqual([
        {
          type: ServiceResponseType.Ping,
          name: 'user',
          id: s.id,
          version: '1.2.3',
          metadata: { host: 'h1' },
        },
      ]);
    }
  });

  it('answers INFO on all three subject forms, listing the declared endpoints', async () => {
    const s = service({ name: 'items', version: '2.0.0', description: 'item shards' });
    s.addEndpoint({ name: 'shard-0', subject: 'recsys.items.0.*', queueGroup: 'recsys.items.0' });
    s.addEndpoint({ name: 'upsert', subject: 'recsys.items.upsert', metadata: { kind: 'write' } });
    s.start();
    const expected: ServiceInfo = {
      type: ServiceResponseType.Info,
      name: 'items',
      id: s.id,
      version: '2.0.0',
      description: 'item shards',
      metadata: {},
      endpoints: [
        { name: 'shard-0', subject: 'recsys.items.0.*', queue_group: 'recsys.items.0' },
        {
          name: 'upsert',
          subject: 'recsys.items.upsert',
          queue_group: '',
          metadata: { kind: 'write' },
        },
      ],
    };
    for (const subject of subjectForms('INFO', s)) {
      expect(await ask(subject)).toEqual([expected]);
    }
    expect(s.info()).toEqual(expected);
  });

  it('answers STATS on all three subject forms', async () => {
    const s = service({ name: 'rank', version: '1.0.0' });
    s.addEndpoint({ name: 'rank', subject: 'recsys.rank.gbdt-1.*' }).record(1_000);
    s.start();
    for (const subject of subjectForms('STATS', s)) {
      const [stats] = (await ask(subject)) as ServiceStats[];
      expect(stats).toMatchObject({
        type: ServiceResponseType.Stats,
        name: 'rank',
        id: s.id,
        version: '1.0.0',
        metadata: {},
        endpoints: [
          {
            name: 'rank',
            subject: 'recsys.rank.gbdt-1.*',
            queue_group: '',
            num_requests: 1,
            num_errors: 0,
            processing_time: 1_000,
            average_processing_time: 1_000,
          },
        ],
      });
      expect(new Date(stats?.started ?? '').toISOString()).toBe(stats?.started);
    }
  });

  it('answers $SRV.PING from every instance, $SRV.PING.<name> only from that kind', async () => {
    const user1 = service({ name: 'user', version: '1.0.0' });
    const user2 = service({ name: 'user', version: '1.0.0' });
    const items = service({ name: 'items', version: '1.0.0' });
    for (const s of [user1, user2, items]) s.start();

    const all = (await ask('$SRV.PING')) as ServiceIdentity[];
    expect(all.map((p) => p.id).sort()).toEqual([user1.id, user2.id, items.id].sort());

    const users = (await ask('$SRV.PING.user')) as ServiceIdentity[];
    expect(users.map((p) => p.id).sort()).toEqual([user1.id, user2.id].sort());

    expect(await ask(`$SRV.PING.user.${user2.id}`)).toEqual([user2.ping()]);
    expect(await ask(`$SRV.PING.items.${user2.id}`)).toEqual([]);
  });

  it('counts requests, errors, the last error, processing times and custom data', async () => {
    const s = service({ name: 'user', version: '1.0.0' }, (endpoint) =>
      endpoint === 'partitions' ? { owned: [3, 7] } : undefined,
    );
    const recorder = s.addEndpoint({ name: 'partitions', subject: 'recsys.user.*.*.*' });
    s.addEndpoint({ name: 'idle', subject: 'recsys.user.idle' });
    recorder.record(1_500.4);
    recorder.record(2_500, { code: 503, message: 'overloaded' });
    recorder.record(1_000, { code: 409, message: 'not owner' });
    recorder.record(NaN);
    s.start();

    const [stats] = (await ask(controlSubject('STATS', 'user', s.id))) as ServiceStats[];
    expect(stats?.endpoints).toEqual([
      {
        name: 'partitions',
        subject: 'recsys.user.*.*.*',
        queue_group: '',
        num_requests: 4,
        num_errors: 2,
        last_error: '409:not owner',
        processing_time: 5_000,
        average_processing_time: 1_250,
        data: { owned: [3, 7] },
      },
      {
        name: 'idle',
        subject: 'recsys.user.idle',
        queue_group: '',
        num_requests: 0,
        num_errors: 0,
        processing_time: 0,
        average_processing_time: 0,
      },
    ]);
    expect(s.recorder('partitions')).toBe(recorder);
  });

  it('reset() zeroes the counters and restarts the clock', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2025-01-01T00:00:00.000Z'));
    const s = service({ name: 'user', version: '1.0.0' });
    s.addEndpoint({ name: 'e', subject: 'x' }).record(10, { code: 500, message: 'boom' });
    vi.setSystemTime(new Date('2025-01-01T00:05:00.000Z'));
    s.reset();
    expect(s.stats().started).toBe('2025-01-01T00:05:00.000Z');
    expect(s.stats().endpoints).toEqual([
      {
        name: 'e',
        subject: 'x',
        queue_group: '',
        num_requests: 0,
        num_errors: 0,
        processing_time: 0,
        average_processing_time: 0,
      },
    ]);
  });

  it('drops a removed endpoint from INFO and STATS', async () => {
    const s = service({ name: 'user', version: '1.0.0' });
    s.addEndpoint({ name: 'p3', subject: 'recsys.user.3.>' });
    const moved = s.addEndpoint({ name: 'p7', subject: 'recsys.user.7.>' });
    s.start();
    s.removeEndpoint('p7');
    // A message still in flight when the partition moved may finish; it is simply not reported.
    moved.record(100);

    const [info] = (await ask(controlSubject('INFO', 'user'))) as ServiceInfo[];
    expect(info?.endpoints.map((e) => e.name)).toEqual(['p3']);
    expect(s.stats().endpoints.map((e) => e.name)).toEqual(['p3']);
    expect(s.recorder('p7')).toBeUndefined();
    // The name is free again, with fresh counters.
    s.addEndpoint({ name: 'p7', subject: 'recsys.user.7.>' });
    expect(s.stats().endpoints[1]?.num_requests).toBe(0);
  });

  it('reports a failing stats callback as an endpoint error, not as a missing reply', async () => {
    const s = service({ name: 'user', version: '1.0.0' }, () => {
      throw new Error('state store gone');
    });
    s.addEndpoint({ name: 'e', subject: 'x' });
    s.start();
    const [stats] = (await ask('$SRV.STATS.user')) as ServiceStats[];
    expect(stats?.endpoints[0]).toMatchObject({
      num_requests: 0,
      num_errors: 1,
      last_error: '500:state store gone',
    });
    expect(stats?.endpoints[0]).not.toHaveProperty('data');
  });

  it('sends a micro error reply when the custom data cannot be serialized', async () => {
    const s = service({ name: 'user', version: '1.0.0' }, () => ({ big: 1n }));
    s.addEndpoint({ name: 'e', subject: 'x' });
    s.start();
    const [reply] = await transport.requestMany('$SRV.STATS.user', EMPTY, { timeoutMs: 50 });
    expect(reply?.headers[SERVICE_ERROR_CODE_HEADER]).toBe('500');
    expect(reply?.headers[SERVICE_ERROR_HEADER]).toMatch(/BigInt/);
  });

  it('stops answering after stop(), and answers again after start()', async () => {
    const s = service({ name: 'user', version: '1.0.0' });
    s.start();
    s.start(); // idempotent: still one reply per request
    expect(await ask('$SRV.PING')).toHaveLength(1);
    await s.stop();
    expect(await discoverServices(transport, 'PING', { timeoutMs: 50 })).toEqual([]);
    s.start();
    expect(await ask('$SRV.PING')).toHaveLength(1);
  });
});

describe('discoverServices', () => {
  it('lists PING, INFO and STATS replies sorted by name and id, filtered by name and id', async () => {
    const users = [0, 1, 2].map((i) => service({ name: 'user', version: '1.0.0', id: `u${i}` }));
    const items = service({ name: 'items', version: '1.0.0', id: 'i0' });
    for (const s of [...users, items]) {
      s.addEndpoint({ name: 'main', subject: `recsys.${s.name}.>` }).record(42);
      s.start();
    }

    const pings = await discoverServices(transport, 'PING', { timeoutMs: 50 });
    expect(pings.map((p) => `${p.name}/${p.id}`)).toEqual([
      'items/i0',
      'user/u0',
      'user/u1',
      'user/u2',
    ]);

    const infos = await discoverServices(transport, 'INFO', { name: 'user', timeoutMs: 50 });
    expect(infos.map((i) => i.id)).toEqual(['u0', 'u1', 'u2']);
    expect(infos[0]?.endpoints).toEqual([
      { name: 'main', subject: 'recsys.user.>', queue_group: '' },
    ]);

    const stats = await discoverServices(transport, 'STATS', { name: 'user', id: 'u1' });
    expect(stats).toEqual([users[1]?.stats()]);
    expect(stats[0]?.endpoints[0]?.num_requests).toBe(1);
  });

  it('skips replies that are not micro replies of the asked type', async () => {
    service({ name: 'user', version: '1.0.0', id: 'u0' }).start();
    const rogue = transport.subscribe('$SRV.PING', (msg) =>
      msg.respond(new TextEncoder().encode('{"type":"something else","name":"x","id":"y"}')),
    );
    const garbage = transport.subscribe('$SRV.PING', (msg) =>
      msg.respond(new TextEncoder().encode('not json')),
    );
    const pings = await discoverServices(transport, 'PING', { timeoutMs: 50 });
    expect(pings.map((p) => p.id)).toEqual(['u0']);
    rogue.unsubscribe();
    garbage.unsubscribe();
  });

  it('rejects bad options instead of throwing', async () => {
    await expect(discoverServices(transport, 'PING', { id: 'x' })).rejects.toThrow(/^name: /);
    await expect(discoverServices(transport, 'PING', { name: 'a.b' })).rejects.toThrow(
      BadRequestError,
    );
    await expect(discoverServices(transport, 'PING', { timeoutMs: 0 })).rejects.toThrow(
      /^timeoutMs: /,
    );
  });
});
