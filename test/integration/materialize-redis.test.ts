import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { formatMaterializeResult, runMaterialize } from '../../models/cli/materialize.js';
import { generateDataset } from '../../models/data/generate.js';
import {
  batchViewsOf,
  buildFeatureTables,
  readFeatureTable,
  watermarkKey,
} from '../../models/features/index.js';
import type { MaterializeRunResult } from '../../models/cli/materialize.js';
import { loadFeatureDefinitions } from '../../runtime/features/definitions.js';
import { RedisOnlineStore } from '../../runtime/features/redis-store.js';
import { describeIntegration } from '../helpers/require-services.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/servers.js';

const definitions = loadFeatureDefinitions('configs/features.yaml');
const PREFIX = 'mtest';

describeIntegration('recsys materialize into Redis', () => {
  let redis: RedisServerHandle;
  let dir: string;
  let datasetDir: string;
  let configPath: string;
  let store: RedisOnlineStore;

  beforeAll(async () => {
    redis = await startRedisServer();
    dir = await mkdtemp(join(tmpdir(), 'recsys-materialize-redis-'));
    datasetDir = join(dir, 'data', 'datasets', 'world');
    await generateDataset({
      dir: datasetDir,
      name: 'world',
      users: 300,
      items: 1200,
      days: 20,
      categories: 8,
      seed: 11,
    });
    await buildFeatureTables(datasetDir, definitions);
    configPath = join(dir, 'config.yaml');
    await writeFile(
      configPath,
      `deployment:\n  transport: nats\n  prefix: ${PREFIX}\n` +
        `redis:\n  url: ${redis.url}\n` +
        `data:\n  dir: ${join(dir, 'data')}\n`,
    );
    store = await RedisOnlineStore.connect({ url: redis.url, prefix: PREFIX, definitions });
  });

  afterAll(async () => {
    await store?.close();
    await redis?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Reads every row of every batch view back from Redis: each exactly as in its table. */
  async function expectRedisHoldsTables(versions: Record<string, number>): Promise<void> {
    for (const view of batchViewsOf(definitions)) {
      const version = versions[view.name];
      const table = await readFeatureTable(datasetDir, view);
      for (let start = 0; start < table.ids.length; start += 500) {
        const ids = table.ids.slice(start, start + 500);
        const stored = await store.read(view.name, ids);
        ids.forEach((_, k) => {
          const r = start + k;
          const values: Record<string, unknown> = {};
          for (const field of view.fields) values[field.name] = table.columns[field.name]![r];
          expect(stored[k]).toEqual({ values, eventTimeMs: table.eventTimeMs[r], version });
        });
      }
    }
  }

  function counts(result: MaterializeRunResult): Record<string, number[]> {
    return Object.fromEntries(
      result.views.map((v) => [v.view, [v.read, v.written, v.skipped, v.stale]]),
    );
  }

  it('loads the tables, then loads nothing again, then rewrites everything with --full', async () => {
    const progress: string[] = [];
    const stream = { isTTY: false, write: (line: string) => progress.push(line) > 0 };
    const first = await runMaterialize(
      { data: 'world', config: configPath, batchSize: 250 },
      {},
      { progressStream: stream },
    );
    expect(first).toMatchObject({ dataset: 'world', redisUrl: redis.url, prefix: PREFIX });
    expect(counts(first)).toEqual({
      user_profile: [300, 300, 0, 0],
      item_profile: [1200, 1200, 0, 0],
      item_popularity: [1200, 1200, 0, 0],
    });
    await expectRedisHoldsTables({ user_profile: 1, item_profile: 1, item_popularity: 1 });
    expect(progress.filter((line) => line.includes('100%')).map((l) => l.split(' ')[0])).toEqual([
      'user_profile',
      'item_profile',
      'item_popularity',
    ]);
    expect(formatMaterializeResult(first)).toMatch(
      /^materialized world \([0-9a-f]{12}\) into redis:\/\/127\.0\.0\.1:\d+ prefix mtest in [\d.]+ s\n {2}view +read +written +skipped +stale +watermark\n {2}user_profile +300 +300 +0 +0 +\d{4}-/,
    );
    const watermark = await store.getMeta(watermarkKey('item_popularity', 'world'));
    expect(JSON.parse(watermark!)).toMatchObject({ fingerprint: first.fingerprint, rows: 1200 });

    const again = await runMaterialize(
      { data: datasetDir, config: configPath, progress: false },
      {},
    );
    expect(counts(again)).toEqual({
      user_profile: [300, 0, 300, 0],
      item_profile: [1200, 0, 1200, 0],
      item_popularity: [1200, 0, 1200, 0],
    });
    await expectRedisHoldsTables({ user_profile: 1, item_profile: 1, item_popularity: 1 });

    const full = await runMaterialize(
      { data: 'world', config: configPath, full: true, views: 'item_profile', progress: false },
      {},
    );
    expect(counts(full)).toEqual({ item_profile: [1200, 1200, 0, 0] });
    await expectRedisHoldsTables({ user_profile: 1, item_profile: 2, item_popularity: 1 });

    // Another deployment prefix on the same server sees none of it.
    const { ids } = await readFeatureTable(datasetDir, batchViewsOf(definitions)[0]!);
    expect((await store.read('user_profile', ids.slice(0, 3))).every((r) => r !== null)).toBe(true);
    const other = await RedisOnlineStore.connect({ url: redis.url, prefix: 'other', definitions });
    try {
      expect(await other.read('user_profile', ids.slice(0, 3))).toEqual([null, null, null]);
      expect(await other.getMeta(watermarkKey('user_profile', 'world'))).toBeNull();
    } finally {
      await other.close();
    }
  });
});
