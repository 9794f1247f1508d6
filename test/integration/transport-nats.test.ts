import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { NatsTransport } from '../../runtime/transport/nats.js';
import type { InboundMessage, TransportStatus } from '../../runtime/transport/types.js';
import { eventually } from '../helpers/eventually.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer, type NatsServerHandle } from '../helpers/servers.js';
import { transportConformance } from '../helpers/transport-conformance.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (data: Uint8Array): string => new TextDecoder().decode(data);

describeIntegration('NatsTransport', () => {
  let server: NatsServerHandle;

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
  });

  afterAll(async () => {
    await server.stop();
  });

  transportConformance('nats', async () => {
    const a = await NatsTransport.connect({ servers: server.url, name: 'conformance-a' });
    const b = await NatsTransport.connect({ servers: server.url, name: 'conformance-b' });
    return {
      a,
      b,
      cleanup: async () => {
        await Promise.all([a.close(), b.close()]);
      },
    };
  });

  it('exposes the underlying connection', async () => {
    const t = await NatsTransport.connect({ servers: server.url });
    try {
      expect(t.kind).toBe('nats');
      expect(t.connection.isClosed()).toBe(false);
      await t.connection.flush();
    } finally {
      await t.close();
    }
    expect(t.connection.isClosed()).toBe(true);
  });

  it('sends replies made in one turn each to its own request, and before a close', async () => {
    const responder = await NatsTransport.connect({ servers: server.url, name: 'batch-responder' });
    const caller = await NatsTransport.connect({ servers: server.url, name: 'batch-caller' });
    try {
      const held: InboundMessage[] = [];
      responder.subscribe('batch.five', (msg) => {
        held.push(msg);
        if (held.length < 5) return;
        for (const m of held) m.respond(text(`re ${str(m.data)}`));
      });
      responder.subscribe('batch.last', (msg) => {
        msg.respond(text('last'));
        void responder.close();
      });
      await responder.flush();
      const replies = await Promise.all(
        [0, 1, 2, 3, 4].map((i) =>
          caller.request('batch.five', text(String(i)), { timeoutMs: 2000 }),
        ),
      );
      expect(replies.map((r) => str(r.data))).toEqual(['re 0', 're 1', 're 2', 're 3', 're 4']);
      const last = await caller.request('batch.last', text(''), { timeoutMs: 2000 });
      expect(str(last.data)).toBe('last');
    } finally {
      await Promise.all([responder.close(), caller.close()]);
    }
  });

  it('serves a request to a queue group with a local member in-process, until it leaves', async () => {
    const near = await NatsTransport.connect({ servers: server.url, name: 'local-near' });
    const far = await NatsTransport.connect({ servers: server.url, name: 'local-far' });
    const off = await NatsTransport.connect({
      servers: server.url,
      name: 'local-off',
      localRequests: false,
    });
    try {
      const answer = (who: string) => (msg: InboundMessage) =>
        msg.respond(text(`${who} ${str(msg.data)} ${msg.headers['h'] ?? ''}`), { who });
      const nearSub = near.subscribe('local.rank', answer('near'), { queue: 'g' });
      far.subscribe('local.rank', answer('far'), { queue: 'g' });
      // A plain subscription is not a queue group: it must see every message, so never local.
      near.subscribe('local.plain', answer('near'));
      far.subscribe('local.plain', answer('far'));
      // A member that never answers: the caller's timeout still applies to a local request.
      near.subscribe('local.mute', () => undefined, { queue: 'g' });
      await Promise.all([near.flush(), far.flush()]);

      const ask = (t: NatsTransport, subject: string, body: string) =>
        t.request(subject, text(body), { timeoutMs: 1000, headers: { h: 'x' } });
      for (let i = 0; i < 10; i++) {
        const reply = await ask(near, 'local.rank', String(i));
        expect(str(reply.data)).toBe(`near ${i} x`);
        expect(reply.headers).toEqual({ who: 'near' });
      }
      const fromOff = new Set<string>();
      for (let i = 0; i < 40; i++) {
        fromOff.add(str((await ask(off, 'local.rank', '')).data).split(' ')[0]!);
      }
      expect([...fromOff].sort()).toEqual(['far', 'near']);
      const plain = new Set<string>();
      for (let i = 0; i < 10; i++) plain.add(str((await ask(near, 'local.plain', '')).data));
      expect(plain.size).toBeGreaterThan(0);
      await expect(near.request('local.mute', text(''), { timeoutMs: 50 })).rejects.toMatchObject({
        code: 'timeout',
      });

      // Once the local member drains, requests go through the server to the other member.
      await nearSub.drain();
      for (let i = 0; i < 5; i++) {
        expect(str((await ask(near, 'local.rank', 'd')).data)).toBe('far d x');
      }
    } finally {
      await Promise.all([near.close(), far.close(), off.close()]);
    }
  });

  describe('across a server restart', () => {
    let restartable: NatsServerHandle;
    const transports: NatsTransport[] = [];

    beforeAll(async () => {
      restartable = await startNatsServer({ jetstream: false });
    });

    afterEach(async () => {
      await Promise.all(transports.splice(0).map((t) => t.close()));
    });

    afterAll(async () => {
      await restartable.stop();
    });

    it('reconnects with the default reconnect wait (no option given)', async () => {
      const host = await NatsTransport.connect({ servers: restartable.url });
      transports.push(host);
      const statuses: TransportStatus[] = [];
      host.onStatus((s) => statuses.push(s));
      // Restart at once, without waiting for the disconnect to be noticed first.
      await restartable.kill();
      await restartable.restart();
      await eventually(() => statuses.includes('reconnected'), {
        timeoutMs: 15_000,
        message: 'reconnect reported',
      });
    });

    it('keeps subscriptions and reports disconnected then reconnected', async () => {
      const host = await NatsTransport.connect({
        servers: restartable.url,
        name: 'restart-host',
        reconnectTimeWaitMs: 100,
      });
      transports.push(host);
      const statuses: TransportStatus[] = [];
      host.onStatus((s) => statuses.push(s));
      const events: InboundMessage[] = [];
      host.subscribe('restart.events', (msg) => events.push(msg));
      host.subscribe('restart.echo', (msg) => msg.respond(msg.data));
      await host.flush();

      await restartable.kill();
      await eventually(() => statuses.includes('disconnected'), {
        message: 'disconnect reported',
      });
      await restartable.restart();
      await eventually(() => statuses.includes('reconnected'), {
        timeoutMs: 15_000,
        message: 'reconnect reported',
      });
      expect(statuses.slice(0, 2)).toEqual(['disconnected', 'reconnected']);

      const client = await NatsTransport.connect({ servers: restartable.url, name: 'client' });
      transports.push(client);
      const reply = await client.request('restart.echo', text('after'), { timeoutMs: 2_000 });
      expect(str(reply.data)).toBe('after');
      client.publish('restart.events', text('e1'));
      await eventually(() => events.length === 1, { message: 'event after restart' });
      expect(str(events[0]!.data)).toBe('e1');
    });
  });
});
