import { describe, expect, it } from 'vitest';

import { DataOptionError } from '../../models/data/errors.js';
import { Rng } from '../../models/data/rng.js';
import { randomSplit, selectEvents, sliceEvents, temporalSplit } from '../../models/data/split.js';
import type { EventTable } from '../../models/data/types.js';

/** `n` events at non-decreasing times with many ties; user and item encode the row number. */
function events(n: number, seed = 1): EventTable {
  const rng = new Rng(seed);
  const table = {
    length: n,
    user: new Int32Array(n),
    item: new Int32Array(n),
    ts: new Float64Array(n),
    type: new Uint8Array(n),
    value: new Float32Array(n),
  };
  let t = 1_700_000_000_000;
  for (let i = 0; i < n; i++) {
    // One event in three shares the previous timestamp.
    if (rng.next() > 0.33) t += 1 + rng.int(60_000);
    table.user[i] = i % 97;
    table.item[i] = i;
    table.ts[i] = t;
    table.type[i] = i % 4;
    table.value[i] = i / 8;
  }
  return table;
}

function rows(table: EventTable): number[] {
  return Array.from(table.item.subarray(0, table.length));
}

describe('temporalSplit', () => {
  const all = events(5000);

  it('puts every training event strictly before the cutoff and every test event at or after it', () => {
    const { cutoff, train, test } = temporalSplit({ events: all });
    expect(train.length + test.length).toBe(all.length);
    expect(Math.max(...train.ts)).toBeLessThan(cutoff);
    expect(Math.min(...test.ts)).toBeGreaterThanOrEqual(cutoff);
    // No test event is earlier than any training event: the split does not leak the future.
    expect(Math.min(...test.ts)).toBeGreaterThan(Math.max(...train.ts));
    // Nothing lost, nothing reordered.
    expect([...rows(train), ...rows(test)]).toEqual(rows(all));
  });

  it('gives the test set about testFraction of the events (ties at the cutoff go to test)', () => {
    for (const testFraction of [0.1, 0.2, 0.5]) {
      const { test } = temporalSplit(all, { testFraction });
      expect(test.length).toBeGreaterThanOrEqual(Math.floor(all.length * testFraction));
      expect(test.length).toBeLessThan(Math.floor(all.length * testFraction) + 10);
    }
  });

  it('respects an explicit cutoff, including one between or beyond the events', () => {
    const middle = all.ts[2500] ?? 0;
    const { cutoff, train, test } = temporalSplit(all, { cutoff: middle });
    expect(cutoff).toBe(middle);
    expect(train.ts.every((t) => t < middle)).toBe(true);
    expect(test.ts.every((t) => t >= middle)).toBe(true);
    expect(train.length + test.length).toBe(all.length);

    expect(temporalSplit(all, { cutoff: 0 }).train.length).toBe(0);
    expect(temporalSplit(all, { cutoff: Number.MAX_SAFE_INTEGER }).test.length).toBe(0);
  });

  it('returns views into the original arrays, not copies', () => {
    const { train, test } = temporalSplit(all);
    expect(train.ts.buffer).toBe(all.ts.buffer);
    expect(test.user.buffer).toBe(all.user.buffer);
  });

  it('rejects unsorted events and a test fraction outside (0, 1)', () => {
    const unsorted = selectEvents(all, [3, 2, 1]);
    expect(() => temporalSplit(unsorted)).toThrow(DataOptionError);
    expect(() => temporalSplit(all, { testFraction: 0 })).toThrow(/testFraction/);
    expect(() => temporalSplit(all, { testFraction: 1 })).toThrow(/testFraction/);
    expect(() => temporalSplit(all, { cutoff: NaN })).toThrow(/cutoff/);
  });
});

describe('randomSplit', () => {
  const all = events(4000);

  it('partitions the events: each lands in exactly one side, time order kept', () => {
    const { train, test } = randomSplit(all, { testFraction: 0.25, seed: 7 });
    expect(train.length + test.length).toBe(all.length);
    const seen = [...rows(train), ...rows(test)].sort((a, b) => a - b);
    expect(seen).toEqual(rows(all));
    for (const side of [train, test]) {
      for (let i = 1; i < side.length; i++) {
        expect(side.ts[i]).toBeGreaterThanOrEqual(side.ts[i - 1] ?? 0);
      }
    }
    // Every column travels with its row.
    for (let i = 0; i < test.length; i++) {
      const row = test.item[i] ?? 0;
      expect(test.user[i]).toBe(all.user[row]);
      expect(test.ts[i]).toBe(all.ts[row]);
      expect(test.type[i]).toBe(all.type[row]);
      expect(test.value[i]).toBe(all.value[row]);
    }
    expect(test.length / all.length).toBeGreaterThan(0.2);
    expect(test.length / all.length).toBeLessThan(0.3);
  });

  it('is deterministic by seed', () => {
    const a = randomSplit(all, { testFraction: 0.2, seed: 3 });
    const b = randomSplit(all, { testFraction: 0.2, seed: 3 });
    const c = randomSplit(all, { testFraction: 0.2, seed: 4 });
    expect(rows(a.test)).toEqual(rows(b.test));
    expect(rows(a.test)).not.toEqual(rows(c.test));
    expect(Number.isNaN(a.cutoff)).toBe(true);
  });

  it('rejects bad options', () => {
    expect(() => randomSplit(all, { testFraction: 1.5, seed: 1 })).toThrow(/testFraction/);
    expect(() => randomSplit(all, { testFraction: 0.2, seed: -1 })).toThrow(/seed/);
  });
});

describe('sliceEvents and selectEvents', () => {
  const all = events(100);

  it('slices a range without copying', () => {
    const part = sliceEvents(all, 10, 20);
    expect(part.length).toBe(10);
    expect(rows(part)).toEqual(rows(all).slice(10, 20));
    expect(part.item.buffer).toBe(all.item.buffer);
    expect(sliceEvents(all, 90, 500).length).toBe(10);
  });

  it('selects rows by index list, in the order given, into new columns', () => {
    const picked = selectEvents(all, Int32Array.from([5, 1, 99, 5]));
    expect(rows(picked)).toEqual([5, 1, 99, 5]);
    expect(picked.ts[2]).toBe(all.ts[99]);
    expect(picked.item.buffer).not.toBe(all.item.buffer);
    expect(selectEvents(all, [1, 2, 3], 2).length).toBe(2);
    expect(() => selectEvents(all, [100])).toThrow(RangeError);
  });
});
