import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { writeDataset } from '../../models/data/dataset-io.js';
import { DatasetFormatError } from '../../models/data/errors.js';
import { EventType } from '../../models/data/types.js';
import type { EventTable, ItemTable, UserTable } from '../../models/data/types.js';
import {
  batchViewsOf,
  buildFeatureTables,
  loadBatchFeatures,
  materializeDataset,
  readFeatureTable,
  watermarkKey,
} from '../../models/features/index.js';
import type { MaterializeProgress, MaterializeResult } from '../../models/features/index.js';
import { BadRequestError } from '../../runtime/errors.js';
import { loadFeatureDefinitions } from '../../runtime/features/definitions.js';
import { MemoryOnlineStore } from '../../runtime/features/memory-store.js';

const DAY = 86_400_000;
const definitions = loadFeatureDefinitions('configs/features.yaml');
const BATCH_VIEWS = ['user_profile', 'item_profile', 'item_popularity'];

/** Four users, five items; `extra` events come after day 30, the end of the first version. */
function tables(extra: [user: number, item: number, day: number][] = []): {
  items: ItemTable;
  users: UserTable;
  events: EventTable;
} {
  const rows: [number, number, number, EventType][] = [
    [0, 0, 1, EventType.View],
    [0, 0, 2, EventType.Click],
    [1, 1, 5, EventType.View],
    [2, 2, 10, EventType.View],
    [1, 0, 20, EventType.View],
    [0, 3, 30, EventType.View],
    ...extra.map(([u, i, d]): [number, number, number, EventType] => [u, i, d, EventType.View]),
  ];
  return {
    items: {
      ids: ['a', 'b', 'c', 'd', 'e'],
      categories: ['x', 'y'],
      category: Int32Array.from([0, 1, 0, 1, 0]),
      tags: [],
      tagOffsets: new Int32Array(6),
      tagIds: new Int32Array(0),
      createdAt: Float64Array.from([100, 200, NaN, 400, NaN]),
    },
    users: {
      ids: ['u0', 'u1', 'u2', 'u3'],
      ageBand: Int32Array.from([-1, -1, -1, -1]),
      country: Int32Array.from([0, -1, 0, -1]),
      device: Int32Array.from([-1, -1, -1, -1]),
      ageBands: [],
      countries: ['DE'],
      devices: [],
      signupAt: Float64Array.from([50, 60, NaN, 70]),
    },
    events: {
      length: rows.length,
      user: Int32Array.from(rows, (r) => r[0]),
      item: Int32Array.from(rows, (r) => r[1]),
      ts: Float64Array.from(rows, (r) => r[2] * DAY),
      type: Uint8Array.from(rows, (r) => r[3]),
      value: new Float32Array(rows.length),
    },
  };
}

const info = { name: 'small', source: 'csv' as const, details: {} };

let dir: string;
let store: MemoryOnlineStore;

beforeEach(async () => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1), toFake: ['Date'] });
  dir = await mkdtemp(join(tmpdir(), 'recsys-materialize-'));
  store = new MemoryOnlineStore({ definitions });
});

afterEach(async () => {
  vi.useRealTimers();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function dataset(extra: [number, number, number][] = []): Promise<void> {
  await writeDataset(dir, tables(extra), info);
  await buildFeatureTables(dir, definitions);
}

/** Every row of every batch view's table is in the store, with its values and event time. */
async function expectStoreHoldsTables(): Promise<void> {
  for (const view of batchViewsOf(definitions)) {
    const table = await readFeatureTable(dir, view);
    const stored = await store.read(view.name, table.ids);
    table.ids.forEach((_, r) => {
      const values: Record<string, unknown> = {};
      for (const field of view.fields) values[field.name] = table.columns[field.name]![r];
      expect(stored[r]).toMatchObject({ values, eventTimeMs: table.eventTimeMs[r] });
    });
  }
}

function counts(result: MaterializeResult): Record<string, [number, number, number, number]> {
  return Object.fromEntries(
    result.views.map((v) => [v.view, [v.read, v.written, v.skipped, v.stale]]),
  );
}

describe('materializeDataset', () => {
  it('loads every batch view into the store, exactly as in the tables', async () => {
    await dataset();
    const result = await materializeDataset(store, definitions, dir);
    expect(result.dataset).toBe('small');
    expect(result.views.map((v) => v.view)).toEqual(BATCH_VIEWS);
    expect(counts(result)).toEqual({
      user_profile: [4, 4, 0, 0],
      item_profile: [5, 5, 0, 0],
      item_popularity: [5, 5, 0, 0],
    });
    await expectStoreHoldsTables();
    const [u0, u3] = await store.read('user_profile', ['u0', 'u3']);
    expect(u0).toMatchObject({
      version: 1,
      eventTimeMs: 30 * DAY,
      values: { country: 'DE', interactions: 3, top_categories: ['x', 'y'] },
    });
    // No events: the sign-up time.
    expect(u3).toMatchObject({ eventTimeMs: 70, values: { interactions: 0, top_categories: [] } });
    const [a] = await store.read('item_popularity', ['a']);
    expect(a?.values).toEqual({
      interactions: 3,
      interactions_30d: 3,
      users: 2,
      ctr: 2 / 22,
      mean_rating: 0,
      popularity_rank: 0,
    });
    expect(JSON.parse((await store.getMeta(watermarkKey('user_profile', 'small')))!)).toEqual({
      watermark_ms: 30 * DAY,
      fingerprint: result.fingerprint,
      rows: 4,
      loaded_at: '2030-01-01T00:00:00.000Z',
    });
  });

  it('writes nothing when run again with nothing new', async () => {
    await dataset();
    await materializeDataset(store, definitions, dir);
    const meta = await store.getMeta(watermarkKey('item_profile', 'small'));
    vi.setSystemTime(Date.UTC(2030, 0, 2));
    const again = await materializeDataset(store, definitions, dir);
    expect(counts(again)).toEqual({
      user_profile: [4, 0, 4, 0],
      item_profile: [5, 0, 5, 0],
      item_popularity: [5, 0, 5, 0],
    });
    expect(again.views.every((v) => v.watermarkMs === v.previousWatermarkMs)).toBe(true);
    // Not one row rewritten (each write applied bumps the version), and the watermark untouched.
    const rows = await store.read('user_profile', ['u0', 'u1', 'u2', 'u3']);
    expect(rows.map((r) => r?.version)).toEqual([1, 1, 1, 1]);
    expect(await store.getMeta(watermarkKey('item_profile', 'small'))).toBe(meta);
  });

  it('writes only the rows newer than the watermark after the data set grew', async () => {
    await dataset();
    await materializeDataset(store, definitions, dir);
    // u2 views e at day 40: u2's profile, the items of unknown creation (their time is the end
    // of the data) and all popularity rows (likewise) are newer; the rest are not.
    await dataset([[2, 4, 40]]);
    const grown = await materializeDataset(store, definitions, dir);
    expect(counts(grown)).toEqual({
      user_profile: [4, 1, 3, 0],
      item_profile: [5, 2, 3, 0],
      item_popularity: [5, 5, 0, 0],
    });
    expect(grown.views.map((v) => [v.previousWatermarkMs, v.watermarkMs])).toEqual([
      [30 * DAY, 40 * DAY],
      [30 * DAY, 40 * DAY],
      [30 * DAY, 40 * DAY],
    ]);
    const users = await store.read('user_profile', ['u0', 'u2']);
    expect(users.map((r) => r?.version)).toEqual([1, 2]);
    expect(users[1]).toMatchObject({
      eventTimeMs: 40 * DAY,
      values: { interactions: 2, top_categories: ['x'] },
    });
    await expectStoreHoldsTables();
  });

  it('rewrites every row with full, and counts the rows the store holds newer as stale', async () => {
    await dataset();
    await materializeDataset(store, definitions, dir);
    // Someone stored a newer profile of u1 since.
    await store.write({
      rows: [
        {
          view: 'user_profile',
          entity: 'u1',
          row: { values: { interactions: 99 }, eventTimeMs: 100 * DAY },
        },
      ],
    });
    const full = await materializeDataset(store, definitions, dir, { full: true });
    expect(counts(full)).toEqual({
      user_profile: [4, 3, 0, 1],
      item_profile: [5, 5, 0, 0],
      item_popularity: [5, 5, 0, 0],
    });
    const rows = await store.read('user_profile', ['u0', 'u1']);
    expect(rows[0]?.version).toBe(2);
    expect(rows[1]).toMatchObject({ version: 2, values: { interactions: 99 } });
  });

  it('reports progress per view, batch by batch, up to every row', async () => {
    await dataset();
    const seen: MaterializeProgress[] = [];
    const result = await materializeDataset(store, definitions, dir, {
      batchSize: 2,
      onProgress: (p) => seen.push(p),
    });
    expect(counts(result)['item_profile']).toEqual([5, 5, 0, 0]);
    for (const view of BATCH_VIEWS) {
      const mine = seen.filter((p) => p.view === view);
      const total = view === 'user_profile' ? 4 : 5;
      expect(mine[0]).toEqual({ view, done: 0, total, written: 0 });
      expect(mine.at(-1)).toEqual({ view, done: total, total, written: total });
      // Done once, after the last write: a progress bar finishing there shows the final count.
      expect(mine.filter((p) => p.done === total)).toHaveLength(1);
      // One report after each write of two rows at least, never going back.
      expect(mine.length).toBeGreaterThanOrEqual(1 + Math.ceil(total / 2));
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i]!.done).toBeGreaterThanOrEqual(mine[i - 1]!.done);
        expect(mine[i]!.written).toBeGreaterThanOrEqual(mine[i - 1]!.written);
      }
    }
    // A run with nothing to write still ends each view at every row gone through.
    const again: MaterializeProgress[] = [];
    await materializeDataset(store, definitions, dir, { onProgress: (p) => again.push(p) });
    expect(again.filter((p) => p.done === p.total).map((p) => [p.view, p.written])).toEqual([
      ['user_profile', 0],
      ['item_profile', 0],
      ['item_popularity', 0],
    ]);
  });

  it('loads only the views asked for, each with its own watermark', async () => {
    await dataset();
    const some = await materializeDataset(store, definitions, dir, { views: ['item_popularity'] });
    expect(counts(some)).toEqual({ item_popularity: [5, 5, 0, 0] });
    expect(await store.read('user_profile', ['u0'])).toEqual([null]);
    const rest = await materializeDataset(store, definitions, dir);
    expect(counts(rest)).toEqual({
      user_profile: [4, 4, 0, 0],
      item_profile: [5, 5, 0, 0],
      item_popularity: [5, 0, 5, 0],
    });
  });

  it('rejects bad options and out-of-date tables, naming what to do', async () => {
    await dataset();
    const rejection = (options: Parameters<typeof materializeDataset>[3]) =>
      materializeDataset(store, definitions, dir, options).catch((err: unknown) => err);
    const unknown = await rejection({ views: ['user_profile', 'nope'] });
    expect(unknown).toBeInstanceOf(BadRequestError);
    expect(unknown).toMatchObject({ field: 'views' });
    expect((unknown as Error).message).toMatch(
      /unknown view nope \(batch views: user_profile, item_profile, item_popularity\)/,
    );
    expect(await rejection({ views: ['user_realtime'] })).toMatchObject({
      field: 'views',
      message: expect.stringMatching(/user_realtime is not a batch view/) as unknown,
    });
    expect(await rejection({ batchSize: 0 })).toMatchObject({ field: 'batchSize' });
    expect(await rejection({ batchSize: 10_001 })).toMatchObject({ field: 'batchSize' });

    // The data changed and the tables were not rebuilt.
    await writeDataset(dir, tables([[3, 1, 31]]), info);
    const stale = await rejection({});
    expect(stale).toBeInstanceOf(DatasetFormatError);
    expect((stale as Error).message).toMatch(
      /the feature tables were built from data \w+, the data set is \w+; rebuild them with `recsys data features --data small`/,
    );
    expect(await store.read('user_profile', ['u0'])).toEqual([null]);
  });

  it('moves no watermark when a write fails part way through a view', async () => {
    await dataset();
    await materializeDataset(store, definitions, dir);
    const before = await store.getMeta(watermarkKey('item_profile', 'small'));
    // A new item whose id the store refuses (longer than 256 characters), last in the table.
    const grown = tables([[2, 4, 40]]);
    const long = 'z'.repeat(300);
    const items: ItemTable = {
      ...grown.items,
      ids: [...grown.items.ids, long],
      category: Int32Array.from([...grown.items.category, 0]),
      tagOffsets: new Int32Array(7),
      createdAt: Float64Array.from([...grown.items.createdAt, NaN]),
    };
    await writeDataset(dir, { ...grown, items }, info);
    await buildFeatureTables(dir, definitions);
    const err = await materializeDataset(store, definitions, dir, { batchSize: 1 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BadRequestError);
    // The rows before it were written; the watermark stayed, so the next run tries them again.
    const [c] = await store.read('item_profile', ['c']);
    expect(c).toMatchObject({ version: 2, eventTimeMs: 40 * DAY });
    expect(await store.getMeta(watermarkKey('item_profile', 'small'))).toBe(before);
  });
});

describe('loadBatchFeatures (the embedded node at start)', () => {
  it('builds missing tables first, then loads every batch view', async () => {
    await writeDataset(dir, tables(), info);
    const loaded = await loadBatchFeatures(store, definitions, dir);
    expect(loaded.rebuilt).toBe('there are no feature tables');
    expect(counts(loaded)).toEqual({
      user_profile: [4, 4, 0, 0],
      item_profile: [5, 5, 0, 0],
      item_popularity: [5, 5, 0, 0],
    });
    await expectStoreHoldsTables();

    // A fresh process: the tables are there, and its empty store gets every row.
    const next = new MemoryOnlineStore({ definitions });
    try {
      const again = await loadBatchFeatures(next, definitions, dir);
      expect(again.rebuilt).toBeNull();
      expect(again.views.map((v) => v.written)).toEqual([4, 5, 5]);
    } finally {
      await next.close();
    }
  });
});
