import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { NatsStreamStore } from '../../runtime/stream/nats.js';
import type { StreamReader } from '../../runtime/stream/types.js';
import { eventually } from '../helpers/eventually.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startNatsServer, type NatsServerHandle } from '../helpers/servers.js';
import { streamConformance } from '../helpers/stream-suite.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describeIntegration('NatsStreamStore', () => {
  let server: NatsServerHandle;

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: true });
  });

  afterAll(async () => {
    await server.stop();
  });

  streamConformance('nats', async () => {
    const nc: NatsConnection = await connect({ servers: server.url });
    return { store: new NatsStreamStore(nc), cleanup: () => nc.close() };
  });

  describe('on the server', () => {
    let nc: NatsConnection;
    const readers: StreamReader[] = [];

    beforeAll(async () => {
      nc = await connect({ servers: server.url });
    });

    afterEach(async () => {
      await Promise.all(readers.splice(0).map((reader) => reader.stop()));
    });

    afterAll(async () => {
      await nc.close();
    });

    it('creates a limits stream with the configured limits, and updates them on reopen', async () => {
      const store = new NatsStreamStore(nc);
      await store.stream('limits', {
        subjects: ['limits.>'],
        maxAgeMs: 60_000,
        maxBytes: 1 << 20,
        storage: 'memory',
      });
      const jsm = await jetstreamManager(nc);
      const first = (await jsm.streams.info('limits')).config;
      expect(first).toMatchObject({
        subjects: ['limits.>'],
        max_age: 60_000 * 1e6,
        max_bytes: 1 << 20,
        storage: 'memory',
        retention: 'limits',
        discard: 'old',
        // The 120 s default window, capped at the age limit.
        duplicate_window: 60_000 * 1e6,
      });
      // Reopening with file storage keeps the stream's own: the server cannot change it.
      await store.stream('limits', { subjects: ['limits.>', 'limits2.*'], storage: 'file' });
      const second = (await jsm.streams.info('limits')).config;
      expect(second).toMatchObject({
        subjects: ['limits.>', 'limits2.*'],
        max_age: 0,
        max_bytes: -1,
        storage: 'memory',
        duplicate_window: 120_000 * 1e6,
      });
    });

    it('makes a durable with explicit acks, and updates it when a reader joins with new options', async () => {
      const stream = await new NatsStreamStore(nc).stream('durables', {
        subjects: ['durables.>'],
        storage: 'memory',
      });
      readers.push(
        await stream.consume('d', () => undefined, {
          filter: 'durables.a',
          ackWaitMs: 2_000,
          maxDeliver: 4,
        }),
      );
      const jsm = await jetstreamManager(nc);
      expect((await jsm.consumers.info('durables', 'd')).config).toMatchObject({
        durable_name: 'd',
        ack_policy: 'explicit',
        deliver_policy: 'all',
        ack_wait: 2_000 * 1e6,
        max_deliver: 4,
        filter_subject: 'durables.a',
      });
      // The first reader is still pulling when the second joins with other options.
      readers.push(
        await stream.consume('d', () => undefined, {
          filter: 'durables.*',
          ackWaitMs: 3_000,
          maxDeliver: 2,
        }),
      );
      expect((await jsm.consumers.info('durables', 'd')).config).toMatchObject({
        ack_wait: 3_000 * 1e6,
        max_deliver: 2,
        filter_subject: 'durables.*',
      });
    });

    it('keeps file-backed messages and durables across a server restart', async () => {
      const restartable = await connect({ servers: server.url, reconnectTimeWait: 100 });
      try {
        const store = new NatsStreamStore(restartable);
        const stream = await store.stream('durable_file', { subjects: ['durable_file.>'] });
        const handled: number[] = [];
        const reader = await stream.consume('d', (m) => void handled.push(m.seq));
        await stream.publish('durable_file.a', text('1'));
        await stream.publish('durable_file.a', text('2'));
        await eventually(() => handled.length === 2);
        await reader.stop();
        await stream.publish('durable_file.a', text('3'));

        await server.restart();
        // Requests sent while disconnected are lost, not replayed: wait until the API answers.
        const again = await eventually(
          () => store.stream('durable_file', { subjects: ['durable_file.>'] }),
          { timeoutMs: 20_000, intervalMs: 200, message: 'stream reopened after the restart' },
        );
        expect(await again.info()).toMatchObject({ messages: 3, firstSeq: 1, lastSeq: 3 });
        const after: number[] = [];
        readers.push(await again.consume('d', (m) => void after.push(m.seq)));
        await eventually(() => after.length === 1, { timeoutMs: 20_000 });
        expect(after).toEqual([3]);
      } finally {
        await Promise.all(readers.splice(0).map((reader) => reader.stop()));
        await restartable.close();
      }
    });
  });
});
