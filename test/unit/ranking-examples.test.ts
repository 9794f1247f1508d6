/**
 * Ranking examples: labels, groups and candidates on a hand-built log whose answer is known; no
 * example reading anything at or after its time (the future poisoned, the examples unchanged);
 * the planned replay, which skips events no read can show, equal to replaying everything; the
 * options refused by name.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readDataset } from '../../models/data/dataset-io.js';
import { SCALES, generateDataset } from '../../models/data/generate.js';
import { temporalSplit } from '../../models/data/split.js';
import { EventType } from '../../models/data/types.js';
import type { Dataset, EventTable } from '../../models/data/types.js';
import { PopularityScorer, RecentPopularityScorer } from '../../models/eval/baselines.js';
import {
  PointInTimeStore,
  assembleFeatures,
  buildRankingExamples,
  eventsBefore,
  feedbackEventOf,
  labelGrade,
  rankingSchema,
  sampleQueryPoints,
} from '../../models/ranking/index.js';
import type { RankingExamples, RankingQueryPoint } from '../../models/ranking/index.js';
import { trainTwoTower } from '../../models/retrieval/train.js';
import { TwoTowerScorer } from '../../models/retrieval/two-tower-scorer.js';
import { ConfigError } from '../../runtime/errors.js';
import { loadFeatureDefinitions } from '../../runtime/features/definitions.js';
import type { FeatureDefinitions } from '../../runtime/features/types.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const definitions = loadFeatureDefinitions('configs/features.yaml');
const schema = rankingSchema();

/** Six items (i5 created late), three users, and the given events as (user, item, minute, type). */
function handBuilt(rows: ReadonlyArray<[number, number, number, EventType, number?]>): Dataset {
  const T0 = 100 * DAY_MS;
  const sorted = [...rows].sort((a, b) => a[2] - b[2]);
  const n = sorted.length;
  const events: EventTable = {
    length: n,
    user: Int32Array.from(sorted, (r) => r[0]),
    item: Int32Array.from(sorted, (r) => r[1]),
    ts: Float64Array.from(sorted, (r) => T0 + r[2] * MINUTE_MS),
    type: Uint8Array.from(sorted, (r) => r[3]),
    value: Float32Array.from(sorted, (r) => r[4] ?? 0),
  };
  return {
    manifest: {
      format: 'recsys-dataset',
      version: 1,
      name: 'hand-built',
      source: 'synthetic',
      createdAt: new Date(0).toISOString(),
      counts: { users: 3, items: 6, events: n },
      timeRange: { from: events.ts[0] ?? T0, to: events.ts[n - 1] ?? T0 },
      fingerprint: 'hand-built',
      schema: {},
      details: {},
    },
    items: {
      ids: ['i0', 'i1', 'i2', 'i3', 'i4', 'i5'],
      category: Int32Array.from([0, 1, 0, 1, 0, 1]),
      categories: ['books', 'music'],
      tagOffsets: new Int32Array(7),
      tagIds: new Int32Array(0),
      tags: [],
      createdAt: Float64Array.from([1, 1, 1, 1, 1, T0 + 1000 * MINUTE_MS]),
    },
    users: {
      ids: ['u0', 'u1', 'u2'],
      ageBand: Int32Array.from([-1, -1, -1]),
      country: Int32Array.from([-1, -1, -1]),
      device: Int32Array.from([-1, -1, -1]),
      ageBands: [],
      countries: [],
      devices: [],
      signupAt: Float64Array.from([Number.NaN, Number.NaN, Number.NaN]),
    },
    events,
  };
}

const { View, Click, Like, Purchase, Rating } = EventType;

describe('ranking examples on a hand-built log', () => {
  // By events over the whole log: i2 6, i5 5, i3 4, i4 4, i0 2, i1 1 (a retrieval model trained on
  // all of it). u0 has seen i0 and i1 by minute 10.
  const log = handBuilt([
    [0, 0, 0, View],
    [0, 1, 1, Click],
    [1, 2, 2, View],
    [1, 2, 3, Click],
    [1, 2, 4, View],
    [1, 3, 5, View],
    [2, 3, 6, View],
    [2, 4, 7, View],
    // u0 from minute 10: i2 viewed at t itself then bought, i3 clicked, i4 liked, i0 (seen) viewed.
    [0, 2, 10, View],
    [0, 0, 11, View],
    [0, 2, 12, Purchase],
    [0, 3, 15, Click],
    [0, 4, 20, Like],
    // Past the 15-minute horizon of t = 10: no label.
    [0, 3, 30, Purchase],
    // u1 does nothing within the horizon of its query at minute 40; u2 rates at 62.
    [1, 4, 80, View],
    [2, 4, 62, Rating, 4],
    [2, 2, 63, Rating, 2.5],
    // i5, created at minute 1000, is a hit from then on: never a candidate before.
    ...[1001, 1002, 1003, 1004, 1005].map((minute): [number, number, number, EventType] => [
      1,
      5,
      minute,
      View,
    ]),
  ]);
  const at = (minute: number): number => 100 * DAY_MS + minute * MINUTE_MS;
  const popularity = new PopularityScorer(log.events, log.items.ids.length);
  let examples: RankingExamples;

  beforeAll(async () => {
    examples = await buildRankingExamples({
      dataset: log,
      retrieval: popularity,
      definitions,
      points: [
        { user: 2, timeMs: at(60) },
        { user: 0, timeMs: at(10) },
        { user: 1, timeMs: at(40) },
      ],
      candidates: 3,
      horizonMs: 15 * MINUTE_MS,
    });
  });

  it('proposes the top K unseen items that exist at t, labelled by the best event within the horizon', () => {
    expect(Array.from(examples.groups)).toEqual([3, 3]);
    expect(Array.from(examples.queries.user)).toEqual([0, 2]);
    expect(Array.from(examples.queries.timeMs)).toEqual([at(10), at(60)]);
    // u0: i0 and i1 seen, i5 not created yet; i2 viewed at t and bought, i3 clicked, i4 liked.
    // u2 (seen i3, i4): i2 rated 2.5, then i0 and i1 never touched.
    expect(Array.from(examples.items)).toEqual([2, 3, 4, 2, 0, 1]);
    expect(Array.from(examples.labels)).toEqual([4, 2, 3, 1, 0, 0]);
    expect(examples.rows).toBe(6);
    expect(examples.features.length).toBe(6 * schema.size);
    expect(examples.stats).toMatchObject({
      points: 3,
      groups: 2,
      withoutPositives: 1,
      positives: 4,
    });
  });

  it('keeps queries without a positive when asked', async () => {
    const all = await buildRankingExamples({
      dataset: log,
      retrieval: popularity,
      definitions,
      points: [{ user: 1, timeMs: at(40) }],
      candidates: 2,
      horizonMs: 15 * MINUTE_MS,
      keepEmptyGroups: true,
    });
    // u1 saw i2 and i3; i5 does not exist yet.
    expect(Array.from(all.groups)).toEqual([2]);
    expect(Array.from(all.items)).toEqual([4, 0]);
    expect(Array.from(all.labels)).toEqual([0, 0]);
  });

  it("reads the features as of t, as serving would have: rows as of each entity's last event", () => {
    const value = (row: number, name: string): number =>
      examples.features[row * schema.size + schema.names.indexOf(name)] as number;
    // u0 at minute 10: the session row was written at its last event (minute 1), with one view and
    // one click in its windows; it says how old it is.
    expect(value(0, 'user_log_views_5m')).toBe(Math.fround(Math.log(2)));
    expect(value(0, 'user_log_clicks_30m')).toBe(Math.fround(Math.log(2)));
    expect(value(0, 'user_minutes_since_event')).toBe(9);
    // i2: viewed, clicked, viewed at minutes 2 to 4; its view at minute 10 (t itself) not counted.
    expect(value(0, 'item_log_views_30m')).toBe(Math.fround(Math.log(3)));
    expect(value(0, 'item_log_clicks_30m')).toBe(Math.fround(Math.log(2)));
    expect(value(0, 'item_minutes_since_event')).toBe(6);
    // i4 had its only event at minute 7, in the same session as u2's category counts.
    expect(value(2, 'item_minutes_since_event')).toBe(3);
    // Batch views of the day before: nothing yet (the log starts on the day of t).
    expect(value(0, 'item_log_interactions')).toBe(0);
    expect(value(0, 'retrieval_score')).toBe(6);
    expect(value(1, 'retrieval_rank')).toBe(1);
  });

  it('asks the retrieval model for its scores as of t, not after', async () => {
    // i0 and i1 tie on events before minute 10, and i0 wins on the whole log; i1's event at
    // minute 10 itself would put it first.
    const tied = handBuilt([
      [1, 0, 1, View],
      [1, 0, 2, View],
      [2, 1, 3, View],
      [2, 1, 4, View],
      [2, 1, 10, View],
      ...[20, 21, 22, 23, 24].map((minute): [number, number, number, EventType] => [
        1,
        0,
        minute,
        View,
      ]),
    ]);
    const recent = new RecentPopularityScorer(tied.events, 6, { windowDays: 1 });
    const result = await buildRankingExamples({
      dataset: tied,
      retrieval: recent,
      definitions,
      points: [{ user: 0, timeMs: at(10) }],
      candidates: 2,
      horizonMs: 10 * MINUTE_MS,
      keepEmptyGroups: true,
    });
    expect(Array.from(result.items)).toEqual([0, 1]);
    const scores = recent.scoresAt(at(10));
    const column = schema.names.indexOf('retrieval_score');
    expect([0, 1].map((r) => result.features[r * schema.size + column])).toEqual([
      scores[0],
      scores[1],
    ]);
    expect(recent.scoresAt(at(10) + 1)[1]).toBeGreaterThan(
      recent.scoresAt(at(10) + 1)[0] as number,
    );
  });

  it('grades events as documented', () => {
    expect([Purchase, Like, Click, View].map((type) => labelGrade(type, 0))).toEqual([4, 3, 2, 1]);
    expect([5, 4.5, 4, 3.5, 3, 2.5, 0.5].map((r) => labelGrade(Rating, r))).toEqual([
      4, 4, 3, 2, 2, 1, 1,
    ]);
  });

  it('turns a data set event into the feedback event the stream carries', () => {
    const e = eventsBefore(log, at(62));
    expect(feedbackEventOf(log, e)).toEqual({
      event_id: `e${e}`,
      user_id: 'u2',
      item_id: 'i4',
      type: 'rating',
      ts_ms: at(62),
      value: 4,
    });
    expect(feedbackEventOf(log, 0)).toEqual({
      event_id: 'e0',
      user_id: 'u0',
      item_id: 'i0',
      type: 'view',
      ts_ms: at(0),
    });
  });

  it('refuses bad options and points by name', async () => {
    const base = {
      dataset: log,
      retrieval: popularity,
      definitions,
      points: [{ user: 0, timeMs: at(10) }],
      horizonMs: 15 * MINUTE_MS,
    };
    const refused = async (options: object): Promise<string> => {
      const err: unknown = await buildRankingExamples({ ...base, ...options }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).message;
    };
    expect(await refused({ candidates: 0 })).toMatch(/^candidates:/);
    expect(await refused({ horizonMs: -1 })).toMatch(/^horizonMs:/);
    expect(await refused({ batchIntervalMs: 1.5 })).toMatch(/^batchIntervalMs:/);
    expect(await refused({ points: undefined, from: at(1000) })).toMatch(/^from:/);
    expect(await refused({ points: [{ user: 3, timeMs: at(10) }] })).toMatch(/^points\[0\]\.user:/);
    // The label window must end before `to`: nothing at or after it is read.
    expect(await refused({ to: at(20) })).toMatch(/^points\[0\]\.timeMs:/);
  });
});

describe('ranking examples are point-in-time correct', () => {
  let root: string;
  let world: Dataset;
  let retrieval: TwoTowerScorer;
  let t: number;

  /** The world with every event at or after `from` changed: other items, other users, purchases. */
  function poisoned(from: number): Dataset {
    const start = eventsBefore(world, from);
    const events = world.events;
    const n = events.length;
    const copy: EventTable = {
      length: n,
      user: events.user.slice(0, n),
      item: events.item.slice(0, n),
      ts: events.ts.slice(0, n),
      type: events.type.slice(0, n),
      value: events.value.slice(0, n),
    };
    const items = world.items.ids.length;
    const users = world.users.ids.length;
    for (let e = start; e < n; e++) {
      copy.item[e] = ((copy.item[e] as number) * 7 + 3) % items;
      copy.user[e] = ((copy.user[e] as number) + 1) % users;
      copy.type[e] = Purchase;
    }
    return { ...world, events: copy };
  }

  const build = (
    dataset: Dataset,
    points: readonly RankingQueryPoint[],
  ): Promise<RankingExamples> =>
    buildRankingExamples({
      dataset,
      retrieval,
      definitions,
      points,
      candidates: 30,
      keepEmptyGroups: true,
    });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'ranking-examples-'));
    await generateDataset({ dir: root, ...SCALES.tiny, days: 6, seed: 9 });
    world = await readDataset(root);
    const split = temporalSplit(world, { testFraction: 0.3 });
    const trained = trainTwoTower(
      { dataset: world, events: split.train, referenceTime: split.cutoff },
      { dims: 8, hiddenUnits: 16, historyLength: 8, batchSize: 128, epochs: 1, seed: 2 },
    );
    retrieval = TwoTowerScorer.fromTrained(trained);
    t = world.events.ts[Math.floor(world.events.length * 0.6)] as number;
  }, 30_000);

  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('does not change when every event at or after the query time changes', async () => {
    // The users of the events at t and next (who are active), at t.
    const users = new Set<number>();
    for (let e = eventsBefore(world, t); users.size < 6; e++)
      users.add(world.events.user[e] as number);
    const points = [...users].map((user) => ({ user, timeMs: t }));
    const clean = await build(world, points);
    const dirty = await build(poisoned(t), points);
    expect(Array.from(dirty.items)).toEqual(Array.from(clean.items));
    expect(Array.from(dirty.groups)).toEqual(Array.from(clean.groups));
    expect(dirty.features).toEqual(clean.features);
    // The poison reached what the examples may read of the future: their labels.
    expect(Array.from(dirty.labels)).not.toEqual(Array.from(clean.labels));
  });

  it('does not change, at several query times, when the events after the last one change', async () => {
    const last = t + DAY_MS / 2;
    const points = sampleQueryPoints(world, 12, t - DAY_MS, last, 4);
    expect(new Set(points.map((p) => p.timeMs)).size).toBeGreaterThan(6);
    const clean = await build(world, points);
    const dirty = await build(poisoned(Math.max(...points.map((p) => p.timeMs))), points);
    expect(dirty.features).toEqual(clean.features);
    expect(Array.from(dirty.items)).toEqual(Array.from(clean.items));
  });

  it('replays only what the planned reads can show, with the same rows as replaying everything', async () => {
    // Points spread over the whole log, so rows expire, windows empty and sessions come and go.
    const points = sampleQueryPoints(world, 40, world.events.ts[0] as number, t + DAY_MS, 1);
    const planned = await build(world, points);
    expect(planned.stats.store.events).toBeLessThan(
      eventsBefore(world, Math.max(...points.map((p) => p.timeMs))),
    );
    const everything = await PointInTimeStore.open({ dataset: world, definitions });
    try {
      let row = 0;
      for (let q = 0; q < planned.groups.length; q++) {
        const n = planned.groups[q] as number;
        await everything.advanceTo(planned.queries.timeMs[q] as number);
        const scores = Array.from(
          { length: n },
          (_, r) => planned.features[(row + r) * schema.size] as number,
        );
        const contexts = await everything.contexts(
          planned.queries.user[q] as number,
          planned.items.subarray(row, row + n),
          scores,
        );
        const rows = assembleFeatures(schema, contexts);
        expect(rows).toEqual(planned.features.subarray(row * schema.size, (row + n) * schema.size));
        row += n;
      }
    } finally {
      await everything.close();
    }
  });

  it('scores queries in batches with the same candidates for a model that does not depend on the time', async () => {
    const points = sampleQueryPoints(world, 24, world.events.ts[0] as number, t, 6);
    const one = await build(world, points);
    const batched = await buildRankingExamples({
      dataset: world,
      retrieval,
      definitions,
      points,
      candidates: 30,
      keepEmptyGroups: true,
      retrievalBatch: 7,
    });
    expect(Array.from(batched.items)).toEqual(Array.from(one.items));
    expect(batched.labels).toEqual(one.labels);
    // The same rows but for the scores' last bits: the model's matrix kernel sums in another
    // order for another batch size.
    const score = schema.names.indexOf('retrieval_score');
    for (let i = 0; i < one.features.length; i++) {
      const a = one.features[i] as number;
      const b = batched.features[i] as number;
      if (i % schema.size === score) expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-6);
      else expect(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))).toBe(true);
    }
  });

  it('does not leak the events at the store time into a store read without a plan', async () => {
    const users = [world.events.user[eventsBefore(world, t)] as number];
    const items = Int32Array.from([
      0,
      1,
      2,
      3,
      world.events.item[eventsBefore(world, t)] as number,
    ]);
    const read = async (dataset: Dataset): Promise<Float32Array> => {
      const store = await PointInTimeStore.open({ dataset, definitions });
      try {
        await store.advanceTo(t);
        return assembleFeatures(
          schema,
          await store.contexts(users[0] as number, items, [1, 2, 3, 4, 5]),
        );
      } finally {
        await store.close();
      }
    };
    expect(await read(poisoned(t))).toEqual(await read(world));
  });

  it('refuses a read the plan did not announce, and a store time going back', async () => {
    const store = await PointInTimeStore.open({
      dataset: world,
      definitions,
      plan: [{ timeMs: t, user: 1, items: [2, 3] }],
    });
    try {
      await store.advanceTo(t);
      await expect(store.contexts(1, [2, 4], [1, 1])).rejects.toThrow(/not in the plan/);
      await expect(store.contexts(1, [2, 3], [1, 1])).resolves.toHaveLength(2);
      await expect(store.advanceTo(t - 1)).rejects.toThrow(RangeError);
    } finally {
      await store.close();
    }
  });

  it('refuses definitions whose item categories expire: the replay writes them once', async () => {
    const expiring: FeatureDefinitions = {
      entities: definitions.entities,
      views: definitions.views.map((v) =>
        v.name === 'item_profile' ? { ...v, ttlMs: DAY_MS } : v,
      ),
    };
    await expect(PointInTimeStore.open({ dataset: world, definitions: expiring })).rejects.toThrow(
      /^views\.item_profile\.ttl: must be 0/,
    );
  });

  it('samples query points reproducibly, in order, inside the range', () => {
    const from = world.events.ts[100] as number;
    const until = world.events.ts[2000] as number;
    const points = sampleQueryPoints(world, 50, from, until, 3);
    expect(points).toEqual(sampleQueryPoints(world, 50, from, until, 3));
    expect(points).not.toEqual(sampleQueryPoints(world, 50, from, until, 4));
    expect(points.length).toBeGreaterThan(45);
    for (let i = 0; i < points.length; i++) {
      const p = points[i] as RankingQueryPoint;
      expect(p.timeMs >= from && p.timeMs <= until).toBe(true);
      if (i > 0)
        expect(p.timeMs).toBeGreaterThanOrEqual((points[i - 1] as RankingQueryPoint).timeMs);
    }
  });
});
