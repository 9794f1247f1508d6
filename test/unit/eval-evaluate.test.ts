import { describe, expect, it } from 'vitest';
import { PopularityScorer } from '../../models/eval/baselines.js';
import { evaluateRetrieval, groupByUser } from '../../models/eval/evaluate.js';
import { evaluationJson, formatEvaluation, recallRatios } from '../../models/eval/report.js';
import type { RetrievalScorer, UserQuery } from '../../models/retrieval/scorer.js';
import {
  DAY_MS,
  eventTable,
  splitAtDay,
  tinyDataset,
  type TinyEvent,
} from '../helpers/eval-data.js';

// 5 items, 4 users, cutoff at day 10.
// Training (before day 10): u0 → 0, 1; u1 → 0, 2; u2 → 0, 1; u3 → nothing (cold start).
// Popularity over training: item 0: 3, item 1: 2, item 2: 1, items 3 and 4: 0 (tie → index order),
// so the popularity ranking is 0, 1, 2, 3, 4.
// Test (day 10 on): u0 → 3, 1 (1 was seen: truth {3}); u1 → 4 (truth {4});
// u2 → 1 only (seen: empty truth, skipped); u3 → 0, 4 (truth {0, 4}).
const EVENTS: TinyEvent[] = [
  { user: 0, item: 0, day: 1 },
  { user: 0, item: 1, day: 2 },
  { user: 1, item: 0, day: 3 },
  { user: 1, item: 2, day: 4 },
  { user: 2, item: 0, day: 5 },
  { user: 2, item: 1, day: 6 },
  { user: 0, item: 3, day: 11 },
  { user: 1, item: 4, day: 11 },
  { user: 0, item: 1, day: 12 },
  { user: 2, item: 1, day: 12 },
  { user: 3, item: 0, day: 13 },
  { user: 3, item: 4, day: 14 },
];
const dataset = tinyDataset(5, 4, EVENTS);
const split = splitAtDay(EVENTS, 10);
const D2 = 1 / Math.log2(3); // discount of rank 2
const D3 = 0.5; // discount of rank 3

/** A scorer that records its calls and scores with a function of (query, item). */
class SpyScorer implements RetrievalScorer {
  readonly calls: Array<{ queries: UserQuery[]; at: number }> = [];
  constructor(
    readonly name: string,
    private readonly score: (query: UserQuery, item: number) => number,
  ) {}
  scoreBatch(queries: readonly UserQuery[], at: number): Float32Array {
    this.calls.push({ queries: [...queries], at });
    const out = new Float32Array(queries.length * 5);
    queries.forEach((q, row) => {
      for (let item = 0; item < 5; item++) out[row * 5 + item] = this.score(q, item);
    });
    return out;
  }
}

describe('evaluateRetrieval', () => {
  it('gives popularity the recall, NDCG, hit rate and coverage computed by hand', () => {
    const result = evaluateRetrieval({
      dataset,
      split,
      scorers: [new PopularityScorer(split.train, 5)],
      ks: [1, 2, 3],
      historyLength: 10,
    });
    // Per user, popularity's list without the user's seen items:
    //   u0 (seen 0, 1): 2, 3, 4   truth {3}    K=1: 0   K=2: hit at rank 2   K=3: same
    //   u1 (seen 0, 2): 1, 3, 4   truth {4}    K=1: 0   K=2: 0               K=3: hit at rank 3
    //   u3 (cold):      0, 1, 2   truth {0, 4} K=1: hit at rank 1 (recall 1/2, NDCG 1/1)
    //                                          K=2, 3: recall 1/2, NDCG 1 / (1 + D2) = 0.61315
    const [pop] = result.scorers;
    const [k1, k2, k3] = pop?.all.metrics ?? [];
    expect(pop?.all.users).toBe(3);
    // K=1: recall (0 + 0 + 1/2) / 3 = 1/6; NDCG (0 + 0 + 1) / 3; hit rate 1/3;
    // coverage: top-1 items {2, 1, 0} = 3 of 5.
    expect(k1?.recall).toBeCloseTo(1 / 6, 12);
    expect(k1?.ndcg).toBeCloseTo(1 / 3, 12);
    expect(k1?.hitRate).toBeCloseTo(1 / 3, 12);
    expect(k1?.coverage).toBe(0.6);
    // K=2: recall (1 + 0 + 1/2) / 3 = 0.5; NDCG (D2 + 0 + 1/(1 + D2)) / 3 = 0.41469;
    // hit rate 2/3; coverage {2, 3, 1, 0} = 4 of 5.
    expect(k2?.recall).toBeCloseTo(0.5, 12);
    expect(k2?.ndcg).toBeCloseTo((D2 + 1 / (1 + D2)) / 3, 12);
    expect(k2?.ndcg).toBeCloseTo(0.41469, 5);
    expect(k2?.hitRate).toBeCloseTo(2 / 3, 12);
    expect(k2?.coverage).toBe(0.8);
    // K=3: recall (1 + 1 + 1/2) / 3 = 0.83333; NDCG (D2 + D3 + 1/(1 + D2)) / 3 = 0.58136;
    // hit rate 1; coverage: all 5 items.
    expect(k3?.recall).toBeCloseTo(5 / 6, 12);
    expect(k3?.ndcg).toBeCloseTo((D2 + D3 + 1 / (1 + D2)) / 3, 12);
    expect(k3?.hitRate).toBe(1);
    expect(k3?.coverage).toBe(1);
    // Warm users u0 and u1: K=2 recall (1 + 0) / 2; cold user u3: K=1 recall 1/2.
    expect(pop?.warm.users).toBe(2);
    expect(pop?.warm.metrics[1]?.recall).toBe(0.5);
    expect(pop?.cold.users).toBe(1);
    expect(pop?.cold.metrics[0]?.recall).toBe(0.5);
    expect(result.protocol).toMatchObject({
      split: 'temporal',
      testUsers: 4,
      sampledUsers: 4,
      skippedUsers: 1,
      warmUsers: 2,
      coldUsers: 1,
      items: 5,
      trainEvents: 6,
      testEvents: 6,
    });
  });

  it('queries each user with their last training items, oldest first, at the cutoff', () => {
    const spy = new SpyScorer('spy', () => 0);
    evaluateRetrieval({ dataset, split, scorers: [spy], ks: [2], historyLength: 1 });
    const queries = spy.calls.flatMap((c) => c.queries);
    expect(spy.calls.every((c) => c.at === 10 * DAY_MS)).toBe(true);
    // u2 (empty truth) is not queried; u3 has no history. The real index is always passed.
    expect(queries.map((q) => [q.userIndex, Array.from(q.history)])).toEqual([
      [0, [1]],
      [1, [2]],
      [3, []],
    ]);
    const longer = new SpyScorer('spy', () => 0);
    evaluateRetrieval({ dataset, split, scorers: [longer], ks: [2], historyLength: 5 });
    expect(longer.calls[0]?.queries.map((q) => Array.from(q.history))).toEqual([
      [0, 1],
      [0, 2],
      [],
    ]);
  });

  it('excludes seen items from candidates and from the truth', () => {
    // This scorer knows each user's whole test list, seen items included, and scores their seen
    // items highest of all. Seen items must be dropped from its list (candidates), and u0's
    // re-visit of item 1 must not be in the truth: then every truth item is in the top K.
    const testItems = new Map<number, Set<number>>();
    for (const e of EVENTS.filter((e) => e.day >= 10)) {
      testItems.set(e.user, (testItems.get(e.user) ?? new Set()).add(e.item));
    }
    const cheat = new SpyScorer('cheat', (q, item) =>
      q.history.includes(item) ? 100 : testItems.get(q.userIndex)?.has(item) === true ? 10 : 0,
    );
    const result = evaluateRetrieval({
      dataset,
      split,
      scorers: [cheat],
      ks: [1, 2],
      historyLength: 5,
    });
    const [k1, k2] = result.scorers[0]?.all.metrics ?? [];
    // K=1: u0 {3} → 1, u1 {4} → 1, u3 {0, 4} → 1/2. Had item 1 stayed in u0's truth, u0's
    // recall@1 would be 1/2; had seen items stayed candidates, every recall@1 would be 0.
    expect(k1?.recall).toBeCloseTo((1 + 1 + 0.5) / 3, 12);
    expect(k2?.recall).toBe(1);
    expect(k2?.ndcg).toBe(1);
  });

  it('leaves items created after the cutoff out of candidates and truth', () => {
    // Item 4 is created on day 12, after the cutoff: it leaves u1's truth {4} (u1 is skipped) and
    // u3's truth {0, 4} (now {0}). Item 2's recorded creation (day 20) is after the cutoff too,
    // but u1 interacted with it in training, so it existed and stays a candidate.
    const created = [0, 0, 20, 0, 12];
    const withDates = tinyDataset(5, 4, EVENTS, created);
    const run = (excludeFutureItems?: boolean) =>
      evaluateRetrieval({
        dataset: withDates,
        split,
        scorers: [new PopularityScorer(split.train, 5)],
        ks: [1, 2],
        historyLength: 3,
        excludeFutureItems,
      });
    const result = run();
    expect(result.protocol).toMatchObject({
      futureItems: 1,
      futureTruthPairs: 2,
      skippedUsers: 2,
      warmUsers: 1,
      coldUsers: 1,
    });
    expect(result.protocol.description).toMatch(/1 of the 5 items were created after/);
    // u0 (seen 0, 1): 2, 3 → truth {3}: K=1 recall 0, K=2 recall 1.
    // u3 (cold): 0, 1 → truth {0}: K=1 recall 1, NDCG 1.
    const [k1, k2] = result.scorers[0]?.all.metrics ?? [];
    expect(k1?.recall).toBe(0.5);
    expect(k2?.recall).toBe(1);
    // Coverage is still over the whole catalogue: top-2 items {2, 3, 0, 1} = 4 of 5.
    expect(k2?.coverage).toBe(0.8);
    // Without the exclusion the protocol is the one of the first test.
    const all = run(false);
    expect(all.protocol).toMatchObject({ futureItems: 0, futureTruthPairs: 0, skippedUsers: 1 });
    expect(all.scorers[0]?.all.metrics[1]?.recall).toBeCloseTo(0.5, 12);
  });

  it('gives the same results whatever the batch size, and never exceeds it', () => {
    const run = (batchSize?: number) => {
      const spy = new SpyScorer('spy', (q, item) => ((q.userIndex * 7 + item * 3) % 5) - item / 10);
      const result = evaluateRetrieval({
        dataset,
        split,
        scorers: [spy],
        ks: [1, 3],
        historyLength: 3,
        batchSize,
      });
      return { result, sizes: spy.calls.map((c) => c.queries.length) };
    };
    const whole = run();
    const one = run(1);
    const two = run(2);
    expect(one.sizes).toEqual([1, 1, 1]);
    // The second batch of two holds u2 (skipped) and u3.
    expect(two.sizes).toEqual([2, 1]);
    expect(one.result.scorers[0]?.all).toEqual(whole.result.scorers[0]?.all);
    expect(two.result.scorers[0]?.all).toEqual(whole.result.scorers[0]?.all);
  });

  it('evaluates a seeded sample of users when asked, the same sample for the same seed', () => {
    const run = (seed: number) => {
      const spy = new SpyScorer('spy', () => 0);
      const result = evaluateRetrieval({
        dataset,
        split,
        scorers: [spy],
        historyLength: 3,
        maxUsers: 2,
        seed,
      });
      return { result, users: spy.calls.flatMap((c) => c.queries.map((q) => q.userIndex)) };
    };
    const a = run(3);
    expect(a.result.protocol.sampledUsers).toBe(2);
    expect(a.result.protocol.description).toMatch(/sample of 2/);
    expect(run(3).users).toEqual(a.users);
  });

  it('rejects bad options, naming them', () => {
    const base = { dataset, split, scorers: [], historyLength: 3 };
    expect(() => evaluateRetrieval({ ...base, ks: [0] })).toThrow(/ks/);
    expect(() => evaluateRetrieval({ ...base, historyLength: 0 })).toThrow(/historyLength/);
    expect(() => evaluateRetrieval({ ...base, batchSize: 0 })).toThrow(/batchSize/);
    const twice = [new PopularityScorer(split.train, 5), new PopularityScorer(split.train, 5)];
    expect(() => evaluateRetrieval({ ...base, scorers: twice })).toThrow(/distinct names/);
    const wrong: RetrievalScorer = { name: 'short', scoreBatch: () => new Float32Array(1) };
    expect(() => evaluateRetrieval({ ...base, scorers: [wrong] })).toThrow(/returned 1 scores/);
  });
});

describe('groupByUser', () => {
  it('keeps each user items in time order', () => {
    const events = eventTable([
      { user: 1, item: 4, day: 1 },
      { user: 0, item: 2, day: 2 },
      { user: 1, item: 3, day: 3 },
    ]);
    const { offsets, items } = groupByUser(events, 3, 5);
    expect(Array.from(offsets)).toEqual([0, 1, 3, 3]);
    expect(Array.from(items)).toEqual([2, 4, 3]);
    expect(() => groupByUser(events, 1, 5)).toThrow(/outside the 1 users/);
  });
});

describe('reports', () => {
  const result = evaluateRetrieval({
    dataset,
    split,
    scorers: [
      new PopularityScorer(split.train, 5),
      new SpyScorer('oracle', (q, item) => (q.userIndex === 3 ? 5 - item : item)),
    ],
    ks: [1, 3],
    historyLength: 3,
  });

  it('divides recall by the reference scorer, null where the reference has none', () => {
    // popularity recall@1 = 1/6, @3 = 5/6 (above). The "oracle" scores items in reverse index
    // order for u0 and u1 (4, 3, 2 without seen items) and in index order for u3 (0, 1, 2):
    // recall@1 = (0 + 1 + 1/2) / 3 = 1/2; recall@3 = (1 + 1 + 1/2) / 3 = 5/6.
    const ratios = recallRatios(result, 'popularity');
    expect(ratios?.['popularity']).toEqual([1, 1]);
    expect(ratios?.['oracle']?.[0]).toBeCloseTo(3, 12);
    expect(ratios?.['oracle']?.[1]).toBeCloseTo(1, 12);
    expect(recallRatios(result, 'missing')).toBeUndefined();
  });

  it('prints one row per K and scorer with ratio columns, and a JSON document', () => {
    const text = formatEvaluation(result);
    expect(text).toMatch(/Temporal split at 1970-01-11T00:00:00.000Z/);
    expect(text).toMatch(
      /scorer\s+K\s+recall\s+× popularity\s+\/ oracle\s+ndcg\s+hit rate\s+coverage/,
    );
    expect(text).toMatch(/oracle\s+1\s+0\.5000\s+3\.00\s+1\.00/);
    const json = evaluationJson(result);
    expect(json).toMatchObject({ format: 'recsys-retrieval-eval', ks: [1, 3] });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });
});
