/**
 * The sliding-window counters: windows expiring on a fake clock (whole inside, in proportion in
 * the oldest bucket, gone after), ring reuse, export and import of a key's buckets, bounded keys
 * with least-recently-updated eviction, a brute-force count, and the shared CTR and velocity.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  RecordOutcome,
  WindowCounters,
  resolveWindowCountersOptions,
  smoothedCtr,
  velocityScore,
  windowName,
  windowsFromMinutes,
} from '../../runtime/features/windows.js';
import type { CounterWindow } from '../../runtime/features/windows.js';
import { prng } from '../helpers/assertions.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Midnight UTC: a whole number of every bucket width used here. */
const T0 = Date.UTC(2025, 0, 1);
const KINDS = ['view', 'click'];

/** `[views_5m, clicks_5m, views_30m, clicks_30m]` of `key` at the fake clock's now. */
const at = (counters: WindowCounters, key: string): number[] => [...counters.sums(key, Date.now())];

describe('window counters', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('cut 5 and 30 minutes into 1-minute buckets by default, and name windows for features', () => {
    const counters = new WindowCounters({ kinds: KINDS });
    expect(counters.windows).toEqual([
      { spanMs: 5 * MINUTE, buckets: 5 },
      { spanMs: 30 * MINUTE, buckets: 30 },
    ]);
    expect(windowsFromMinutes([1, 60, 1440])).toEqual([
      { spanMs: MINUTE, buckets: 1 },
      { spanMs: HOUR, buckets: 60 },
      // Past an hour the buckets widen: a day in 24-minute buckets.
      { spanMs: DAY, buckets: 60 },
    ]);
    expect([5 * MINUTE, 30 * MINUTE, HOUR, DAY, 1500, 30 * SECOND].map(windowName)).toEqual([
      '5m',
      '30m',
      '1h',
      '24h',
      '1500ms',
      '30s',
    ]);
  });

  it('count an event whole inside its window, in proportion in the oldest bucket, not after', () => {
    const counters = new WindowCounters({ kinds: KINDS });
    expect(counters.record('u', 'view', Date.now(), Date.now())).toBe(RecordOutcome.Recorded);
    vi.advanceTimersByTime(20 * SECOND);
    counters.record('u', 'click', Date.now(), Date.now());
    expect(at(counters, 'u')).toEqual([1, 1, 1, 1]);
    vi.setSystemTime(T0 + 4 * MINUTE + 59 * SECOND);
    expect(at(counters, 'u')).toEqual([1, 1, 1, 1]);
    // The minute holding both events is now the 5-minute window's oldest: half of it is inside.
    vi.setSystemTime(T0 + 5.5 * MINUTE);
    expect(at(counters, 'u')).toEqual([0.5, 0.5, 1, 1]);
    vi.setSystemTime(T0 + 5.75 * MINUTE);
    expect(at(counters, 'u')).toEqual([0.25, 0.25, 1, 1]);
    vi.setSystemTime(T0 + 6 * MINUTE);
    expect(at(counters, 'u')).toEqual([0, 0, 1, 1]);
    vi.setSystemTime(T0 + 30.5 * MINUTE);
    expect(at(counters, 'u')).toEqual([0, 0, 0.5, 0.5]);
    vi.setSystemTime(T0 + 31 * MINUTE);
    expect(at(counters, 'u')).toEqual([0, 0, 0, 0]);
    vi.setSystemTime(T0 + 2 * DAY);
    expect(at(counters, 'u')).toEqual([0, 0, 0, 0]);
    // Reads change nothing: an earlier time reads as before, a key never seen as zeros.
    vi.setSystemTime(T0 + MINUTE);
    expect(at(counters, 'u')).toEqual([1, 1, 1, 1]);
    expect(at(counters, 'nobody')).toEqual([0, 0, 0, 0]);
  });

  it('reuse a ring slot only after clearing it, however far time jumps', () => {
    const counters = new WindowCounters({ kinds: KINDS });
    counters.record('u', 'view', T0, T0);
    counters.record('u', 'click', T0, T0);
    // Six minutes on, the 5-minute ring (six 1-minute slots) comes back to the first slot.
    vi.setSystemTime(T0 + 6 * MINUTE);
    counters.record('u', 'view', Date.now(), Date.now());
    expect(at(counters, 'u')).toEqual([1, 0, 2, 1]);
    // Thirty-one minutes on, the 30-minute ring has come round too.
    vi.setSystemTime(T0 + 37 * MINUTE);
    counters.record('u', 'click', Date.now(), Date.now());
    expect(at(counters, 'u')).toEqual([0, 1, 0, 1]);
    // Two days on, every ring has come round many times: nothing old survives.
    vi.setSystemTime(T0 + 2 * DAY + 30 * SECOND);
    counters.record('u', 'view', Date.now(), Date.now());
    expect(at(counters, 'u')).toEqual([1, 0, 1, 0]);
  });

  it('count late events in every window they still fit, ignore older ones, reject future ones', () => {
    const counters = new WindowCounters({ kinds: KINDS, maxFutureMs: 10 * SECOND });
    const now = T0 + HOUR;
    vi.setSystemTime(now);
    expect(
      [
        counters.record('u', 'view', now, now),
        // Too late for the 5-minute ring, not for the 30-minute one.
        counters.record('u', 'view', now - 20 * MINUTE, now),
        counters.record('u', 'view', now - 30 * MINUTE - 1, now),
        counters.record('u', 'click', now + 10 * SECOND, now),
        counters.record('u', 'click', now + 10 * SECOND + 1, now),
        counters.record('u', 'click', Number.NaN, now),
        counters.record('other', 'view', now - DAY, now),
      ],
      'outcomes',
    ).toEqual(['recorded', 'recorded', 'ignored', 'recorded', 'rejected', 'rejected', 'ignored']);
    vi.setSystemTime(now + 10 * SECOND);
    expect(at(counters, 'u')).toEqual([1, 1, 2, 1]);
    // An ignored or rejected event takes no room.
    expect(counters.stats()).toEqual({
      keys: 1,
      recorded: 3,
      ignored: 2,
      rejected: 2,
      evicted: 0,
    });
    expect(counters.admits(now - 31 * MINUTE, now)).toBe(RecordOutcome.Ignored);
    expect(() => counters.record('u', 'like', now, now)).toThrow(/kind 'like'/);
    expect(counters.kindIndex('click')).toBe(1);
    expect(counters.kindIndex('like')).toBe(-1);
  });

  it('export a key as a short string that another instance carries on from exactly', () => {
    const rand = prng(5);
    const a = new WindowCounters({ kinds: KINDS });
    let now = T0;
    for (let i = 0; i < 400; i++) {
      now += Math.floor(rand() * 10 * SECOND);
      const key = `k${Math.floor(rand() * 4)}`;
      // Some events arrive up to 20 minutes late.
      a.record(
        key,
        rand() < 0.8 ? 'view' : 'click',
        now - Math.floor(rand() ** 3 * 20 * MINUTE),
        now,
      );
    }
    const b = new WindowCounters({ kinds: KINDS });
    for (const key of ['k0', 'k1', 'k2', 'k3']) {
      const state = a.exportState(key)!;
      // 37 buckets of 2 counters, most of them small: far less than the 296 bytes they fill.
      expect(state.length, key).toBeLessThan(200);
      expect(b.importState(key, state)).toBe(true);
      expect(b.newest(key)).toBe(a.newest(key));
    }
    expect(b.observedSince).toBe(a.observedSince);
    expect(a.exportState('none')).toBeNull();
    const same = (when: number): void => {
      for (const key of ['k0', 'k1', 'k2', 'k3']) {
        expect([...b.sums(key, when)], `${key} at +${when - now}`).toEqual([...a.sums(key, when)]);
      }
    };
    for (const later of [0, 30 * SECOND, 4 * MINUTE, 17 * MINUTE, 29.5 * MINUTE, HOUR]) {
      same(now + later);
    }
    // Both go on counting the same events and stay equal, rings moving past the imported buckets.
    for (let i = 0; i < 100; i++) {
      now += Math.floor(rand() * 30 * SECOND);
      const key = `k${Math.floor(rand() * 4)}`;
      const ts = now - Math.floor(rand() * 3 * MINUTE);
      expect(b.record(key, 'click', ts, now)).toBe(a.record(key, 'click', ts, now));
    }
    same(now);
    same(now + 7 * MINUTE);
    // Importing over a key replaces what it held.
    b.record('k0', 'view', now, now);
    expect(b.importState('k0', a.exportState('k0')!)).toBe(true);
    same(now);
  });

  it('refuse a state of other windows or kinds, or a damaged one, changing nothing', () => {
    const a = new WindowCounters({ kinds: KINDS });
    a.record('u', 'view', T0, T0);
    a.record('u', 'click', T0, T0);
    const state = a.exportState('u')!;
    const b = new WindowCounters({ kinds: KINDS });
    b.record('u', 'view', T0, T0);
    const refused = [
      new WindowCounters({ kinds: ['click', 'view'] }),
      new WindowCounters({ kinds: KINDS, windows: windowsFromMinutes([5, 60]) }),
    ];
    for (const other of refused) expect(other.importState('u', state)).toBe(false);
    const bytes = Buffer.from(state, 'base64');
    const damaged = [
      '',
      'not base64 at all!',
      bytes.subarray(0, 10).toString('base64'),
      // One counter short, one too many.
      bytes.subarray(0, bytes.length - 1).toString('base64'),
      Buffer.concat([bytes, Buffer.from([0])]).toString('base64'),
      // A varint that never ends.
      Buffer.concat([bytes.subarray(0, bytes.length - 1), Buffer.from([0xff, 0xff])]).toString(
        'base64',
      ),
      Buffer.concat([Buffer.from([9]), bytes.subarray(1)]).toString('base64'),
    ];
    for (const text of damaged) expect(b.importState('u', text), text).toBe(false);
    expect(at(b, 'u')).toEqual([1, 0, 1, 0]);
    expect(b.importState('u', state)).toBe(true);
    expect(at(b, 'u')).toEqual([1, 1, 1, 1]);
  });

  it('hold at most maxKeys, dropping the least recently updated, empty ones without loss', () => {
    const counters = new WindowCounters({ kinds: KINDS, maxKeys: 3 });
    for (const key of ['a', 'b', 'c']) counters.record(key, 'view', T0, T0);
    counters.record('d', 'view', T0 + 1, T0 + 1);
    expect(counters.size).toBe(3);
    expect(counters.has('a')).toBe(false);
    expect(counters.stats().evicted).toBe(1);
    // A newer event makes b recent; an older one does not move c.
    counters.record('b', 'view', T0 + 2, T0 + 2);
    counters.record('c', 'view', T0, T0 + 2);
    counters.record('e', 'view', T0 + 3, T0 + 3);
    expect(['b', 'c', 'd', 'e'].map((k) => counters.has(k))).toEqual([true, false, true, true]);
    expect(counters.stats()).toMatchObject({ keys: 3, evicted: 2 });
    // An import makes its key the most recent too.
    counters.importState('x', counters.exportState('b')!);
    expect(counters.has('d')).toBe(false);

    // Past the longest window, the keys left hold nothing: the next goes without an eviction.
    const later = T0 + 40 * MINUTE;
    counters.record('f', 'click', later, later);
    expect(counters.stats()).toMatchObject({ keys: 3, evicted: 3 });
    expect(counters.trim(later)).toBe(2);
    expect(counters.size).toBe(1);
    expect(counters.delete('f')).toBe(true);
    expect(counters.delete('f')).toBe(false);
    expect(counters.size).toBe(0);

    const big = new WindowCounters({ kinds: KINDS, maxKeys: 1500 });
    for (let i = 0; i < 5000; i++) big.record(`k${i}`, 'view', T0, T0);
    expect(big.stats()).toMatchObject({ keys: 1500, evicted: 3500 });
    expect(big.has('k4999')).toBe(true);
    expect(big.has('k3499')).toBe(false);
  });

  it('match a count by brute force, in any windows, for events in any order', () => {
    const rand = prng(17);
    const windows: CounterWindow[] = [
      { spanMs: 90 * SECOND, buckets: 3 },
      { spanMs: 10 * MINUTE, buckets: 4 },
      { spanMs: HOUR, buckets: 60 },
    ];
    const counters = new WindowCounters({ kinds: ['a', 'b', 'c'], windows });
    const events: Array<{ key: string; kind: number; ts: number }> = [];
    let clock = T0;
    for (let i = 0; i < 3000; i++) {
      clock += Math.floor(rand() * 5 * SECOND);
      const key = `k${Math.floor(rand() * 3)}`;
      const kind = Math.floor(rand() * 3);
      const ts = clock - Math.floor(rand() ** 4 * 50 * MINUTE);
      counters.record(key, ['a', 'b', 'c'][kind]!, ts, clock);
      events.push({ key, kind, ts });
    }
    for (let q = 0; q < 20; q++) {
      const now = clock + Math.floor(rand() * 2 * HOUR);
      for (const key of ['k0', 'k1', 'k2']) {
        const sums = counters.sums(key, now);
        windows.forEach((w, wi) => {
          const width = w.spanMs / w.buckets;
          const current = Math.floor(now / width);
          const part = 1 - (now - current * width) / width;
          for (let kind = 0; kind < 3; kind++) {
            let expected = 0;
            for (const e of events) {
              if (e.key !== key || e.kind !== kind) continue;
              const b = Math.floor(e.ts / width);
              if (b > current - w.buckets && b <= current) expected += 1;
              else if (b === current - w.buckets) expected += part;
            }
            expect(sums[wi * 3 + kind], `${key} window ${wi} kind ${kind}`).toBeCloseTo(
              expected,
              6,
            );
          }
        });
      }
    }
  });

  it('know since when they have watched: the velocity span grows to the longest window', () => {
    const counters = new WindowCounters({ kinds: KINDS });
    expect(counters.watchedMs(T0)).toBe(5 * MINUTE);
    counters.record('u', 'view', T0 - 2 * MINUTE, T0);
    expect(counters.observedSince).toBe(T0 - 2 * MINUTE);
    expect(counters.watchedMs(T0 + 10 * MINUTE)).toBe(12 * MINUTE);
    expect(counters.watchedMs(T0 + DAY)).toBe(30 * MINUTE);
    counters.observe(T0 - HOUR);
    expect(counters.watchedMs(T0)).toBe(30 * MINUTE);
  });

  it('smooth the CTR towards its prior and score velocity as a log ratio', () => {
    expect(smoothedCtr(3, 10, 0.05, 20)).toBeCloseTo(4 / 30, 12);
    expect(smoothedCtr(0, 0, 0.05, 20)).toBeCloseTo(0.05, 12);
    expect(smoothedCtr(30, 0, 0.05, 20)).toBe(1);
    expect(velocityScore(0, 0, 5 * MINUTE, 30 * MINUTE, 5)).toBe(0);
    // Steady: 6 in 5 minutes, 36 in 30.
    expect(velocityScore(6, 36, 5 * MINUTE, 30 * MINUTE, 5)).toBeCloseTo(0, 12);
    expect(velocityScore(30, 36, 5 * MINUTE, 30 * MINUTE, 5)).toBeCloseTo(Math.log(35 / 11), 12);
  });

  it('refuse bad options, naming them', () => {
    const bad = (options: Parameters<typeof resolveWindowCountersOptions>[0]) => () =>
      resolveWindowCountersOptions(options);
    expect(bad({ kinds: [] })).toThrow(/^kinds must/);
    expect(bad({ kinds: ['view', 'view'] })).toThrow(/kinds\[1\] repeats/);
    expect(bad({ kinds: ['view', ''] })).toThrow(/kinds\[1\]/);
    expect(bad({ kinds: KINDS, windows: [] })).toThrow(/^windows must hold 1\.\.8/);
    expect(bad({ kinds: KINDS, windows: [{ spanMs: 1000, buckets: 3 }] })).toThrow(
      /windows\[0\]\.spanMs/,
    );
    expect(bad({ kinds: KINDS, windows: [{ spanMs: MINUTE, buckets: 0 }] })).toThrow(
      /windows\[0\]\.buckets/,
    );
    expect(
      bad({
        kinds: KINDS,
        windows: [
          { spanMs: HOUR, buckets: 60 },
          { spanMs: MINUTE, buckets: 1 },
        ],
      }),
    ).toThrow(/windows\[1\]\.spanMs must be longer/);
    expect(bad({ kinds: KINDS, maxKeys: 0 })).toThrow(/^maxKeys/);
    expect(bad({ kinds: KINDS, maxFutureMs: -1 })).toThrow(/^maxFutureMs/);
  });
});
