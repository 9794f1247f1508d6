import { describe, expect, it } from 'vitest';

import { FeatureCache, resolveFeatureCacheOptions } from '../../runtime/features/cache.js';

/** A clock the test moves by hand. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

describe('FeatureCache', () => {
  it('misses, then hits what was set, including a cached null', () => {
    const cache = new FeatureCache<string>({ maxEntries: 10, ttlMs: 1000 });
    expect(cache.get('item_profile', 'i1')).toBeUndefined();
    cache.set('item_profile', 'i1', 'row1');
    cache.set('item_profile', 'i2', null);
    expect(cache.get('item_profile', 'i1')).toBe('row1');
    expect(cache.get('item_profile', 'i2')).toBeNull();
    // Views are separate key spaces.
    expect(cache.get('item_realtime', 'i1')).toBeUndefined();
    const stats = cache.stats();
    expect(stats).toMatchObject({ hits: 2, misses: 2, entries: 2, evictions: 0 });
    expect(stats.hitRate).toBe(0.5);
    expect(stats.views['item_profile']).toMatchObject({ hits: 2, misses: 1, entries: 2 });
    expect(stats.views['item_realtime']).toMatchObject({ hits: 0, misses: 1, hitRate: 0 });
  });

  it('serves an entry until its TTL is over, then counts an expiration and a miss', () => {
    const time = clock();
    const cache = new FeatureCache<string>({ maxEntries: 10, ttlMs: 1000, now: time.now });
    cache.set('v', 'e', 'row');
    time.advance(999);
    expect(cache.get('v', 'e')).toBe('row');
    time.advance(1);
    expect(cache.get('v', 'e')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, expirations: 1, entries: 0 });
    // Setting again restarts the TTL.
    cache.set('v', 'e', 'row2');
    time.advance(500);
    cache.set('v', 'e', 'row3');
    time.advance(900);
    expect(cache.get('v', 'e')).toBe('row3');
  });

  it('evicts the least recently used entry across views, and a lookup counts as a use', () => {
    const cache = new FeatureCache<number>({ maxEntries: 3, ttlMs: 60_000 });
    cache.set('a', '1', 1);
    cache.set('b', '2', 2);
    cache.set('a', '3', 3);
    // '1' becomes the most recently used; '2' (view b) is now the oldest.
    expect(cache.get('a', '1')).toBe(1);
    cache.set('a', '4', 4);
    expect(cache.get('b', '2')).toBeUndefined();
    expect(cache.get('a', '1')).toBe(1);
    expect(cache.get('a', '3')).toBe(3);
    expect(cache.get('a', '4')).toBe(4);
    const stats = cache.stats();
    expect(stats.entries).toBe(3);
    // The eviction is counted on the view that lost the entry.
    expect(stats.views['b']?.evictions).toBe(1);
    expect(stats.views['a']?.evictions).toBe(0);
    expect(stats.evictions).toBe(1);
  });

  it('keeps the bound under many inserts and evicts in least-recently-used order', () => {
    const cache = new FeatureCache<number>({ maxEntries: 100, ttlMs: 60_000 });
    for (let i = 0; i < 1000; i++) cache.set('v', String(i), i);
    expect(cache.entries).toBe(100);
    expect(cache.stats().evictions).toBe(900);
    for (let i = 0; i < 900; i++) expect(cache.get('v', String(i))).toBeUndefined();
    for (let i = 900; i < 1000; i++) expect(cache.get('v', String(i))).toBe(i);
  });

  it('replacing an entry keeps one entry for the key', () => {
    const cache = new FeatureCache<string>({ maxEntries: 2, ttlMs: 60_000 });
    cache.set('v', 'x', 'old');
    cache.set('v', 'x', 'new');
    cache.set('v', 'y', 'y');
    expect(cache.entries).toBe(2);
    expect(cache.get('v', 'x')).toBe('new');
    expect(cache.stats().evictions).toBe(0);
  });

  it('invalidates the named entities of one view only', () => {
    const cache = new FeatureCache<string>({ maxEntries: 10, ttlMs: 60_000 });
    cache.set('v', 'a', 'a');
    cache.set('v', 'b', 'b');
    cache.set('w', 'a', 'wa');
    expect(cache.invalidate('v', ['a', 'missing'])).toBe(1);
    expect(cache.get('v', 'a')).toBeUndefined();
    expect(cache.get('v', 'b')).toBe('b');
    expect(cache.get('w', 'a')).toBe('wa');
    expect(cache.entries).toBe(2);
    // The freed slot is reusable without an eviction.
    for (let i = 0; i < 8; i++) cache.set('v', `n${i}`, 'n');
    expect(cache.stats().evictions).toBe(0);
  });

  it('drops a row read before an invalidation of its view (epoch check)', () => {
    const cache = new FeatureCache<string>({ maxEntries: 10, ttlMs: 60_000 });
    const view = cache.view('v');
    const epoch = view.epoch;
    // A change notice arrives while the store read is in flight.
    view.invalidate(['a']);
    view.set('a', 'old', undefined, epoch);
    expect(view.get('a')).toBeUndefined();
    view.set('a', 'fresh', undefined, view.epoch);
    expect(view.get('a')).toBe('fresh');
  });

  it('clear() empties every view, keeps the counters and overtakes in-flight reads', () => {
    const cache = new FeatureCache<string>({ maxEntries: 10, ttlMs: 60_000 });
    cache.set('v', 'a', 'a');
    cache.set('w', 'b', 'b');
    expect(cache.get('v', 'a')).toBe('a');
    const epoch = cache.view('w').epoch;
    cache.clear();
    expect(cache.entries).toBe(0);
    expect(cache.get('v', 'a')).toBeUndefined();
    cache.view('w').set('b', 'late', undefined, epoch);
    expect(cache.get('w', 'b')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2, entries: 0 });
    cache.set('v', 'c', 'c');
    expect(cache.get('v', 'c')).toBe('c');
  });

  it('with maxEntries 0 caches nothing and counts every lookup as a miss', () => {
    const cache = new FeatureCache<string>({ maxEntries: 0 });
    expect(cache.enabled).toBe(false);
    cache.set('v', 'a', 'a');
    expect(cache.get('v', 'a')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 1, entries: 0, hitRate: 0 });
  });

  it('returns the same view object for a name', () => {
    const cache = new FeatureCache<string>();
    expect(cache.view('v')).toBe(cache.view('v'));
  });

  it('rejects bad options, naming them', () => {
    expect(() => resolveFeatureCacheOptions({ maxEntries: -1 })).toThrow(/maxEntries/);
    expect(() => resolveFeatureCacheOptions({ maxEntries: 1.5 })).toThrow(/maxEntries/);
    expect(() => resolveFeatureCacheOptions({ ttlMs: 0 })).toThrow(/ttlMs/);
    expect(resolveFeatureCacheOptions()).toMatchObject({ maxEntries: 100_000, ttlMs: 5_000 });
  });
});
