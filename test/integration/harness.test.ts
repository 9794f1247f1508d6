import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, EventuallyTimeoutError } from '../helpers/eventually.js';
import { describeIntegration } from '../helpers/require-services.js';
import {
  MissingServerBinaryError,
  pingRedis,
  startNatsServer,
  startRedisServer,
  stopAllServers,
} from '../helpers/servers.js';

describeIntegration('test harness: servers', () => {
  const connections: NatsConnection[] = [];
  const track = (nc: NatsConnection): NatsConnection => {
    connections.push(nc);
    return nc;
  };

  afterEach(async () => {
    await Promise.allSettled(connections.splice(0).map((nc) => nc.close()));
    await stopAllServers();
  });

  it('starts nats-server with JetStream and serves request/reply', async () => {
    const nats = await startNatsServer();
    expect(nats.url).toBe(`nats://127.0.0.1:${nats.port}`);
    expect(nats.pid).toBeGreaterThan(0);

    const nc = track(await connect({ servers: nats.url }));
    nc.subscribe('harness.echo', {
      callback: (err, msg) => {
        if (!err) msg.respond(`echo:${msg.string()}`);
      },
    });
    const reply = await nc.request('harness.echo', 'hello', { timeout: 2_000 });
    expect(reply.string()).toBe('echo:hello');

    const jsm = await jetstreamManager(nc);
    const account = await jsm.getAccountInfo();
    expect(account.streams).toBe(0);
  });

  it('keeps JetStream streams across a kill and a restart on the same port and store', async () => {
    const nats = await startNatsServer();
    const nc = track(
      await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 }),
    );
    nc.subscribe('harness.echo', {
      callback: (err, msg) => {
        if (!err) msg.respond(msg.data);
      },
    });
    const jsm = await jetstreamManager(nc, { timeout: 1_000 });
    await jsm.streams.add({ name: 'HARNESS', subjects: ['harness.events.>'] });
    await jetstream(nc).publish('harness.events.one', 'payload', { msgID: 'one' });

    const { port, storeDir, pid } = nats;
    await nats.kill();
    expect(existsSync(storeDir)).toBe(true);
    await nats.restart();
    expect(nats.port).toBe(port);
    expect(nats.storeDir).toBe(storeDir);
    expect(nats.pid).not.toBe(pid);

    // The connection made before the crash reconnects by itself, subscriptions included.
    const echoed = await eventually(
      async () => (await nc.request('harness.echo', 'again', { timeout: 500 })).string(),
      { timeoutMs: 15_000, message: 'old connection did not reconnect' },
    );
    expect(echoed).toBe('again');

    const fresh = track(await connect({ servers: nats.url }));
    const freshJsm = await jetstreamManager(fresh);
    const info = await freshJsm.streams.info('HARNESS');
    expect(info.state.messages).toBe(1);
    const stored = await freshJsm.streams.getMessage('HARNESS', { seq: 1 });
    expect(stored?.string()).toBe('payload');
  });

  it('removes a store dir it created on stop() and keeps one it was given', async () => {
    const given = await mkdtemp(join(tmpdir(), 'recsys-harness-'));
    try {
      const withGiven = await startNatsServer({ storeDir: given });
      const withOwn = await startNatsServer();
      expect(withOwn.port).not.toBe(withGiven.port);
      await withGiven.stop();
      await withOwn.stop();
      expect(existsSync(given)).toBe(true);
      expect(existsSync(withOwn.storeDir)).toBe(false);
    } finally {
      await rm(given, { recursive: true, force: true });
    }
  });

  it('starts nats-server without JetStream when asked', async () => {
    const nats = await startNatsServer({ jetstream: false });
    const nc = track(await connect({ servers: nats.url }));
    await expect(jetstreamManager(nc, { timeout: 1_000 })).rejects.toThrow();
  });

  it('starts redis-server that answers PING, also after a kill and a restart', async () => {
    const redis = await startRedisServer();
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await pingRedis(redis.port)).toBe('+PONG');

    await redis.kill();
    await expect(pingRedis(redis.port)).rejects.toThrow();
    await redis.restart();
    expect(await pingRedis(redis.port)).toBe('+PONG');
  });

  it('names the binary it cannot find', async () => {
    const saved = process.env.NATS_SERVER_BIN;
    process.env.NATS_SERVER_BIN = join(tmpdir(), 'no-such-dir', 'nats-server');
    try {
      const started = startNatsServer();
      await expect(started).rejects.toBeInstanceOf(MissingServerBinaryError);
      await expect(started).rejects.toThrow(/nats-server not found: NATS_SERVER_BIN=/);
    } finally {
      if (saved === undefined) delete process.env.NATS_SERVER_BIN;
      else process.env.NATS_SERVER_BIN = saved;
    }
  });
});

describe('test harness: eventually', () => {
  it('resolves with the value once the function stops throwing', async () => {
    let calls = 0;
    const value = await eventually(
      () => {
        calls++;
        if (calls < 3) throw new Error('not yet');
        return 'done';
      },
      { intervalMs: 1 },
    );
    expect(value).toBe('done');
    expect(calls).toBe(3);
  });

  it('waits until a boolean condition is true', async () => {
    let calls = 0;
    await expect(eventually(() => ++calls >= 3, { intervalMs: 1 })).resolves.toBe(true);
    expect(calls).toBe(3);
  });

  it('fails with the message and the last error when time runs out', async () => {
    const failing = eventually(
      () => {
        throw new Error('still broken');
      },
      { timeoutMs: 50, intervalMs: 5, message: 'widget never ready' },
    );
    await expect(failing).rejects.toBeInstanceOf(EventuallyTimeoutError);
    await expect(failing).rejects.toThrow(/^widget never ready within 50 ms .*still broken/);
  });

  it('treats an attempt still pending at the deadline as failed', async () => {
    const pending = eventually(() => new Promise<never>(() => undefined), { timeoutMs: 50 });
    await expect(pending).rejects.toThrow(/still pending at the deadline/);
  });
});
