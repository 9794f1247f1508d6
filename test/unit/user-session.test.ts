/**
 * The user actor's session, with explicit clocks: sliding windows per feedback type, categories
 * of the longest window, dedupe by event id, served items expiring, bounds on what it remembers,
 * and the history the user tower pools (batch history, then the session's newer items).
 */
import { describe, expect, it } from 'vitest';
import { Session, checkSessionOptions } from '../../actors/user/index.js';
import type { SessionEvent, SessionOptions } from '../../actors/user/index.js';
import type { FeedbackType } from '../../runtime/events/index.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1, 12);

const options = (over: Partial<SessionOptions> = {}): SessionOptions => ({
  windowsMinutes: [5, 30],
  servedTtlMs: 60 * MINUTE,
  maxItems: 100,
  historyLength: 5,
  ...over,
});

let next = 0;
const event = (
  item: string,
  ts: number,
  type: FeedbackType = 'click',
  category = 'c1',
  id = `e${++next}`,
): SessionEvent => ({ event_id: id, item_id: item, type, ts_ms: ts, category });

describe('the user session', () => {
  it('counts events per type in each window, by event time', () => {
    const session = new Session(options());
    session.apply(event('a', T0 - 40 * MINUTE, 'view'), T0);
    session.apply(event('b', T0 - 20 * MINUTE, 'view'), T0);
    session.apply(event('c', T0 - 2 * MINUTE, 'click'), T0);
    session.apply(event('d', T0 - 1 * MINUTE, 'like'), T0);
    const windows = session.windows(T0);
    expect(windows['5m']).toMatchObject({ view: 0, click: 1, like: 1, purchase: 0, rating: 0 });
    expect(windows['30m']).toMatchObject({ view: 1, click: 1, like: 1 });
    // Ten minutes later the 5-minute window is empty and the 30-minute one lost nothing yet.
    expect(session.windows(T0 + 10 * MINUTE)['5m']).toMatchObject({ click: 0, like: 0 });
    expect(session.windows(T0 + 10 * MINUTE)['30m']).toMatchObject({ view: 0, click: 1, like: 1 });
    // The 40-minute-old view still counts as seen and as history.
    expect(session.counts(T0).seen).toBe(4);
    expect(session.history()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('ranks the categories of the longest window, most first', () => {
    const session = new Session(options());
    session.apply(event('a', T0 - MINUTE, 'click', 'films'), T0);
    session.apply(event('b', T0 - MINUTE, 'click', 'books'), T0);
    session.apply(event('c', T0 - MINUTE, 'view', 'books'), T0);
    session.apply(event('d', T0 - MINUTE, 'view', ''), T0);
    session.apply(event('e', T0 - 31 * MINUTE, 'view', 'music'), T0);
    expect(session.categories(T0)).toEqual([
      { category: 'books', count: 2 },
      { category: 'films', count: 1 },
    ]);
  });

  it('applies an event id once', () => {
    const session = new Session(options());
    const e = event('a', T0);
    expect(session.apply(e, T0)).toBe(true);
    expect(session.apply({ ...e }, T0)).toBe(false);
    expect(session.has(e.event_id)).toBe(true);
    expect(session.events).toBe(1);
    expect(session.windows(T0)['5m']!['click']).toBe(1);
    expect(session.history()).toEqual(['a']);
  });

  it('keeps served items out until their TTL has passed', () => {
    const session = new Session(options({ servedTtlMs: 10 * MINUTE }));
    session.markServed(['x', 'y'], T0);
    expect([...session.excluded(T0 + 9 * MINUTE)].sort()).toEqual(['x', 'y']);
    session.markServed(['y'], T0 + 5 * MINUTE);
    expect([...session.excluded(T0 + 11 * MINUTE)]).toEqual(['y']);
    expect(session.counts(T0 + 16 * MINUTE).served).toBe(0);
    // A TTL of 0 remembers nothing served.
    const repeats = new Session(options({ servedTtlMs: 0 }));
    repeats.markServed(['x'], T0);
    expect(repeats.excluded(T0).size).toBe(0);
  });

  it('forgets the oldest seen and served items past maxItems', () => {
    const session = new Session(options({ maxItems: 3 }));
    for (let i = 0; i < 5; i++) session.apply(event(`i${i}`, T0 + i), T0 + 10);
    session.markServed(['s0', 's1', 's2', 's3'], T0);
    const excluded = session.excluded(T0 + 10);
    expect([...excluded].filter((x) => x.startsWith('i')).sort()).toEqual(['i2', 'i3', 'i4']);
    expect([...excluded].filter((x) => x.startsWith('s')).sort()).toEqual(['s1', 's2', 's3']);
    expect(session.counts(T0 + 10)).toEqual({ seen: 3, served: 3 });
    // Seeing an item again makes it the newest.
    session.apply(event('i2', T0 + 6), T0 + 10);
    session.apply(event('i9', T0 + 7), T0 + 10);
    expect([...session.excluded(T0 + 10)].filter((x) => x.startsWith('i')).sort()).toEqual([
      'i2',
      'i4',
      'i9',
    ]);
  });

  it('remembers at most 4 × maxItems event ids', () => {
    const session = new Session(options({ maxItems: 2 }));
    const first = event('a', T0);
    session.apply(first, T0);
    for (let i = 0; i < 8; i++) session.apply(event(`b${i}`, T0), T0);
    expect(session.has(first.event_id)).toBe(false);
    expect(session.apply(first, T0)).toBe(true);
  });

  it('pools the batch history, then the newer session items, the last historyLength', () => {
    const session = new Session(options({ historyLength: 4 }));
    session.setBatchHistory(['h1', 'h2', 'h3'], T0);
    // At or before the batch row's time: already in the batch history.
    session.apply(event('old', T0 - MINUTE), T0 + MINUTE);
    session.apply(event('n2', T0 + 20), T0 + MINUTE);
    session.apply(event('n1', T0 + 10), T0 + MINUTE);
    expect(session.history()).toEqual(['h2', 'h3', 'n1', 'n2']);
    expect(session.hasBatchHistory).toBe(true);
    expect(session.excluded(T0 + MINUTE)).toEqual(new Set(['h1', 'h2', 'h3', 'old', 'n2', 'n1']));
  });

  it('refuses bad options, naming them', () => {
    expect(() => checkSessionOptions(options({ windowsMinutes: [30, 5] }))).toThrow(
      /windowsMinutes/,
    );
    expect(() => checkSessionOptions(options({ maxItems: 0 }))).toThrow(/maxItems/);
    expect(() => checkSessionOptions(options({ historyLength: 1.5 }))).toThrow(/historyLength/);
    expect(() => checkSessionOptions(options({ servedTtlMs: -1 }))).toThrow(/servedTtlMs/);
  });
});
