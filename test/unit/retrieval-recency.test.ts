import { describe, expect, it } from 'vitest';

import type { EventTable } from '../../models/data/types.js';
import { choosePopularityHalfLife } from '../../models/retrieval/recency.js';

const DAY_MS = 86_400_000;

/**
 * 100 days, 2000 users, 500 items. `pick(day, r)` chooses the item of an event on `day` from a
 * uniform number `r`.
 */
function log(pick: (day: number, r: number) => number): EventTable {
  let seed = 3;
  const random = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const rows: Array<[number, number, number]> = [];
  for (let day = 0; day < 100; day++) {
    for (let e = 0; e < 40; e++) {
      rows.push([Math.floor(random() * 2000), pick(day, random()), day * DAY_MS + e * 1000]);
    }
  }
  return {
    length: rows.length,
    user: Int32Array.from(rows, (r) => r[0]),
    item: Int32Array.from(rows, (r) => r[1]),
    ts: Float64Array.from(rows, (r) => r[2]),
    type: new Uint8Array(rows.length),
    value: new Float32Array(rows.length),
  };
}

describe('popularity half-life', () => {
  it('is short when what is popular moves fast', () => {
    // Each week a new set of five items takes most of the interactions.
    const events = log((day, r) =>
      r < 0.8 ? Math.floor(day / 7) * 5 + Math.floor(r * 6) : Math.floor(r * 500),
    );
    const choice = choosePopularityHalfLife(events, 500);
    expect(choice.halfLifeDays).toBeGreaterThan(0);
    expect(choice.halfLifeDays).toBeLessThan(10);
  });

  it('is long or none when popularity stands still', () => {
    // A fixed Zipf-like popularity over the whole period.
    const events = log((_day, r) => Math.min(499, Math.floor(500 * r * r * r)));
    const choice = choosePopularityHalfLife(events, 500);
    expect(choice.halfLifeDays === 0 || choice.halfLifeDays > 20).toBe(true);
    expect(choice.candidates.length).toBe(9);
  });
});
