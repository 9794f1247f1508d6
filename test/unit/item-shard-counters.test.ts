/**
 * The item counters: the store's windows, eviction and formulas on hand-computed examples, the
 * validators of `record` and `counters`, and the two ops on a shard served over the in-process
 * transport.
 */
import { describe, expect, it } from 'vitest';
import {
  COUNTER_EVENT_TYPES,
  ItemCounters,
  MAX_LIST_LENGTH,
  counterFeatureNames,
  itemShardKind,
  resolveItemCountersOptions,
  shardOf,
  unpackCounters,
  unpackItems,
  validateCounters,
  validateRecord,
  windowName,
} from '../../actors/item-shard/index.js';
import type {
  CounterEvent,
  CounterEventType,
  CountersReply,
  ItemShardProtocol,
} from '../../actors/item-shard/index.js';
import { EVENT_TYPE_NAMES } from '../../models/data/types.js';
import { BadRequestError } from '../../runtime/errors.js';
import type { RunningNode } from '../../runtime/node.js';
import { badRequest, prng } from '../helpers/assertions.js';
import { testCluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/eventually.js';
import { itemIndexFixture } from '../helpers/item-index-fixture.js';
import { clusteredItems, queryNear } from '../helpers/item-vectors.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Midnight UTC: a whole number of every default bucket width. */
const T0 = Date.UTC(2025, 0, 1);

const ev = (item_id: string, type: CounterEventType, ts_ms?: number): CounterEvent =>
  ts_ms === undefined ? { item_id, type } : { item_id, type, ts_ms };
const many = (n: number, item_id: string, type: CounterEventType, ts: number): CounterEvent[] =>
  Array.from({ length: n }, () => ev(item_id, type, ts));

/** Each id's features at `now`, by name. */
function features(store: ItemCounters, ids: string[], now: number): Array<Record<string, number>> {
  return unpackCounters({
    features: [...store.features],
    values: store.read(ids, now),
    now_ms: now,
  });
}
const one = (store: ItemCounters, id: string, now: number): Record<string, number> =>
  features(store, [id], now)[0]!;

describe('item counters', () => {
  it('name their features per window and type, and count the types of the data sets', () => {
    expect(COUNTER_EVENT_TYPES).toEqual(
      Object.entries(EVENT_TYPE_NAMES)
        .sort(([a], [b]) => Number(a) - Number(b))
        .map(([, name]) => name),
    );
    const names = new ItemCounters().features;
    expect(names).toEqual([
      ...['views', 'clicks', 'likes', 'purchases', 'ratings', 'ctr'].map((f) => `${f}_5m`),
      ...['views', 'clicks', 'likes', 'purchases', 'ratings', 'ctr'].map((f) => `${f}_1h`),
      ...['views', 'clicks', 'likes', 'purchases', 'ratings', 'ctr'].map((f) => `${f}_24h`),
      'velocity',
    ]);
    expect(
      counterFeatureNames([
        { spanMs: 1500, buckets: 3 },
        { spanMs: 30 * SECOND, buckets: 3 },
      ]),
    ).toEqual(expect.arrayContaining(['views_1500ms', 'ctr_1500ms', 'ratings_30s', 'velocity']));
  });

  it('slide each window smoothly: the oldest bucket counts for the part still inside', () => {
    const store = new ItemCounters();
    expect(store.record([ev('a', 'view', T0)], T0)).toEqual({
      recorded: 1,
      ignored: 0,
      rejected: 0,
    });
    const at = (now: number) => {
      const f = one(store, 'a', now);
      return [f['views_5m'], f['views_1h'], f['views_24h']];
    };
    expect(at(T0)).toEqual([1, 1, 1]);
    expect(at(T0 + 4 * MINUTE)).toEqual([1, 1, 1]);
    // The 1-minute bucket holding the view is the window's oldest: half of it is still inside.
    expect(at(T0 + 5.5 * MINUTE)).toEqual([0.5, 1, 1]);
    expect(at(T0 + 6 * MINUTE)).toEqual([0, 1, 1]);
    expect(at(T0 + HOUR + 2.5 * MINUTE)).toEqual([0, 0.5, 1]);
    expect(at(T0 + DAY + 15 * MINUTE)).toEqual([0, 0, 0.75]);
    expect(at(T0 + DAY + HOUR)).toEqual([0, 0, 0]);
    // Reads change nothing: an earlier time reads as before.
    expect(at(T0)).toEqual([1, 1, 1]);
  });

  it('clear a reused bucket when the ring comes round, however far it jumps', () => {
    const store = new ItemCounters();
    store.record([ev('a', 'view', T0), ev('a', 'click', T0)], T0);
    // Six minutes on, the 5-minute ring (six 1-minute buckets) reuses the first one.
    store.record([ev('a', 'view', T0 + 6 * MINUTE)], T0 + 6 * MINUTE);
    let f = one(store, 'a', T0 + 6 * MINUTE);
    expect([f['views_5m'], f['clicks_5m'], f['views_1h'], f['clicks_1h']]).toEqual([1, 0, 2, 1]);
    // Two days on, every ring has come round more than once.
    store.record([ev('a', 'like', T0 + 2 * DAY)], T0 + 2 * DAY);
    f = one(store, 'a', T0 + 2 * DAY);
    expect([f['views_24h'], f['clicks_24h'], f['likes_5m'], f['likes_24h']]).toEqual([0, 0, 1, 1]);
  });

  it('count late events in every window they still fit, and ignore those past the longest', () => {
    const store = new ItemCounters();
    const now = T0 + 2 * HOUR;
    expect(
      store.record(
        [
          ev('a', 'view', now),
          ev('a', 'view', now - 2 * MINUTE),
          // Too late for the 5-minute and 1-hour rings, not for the day's.
          ev('a', 'view', T0 + 30 * MINUTE),
          ev('a', 'view', now - DAY - 1),
          ev('b', 'view', now - DAY - 1),
        ],
        now,
      ),
    ).toEqual({ recorded: 3, ignored: 2, rejected: 0 });
    expect(one(store, 'a', now)).toMatchObject({ views_5m: 2, views_1h: 2, views_24h: 3 });
    // An ignored event takes no room.
    expect(store.size).toBe(1);
    expect(store.stats()).toMatchObject({ items: 1, recorded: 3, ignored: 2, rejected: 0 });
  });

  it('reject events beyond the allowed skew one by one, and date events without a time now', () => {
    const store = new ItemCounters({ maxFutureMs: 10 * SECOND });
    const now = T0 + HOUR;
    expect(
      store.record(
        [
          ev('a', 'click', now + 10 * SECOND),
          ev('a', 'click', now + 10 * SECOND + 1),
          ev('a', 'view'),
        ],
        now,
      ),
    ).toEqual({ recorded: 2, ignored: 0, rejected: 1 });
    expect(one(store, 'a', now + 10 * SECOND)).toMatchObject({ views_5m: 1, clicks_5m: 1 });
    expect(store.stats().rejected).toBe(1);
  });

  it('match a count by brute force for events in any order', () => {
    const rand = prng(11);
    const store = new ItemCounters();
    const events: Array<{ id: string; ts: number }> = [];
    let clock = T0;
    for (let batch = 0; batch < 200; batch++) {
      clock += Math.floor(rand() * 10 * MINUTE);
      const sent: CounterEvent[] = [];
      for (let i = 0; i < 20; i++) {
        const id = `i${Math.floor(rand() * 5)}`;
        // Up to three hours late: past the shorter rings, inside the day.
        const ts = clock - Math.floor(rand() ** 4 * 3 * HOUR);
        sent.push(ev(id, 'view', ts));
        events.push({ id, ts });
      }
      expect(store.record(sent, clock).recorded).toBe(20);
    }
    const windows = resolveItemCountersOptions().windows;
    for (let q = 0; q < 20; q++) {
      const now = clock + Math.floor(rand() * 2 * HOUR);
      for (let i = 0; i < 5; i++) {
        const f = one(store, `i${i}`, now);
        for (const w of windows) {
          const width = w.spanMs / w.buckets;
          const current = Math.floor(now / width);
          const frac = (now - current * width) / width;
          let expected = 0;
          for (const e of events) {
            if (e.id !== `i${i}`) continue;
            const b = Math.floor(e.ts / width);
            if (b > current - w.buckets && b <= current) expected += 1;
            else if (b === current - w.buckets) expected += 1 - frac;
          }
          const name = `views_${windowName(w.spanMs)}`;
          expect(f[name], `${name} of i${i} at +${now - clock} ms`).toBeCloseTo(expected, 2);
        }
      }
    }
  });

  it('smooth the CTR towards its prior: (clicks + p0·n0) / (views + n0)', () => {
    const store = new ItemCounters({ ctrPriorMean: 0.05, ctrPriorViews: 20 });
    store.record([...many(10, 'a', 'view', T0), ...many(3, 'a', 'click', T0)], T0);
    store.record([ev('new', 'view', T0), ev('new', 'click', T0), ev('new', 'view', T0)], T0);
    store.record(many(30, 'lost', 'click', T0), T0);
    const [a, fresh, lost, never] = features(store, ['a', 'new', 'lost', 'never'], T0);
    // (3 + 1) / (10 + 20)
    expect(a!['ctr_5m']).toBeCloseTo(4 / 30, 6);
    // 1 click in 2 views reads (1 + 1) / (2 + 20), not 0.5.
    expect(fresh!['ctr_24h']).toBeCloseTo(2 / 22, 6);
    // More clicks than views (views lost upstream) caps at 1.
    expect(lost!['ctr_1h']).toBe(1);
    // No views at all: the prior's mean.
    expect(never!['ctr_5m']).toBeCloseTo(0.05, 6);
  });

  it('score velocity as ln((s + m) / (l·Ts/Tl + m)): steady 0, new item modest, viral high', () => {
    const store = new ItemCounters({ velocityPrior: 5 });
    // The store has been watching since T0, so a day later its long window is whole.
    store.record([ev('seed', 'view', T0)], T0);
    const now = T0 + DAY;
    // One view every minute all day, half a minute into each: 5 in the last 5 minutes, 1440 in all.
    const steady = Array.from({ length: 1440 }, (_, k) =>
      ev('steady', 'view', now - 30 * SECOND - k * MINUTE),
    );
    const viral = [
      ...many(300, 'viral', 'view', now - 2 * MINUTE),
      ...many(300, 'viral', 'click', now - 5 * HOUR),
    ];
    store.record([...steady, ...viral, ...many(3, 'fresh', 'view', now - MINUTE)], now);
    const [s, f, v, never] = features(store, ['steady', 'fresh', 'viral', 'never'], now);
    expect([s!['views_5m'], s!['views_24h']]).toEqual([5, 1440]);
    expect(s!['velocity']).toBeCloseTo(Math.log(10 / 10), 6);
    // 3 views, all just now: expected 3·5/1440 in 5 minutes; without m it would read ln(288).
    expect(f!['velocity']).toBeCloseTo(Math.log(8 / (3 / 288 + 5)), 5);
    expect(f!['velocity']).toBeCloseTo(0.4679, 3);
    expect(v!['velocity']).toBeCloseTo(Math.log(305 / (600 / 288 + 5)), 5);
    expect(never!['velocity']).toBe(0);
  });

  it('measure the long rate over the time watched until a whole long window has passed', () => {
    const store = new ItemCounters({ velocityPrior: 5 });
    store.record(many(10, 'a', 'view', T0), T0);
    // Ten minutes in: 10 events over 10 minutes predict 5 in the last 5, which saw none.
    expect(one(store, 'a', T0 + 10 * MINUTE)['velocity']).toBeCloseTo(Math.log(5 / 10), 5);
    // A day in, the same 10 events over the whole day predict 10·5/1440.
    expect(one(store, 'a', T0 + DAY)['velocity']).toBeCloseTo(Math.log(5 / (10 / 288 + 5)), 5);
  });

  it('read items never seen as zero counts, in the order asked', () => {
    const store = new ItemCounters();
    store.record([ev('b', 'purchase', T0)], T0);
    const values = store.read(['x', 'b', 'x'], T0);
    expect(values).toHaveLength(3 * store.features.length);
    const rows = features(store, ['x', 'b', 'x'], T0);
    expect(rows[1]).toMatchObject({ purchases_5m: 1, purchases_24h: 1, views_5m: 0 });
    expect(rows[0]).toEqual(rows[2]);
    for (const [name, value] of Object.entries(rows[0]!)) {
      if (name.startsWith('ctr_')) expect(value).toBeCloseTo(0.05, 6);
      else expect(value, name).toBe(0);
    }
    expect(store.read([], T0)).toHaveLength(0);
  });

  it('hold at most maxItems, dropping the least recently updated', () => {
    const store = new ItemCounters({ maxItems: 3 });
    store.record([ev('a', 'view', T0), ev('b', 'view', T0), ev('c', 'view', T0)], T0);
    store.record([ev('d', 'view', T0 + 1)], T0 + 1);
    expect(store.size).toBe(3);
    expect(one(store, 'a', T0 + 1)['views_5m']).toBe(0);
    expect(store.stats().evicted).toBe(1);
    // A newer event makes b recent; an older one would not have moved it.
    store.record([ev('b', 'view', T0 + 2), ev('c', 'view', T0)], T0 + 2);
    store.record([ev('e', 'view', T0 + 3)], T0 + 3);
    expect(features(store, ['b', 'c', 'd', 'e'], T0 + 3).map((f) => f['views_5m'])).toEqual([
      2, 0, 1, 1,
    ]);
    expect(store.stats()).toMatchObject({ items: 3, evicted: 2 });

    const big = new ItemCounters({ maxItems: 1500 });
    for (let batch = 0; batch < 5; batch++) {
      big.record(
        Array.from({ length: 1000 }, (_, i) => ev(`i${batch * 1000 + i}`, 'view', T0)),
        T0,
      );
      expect(big.size).toBeLessThanOrEqual(1500);
    }
    expect(big.stats()).toMatchObject({ items: 1500, evicted: 3500 });
    expect(one(big, 'i4999', T0)['views_24h']).toBe(1);
    expect(one(big, 'i3499', T0)['views_24h']).toBe(0);
  });

  it('drop items whose windows are all empty before any with counts', () => {
    const store = new ItemCounters({ maxItems: 3 });
    store.record([ev('old', 'view', T0)], T0);
    store.record(
      [ev('x', 'view', T0 + 20 * HOUR), ev('y', 'view', T0 + 20 * HOUR)],
      T0 + 20 * HOUR,
    );
    // A day and an hour after it, `old` has left every window: it goes first, and for free.
    const later = T0 + DAY + HOUR;
    store.record([ev('z', 'view', later)], later);
    expect(store.stats()).toMatchObject({ items: 3, evicted: 0 });
    expect(features(store, ['x', 'y', 'z'], later).map((f) => f['views_24h'])).toEqual([1, 1, 1]);
    // Once everything has emptied, the next record lets it all go.
    store.record([ev('w', 'view', later + 2 * DAY)], later + 2 * DAY);
    expect(store.stats()).toMatchObject({ items: 1, evicted: 0 });
  });

  it('refuse bad options, naming them', () => {
    const bad = (options: Parameters<typeof resolveItemCountersOptions>[0]) => () =>
      resolveItemCountersOptions(options);
    expect(bad({ windows: [{ spanMs: MINUTE, buckets: 6 }] })).toThrow(/counters.windows/);
    expect(
      bad({
        windows: [
          { spanMs: HOUR, buckets: 12 },
          { spanMs: MINUTE, buckets: 6 },
        ],
      }),
    ).toThrow(/counters.windows\[1\].spanMs/);
    expect(
      bad({
        windows: [
          { spanMs: 1000, buckets: 3 },
          { spanMs: HOUR, buckets: 12 },
        ],
      }),
    ).toThrow(/counters.windows\[0\].spanMs/);
    expect(bad({ maxItems: 0 })).toThrow(/counters.maxItems/);
    expect(bad({ maxFutureMs: -1 })).toThrow(/counters.maxFutureMs/);
    expect(bad({ ctrPriorMean: 1 })).toThrow(/counters.ctrPriorMean/);
    expect(bad({ ctrPriorViews: 0 })).toThrow(/counters.ctrPriorViews/);
    expect(bad({ velocityPrior: Number.NaN })).toThrow(/counters.velocityPrior/);
  });
});

describe('record and counters validators', () => {
  it('accept well-formed requests', () => {
    expect(
      validateRecord({
        events: [
          { item_id: 'a', type: 'view' },
          { item_id: 'b', type: 'rating', ts_ms: T0 },
        ],
      }),
    ).toEqual({ events: [ev('a', 'view'), ev('b', 'rating', T0)] });
    expect(validateCounters({ item_ids: ['a', 'b'], now_ms: T0 })).toEqual({
      item_ids: ['a', 'b'],
      now_ms: T0,
    });
    expect(validateCounters({ item_ids: [] })).toEqual({ item_ids: [] });
  });

  it.each([
    ['payload', [], 'payload'],
    ['no events', {}, 'events'],
    ['empty events', { events: [] }, 'events'],
    ['too many events', { events: many(MAX_LIST_LENGTH + 1, 'a', 'view', T0) }, 'events'],
    ['event not an object', { events: ['a'] }, 'events[0]'],
    [
      'unknown type',
      { events: [ev('a', 'view'), { item_id: 'a', type: 'share' }] },
      'events[1].type',
    ],
    ['type missing', { events: [{ item_id: 'a' }] }, 'events[0].type'],
    ['empty id', { events: [{ item_id: '', type: 'view' }] }, 'events[0].item_id'],
    ['id not a string', { events: [{ item_id: 7, type: 'view' }] }, 'events[0].item_id'],
    [
      'id with a control character',
      { events: [{ item_id: 'a\tb', type: 'view' }] },
      'events[0].item_id',
    ],
    ['ts a string', { events: [{ item_id: 'a', type: 'view', ts_ms: '1' }] }, 'events[0].ts_ms'],
    [
      'ts null (NaN in JSON)',
      { events: [{ item_id: 'a', type: 'view', ts_ms: null }] },
      'events[0].ts_ms',
    ],
    [
      'ts infinite',
      { events: [{ item_id: 'a', type: 'view', ts_ms: Infinity }] },
      'events[0].ts_ms',
    ],
    [
      'unknown event field',
      { events: [{ item_id: 'a', type: 'view', user: 'u' }] },
      'events[0].user',
    ],
    ['unknown field', { events: [ev('a', 'view')], now_ms: 1 }, 'now_ms'],
  ])('name the field of a bad record: %s', (_, payload, field) => {
    expect(badRequest(() => validateRecord(payload)).field).toBe(field);
  });

  it('name the field of a bad counters request', () => {
    const field = (p: unknown): string => badRequest(() => validateCounters(p)).field;
    expect(field({})).toBe('item_ids');
    expect(field({ item_ids: 'a' })).toBe('item_ids');
    expect(field({ item_ids: Array.from({ length: MAX_LIST_LENGTH + 1 }, () => 'a') })).toBe(
      'item_ids',
    );
    expect(field({ item_ids: ['a', 3] })).toBe('item_ids[1]');
    expect(field({ item_ids: ['a'], now_ms: Number.NaN })).toBe('now_ms');
    expect(field({ item_ids: ['a'], now_ms: '2025' })).toBe('now_ms');
    expect(field({ item_ids: ['a'], events: [] })).toBe('events');
  });
});

describe('counters on an item shard over the in-process transport', () => {
  const DIMS = 8;
  const SHARDS = 2;
  const items = clusteredItems(300, DIMS, { seed: 9 });
  const index = itemIndexFixture(items, {
    dims: DIMS,
    shards: SHARDS,
    expansionSearch: 64,
    modelVersion: 'counters-model',
  });

  const start = async (): Promise<RunningNode> => {
    return index
      .use(testCluster(undefined))
      .node([itemShardKind({ indexDir: index.dir, workers: 1, counters: { ctrPriorMean: 0.1 } })], {
        host: { groups: { items: ['0', '1'] } },
      });
  };

  it('records events and answers features in the order asked, packed as float32', async () => {
    const node = await start();
    const shard = node.client.grouped<ItemShardProtocol>('items');
    const now = Date.now();
    // The shard counts what it is sent, another shard's items too: routing is the caller's.
    const foreign = items.ids.find((id) => shardOf(id, SHARDS) === 1)!;
    const recorded = await shard.ask('0', 'record', {
      events: [
        ev('a', 'view', now - MINUTE),
        ev('a', 'view', now - MINUTE),
        ev('a', 'click', now - MINUTE),
        ev(foreign, 'purchase'),
        ev('a', 'view', now - 2 * DAY),
        ev('a', 'view', now + HOUR),
      ],
    });
    expect(recorded).toEqual({ recorded: 4, ignored: 1, rejected: 1 });
    const reply: CountersReply = await shard.ask('0', 'counters', {
      item_ids: ['never', 'a', foreign],
      now_ms: now + SECOND,
    });
    expect(reply.now_ms).toBe(now + SECOND);
    expect(reply.features).toEqual([...new ItemCounters().features]);
    expect(reply.values).toBeInstanceOf(Float32Array);
    expect(reply.values).toHaveLength(3 * reply.features.length);
    const [never, a, other] = unpackCounters(reply);
    expect(never).toMatchObject({
      views_5m: 0,
      clicks_24h: 0,
      ctr_1h: Math.fround(0.1),
      velocity: 0,
    });
    expect(a).toMatchObject({ views_5m: 2, clicks_5m: 1, views_24h: 2 });
    expect(a!['ctr_5m']).toBeCloseTo((1 + 0.1 * 20) / (2 + 20), 6);
    expect(other).toMatchObject({ purchases_5m: 1, purchases_24h: 1 });
    // Without now_ms the shard's clock ends the windows.
    const live = await shard.ask('0', 'counters', { item_ids: ['a'] });
    expect(live.now_ms).toBeGreaterThanOrEqual(now);
    expect(unpackCounters(live)[0]).toMatchObject({ views_24h: 2 });
    const stats = await shard.ask('0', 'stats', {});
    expect(stats.counters).toEqual({ items: 2, recorded: 4, ignored: 1, rejected: 1, evicted: 0 });
    // The other shard holds its own counters.
    expect((await shard.ask('1', 'stats', {})).counters.items).toBe(0);
  });

  it('takes events as a tell', async () => {
    const node = await start();
    const shard = node.client.grouped<ItemShardProtocol>('items');
    shard.tell('1', 'record', { events: many(4, 'told', 'view', Date.now()) });
    await eventually(async () => {
      const reply = await shard.ask('1', 'counters', { item_ids: ['told'] });
      expect(unpackCounters(reply)[0]!['views_5m']).toBe(4);
    });
  });

  it('answers bad input with an error naming the field, and keeps searching', async () => {
    const node = await start();
    const ask = (op: 'record' | 'counters', payload: unknown) =>
      node.client.ask({ kind: 'items', group: '0' }, op, payload, { timeoutMs: 5000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
    const cases: Array<['record' | 'counters', unknown, string]> = [
      ['record', { events: [{ item_id: 'a', type: 'impression' }] }, 'events[0].type'],
      ['record', { events: [{ item_id: '', type: 'view' }] }, 'events[0].item_id'],
      ['record', { events: [{ item_id: 'a', type: 'view', ts_ms: 'soon' }] }, 'events[0].ts_ms'],
      ['record', { events: many(MAX_LIST_LENGTH + 1, 'a', 'view', Date.now()) }, 'events'],
      ['record', { event: [] }, 'event'],
      ['counters', { item_ids: ['a', null] }, 'item_ids[1]'],
      [
        'counters',
        { item_ids: Array.from({ length: MAX_LIST_LENGTH + 1 }, () => 'a') },
        'item_ids',
      ],
      ['counters', { item_ids: ['a'], now_ms: null }, 'now_ms'],
    ];
    for (const [op, payload, field] of cases) {
      const err = await ask(op, payload);
      expect(err, field).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).field).toBe(field);
    }
    const shard = node.client.grouped<ItemShardProtocol>('items');
    await shard.ask('0', 'record', { events: [ev('a', 'view')] });
    const found = await shard.ask('0', 'search', { vector: queryNear(items, prng(2)), k: 5 });
    expect(unpackItems(found)).toHaveLength(5);
    expect(unpackItems(found).every((i) => shardOf(i.item_id, SHARDS) === 0)).toBe(true);
    expect((await shard.ask('0', 'stats', {})).counters.items).toBe(1);
  });
});
