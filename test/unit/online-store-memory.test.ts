import { afterEach, describe, expect, it, vi } from 'vitest';

import { MemoryOnlineStore } from '../../runtime/features/memory-store.js';
import { openOnlineStore } from '../../runtime/features/open.js';
import { onlineStoreSuite, SUITE_DEFINITIONS } from '../helpers/online-store-suite.js';

onlineStoreSuite(
  'memory',
  (definitions, clock) => Promise.resolve(new MemoryOnlineStore({ definitions, now: clock })),
  { time: 'fake' },
);

describe('MemoryOnlineStore', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('measures TTLs with Date.now by default, so fake timers drive them', async () => {
    vi.useFakeTimers();
    const store = new MemoryOnlineStore({ definitions: SUITE_DEFINITIONS });
    await store.write({
      rows: [{ view: 'short_lived', entity: 'i1', row: { values: { n: 1 }, eventTimeMs: 1 } }],
      marks: { scope: 'g', ids: ['e1'], ttlMs: 2_000 },
    });
    vi.advanceTimersByTime(999);
    expect(await store.read('short_lived', ['i1'])).toMatchObject([{ values: { n: 1 } }]);
    vi.advanceTimersByTime(1);
    expect(await store.read('short_lived', ['i1'])).toEqual([null]);
    expect(await store.processed('g', ['e1'])).toEqual([true]);
    vi.advanceTimersByTime(1_000);
    expect(await store.processed('g', ['e1'])).toEqual([false]);
    await store.close();
  });

  it('sweeps expired rows and marks nobody asks for again', async () => {
    let now = 0;
    const store = new MemoryOnlineStore({ definitions: SUITE_DEFINITIONS, now: () => now });
    const rows = Array.from({ length: 100 }, (_, i) => ({
      view: 'short_lived',
      entity: `i${i}`,
      row: { values: { n: i }, eventTimeMs: 1 },
    }));
    await store.write({ rows, marks: { scope: 'g', ids: ['e1', 'e2'], ttlMs: 1_000 } });
    await store.write({ rows: [], marks: { scope: 'keep', ids: ['e1'], ttlMs: 600_000 } });
    now = 61_000;
    await store.write({ rows: [] });
    // What a sweep leaves behind is what a read would still see: nothing of what expired.
    const internals = store as unknown as {
      rows: Map<string, Map<string, unknown>>;
      marks: Map<string, Map<string, number>>;
    };
    expect(internals.rows.get('short_lived')?.size).toBe(0);
    expect([...internals.marks.keys()]).toEqual(['keep']);
    await store.close();
  });
});

describe('openOnlineStore', () => {
  it('opens the memory store for inproc', async () => {
    const store = await openOnlineStore({
      transport: 'inproc',
      redisUrl: 'redis://127.0.0.1:1',
      prefix: 'recsys',
      definitions: SUITE_DEFINITIONS,
    });
    expect(store).toBeInstanceOf(MemoryOnlineStore);
    await store.close();
  });
});
