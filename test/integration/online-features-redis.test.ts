import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';

import { UnavailableError } from '../../runtime/errors.js';
import { FeatureRegistry, parseFeatureDefinitions } from '../../runtime/features/definitions.js';
import { OnlineFeatures } from '../../runtime/features/online-features.js';
import type { OnlineFeaturesOptions } from '../../runtime/features/online-features.js';
import { RedisOnlineStore } from '../../runtime/features/redis-store.js';
import type { WriteBatch } from '../../runtime/features/types.js';
import { eventually } from '../helpers/eventually.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/servers.js';

const DEFINITIONS = parseFeatureDefinitions(
  `
entities:
  - { name: item, description: An item. }
views:
  - name: item_profile
    entity: item
    source: batch
    ttl: 0
    fields:
      - { name: category, type: string, default: '' }
      - { name: price, type: float, default: 1.5 }
`,
  'test-features.yaml',
);
const registry = new FeatureRegistry(DEFINITIONS);

function profile(entity: string, category: string, eventTimeMs: number): WriteBatch {
  return { rows: [{ view: 'item_profile', entity, row: { values: { category }, eventTimeMs } }] };
}

describeIntegration('OnlineFeatures on Redis', () => {
  let server: RedisServerHandle;
  let store: RedisOnlineStore;
  let online: OnlineFeatures | undefined;
  let prefixes = 0;

  async function open(options: Partial<OnlineFeaturesOptions>): Promise<OnlineFeatures> {
    store = await RedisOnlineStore.connect({
      url: server.url,
      prefix: `onlinefeatures${prefixes++}`,
      definitions: DEFINITIONS,
      commandTimeoutMs: 500,
      reconnectMaxDelayMs: 100,
    });
    online = new OnlineFeatures({
      store,
      registry,
      readTimeoutMs: 250,
      writeRetryMs: 100,
      ...options,
    });
    return online;
  }

  beforeAll(async () => {
    server = await startRedisServer();
  });

  beforeEach(() => {
    online = undefined;
  });

  afterEach(async () => {
    await online?.close();
    await store.close();
  });

  afterAll(async () => {
    await server.stop();
  });

  it('keeps serving while Redis is down, and writes made meanwhile land once it is back', async () => {
    // No cache: every read goes to Redis, so the outage shows on each one.
    const features = await open({ cacheMaxEntries: 0 });
    const reader = features.prepare('item_profile');
    const t0 = Date.now();
    expect(await features.write(profile('i1', 'hats', t0))).toMatchObject({
      written: 1,
      buffered: false,
    });
    expect((await reader.read(['i1'])).rows[0]?.values).toEqual({ category: 'hats', price: 1.5 });

    await server.kill();

    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const { rows, degraded } = await reader.read(['i1', 'i2']);
      // Refused at once by a closed connection, or cut at the read timeout: never a hang.
      expect(performance.now() - started).toBeLessThan(1000);
      expect(degraded).toBe(true);
      expect(rows.map((row) => row.values)).toEqual([
        { category: '', price: 1.5 },
        { category: '', price: 1.5 },
      ]);
      expect(rows[0]?.eventTimeMs).toBeNaN();
    }
    expect(features.stats().degradedReads).toBe(20);

    const late = await features.write(profile('i3', 'late', t0 + 1));
    const newer = await features.write(profile('i1', 'newer', t0 + 2));
    expect(late.buffered).toBe(true);
    expect(newer.buffered).toBe(true);
    await expect(features.flush()).rejects.toBeInstanceOf(UnavailableError);
    expect(features.stats().writeBuffer.rows).toBe(2);

    // The server comes back empty (no persistence): what it holds then is what the buffer wrote.
    await server.restart();
    await eventually(
      async () => {
        const { rows, degraded } = await reader.read(['i3', 'i1']);
        return (
          !degraded &&
          rows[0]?.values['category'] === 'late' &&
          rows[1]?.values['category'] === 'newer'
        );
      },
      { timeoutMs: 15_000, message: 'buffered writes readable after the restart' },
    );
    expect(features.stats().writeBuffer).toMatchObject({ rows: 0, batches: 0, landedRows: 2 });
    expect((await reader.read(['i3'])).rows[0]?.eventTimeMs).toBe(t0 + 1);
    // Written through again, not buffered.
    expect((await features.write(profile('i4', 'socks', t0 + 3))).buffered).toBe(false);
  });

  it('serves cached rows while Redis is down and defaults only for the misses', async () => {
    const features = await open({ cacheTtlMs: 60_000 });
    const reader = features.prepare('item_profile', ['category']);
    await features.write(profile('i1', 'hats', Date.now()));
    expect((await reader.read(['i1'])).rows[0]?.values).toEqual({ category: 'hats' });

    await server.kill();
    const { rows, degraded } = await reader.read(['i1', 'i2']);
    expect(degraded).toBe(true);
    expect(rows.map((row) => row.values)).toEqual([{ category: 'hats' }, { category: '' }]);
    // Hits need no Redis at all.
    const hit = await reader.read(['i1']);
    expect(hit.degraded).toBe(false);
    expect(hit.rows[0]?.values).toEqual({ category: 'hats' });

    await server.restart();
    await eventually(async () => !(await reader.read(['i2'])).degraded, { timeoutMs: 15_000 });
  });
});
