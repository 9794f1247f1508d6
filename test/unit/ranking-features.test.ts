/**
 * The feature store's core promise: the feature rows a ranker trains on are the rows it is served.
 * On a small generated world, the offline rows of `buildRankingExamples` at a time t are compared
 * with the rows the serving path assembles at t from an online store built as production builds
 * it: the batch tables of the data set as materialised on the day of t (written as a data set,
 * built into Parquet feature tables, loaded by `loadBatchFeatures`), and every event before t
 * published on the in-memory events stream and consumed by the real `StreamFeatureWriter`, each as
 * it arrives. The rows must be equal exactly, NaN for NaN: both sides call the same feature
 * functions on the same float64 inputs (Parquet stores floats as DOUBLE, the stores keep numbers as
 * they are) and round to float32 once, at the same place, so any difference at all is a leak or a
 * drift, not noise.
 *
 * Also: the feature definitions, the schema's records, the serving reader's answers to bad input.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readDataset, writeDataset } from '../../models/data/dataset-io.js';
import { SCALES, generateDataset } from '../../models/data/generate.js';
import { temporalSplit } from '../../models/data/split.js';
import type { Dataset } from '../../models/data/types.js';
import { loadBatchFeatures } from '../../models/features/materialize.js';
import {
  CATEGORY_BUCKETS,
  RANKING_FEATURES,
  RankingInputsReader,
  assembleFeatures,
  batchSnapshotTime,
  buildRankingExamples,
  checkRankingDefinitions,
  datasetBefore,
  eventsBefore,
  feedbackEventOf,
  onlineRankingInputs,
  rankingSchema,
  rankingSchemaFromJson,
  rankingSchemaJson,
  retrievalRanks,
} from '../../models/ranking/index.js';
import type { RankingContext, RankingExamples } from '../../models/ranking/index.js';
import { trainTwoTower } from '../../models/retrieval/train.js';
import { TwoTowerScorer } from '../../models/retrieval/two-tower-scorer.js';
import { BadRequestError, ConfigError } from '../../runtime/errors.js';
import { openEventsStream, publishFeedback } from '../../runtime/events/events-stream.js';
import type { FeedbackEvent } from '../../runtime/events/feedback.js';
import { FeatureRegistry, loadFeatureDefinitions } from '../../runtime/features/definitions.js';
import type { FeatureDefinitions } from '../../runtime/features/types.js';
import { MemoryOnlineStore } from '../../runtime/features/memory-store.js';
import type { ServedRow } from '../../runtime/features/online-features.js';
import { OnlineFeatures } from '../../runtime/features/online-features.js';
import { StreamFeatureWriter } from '../../runtime/features/stream-writer.js';
import { MemoryStreamStore } from '../../runtime/stream/memory.js';

const DAY_MS = 86_400_000;
const PREFIX = 'recsys';
const definitions = loadFeatureDefinitions('configs/features.yaml');

/** Where two feature matrices differ, as `row r, feature: offline vs online`; equal NaNs agree. */
function differences(names: readonly string[], a: Float32Array, b: Float32Array): string[] {
  const out: string[] = [];
  if (a.length !== b.length) return [`lengths ${a.length} vs ${b.length}`];
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y))) continue;
    out.push(`row ${Math.floor(i / names.length)}, ${names[i % names.length]}: ${x} vs ${y}`);
  }
  return out;
}

/** Column `name` of the examples' features. */
function column(examples: RankingExamples, name: string): number[] {
  const f = examples.schema.names.indexOf(name);
  return Array.from(
    { length: examples.rows },
    (_, r) => examples.features[r * examples.schema.size + f] as number,
  );
}

describe('ranking features: offline rows equal the online rows', () => {
  let root: string;
  let dataset: Dataset;
  let retrieval: TwoTowerScorer;
  let t: number;
  /** A user with no event before t. */
  let cold: number;
  let offline: RankingExamples;
  let online: Float32Array;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'ranking-parity-'));
    const dataDir = join(root, 'world');
    await generateDataset({ dir: dataDir, ...SCALES.tiny, days: 8, seed: 5 });
    dataset = await readDataset(dataDir);
    const split = temporalSplit(dataset, { testFraction: 0.3 });
    const trained = trainTwoTower(
      { dataset, events: split.train, referenceTime: split.cutoff },
      { dims: 8, hiddenUnits: 16, historyLength: 8, batchSize: 128, epochs: 1, seed: 1 },
    );
    retrieval = TwoTowerScorer.fromTrained(trained);

    // t: the time of an event late on day 5, so events at t exist (and must not count) and the
    // users and items span fresh, stale and expired real-time rows.
    const { events } = dataset;
    const day = Math.floor((events.ts[0] as number) / DAY_MS) + 5;
    t = events.ts[eventsBefore(dataset, (day + 0.8) * DAY_MS)] as number;
    // The users of the next events (a live session), one idle for hours, one without any event.
    const users = new Set<number>();
    for (let e = eventsBefore(dataset, t); users.size < 6; e++) users.add(events.user[e] as number);
    const last = new Float64Array(dataset.users.ids.length).fill(Number.NaN);
    for (let e = 0; e < eventsBefore(dataset, t); e++)
      last[events.user[e] as number] = events.ts[e] as number;
    const idle = last.findIndex((ms) => ms < t - 6 * 3_600_000 && ms > t - DAY_MS);
    cold = last.findIndex((ms) => Number.isNaN(ms));
    expect(idle).toBeGreaterThanOrEqual(0);
    expect(cold).toBeGreaterThanOrEqual(0);
    users.add(idle).add(cold);

    offline = await buildRankingExamples({
      dataset,
      retrieval,
      definitions,
      points: [...users].map((user) => ({ user, timeMs: t })),
      candidates: 40,
      horizonMs: 60_000,
      keepEmptyGroups: true,
    });

    // Production: the batch tables of the day of t, materialised at its start...
    const clock = { now: batchSnapshotTime(t, DAY_MS) };
    const now = (): number => clock.now;
    const store = new MemoryOnlineStore({ definitions, now });
    const asOf = datasetBefore(dataset, clock.now);
    const materialisedDir = join(root, 'as-of');
    await writeDataset(materialisedDir, asOf, { name: 'as-of', source: 'synthetic', details: {} });
    await loadBatchFeatures(store, definitions, materialisedDir);

    // ...and every event before t through the events stream, each handled as it arrives.
    const streams = new MemoryStreamStore();
    const stream = await openEventsStream(streams, PREFIX);
    const writer = new StreamFeatureWriter({ store, definitions, now });
    // One event per batch: each is written as soon as it is delivered, at its own time.
    const consumer = await writer.consume(stream, { prefix: PREFIX, batchSize: 1 });
    const handled = (): number => {
      const { applied, duplicate, old, rejected } = writer.stats().events;
      return applied + duplicate + old + rejected;
    };
    try {
      const end = eventsBefore(dataset, t);
      let published = 0;
      for (let e = 0; e < end;) {
        const at = events.ts[e] as number;
        const group: FeedbackEvent[] = [];
        for (; e < end && events.ts[e] === at; e++) group.push(feedbackEventOf(dataset, e));
        clock.now = at;
        for (const event of group) await publishFeedback(stream, PREFIX, 8, event);
        published += group.length;
        // The stream delivers on microtasks and timers; wait for the writer to catch up.
        for (let spins = 0; handled() < published; spins++) {
          if (spins > 10_000)
            throw new Error(`writer stuck at ${handled()} of ${published} events`);
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      expect(writer.stats().events).toMatchObject({ applied: end, rejected: 0, old: 0 });
    } finally {
      await consumer.stop();
      await writer.close();
    }

    // The request at t: candidates and their retrieval scores as retrieval gave them.
    clock.now = t;
    const features = new OnlineFeatures({ store, registry: new FeatureRegistry(definitions), now });
    online = new Float32Array(offline.rows * offline.schema.size);
    let row = 0;
    for (let q = 0; q < offline.groups.length; q++) {
      const n = offline.groups[q] as number;
      const scores = column(offline, 'retrieval_score').slice(row, row + n);
      const candidates = Array.from(offline.items.subarray(row, row + n), (item, k) => ({
        itemId: dataset.items.ids[item] as string,
        score: scores[k] as number,
      }));
      const user = dataset.users.ids[offline.queries.user[q] as number] as string;
      const inputs = await onlineRankingInputs(features, user, candidates, t);
      expect(inputs.degraded).toEqual([]);
      const width = offline.schema.size;
      assembleFeatures(
        offline.schema,
        inputs.contexts,
        online.subarray(row * width, (row + n) * width),
      );
      row += n;
    }
    await features.close();
    await store.close();
  }, 60_000);

  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('assembles, online, exactly the rows the examples hold', () => {
    expect(offline.groups.length).toBe(8);
    expect(offline.rows).toBe(8 * 40);
    expect(differences(offline.schema.names, offline.features, online)).toEqual([]);
  });

  it('compares rows that carry real values from every view, not defaults', () => {
    const present = (name: string): number =>
      column(offline, name).filter((x) => !Number.isNaN(x)).length;
    const positive = (name: string): number => column(offline, name).filter((x) => x > 0).length;
    // Live sessions and live items, and items whose real-time rows have expired.
    expect(positive('user_log_views_5m')).toBeGreaterThan(0);
    expect(positive('item_log_views_30m')).toBeGreaterThan(0);
    expect(present('item_minutes_since_event')).toBeGreaterThan(0);
    expect(present('item_minutes_since_event')).toBeLessThan(offline.rows);
    expect(present('session_category_match')).toBeGreaterThan(0);
    expect(positive('user_category_match')).toBeGreaterThan(0);
    expect(positive('item_log_interactions')).toBeGreaterThan(0);
    expect(present('item_age_days')).toBe(offline.rows);
    // The cold user: no events before the day's batch, no session.
    const q = offline.queries.user.indexOf(cold);
    const rows = (name: string): number[] => column(offline, name).slice(q * 40, q * 40 + 40);
    expect(rows('user_log_interactions').every((x) => x === 0)).toBe(true);
    expect(rows('user_minutes_since_event').every((x) => Number.isNaN(x))).toBe(true);
    expect(rows('session_category_match').every((x) => Number.isNaN(x))).toBe(true);
  });

  it('never counts the events at t itself', () => {
    const { events } = dataset;
    expect(events.ts[eventsBefore(dataset, t)]).toBe(t);
    // The users of the points were chosen from the events at and after t: their last event before
    // t is strictly earlier, so no session feature reads 0 minutes since the last event.
    const minutes = column(offline, 'user_minutes_since_event').filter((x) => !Number.isNaN(x));
    expect(minutes.length).toBeGreaterThan(0);
    expect(Math.min(...minutes)).toBeGreaterThan(0);
  });
});

describe('ranking feature definitions', () => {
  const ctx = (rows: Partial<Record<keyof RankingContext, unknown>> = {}): RankingContext => {
    const row = (values: Record<string, unknown>, eventTimeMs = Number.NaN): ServedRow =>
      ({ values, eventTimeMs }) as ServedRow;
    return {
      now: 10 * DAY_MS,
      retrievalScore: 0.5,
      retrievalRank: 3,
      userProfile: row({
        interactions: 9,
        mean_rating: 0,
        signup_at_ms: 0,
        top_categories: ['b', 'a'],
      }),
      userRealtime: row({
        views_5m: 3,
        clicks_5m: 0,
        views_30m: 3,
        clicks_30m: 1,
        top_categories_5m: [],
        last_event_ms: 9 * DAY_MS,
      }),
      itemProfile: row({ category: 'a', created_at_ms: 8 * DAY_MS }),
      itemPopularity: row({
        interactions: 0,
        interactions_30d: 0,
        users: 0,
        ctr: 0.05,
        mean_rating: 0,
        popularity_rank: -1,
      }),
      itemRealtime: row({
        views_5m: 0,
        clicks_5m: 0,
        views_30m: 0,
        clicks_30m: 0,
        ctr_30m: 0.05,
        velocity: 0,
      }),
      ...rows,
    } as RankingContext;
  };
  const value = (name: string, context: RankingContext = ctx()): number =>
    assembleFeatures(rankingSchema([name]), [context])[0] as number;

  it('have unique names and a description, and read only fields the shipped views declare', () => {
    const names = RANKING_FEATURES.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const feature of RANKING_FEATURES) {
      expect(feature.name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(feature.description.length).toBeGreaterThan(10);
      expect(feature.kind === 'categorical').toBe(feature.cardinality !== undefined);
    }
    expect(() => checkRankingDefinitions(definitions)).not.toThrow();
    // The folder's README lists every feature.
    const readme = readFileSync('models/ranking/README.md', 'utf8');
    expect(names.filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });

  it('compute each value from the context, NaN for what cannot be known', () => {
    expect(value('retrieval_score')).toBe(Math.fround(0.5));
    expect(value('retrieval_rank')).toBe(3);
    expect(value('user_log_interactions')).toBe(Math.fround(Math.log(10)));
    expect(value('user_mean_rating')).toBeNaN();
    expect(value('user_tenure_days')).toBeNaN();
    expect(value('user_minutes_since_event')).toBe(1440);
    expect(value('item_age_days')).toBe(2);
    expect(value('item_log_popularity_rank')).toBeNaN();
    expect(value('item_recent_share')).toBeNaN();
    expect(value('item_minutes_since_event')).toBeNaN();
    expect(value('user_category_match')).toBe(1);
    expect(value('user_category_rank')).toBe(1);
    // An empty session says nothing about the item's category.
    expect(value('session_category_match')).toBeNaN();
    const other = ctx({
      itemProfile: { values: { category: 'z', created_at_ms: 0 }, eventTimeMs: 1 },
    });
    expect(value('user_category_match', other)).toBe(0);
    expect(value('user_category_rank', other)).toBeNaN();
    expect(value('item_age_days', other)).toBeNaN();
    const category = value('item_category');
    expect(Number.isInteger(category) && category >= 0 && category < CATEGORY_BUCKETS).toBe(true);
    expect(value('item_category', other)).not.toBe(category);
  });

  it('rank candidates by retrieval score, ties in the order given', () => {
    expect(Array.from(retrievalRanks([0.2, 0.9, 0.2, 0.5]))).toEqual([2, 0, 3, 1]);
  });

  it('fill the rows given, and refuse one too small', () => {
    const schema = rankingSchema(['retrieval_rank', 'retrieval_score']);
    const out = new Float32Array(6).fill(7);
    assembleFeatures(schema, [ctx(), ctx({ retrievalRank: 0 })], out);
    expect(Array.from(out)).toEqual([3, 0.5, 0, 0.5, 7, 7]);
    expect(() => assembleFeatures(schema, [ctx(), ctx(), ctx(), ctx()], out)).toThrow(RangeError);
  });

  it('round-trip a schema through its record, and refuse one that changed', () => {
    const schema = rankingSchema(['item_ctr', 'item_category']);
    const json = JSON.parse(JSON.stringify(rankingSchemaJson(schema))) as unknown;
    expect(rankingSchemaFromJson(json).names).toEqual(['item_ctr', 'item_category']);
    const recorded = rankingSchemaJson(schema);
    expect(() => rankingSchemaFromJson({ ...recorded, fingerprint: '00000000' })).toThrow(
      ConfigError,
    );
    expect(() =>
      rankingSchemaFromJson({ ...recorded, features: [{ name: 'no_such_feature' }] }),
    ).toThrow(/schema\.features\[0\].*unknown ranking feature no_such_feature/);
    expect(() => rankingSchema(['item_ctr', 'item_ctr'])).toThrow(/listed twice/);
    expect(() => rankingSchema([])).toThrow(ConfigError);
  });

  it('are refused at start-up against definitions that lack a field they read', () => {
    const trimmed: FeatureDefinitions = {
      entities: definitions.entities,
      views: definitions.views.map((v) =>
        v.name === 'item_realtime'
          ? { ...v, fields: v.fields.filter((f) => f.name !== 'velocity') }
          : v,
      ),
    };
    expect(() => checkRankingDefinitions(trimmed)).toThrow(
      /views\.item_realtime\.fields\.velocity.*item_velocity/,
    );
    expect(() => checkRankingDefinitions(trimmed, rankingSchema(['item_ctr']))).not.toThrow();
  });
});

describe('the serving reader', () => {
  const store = new MemoryOnlineStore({ definitions });
  const features = new OnlineFeatures({ store, registry: new FeatureRegistry(definitions) });
  const reader = new RankingInputsReader(features);

  it('answers bad input with an error naming the field', async () => {
    const bad = async (
      user: unknown,
      candidates: unknown,
      now: unknown = 1,
    ): Promise<BadRequestError> => {
      const err: unknown = await reader.read(user as string, candidates as [], now as number).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BadRequestError);
      return err as BadRequestError;
    };
    expect((await bad('', [])).message).toMatch(/^userId:/);
    expect((await bad('u', 'x')).message).toMatch(/^candidates:/);
    expect((await bad('u', [{ itemId: 'i', score: 1 }, null])).message).toMatch(
      /^candidates\[1\]:/,
    );
    expect((await bad('u', [{ itemId: 7, score: 1 }])).message).toMatch(
      /^candidates\[0\]\.itemId:/,
    );
    expect((await bad('u', [{ itemId: 'i', score: 'high' }])).message).toMatch(
      /^candidates\[0\]\.score:/,
    );
    expect((await bad('u', [{ itemId: 'i', score: Number.NaN }])).message).toMatch(/score/);
    expect((await bad('u', [], Number.NaN)).message).toMatch(/^now:/);
  });

  it("serves the views' defaults for entities the store knows nothing of", async () => {
    const { contexts, degraded } = await reader.read(
      'nobody',
      [{ itemId: 'nothing', score: 0.25 }],
      5,
    );
    expect(degraded).toEqual([]);
    const row = assembleFeatures(
      rankingSchema(['item_log_interactions', 'item_ctr', 'user_minutes_since_event']),
      contexts,
    );
    expect(Array.from(row)).toEqual([0, Math.fround(0.05), Number.NaN]);
    expect(await reader.read('nobody', [], 5)).toEqual({ contexts: [], degraded: [] });
  });
});
