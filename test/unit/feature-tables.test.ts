import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { runDataGenerate } from '../../models/cli/data.js';
import { readDataset, writeDataset } from '../../models/data/dataset-io.js';
import { generateDataset } from '../../models/data/generate.js';
import { openParquetFile } from '../../models/data/parquet.js';
import { EventType } from '../../models/data/types.js';
import type { EventTable, ItemTable, UserTable } from '../../models/data/types.js';
import {
  buildFeatureTables,
  computeBatchViews,
  readFeatureTable,
  readFeatureTablesManifest,
  smoothedCtr,
  staleFeatureTables,
  writeFeatureTables,
} from '../../models/features/index.js';
import type { FeatureTable } from '../../models/features/index.js';
import { ConfigError } from '../../runtime/errors.js';
import {
  loadFeatureDefinitions,
  parseFeatureDefinitions,
} from '../../runtime/features/definitions.js';
import { FeatureType, ViewSource } from '../../runtime/features/types.js';
import type { FeatureDefinitions, ViewDefinition } from '../../runtime/features/types.js';

const DAY = 86_400_000;
const YEAR_MS = 365.2425 * DAY;
/** A number within 10^-digits / 2 of `value`, for the fields computed in floating point. */
const near = (value: number, digits: number): unknown => expect.closeTo(value, digits);
const definitions = loadFeatureDefinitions('configs/features.yaml');

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'recsys-feature-tables-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function viewOf(defs: FeatureDefinitions, name: string): ViewDefinition {
  const view = defs.views.find((v) => v.name === name);
  if (view === undefined) throw new Error(`no view ${name}`);
  return view;
}

/**
 * Six items, three users, ten events, every value below worked out by hand. Category names are not
 * in alphabetical order, so a tie broken by name differs from one broken by vocabulary order.
 */
function handMade(): { items: ItemTable; users: UserTable; events: EventTable } {
  const items: ItemTable = {
    ids: ['i0', 'i1', 'i2', 'i3', 'i4', 'i5'],
    // news 0, drama 1, horror 2, comedy 3, jazz 4
    categories: ['news', 'drama', 'horror', 'comedy', 'jazz'],
    category: Int32Array.from([1, 3, 1, 2, 0, 4]),
    tags: ['short', 'live'],
    tagOffsets: Int32Array.from([0, 2, 2, 3, 3, 4, 4]),
    tagIds: Int32Array.from([0, 1, 1, 0]),
    createdAt: Float64Array.from([1000, NaN, 2000, NaN, 3000, NaN]),
    titles: ['Alpha', '', 'Gamma', 'Delta', 'Écho «5»', ''],
  };
  const users: UserTable = {
    ids: ['u0', 'u1', 'u2'],
    ageBand: Int32Array.from([0, -1, 1]),
    country: Int32Array.from([0, -1, -1]),
    device: Int32Array.from([0, -1, 1]),
    ageBands: ['18-24', '25-34'],
    countries: ['FR'],
    devices: ['ios', 'web'],
    signupAt: Float64Array.from([500, NaN, 700]),
  };
  const rows: [user: number, item: number, day: number, type: EventType, value: number][] = [
    [0, 0, 1, EventType.View, 10],
    [0, 0, 2, EventType.Click, 40],
    [1, 1, 3, EventType.View, 5],
    [0, 2, 10, EventType.View, 0],
    [1, 0, 20, EventType.Rating, 4],
    [1, 3, 21, EventType.View, 0],
    [0, 1, 40, EventType.Rating, 3],
    [1, 4, 45, EventType.View, 0],
    [1, 4, 46, EventType.Click, 0],
    [0, 0, 50, EventType.Purchase, 0],
  ];
  const events: EventTable = {
    length: rows.length,
    user: Int32Array.from(rows, (r) => r[0]),
    item: Int32Array.from(rows, (r) => r[1]),
    ts: Float64Array.from(rows, (r) => r[2] * DAY),
    type: Uint8Array.from(rows, (r) => r[3]),
    value: Float32Array.from(rows, (r) => r[4]),
  };
  return { items, users, events };
}

const info = { name: 'hand-made', source: 'csv' as const, details: {} };

async function handMadeDataset(): Promise<string> {
  const dir = await tempDir();
  await writeDataset(dir, handMade(), info);
  return dir;
}

/** A table as plain rows, for exact comparison. */
function rowsOf(table: FeatureTable): Record<string, unknown>[] {
  return table.ids.map((id, r) => {
    const row: Record<string, unknown> = { id, eventTimeMs: table.eventTimeMs[r] };
    for (const field of table.view.fields) row[field.name] = table.columns[field.name]?.[r];
    return row;
  });
}

describe('batch views of a hand-made data set', () => {
  it('computes user_profile: profile, counts, mean rating, top categories, event times', async () => {
    const dataset = await readDataset(await handMadeDataset());
    const [users] = computeBatchViews(dataset, definitions, ['user_profile']);
    expect(rowsOf(users!)).toEqual([
      {
        id: 'u0',
        // Newest event: day 50.
        eventTimeMs: 50 * DAY,
        age_band: '18-24',
        country: 'FR',
        device: 'ios',
        signup_at_ms: 500,
        interactions: 5,
        mean_rating: 3,
        // drama: i0 three times and i2; comedy: i1.
        top_categories: ['drama', 'comedy'],
        // The items of the last events, oldest first, repeats kept.
        recent_items: ['i0', 'i0', 'i2', 'i1', 'i0'],
        // live: i0 three times and i2; short: i0 three times; of 5 events.
        top_tags: ['live', 'short'],
        top_tag_shares: [0.8, 0.6],
        // i0 (1000 ms) three times and i2 (2000 ms); i1 has no creation time.
        era_mean_year: near(1970 + 1250 / YEAR_MS, 12),
        era_sd_years: near(Math.sqrt(187_500) / YEAR_MS, 15),
        // i0 has 4 events, i2 1, i1 2.
        mean_item_log_interactions: near((3 * Math.log(5) + Math.log(2) + Math.log(3)) / 5, 12),
      },
      {
        id: 'u1',
        eventTimeMs: 46 * DAY,
        age_band: '',
        country: '',
        device: '',
        signup_at_ms: 0,
        interactions: 5,
        mean_rating: 4,
        // news twice; comedy, drama and horror once each: the tie goes to the smaller names.
        top_categories: ['news', 'comedy', 'drama'],
        recent_items: ['i1', 'i0', 'i3', 'i4', 'i4'],
        // short: i0 and i4 twice; live: i0.
        top_tags: ['short', 'live'],
        top_tag_shares: [0.6, 0.2],
        // i0 (1000 ms) and i4 (3000 ms) twice.
        era_mean_year: near(1970 + 7000 / 3 / YEAR_MS, 12),
        era_sd_years: near(Math.sqrt(8_000_000 / 9) / YEAR_MS, 15),
        // i1 and i4 have 2 events, i0 4, i3 1.
        mean_item_log_interactions: near((Math.log(5) + 3 * Math.log(3) + Math.log(2)) / 5, 12),
      },
      {
        id: 'u2',
        // No events: the sign-up time.
        eventTimeMs: 700,
        age_band: '25-34',
        country: '',
        device: 'web',
        signup_at_ms: 700,
        interactions: 0,
        mean_rating: 0,
        top_categories: [],
        recent_items: [],
        top_tags: [],
        top_tag_shares: [],
        era_mean_year: 0,
        era_sd_years: 0,
        mean_item_log_interactions: 0,
      },
    ]);
  });

  it('computes item_profile: category, tags, creation time or the end of the data', async () => {
    const dataset = await readDataset(await handMadeDataset());
    const [items] = computeBatchViews(dataset, definitions, ['item_profile']);
    const end = 50 * DAY;
    expect(rowsOf(items!)).toEqual([
      {
        id: 'i0',
        eventTimeMs: 1000,
        category: 'drama',
        tags: ['short', 'live'],
        created_at_ms: 1000,
        title: 'Alpha',
      },
      { id: 'i1', eventTimeMs: end, category: 'comedy', tags: [], created_at_ms: 0, title: '' },
      {
        id: 'i2',
        eventTimeMs: 2000,
        category: 'drama',
        tags: ['live'],
        created_at_ms: 2000,
        title: 'Gamma',
      },
      {
        id: 'i3',
        eventTimeMs: end,
        category: 'horror',
        tags: [],
        created_at_ms: 0,
        title: 'Delta',
      },
      {
        id: 'i4',
        eventTimeMs: 3000,
        category: 'news',
        tags: ['short'],
        created_at_ms: 3000,
        title: 'Écho «5»',
      },
      { id: 'i5', eventTimeMs: end, category: 'jazz', tags: [], created_at_ms: 0, title: '' },
    ]);
  });

  it('computes item_popularity: counts, last 30 days, users, smoothed ctr, ranks', async () => {
    const dataset = await readDataset(await handMadeDataset());
    const [popularity] = computeBatchViews(dataset, definitions, ['item_popularity']);
    const end = 50 * DAY;
    // Last 30 days: after day 20 (days 21, 40, 45, 46, 50). ctr = (clicks + 1) / (views + 20).
    expect(rowsOf(popularity!)).toEqual([
      {
        id: 'i0',
        eventTimeMs: end,
        interactions: 4,
        interactions_30d: 1,
        users: 2,
        ctr: 2 / 21,
        mean_rating: 4,
        popularity_rank: 0,
      },
      {
        id: 'i1',
        eventTimeMs: end,
        interactions: 2,
        interactions_30d: 1,
        users: 2,
        ctr: 1 / 21,
        mean_rating: 3,
        popularity_rank: 1,
      },
      {
        id: 'i2',
        eventTimeMs: end,
        interactions: 1,
        interactions_30d: 0,
        users: 1,
        ctr: 1 / 21,
        mean_rating: 0,
        popularity_rank: 3,
      },
      {
        id: 'i3',
        eventTimeMs: end,
        interactions: 1,
        interactions_30d: 1,
        users: 1,
        ctr: 1 / 21,
        mean_rating: 0,
        popularity_rank: 4,
      },
      {
        id: 'i4',
        eventTimeMs: end,
        interactions: 2,
        interactions_30d: 2,
        users: 1,
        ctr: 2 / 21,
        mean_rating: 0,
        popularity_rank: 2,
      },
      {
        id: 'i5',
        eventTimeMs: end,
        interactions: 0,
        interactions_30d: 0,
        users: 0,
        ctr: 0.05,
        mean_rating: 0,
        popularity_rank: 5,
      },
    ]);
  });

  it('smooths the ctr with a Beta prior of mean 0.05 and weight 20 views', () => {
    expect(smoothedCtr(0, 0)).toBe(0.05);
    expect(smoothedCtr(180, 9)).toBeCloseTo(10 / 200, 15);
    // A log of clicks without views: each click counts as a view, so the ctr stays below 1.
    expect(smoothedCtr(0, 5)).toBe(6 / 25);
  });
});

describe('the definitions decide the columns', () => {
  const narrow = parseFeatureDefinitions(
    `
entities:
  - { name: user }
  - { name: item }
views:
  - name: user_profile
    entity: user
    source: batch
    ttl: 0
    fields:
      - { name: top_categories, type: string_list, default: [] }
      - { name: interactions, type: float, default: 0 }
  - name: user_live
    entity: user
    source: stream
    ttl: 1h
    fields:
      - { name: clicks_5m, type: float, default: 0 }
`,
    'narrow.yaml',
  );

  it('writes only the declared fields of the batch views, in declared order', async () => {
    const dir = await handMadeDataset();
    const { manifest } = await buildFeatureTables(dir, narrow);
    expect(Object.keys(manifest.views)).toEqual(['user_profile']);
    expect(manifest.views['user_profile']!.columns).toEqual({
      user_id: 'string',
      event_time: 'timestamp_ms',
      top_categories: 'string_list',
      // Computed as an int, declared a float: written as the float it is declared.
      interactions: 'float',
    });
    expect(await readdir(join(dir, 'features'))).toEqual(['manifest.json', 'user_profile.parquet']);
    const file = await openParquetFile(join(dir, 'features', 'user_profile.parquet'));
    expect(file.columns).toEqual(['user_id', 'event_time', 'top_categories', 'interactions']);
    const table = await readFeatureTable(dir, viewOf(narrow, 'user_profile'));
    expect(table.columns['interactions']).toEqual([5, 5, 0]);
  });

  it('names a declared field or view it cannot compute, before reading any data', async () => {
    const define = (views: string) =>
      parseFeatureDefinitions(
        `entities: [{ name: user }, { name: item }]\nviews:\n${views}`,
        'x.yaml',
      );
    const cases: [string, RegExp][] = [
      [
        '  - { name: user_profile, entity: user, source: batch, ttl: 0, fields: [{ name: favourite_colour, type: string, default: "" }] }',
        /views\.user_profile\.fields\.favourite_colour: has no batch computation/,
      ],
      [
        '  - { name: user_profile, entity: user, source: batch, ttl: 0, fields: [{ name: interactions, type: string, default: "" }] }',
        /views\.user_profile\.fields\.interactions\.type: is computed as int, declared string/,
      ],
      [
        '  - { name: item_stats, entity: item, source: batch, ttl: 0, fields: [{ name: x, type: int, default: 0 }] }',
        /views\.item_stats: is a batch view with no computation/,
      ],
      [
        '  - { name: item_profile, entity: user, source: batch, ttl: 0, fields: [{ name: title, type: string, default: "" }] }',
        /views\.item_profile\.entity: must be item, got user/,
      ],
    ];
    for (const [views, message] of cases) {
      // A folder with no data set: the check comes first.
      const err = await buildFeatureTables(join(tmpdir(), 'no-such-dataset'), define(views)).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
    }
  });
});

describe('feature tables on disk', () => {
  it('round-trips every feature type through Parquet exactly', async () => {
    const dir = await tempDir();
    const view: ViewDefinition = {
      name: 'everything',
      entity: 'thing',
      source: ViewSource.Batch,
      ttlMs: 0,
      description: '',
      fields: [
        { name: 'f', type: FeatureType.Float, default: 0, description: '' },
        { name: 'n', type: FeatureType.Int, default: 0, description: '' },
        { name: 'b', type: FeatureType.Bool, default: false, description: '' },
        { name: 's', type: FeatureType.String, default: '', description: '' },
        { name: 'fl', type: FeatureType.FloatList, default: [], description: '' },
        { name: 'sl', type: FeatureType.StringList, default: [], description: '' },
      ],
    };
    const table: FeatureTable = {
      view,
      ids: ['a', 'ç «b»', 'c|d'],
      eventTimeMs: Float64Array.from([0, 1_700_000_000_123, -5]),
      columns: {
        f: [0.1, -1e300, 5e-324],
        n: [0, -(2 ** 31), 2 ** 31 - 1],
        b: [true, false, true],
        s: ['', 'ü', 'a"b\\c'],
        fl: [[], [1.5, -2], [0.1]],
        sl: [[], ['x', 'y|z'], ['"', '']],
      },
    };
    const manifest = await writeFeatureTables(dir, [table], {
      name: 'round-trip',
      fingerprint: 'f'.repeat(64),
      endMs: 42,
    });
    expect(manifest).toMatchObject({
      format: 'recsys-feature-tables',
      version: 1,
      dataset: 'round-trip',
      fingerprint: 'f'.repeat(64),
      dataEndMs: 42,
      views: {
        everything: {
          entity: 'thing',
          file: 'everything.parquet',
          rows: 3,
          eventTimeRange: { from: -5, to: 1_700_000_000_123 },
        },
      },
    });
    expect(await readFeatureTablesManifest(dir)).toEqual(manifest);
    const back = await readFeatureTable(dir, view);
    expect(rowsOf(back)).toEqual(rowsOf(table));

    // Reading with fewer fields declared reads only those; a field the table lacks is an error.
    const fewer = { ...view, fields: view.fields.slice(3, 4) };
    expect((await readFeatureTable(dir, fewer)).columns).toEqual({ s: ['', 'ü', 'a"b\\c'] });
    const more = {
      ...view,
      fields: [...view.fields, { name: 'new', type: FeatureType.Int, default: 0, description: '' }],
    };
    await expect(readFeatureTable(dir, more)).rejects.toThrow(
      /the table of everything has no field new; rebuild the tables with `recsys data features/,
    );
  });

  it('refuses an integer column value that does not fit 32 bits, leaving no half-written folder', async () => {
    const dir = await tempDir();
    const view: ViewDefinition = {
      name: 'counts',
      entity: 'thing',
      source: ViewSource.Batch,
      ttlMs: 0,
      description: '',
      fields: [{ name: 'n', type: FeatureType.Int, default: 0, description: '' }],
    };
    const table = { view, ids: ['a'], eventTimeMs: Float64Array.of(0), columns: { n: [2 ** 40] } };
    await expect(
      writeFeatureTables(dir, [table], { name: 'x', fingerprint: 'x', endMs: 0 }),
    ).rejects.toThrow(/row 0: 1099511627776 is not a 32-bit integer/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('says when the tables are out of date with the data or the definitions', async () => {
    const dir = await handMadeDataset();
    expect(await staleFeatureTables(dir, definitions)).toBe('there are no feature tables');
    const { manifest } = await buildFeatureTables(dir, definitions);
    const dataManifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as {
      fingerprint: string;
    };
    expect(manifest.fingerprint).toBe(dataManifest.fingerprint);
    expect(manifest.dataEndMs).toBe(50 * DAY);
    expect(Object.keys(manifest.views)).toEqual([
      'user_profile',
      'item_profile',
      'item_popularity',
    ]);
    expect(manifest.views['item_popularity']).toMatchObject({
      rows: 6,
      eventTimeRange: { from: 50 * DAY, to: 50 * DAY },
    });
    expect(await staleFeatureTables(dir, definitions)).toBeNull();

    const subtitle = { name: 'subtitle', type: FeatureType.String, default: '', description: '' };
    const added: FeatureDefinitions = {
      entities: definitions.entities,
      views: definitions.views.map((v) =>
        v.name === 'item_profile' ? { ...v, fields: [...v.fields, subtitle] } : v,
      ),
    };
    expect(await staleFeatureTables(dir, added)).toBe(
      'the table of item_profile has no field subtitle',
    );

    const tables = handMade();
    tables.events.value[0] = 11;
    await writeDataset(dir, tables, info);
    expect(await staleFeatureTables(dir, definitions)).toMatch(
      /^the feature tables were built from data [0-9a-f]{12}, the data set is [0-9a-f]{12}$/,
    );
  });
});

describe('feature tables of a generated data set', () => {
  it('agree with the data they were computed from', async () => {
    const dir = await tempDir();
    const manifest = await generateDataset({
      dir,
      users: 60,
      items: 150,
      days: 40,
      categories: 6,
      seed: 7,
    });
    const { manifest: tables } = await buildFeatureTables(dir, definitions);
    const dataset = await readDataset(dir);
    const { events, items } = dataset;
    expect(events.length).toBeGreaterThan(100);
    expect(tables.views['user_profile']!.rows).toBe(60);
    expect(tables.views['item_profile']!.rows).toBe(150);

    const users = await readFeatureTable(dir, viewOf(definitions, 'user_profile'));
    const popularity = await readFeatureTable(dir, viewOf(definitions, 'item_popularity'));
    const sum = (values: readonly unknown[]) =>
      values.reduce<number>((s, v) => s + (v as number), 0);
    expect(sum(users.columns['interactions']!)).toBe(events.length);
    expect(sum(popularity.columns['interactions']!)).toBe(events.length);
    expect([...(popularity.columns['popularity_rank'] as number[])].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 150 }, (_, i) => i),
    );
    expect([...popularity.eventTimeMs].every((t) => t === manifest.timeRange.to)).toBe(true);

    // Brute force, one entity at a time, from the events.
    const recentFrom = manifest.timeRange.to - 30 * DAY;
    for (let i = 0; i < items.ids.length; i++) {
      const mine = [...events.item.subarray(0, events.length).keys()].filter(
        (e) => events.item[e] === i,
      );
      const views = mine.filter((e) => events.type[e] === EventType.View).length;
      const clicks = mine.filter((e) => events.type[e] === EventType.Click).length;
      expect(popularity.columns['interactions']![i]).toBe(mine.length);
      expect(popularity.columns['interactions_30d']![i]).toBe(
        mine.filter((e) => events.ts[e]! > recentFrom).length,
      );
      expect(popularity.columns['users']![i]).toBe(new Set(mine.map((e) => events.user[e])).size);
      expect(popularity.columns['ctr']![i]).toBe((clicks + 1) / (Math.max(views, clicks) + 20));
    }
    for (let u = 0; u < users.ids.length; u++) {
      const mine = [...events.user.subarray(0, events.length).keys()].filter(
        (e) => events.user[e] === u,
      );
      const counts = new Map<string, number>();
      for (const e of mine) {
        const category = items.categories[items.category[events.item[e]!]!]!;
        counts.set(category, (counts.get(category) ?? 0) + 1);
      }
      const top = [...counts]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 3)
        .map(([c]) => c);
      expect(users.columns['top_categories']![u]).toEqual(top);
      const newest = mine.length === 0 ? NaN : events.ts[mine[mine.length - 1]!]!;
      const signup = dataset.users.signupAt[u]!;
      expect(users.eventTimeMs[u]).toBe(Number.isNaN(newest) ? signup : Math.max(newest, signup));
    }
  });

  it('are written by `recsys data generate`, unless --no-features', async () => {
    const root = await tempDir();
    const flags = {
      scale: 'tiny' as const,
      users: 30,
      items: 40,
      days: 5,
      seed: 3,
      progress: false,
    };
    const made = await runDataGenerate({ ...flags, out: join(root, 'with') }, {});
    expect(made.features?.fingerprint).toBe(made.manifest.fingerprint);
    expect(made.features?.views['user_profile']?.rows).toBe(30);
    expect(await staleFeatureTables(made.out, definitions)).toBeNull();

    const bare = await runDataGenerate(
      { ...flags, out: join(root, 'without'), features: false },
      {},
    );
    expect(bare.features).toBeUndefined();
    expect(await readdir(bare.out)).not.toContain('features');
  });
});
