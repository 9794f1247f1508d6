import { describe, expect, it } from 'vitest';
import type { Truth } from '../../models/data/truth.js';
import { DEFAULT_WORLD_PARAMS } from '../../models/data/world.js';
import {
  OracleScorer,
  PopularityScorer,
  RecentPopularityScorer,
} from '../../models/eval/baselines.js';
import { DAY_MS, eventTable } from '../helpers/eval-data.js';

const query = { userIndex: 0, history: new Int32Array(0) };

describe('PopularityScorer', () => {
  it('scores each item by its number of training events, the same for every query', () => {
    const events = eventTable([
      { user: 0, item: 2, day: 1 },
      { user: 1, item: 2, day: 2 },
      { user: 1, item: 0, day: 3 },
    ]);
    const scorer = new PopularityScorer(events, 4);
    expect(scorer.name).toBe('popularity');
    expect(Array.from(scorer.scoreBatch([query, query]))).toEqual([1, 0, 2, 0, 1, 0, 2, 0]);
  });

  it('rejects events outside the catalogue', () => {
    expect(() => new PopularityScorer(eventTable([{ user: 0, item: 5, day: 1 }]), 3)).toThrow(
      /outside the catalogue/,
    );
  });
});

describe('RecentPopularityScorer', () => {
  // Item 0: 3 old events (days 1-3); item 1: 1 event on day 18; item 2: 2 events on days 15, 19;
  // item 3: 1 event on day 12; item 4: none.
  const events = eventTable([
    { user: 0, item: 0, day: 1 },
    { user: 1, item: 0, day: 2 },
    { user: 2, item: 0, day: 3 },
    { user: 0, item: 3, day: 12 },
    { user: 1, item: 2, day: 15 },
    { user: 0, item: 1, day: 18 },
    { user: 2, item: 2, day: 19 },
  ]);

  /** Items from best to worst score. */
  function order(scores: Float32Array): number[] {
    return Array.from(scores.keys()).sort((a, b) => (scores[b] as number) - (scores[a] as number));
  }

  it('ranks by events in the window before `at`, ties by all-time count, then index', () => {
    const scorer = new RecentPopularityScorer(events, 5, { windowDays: 7 });
    // At day 20 the window is [13, 20): item 2 has 2, item 1 has 1, items 0, 3, 4 have 0; among
    // those, item 0 (3 all-time) before item 3 (1) before item 4 (0).
    expect(order(scorer.scoresAt(20 * DAY_MS))).toEqual([2, 1, 0, 3, 4]);
    // At day 16 the window is [9, 16): items 3 and 2 have 1 each; item 2 has more all-time
    // events (2 against 1). Later events (days 18, 19) do not count: they are in the future.
    expect(order(scorer.scoresAt(16 * DAY_MS))).toEqual([2, 3, 0, 1, 4]);
  });

  it('by default counts the most recent share of the training events, however many days', () => {
    // windowShare 0.5 at day 20: the last ⌈0.5 × 7⌉ = 4 events before day 20, days 12 to 19:
    // item 2 has 2, items 1 and 3 have 1 each (all-time 1 each: lower index first), item 0 none.
    const half = new RecentPopularityScorer(events, 5, { windowShare: 0.5 });
    expect(order(half.scoresAt(20 * DAY_MS))).toEqual([2, 1, 3, 0, 4]);
    expect(half.windowAt(20 * DAY_MS)).toEqual({
      from: 12 * DAY_MS,
      to: 19 * DAY_MS,
      events: 4,
      days: 8,
    });
    // The default share is 5%: ⌈0.05 × 7⌉ = 1 event, the day-19 one (item 2).
    const latest = new RecentPopularityScorer(events, 5);
    expect(latest.windowAt(20 * DAY_MS).events).toBe(1);
    expect(order(latest.scoresAt(20 * DAY_MS))).toEqual([2, 0, 1, 3, 4]);
    // At day 16 only the 5 events before it count towards the share: ⌈0.25⌉ = 1, day 15 (item 2).
    expect(latest.windowAt(16 * DAY_MS)).toMatchObject({ from: 15 * DAY_MS, events: 1 });
  });

  it('scores are reversed ranks, the same for each query of a batch', () => {
    const scorer = new RecentPopularityScorer(events, 5, { windowDays: 7 });
    const batch = scorer.scoreBatch([query, query], 20 * DAY_MS);
    expect(Array.from(batch.subarray(0, 5))).toEqual([3, 4, 5, 2, 1]);
    expect(Array.from(batch.subarray(5))).toEqual([3, 4, 5, 2, 1]);
  });

  it('with a half-life, recent events weigh more than older ones in the window', () => {
    // At day 20, window 10 days = [10, 20): item 1 has one event 2 days old (weight
    // 0.5^(2/1) = 0.25); item 2 has events 5 and 1 days old (0.5^5 + 0.5^1 = 0.53125);
    // item 3 one event 8 days old (0.5^8 = 0.0039).
    const decayed = new RecentPopularityScorer(events, 5, { windowDays: 10, halfLifeDays: 1 });
    expect(order(decayed.scoresAt(20 * DAY_MS))).toEqual([2, 1, 3, 0, 4]);
    // At day 19.5, window [9.5, 19.5): item 2 has 0.5^4.5 + 0.5^0.5 = 0.044 + 0.707 = 0.751,
    // item 1 has 0.5^1.5 = 0.354.
    expect(order(decayed.scoresAt(19.5 * DAY_MS)).slice(0, 2)).toEqual([2, 1]);
    // At day 19 the day-19 event is not yet in [9, 19): item 1 (1 day: 0.5) beats item 2 (4 days:
    // 0.0625).
    expect(order(decayed.scoresAt(19 * DAY_MS)).slice(0, 2)).toEqual([1, 2]);
  });

  it('validates its options', () => {
    expect(() => new RecentPopularityScorer(events, 5, { windowDays: 0 })).toThrow(/windowDays/);
    expect(() => new RecentPopularityScorer(events, 5, { windowShare: 0 })).toThrow(/windowShare/);
    expect(() => new RecentPopularityScorer(events, 5, { windowShare: 1.5 })).toThrow(
      /windowShare/,
    );
    expect(() => new RecentPopularityScorer(events, 5, { halfLifeDays: -1 })).toThrow(
      /halfLifeDays/,
    );
  });
});

describe('OracleScorer', () => {
  // A one-dimensional world: item vectors 1, -1, 1 (item 2 created on day 5), user 0 tastes +1
  // and user 1 tastes -1; temperature 1, no popularity differences, no freshness boost.
  const truth: Truth = {
    format: 'recsys-truth',
    version: 1,
    model: 'test',
    dims: 1,
    users: 2,
    items: 3,
    categories: 1,
    temperature: 1,
    freshnessBoost: 0,
    freshnessMs: 0,
    start: 0,
    end: 10 * DAY_MS,
    seed: 0,
    params: { ...DEFAULT_WORLD_PARAMS, dims: 1 },
    files: {},
    itemVectors: Float32Array.from([1, -1, 1]),
    itemLogPop: new Float32Array(3),
    itemCreated: Float64Array.from([0, 0, 5 * DAY_MS]),
    userBase: Float32Array.from([1, -1]),
    userDrift: new Float32Array(2),
    centroids: Float32Array.from([1]),
  };

  it('scores each query with the generator choice model at the query time', () => {
    const oracle = new OracleScorer(truth);
    expect(oracle.name).toBe('oracle');
    const u0 = { userIndex: 0, history: new Int32Array(0) };
    const u1 = { userIndex: 1, history: Int32Array.from([2]) };
    // On day 2 item 2 does not exist yet (-Infinity); scores are taste·v / temperature.
    expect(Array.from(oracle.scoreBatch([u0, u1], 2 * DAY_MS))).toEqual([
      1,
      -1,
      -Infinity,
      -1,
      1,
      -Infinity,
    ]);
    // On day 6 it does; the history does not matter to the oracle.
    expect(Array.from(oracle.scoreBatch([u1], 6 * DAY_MS))).toEqual([-1, 1, -1]);
  });

  it('refuses users it does not know', () => {
    const oracle = new OracleScorer(truth);
    expect(() => oracle.scoreBatch([{ userIndex: -1, history: new Int32Array(0) }], 0)).toThrow(
      /userIndex/,
    );
  });
});
