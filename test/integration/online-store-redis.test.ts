import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { InternalError, UnavailableError } from '../../runtime/errors.js';
import { openOnlineStore } from '../../runtime/features/open.js';
import { RedisOnlineStore } from '../../runtime/features/redis-store.js';
import type { FeatureDefinitions } from '../../runtime/features/types.js';
import { eventually } from '../helpers/eventually.js';
import { onlineStoreSuite, SUITE_DEFINITIONS } from '../helpers/online-store-suite.js';
import { describeIntegration } from '../helpers/require-services.js';
import { getFreePort, startRedisServer, type RedisServerHandle } from '../helpers/servers.js';

let prefixCounter = 0;
function freshPrefix(): string {
  return `t${process.pid}_${Date.now().toString(36)}_${prefixCounter++}`;
}

const row = (entity: string, values: Record<string, number>, eventTimeMs: number) => ({
  view: 'everything',
  entity,
  row: { values, eventTimeMs },
});

describeIntegration('RedisOnlineStore', () => {
  let server: RedisServerHandle;
  let raw: Redis;

  beforeAll(async () => {
    server = await startRedisServer();
    raw = new Redis(server.url);
  });

  afterAll(async () => {
    await raw.quit();
    await server.stop();
  });

  onlineStoreSuite(
    'redis',
    (definitions: FeatureDefinitions) =>
      RedisOnlineStore.connect({ url: server.url, prefix: freshPrefix(), definitions }),
    { time: 'real' },
  );

  describe('on a shared server', () => {
    const stores: RedisOnlineStore[] = [];
    const clients: Redis[] = [];

    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
      for (const client of clients.splice(0)) await client.quit();
    });

    async function open(prefix = freshPrefix()): Promise<RedisOnlineStore> {
      const store = await RedisOnlineStore.connect({
        url: server.url,
        prefix,
        definitions: SUITE_DEFINITIONS,
      });
      stores.push(store);
      return store;
    }

    it('lays out one key per entity per view, version and event time first', async () => {
      const prefix = freshPrefix();
      const store = await open(prefix);
      await store.write({
        rows: [
          row('u:1', { i: 4 }, 1_700_000_000_123),
          { view: 'short_lived', entity: 'i1', row: { values: { n: 1 }, eventTimeMs: 5 } },
        ],
        marks: { scope: 'grp', ids: ['ev:1'], ttlMs: 60_000 },
      });
      await store.setMeta('watermark', '42');

      const value = await raw.get(`${prefix}:fs:everything:u:1`);
      expect(value).toBe('1:1700000000123:{"v":{"i":4}}');
      expect(await raw.pttl(`${prefix}:fs:everything:u:1`)).toBe(-1);
      const ttl = await raw.pttl(`${prefix}:fs:short_lived:i1`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1_000);
      const markTtl = await raw.pttl(`${prefix}:fs:seen:grp:ev:1`);
      expect(markTtl).toBeGreaterThan(50_000);
      expect(markTtl).toBeLessThanOrEqual(60_000);
      expect(await raw.get(`${prefix}:fs:meta:watermark`)).toBe('42');
      expect((await raw.keys(`${prefix}:*`)).sort()).toEqual(
        [
          `${prefix}:fs:everything:u:1`,
          `${prefix}:fs:meta:watermark`,
          `${prefix}:fs:seen:grp:ev:1`,
          `${prefix}:fs:short_lived:i1`,
        ].sort(),
      );
    });

    it('keeps stores of different prefixes apart', async () => {
      const one = await open();
      const two = await open();
      await one.write({ rows: [row('u1', { i: 1 }, 1)] });
      expect(await two.read('everything', ['u1'])).toEqual([null]);
    });

    it('reads N entities in one round trip and writes a batch in one command', async () => {
      const client = new Redis(server.url);
      clients.push(client);
      const store = new RedisOnlineStore({
        client,
        prefix: freshPrefix(),
        definitions: SUITE_DEFINITIONS,
      });
      stores.push(store);
      const sent: string[] = [];
      const sendCommand = client.sendCommand.bind(client);
      client.sendCommand = (command, stream) => {
        sent.push(command.name);
        return sendCommand(command, stream);
      };

      const entities = Array.from({ length: 200 }, (_, i) => `user-${i}`);
      // The first write loads the script (EVALSHA answered NOSCRIPT, then EVAL); later ones do not.
      await store.write({ rows: [row('warm-up', {}, 1)] });
      sent.length = 0;

      const result = await store.write({
        rows: entities.map((entity, i) => row(entity, { i }, i)),
        marks: { scope: 'grp', ids: entities, ttlMs: 60_000 },
      });
      expect(result).toEqual({ written: 200, stale: 0 });
      expect(sent).toEqual(['evalsha']);

      sent.length = 0;
      const rows = await store.read('everything', entities);
      expect(sent).toEqual(['mget']);
      expect(rows.map((r) => r?.values['i'])).toEqual(entities.map((_, i) => i));

      sent.length = 0;
      expect(await store.processed('grp', entities)).toEqual(entities.map(() => true));
      expect(sent).toEqual(['mget']);
    });

    it('leaves a client it was given open', async () => {
      const client = new Redis(server.url);
      clients.push(client);
      const store = new RedisOnlineStore({
        client,
        prefix: freshPrefix(),
        definitions: SUITE_DEFINITIONS,
      });
      await store.close();
      await expect(store.read('everything', ['u1'])).rejects.toBeInstanceOf(UnavailableError);
      expect(await client.ping()).toBe('PONG');
    });

    it('rejects a value it cannot decode with InternalError naming the key', async () => {
      const prefix = freshPrefix();
      const store = await open(prefix);
      await raw.set(`${prefix}:fs:everything:u1`, 'not a row');
      const read = store.read('everything', ['u1']);
      await expect(read).rejects.toBeInstanceOf(InternalError);
      await expect(read).rejects.toThrow(`${prefix}:fs:everything:u1`);
    });

    it('opens the Redis store for nats', async () => {
      const store = await openOnlineStore({
        transport: 'nats',
        redisUrl: server.url,
        prefix: freshPrefix(),
        definitions: SUITE_DEFINITIONS,
      });
      try {
        expect(store).toBeInstanceOf(RedisOnlineStore);
        await store.write({ rows: [row('u1', { i: 1 }, 1)] });
        expect(await store.read('everything', ['u1'])).toMatchObject([{ values: { i: 1 } }]);
      } finally {
        await store.close();
      }
    });
  });

  describe('while Redis is unreachable', () => {
    let own: RedisServerHandle | undefined;
    let store: RedisOnlineStore | undefined;

    afterEach(async () => {
      if (own !== undefined) {
        // A test that paused the server must not leave it paused for stop().
        try {
          process.kill(own.pid, 'SIGCONT');
        } catch {
          // Already gone.
        }
      }
      await store?.close();
      await own?.stop();
      store = undefined;
      own = undefined;
    });

    it('rejects at once with UnavailableError while stopped, and works again once back', async () => {
      own = await startRedisServer();
      const commandTimeoutMs = 500;
      store = await RedisOnlineStore.connect({
        url: own.url,
        prefix: freshPrefix(),
        definitions: SUITE_DEFINITIONS,
        commandTimeoutMs,
      });
      await store.write({ rows: [row('u1', { i: 1 }, 1)] });
      await own.stop();

      for (const attempt of [
        () => store!.read('everything', ['u1']),
        () => store!.write({ rows: [row('u1', { i: 2 }, 2)] }),
        () => store!.processed('grp', ['e1']),
        () => store!.getMeta('k'),
      ]) {
        const started = performance.now();
        const err = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        const elapsed = performance.now() - started;
        expect(err).toBeInstanceOf(UnavailableError);
        expect((err as UnavailableError).cause).toBeInstanceOf(Error);
        expect(elapsed).toBeLessThan(commandTimeoutMs);
      }

      await own.restart();
      // The server kept nothing (no persistence): the entity reads as never written.
      await eventually(async () => (await store!.read('everything', ['u1']))[0] === null, {
        timeoutMs: 10_000,
        message: 'read after Redis came back',
      });
      await store.write({ rows: [row('u1', { i: 3 }, 3)] });
      expect(await store.read('everything', ['u1'])).toMatchObject([{ version: 1 }]);
    });

    it('rejects with UnavailableError within the command timeout when Redis stops answering', async () => {
      own = await startRedisServer();
      const commandTimeoutMs = 300;
      store = await RedisOnlineStore.connect({
        url: own.url,
        prefix: freshPrefix(),
        definitions: SUITE_DEFINITIONS,
        commandTimeoutMs,
      });
      // A paused server keeps the connection open but answers nothing: only the timeout helps.
      process.kill(own.pid, 'SIGSTOP');
      const started = performance.now();
      const err = await store.read('everything', ['u1']).then(
        () => undefined,
        (e: unknown) => e,
      );
      const elapsed = performance.now() - started;
      expect(err).toBeInstanceOf(UnavailableError);
      expect(elapsed).toBeGreaterThanOrEqual(commandTimeoutMs - 5);
      expect(elapsed).toBeLessThan(commandTimeoutMs + 1_000);
      process.kill(own.pid, 'SIGCONT');
      await eventually(async () => (await store!.read('everything', ['u1']))[0] === null, {
        message: 'read after Redis resumed',
      });
    });

    it('fails to open within the ready timeout when nothing listens', async () => {
      const port = await getFreePort();
      const started = performance.now();
      const opening = openOnlineStore({
        transport: 'nats',
        redisUrl: `redis://:secret@127.0.0.1:${port}`,
        prefix: freshPrefix(),
        definitions: SUITE_DEFINITIONS,
        readyTimeoutMs: 500,
      });
      const err = await opening.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toContain(`127.0.0.1:${port}`);
      expect((err as Error).message).not.toContain('secret');
      expect(performance.now() - started).toBeLessThan(3_000);
    });
  });
});
