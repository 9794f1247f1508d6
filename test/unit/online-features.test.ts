import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  BadRequestError,
  ConfigError,
  ConflictError,
  UnavailableError,
} from '../../runtime/errors.js';
import { FeatureChanges } from '../../runtime/features/changes.js';
import { FeatureRegistry, parseFeatureDefinitions } from '../../runtime/features/definitions.js';
import { FeatureMetrics } from '../../runtime/features/feature-metrics.js';
import { MemoryOnlineStore } from '../../runtime/features/memory-store.js';
import { OnlineFeatures } from '../../runtime/features/online-features.js';
import type { OnlineFeaturesOptions } from '../../runtime/features/online-features.js';
import type {
  OnlineStore,
  StoredRow,
  WriteBatch,
  WriteResult,
} from '../../runtime/features/types.js';
import { WriteBuffer, type DropReason } from '../../runtime/features/write-buffer.js';
import { InProcessBus, InProcessTransport } from '../../runtime/transport/inproc.js';
import { eventually } from '../helpers/eventually.js';

const DEFINITIONS = parseFeatureDefinitions(
  `
entities:
  - { name: item, description: An item. }
views:
  - name: item_profile
    entity: item
    source: batch
    ttl: 0
    fields:
      - { name: category, type: string, default: '' }
      - { name: tags, type: string_list, default: [] }
      - { name: price, type: float, default: 1.5 }
  - name: item_realtime
    entity: item
    source: stream
    ttl: 24h
    fields:
      - { name: views_5m, type: float, default: 0 }
      - { name: ctr_30m, type: float, default: 0.05 }
`,
  'test-features.yaml',
);

const T0 = Date.UTC(2025, 0, 1);

/**
 * The memory store behind a switch: while `down`, every call rejects with `UnavailableError` as
 * the Redis store does when Redis is unreachable; `hold()` holds back the answers of reads, as a
 * slow server or network does. Records what reached the store.
 */
class SwitchedStore implements OnlineStore {
  down = false;
  readonly reads: string[][] = [];
  readonly landed: WriteBatch[] = [];
  private held: Promise<void> | undefined;
  private release: (() => void) | undefined;

  constructor(readonly inner: MemoryOnlineStore) {}

  /** Answers of reads wait until the returned function is called. */
  hold(): () => void {
    this.held = new Promise((resolve) => {
      this.release = resolve;
    });
    return () => {
      this.held = undefined;
      this.release?.();
    };
  }

  async read(view: string, entities: readonly string[]): Promise<(StoredRow | null)[]> {
    this.reads.push([...entities]);
    if (this.down) throw new UnavailableError('store down');
    const rows = await this.inner.read(view, entities);
    if (this.held !== undefined) await this.held;
    return rows;
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    if (this.down) throw new UnavailableError('store down');
    const result = await this.inner.write(batch);
    this.landed.push(batch);
    return result;
  }

  processed(scope: string, ids: readonly string[]): Promise<boolean[]> {
    return this.inner.processed(scope, ids);
  }

  getMeta(key: string): Promise<string | null> {
    return this.inner.getMeta(key);
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.inner.setMeta(key, value);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function profile(entity: string, category: string, eventTimeMs = T0, price?: number): WriteBatch {
  return {
    rows: [
      {
        view: 'item_profile',
        entity,
        row: {
          values: price === undefined ? { category } : { category, price, tags: ['a'] },
          eventTimeMs,
        },
      },
    ],
  };
}

describe('OnlineFeatures', () => {
  let store: SwitchedStore;
  let registry: FeatureRegistry;
  const open: OnlineFeatures[] = [];
  const transports: InProcessTransport[] = [];

  function features(options: Partial<OnlineFeaturesOptions> = {}): OnlineFeatures {
    const created = new OnlineFeatures({ store, registry, ...options });
    open.push(created);
    return created;
  }

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    registry = new FeatureRegistry(DEFINITIONS);
    store = new SwitchedStore(new MemoryOnlineStore({ definitions: DEFINITIONS }));
  });

  afterEach(async () => {
    store.down = false;
    await Promise.all(open.splice(0).map((f) => f.close()));
    await Promise.all(transports.splice(0).map((t) => t.close()));
    await store.close();
    vi.useRealTimers();
  });

  describe('reads', () => {
    it('fills defaults for entities without a row and for fields a row lacks', async () => {
      await store.inner.write(profile('i1', 'shoes', T0 - 5000));
      const reader = features().prepare('item_profile');
      const { rows, degraded } = await reader.read(['i1', 'nope']);
      expect(degraded).toBe(false);
      expect(rows[0]).toEqual({
        values: { category: 'shoes', tags: [], price: 1.5 },
        eventTimeMs: T0 - 5000,
      });
      expect(rows[1]?.values).toEqual({ category: '', tags: [], price: 1.5 });
      expect(rows[1]?.eventTimeMs).toBeNaN();
      expect(reader.fields).toEqual(['category', 'tags', 'price']);
    });

    it('reads only the fields asked for, in their order', async () => {
      await store.inner.write(profile('i1', 'shoes', T0, 9));
      const reader = features().prepare('item_profile', ['price', 'category']);
      const { rows } = await reader.read(['i1', 'nope', 'i1']);
      expect(rows.map((row) => row.values)).toEqual([
        { price: 9, category: 'shoes' },
        { price: 1.5, category: '' },
        { price: 9, category: 'shoes' },
      ]);
      expect(Object.keys(rows[0]?.values ?? {})).toEqual(['price', 'category']);
    });

    it('sends every miss to the store in one read, and only the misses', async () => {
      for (let i = 0; i < 5; i++) await store.inner.write(profile(`i${i}`, `c${i}`));
      const reader = features().prepare('item_profile');
      await reader.read(['i0', 'i1']);
      expect(store.reads).toEqual([['i0', 'i1']]);
      const { rows } = await reader.read(['i0', 'i1', 'i2', 'i3', 'i4', 'x']);
      expect(store.reads).toEqual([
        ['i0', 'i1'],
        ['i2', 'i3', 'i4', 'x'],
      ]);
      expect(rows.map((row) => row.values['category'])).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', '']);
      // Everything is cached now, an entity without a row included.
      await reader.read(['x', 'i4', 'i0']);
      expect(store.reads).toHaveLength(2);
    });

    it('serves from the cache until the TTL, then reads the store again', async () => {
      await store.inner.write(profile('i1', 'old'));
      const reader = features({ cacheTtlMs: 1000 }).prepare('item_profile');
      expect((await reader.read(['i1'])).rows[0]?.values['category']).toBe('old');
      await store.inner.write(profile('i1', 'new', T0 + 1));
      vi.advanceTimersByTime(999);
      expect((await reader.read(['i1'])).rows[0]?.values['category']).toBe('old');
      vi.advanceTimersByTime(1);
      expect((await reader.read(['i1'])).rows[0]?.values['category']).toBe('new');
      expect(store.reads).toHaveLength(2);
    });

    it('with the cache off, every read goes to the store', async () => {
      await store.inner.write(profile('i1', 'shoes'));
      const online = features({ cacheMaxEntries: 0 });
      const reader = online.prepare('item_profile');
      await reader.read(['i1']);
      await reader.read(['i1']);
      expect(store.reads).toHaveLength(2);
      expect(online.stats().hitRate).toBe(0);
    });

    it('reports hits, misses and the hit rate', async () => {
      await store.inner.write(profile('i1', 'shoes'));
      const online = features();
      const reader = online.prepare('item_profile');
      await reader.read(['i1', 'i2']);
      await reader.read(['i1', 'i2']);
      await reader.read(['i1', 'i2']);
      const stats = online.stats();
      expect(stats.cache).toMatchObject({ hits: 4, misses: 2, entries: 2 });
      expect(stats.hitRate).toBeCloseTo(4 / 6);
      expect(stats.cache.views['item_profile']?.hitRate).toBeCloseTo(4 / 6);
      expect(stats.storeReads).toEqual({ ok: 1, error: 0, timeout: 0 });
    });

    it('shares cached rows between reads and freezes them', async () => {
      await store.inner.write(profile('i1', 'shoes', T0, 2));
      const reader = features().prepare('item_profile');
      const first = (await reader.read(['i1'])).rows[0];
      const second = (await reader.read(['i1'])).rows[0];
      expect(second).toBe(first);
      expect(Object.isFrozen(first?.values)).toBe(true);
      expect(() => (first?.values['tags'] as string[]).push('x')).toThrow(TypeError);
    });

    it('refuses an unknown view or field: ConfigError when preparing, BadRequestError per read', async () => {
      const online = features();
      expect(() => online.prepare('nope')).toThrow(ConfigError);
      expect(() => online.prepare('item_profile', ['category', 'colour'])).toThrow(
        /unknown field colour/,
      );
      await expect(online.read('nope', ['i1'])).rejects.toBeInstanceOf(BadRequestError);
      await expect(online.read('item_profile', ['i1'], ['colour'])).rejects.toMatchObject({
        name: 'BadRequestError',
        field: 'fields[0]',
      });
      await expect(online.read('item_profile', [''])).rejects.toBeInstanceOf(BadRequestError);
      expect((await online.read('item_profile', ['i1'], ['price'])).rows[0]?.values).toEqual({
        price: 1.5,
      });
    });
  });

  describe('degraded reads', () => {
    it('serves defaults marked degraded when the store fails, and never rejects', async () => {
      await store.inner.write(profile('i1', 'shoes'));
      const online = features();
      const reader = online.prepare('item_profile');
      expect((await reader.read(['i1'])).degraded).toBe(false);
      store.down = true;
      // The cached row is still real; the miss gets the defaults.
      const { rows, degraded } = await reader.read(['i1', 'i2']);
      expect(degraded).toBe(true);
      expect(rows[0]?.values['category']).toBe('shoes');
      expect(rows[1]?.values).toEqual({ category: '', tags: [], price: 1.5 });
      expect(rows[1]?.eventTimeMs).toBeNaN();
      // A failed read caches nothing: once the store is back, i2 is read.
      store.down = false;
      await store.inner.write(profile('i2', 'hats'));
      const after = await reader.read(['i2']);
      expect(after.degraded).toBe(false);
      expect(after.rows[0]?.values['category']).toBe('hats');
      expect(online.stats()).toMatchObject({
        degradedReads: 1,
        storeReads: { ok: 2, error: 1, timeout: 0 },
      });
    });

    it('serves defaults when the store is slower than readTimeoutMs, and caches the late answer', async () => {
      await store.inner.write(profile('i1', 'shoes'));
      const online = features({ readTimeoutMs: 50 });
      const reader = online.prepare('item_profile');
      const release = store.hold();
      const reading = reader.read(['i1']);
      await vi.advanceTimersByTimeAsync(50);
      const { rows, degraded } = await reading;
      expect(degraded).toBe(true);
      expect(rows[0]?.values['category']).toBe('');
      expect(online.stats().storeReads.timeout).toBe(1);
      release();
      await vi.advanceTimersByTimeAsync(0);
      const next = await reader.read(['i1']);
      expect(next.degraded).toBe(false);
      expect(next.rows[0]?.values['category']).toBe('shoes');
      expect(store.reads).toHaveLength(1);
    });

    it('does not cache an answer that a change notice overtook', async () => {
      await store.inner.write(profile('i1', 'old'));
      const transport = new InProcessTransport();
      transports.push(transport);
      const changes = new FeatureChanges(transport, 'test');
      const reader = features({ changes }).prepare('item_profile');
      const release = store.hold();
      const reading = reader.read(['i1']);
      await vi.advanceTimersByTimeAsync(0);
      // The row changes and the notice arrives while the read is waiting for the store.
      await store.inner.write(profile('i1', 'new', T0 + 1));
      changes.publish('item_profile', ['i1']);
      await vi.advanceTimersByTimeAsync(0);
      release();
      expect((await reading).rows[0]?.values['category']).toBe('old');
      expect((await reader.read(['i1'])).rows[0]?.values['category']).toBe('new');
    });
  });

  describe('change notices', () => {
    it('drops the cached rows a notice names, over the in-process transport', async () => {
      vi.useRealTimers();
      const bus = new InProcessBus();
      const serving = new InProcessTransport(bus);
      const writing = new InProcessTransport(bus);
      transports.push(serving, writing);
      await store.inner.write(profile('i1', 'old'));
      await store.inner.write(profile('i2', 'two'));
      const reader = features({ changes: new FeatureChanges(serving, 'test') }).prepare(
        'item_profile',
      );
      await reader.read(['i1', 'i2']);
      await store.inner.write(profile('i1', 'new', T0 + 1));
      expect((await reader.read(['i1'])).rows[0]?.values['category']).toBe('old');
      new FeatureChanges(writing, 'test').publish('item_profile', ['i1']);
      await eventually(
        async () => (await reader.read(['i1'])).rows[0]?.values['category'] === 'new',
      );
      // i2 was not named: still served from the cache.
      const readsBefore = store.reads.length;
      await reader.read(['i2']);
      expect(store.reads).toHaveLength(readsBefore);
    });

    it('a write invalidates its rows here and announces them to other caches', async () => {
      vi.useRealTimers();
      const bus = new InProcessBus();
      const a = new InProcessTransport(bus);
      const b = new InProcessTransport(bus);
      transports.push(a, b);
      await store.inner.write(profile('i1', 'old'));
      const writer = features({ changes: new FeatureChanges(a, 'test') });
      const other = features({ changes: new FeatureChanges(b, 'test') });
      const writerReader = writer.prepare('item_profile');
      const otherReader = other.prepare('item_profile');
      await writerReader.read(['i1']);
      await otherReader.read(['i1']);
      const result = await writer.write(profile('i1', 'new', T0 + 1));
      expect(result).toEqual({ written: 1, stale: 0, buffered: false });
      expect((await writerReader.read(['i1'])).rows[0]?.values['category']).toBe('new');
      await eventually(
        async () => (await otherReader.read(['i1'])).rows[0]?.values['category'] === 'new',
      );
    });
  });

  describe('writes', () => {
    it('buffers writes while the store is down and lands them in order once it is back', async () => {
      const online = features({ writeRetryMs: 1000 });
      store.down = true;
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await online.write(profile('i1', `v${i}`, T0)));
      expect(results.every((r) => r.buffered && r.written === 0)).toBe(true);
      expect(online.stats().writeBuffer).toMatchObject({ rows: 5, batches: 5 });
      // Retries go on while it is down.
      await vi.advanceTimersByTimeAsync(3000);
      expect(store.landed).toHaveLength(0);
      store.down = false;
      // A write made now queues behind the buffered ones rather than overtaking them.
      expect((await online.write(profile('i1', 'v5', T0))).buffered).toBe(true);
      await vi.advanceTimersByTimeAsync(1000);
      expect(store.landed.map((b) => b.rows[0]?.row.values['category'])).toEqual([
        'v0',
        'v1',
        'v2',
        'v3',
        'v4',
        'v5',
      ]);
      // Equal event times replace: the last write wins, as it was the last made.
      const { rows } = await online.read('item_profile', ['i1']);
      expect(rows[0]?.values['category']).toBe('v5');
      expect(online.stats().writeBuffer).toMatchObject({ rows: 0, landedRows: 6 });
      expect(online.stats().writes).toMatchObject({ buffered: 6, retried: 6 });
      // Back to writing through.
      expect((await online.write(profile('i1', 'v6', T0))).buffered).toBe(false);
    });

    it('bounds the buffer: the oldest batches are dropped and counted', async () => {
      const dropped: Array<{ category: unknown; reason: DropReason }> = [];
      const registry = new Registry();
      const online = features({
        writeBufferMax: 3,
        metrics: new FeatureMetrics(registry),
        onWriteDropped: (batch, reason) =>
          dropped.push({ category: batch.rows[0]?.row.values['category'], reason }),
      });
      store.down = true;
      for (let i = 0; i < 5; i++) await online.write(profile(`i${i}`, `v${i}`));
      expect(dropped).toEqual([
        { category: 'v0', reason: 'overflow' },
        { category: 'v1', reason: 'overflow' },
      ]);
      expect(online.stats().writeBuffer).toMatchObject({
        rows: 3,
        droppedRows: { overflow: 2, refused: 0, closed: 0 },
      });
      const text = await registry.metrics();
      expect(text).toContain(
        'recsys_features_write_buffer_dropped_rows_total{reason="overflow"} 2',
      );
      expect(text).toContain('recsys_features_write_buffer_rows 3');
      store.down = false;
      await online.flush();
      expect(store.landed.map((b) => b.rows[0]?.entity)).toEqual(['i2', 'i3', 'i4']);
    });

    it('flush() rejects while the store is down and resolves once the buffer landed', async () => {
      const online = features();
      store.down = true;
      await online.write(profile('i1', 'a'));
      await expect(online.flush()).rejects.toBeInstanceOf(UnavailableError);
      expect(online.stats().writeBuffer.rows).toBe(1);
      store.down = false;
      await online.flush();
      expect(store.landed).toHaveLength(1);
    });

    it('rejects a compare-and-set conflict to the caller, never buffering it', async () => {
      const online = features();
      await online.write(profile('i1', 'a'));
      const stale: WriteBatch = {
        rows: [{ ...(profile('i1', 'b').rows[0] as WriteBatch['rows'][0]), ifVersion: 0 }],
      };
      await expect(online.write(stale)).rejects.toBeInstanceOf(ConflictError);
      expect(online.stats().writeBuffer.rows).toBe(0);
      expect(online.stats().writes.refused).toBe(1);
    });

    it('a buffered compare-and-set refused on retry is reported, not retried, and the rest lands', async () => {
      const dropped: Array<{ reason: DropReason; err: Error | undefined }> = [];
      const online = features({
        onWriteDropped: (_b, reason, err) => dropped.push({ reason, err }),
      });
      await online.write(profile('i1', 'a'));
      store.down = true;
      await online.write({
        rows: [{ ...(profile('i1', 'b').rows[0] as WriteBatch['rows'][0]), ifVersion: 0 }],
      });
      await online.write(profile('i2', 'c'));
      store.down = false;
      await vi.advanceTimersByTimeAsync(1000);
      expect(dropped).toHaveLength(1);
      expect(dropped[0]?.reason).toBe('refused');
      expect(dropped[0]?.err).toBeInstanceOf(ConflictError);
      expect(store.landed.map((b) => b.rows[0]?.entity)).toEqual(['i1', 'i2']);
      expect(online.stats().writeBuffer).toMatchObject({
        rows: 0,
        droppedRows: { refused: 1 },
      });
      await vi.advanceTimersByTimeAsync(5000);
      expect(store.landed).toHaveLength(2);
    });

    it('refuses a bad row at once, even while the store is down', async () => {
      const online = features();
      store.down = true;
      await expect(
        online.write({
          rows: [
            {
              view: 'item_profile',
              entity: 'i1',
              row: { values: { price: 'x' }, eventTimeMs: T0 },
            },
          ],
        }),
      ).rejects.toMatchObject({ name: 'BadRequestError', field: 'price' });
      await expect(
        online.write({
          rows: [{ view: 'nope', entity: 'i1', row: { values: {}, eventTimeMs: T0 } }],
        }),
      ).rejects.toBeInstanceOf(BadRequestError);
      expect(online.stats().writeBuffer.rows).toBe(0);
    });

    it('close() lands what it can, drops the rest as closed, and refuses later calls', async () => {
      const dropped: DropReason[] = [];
      const online = features({ onWriteDropped: (_b, reason) => dropped.push(reason) });
      store.down = true;
      await online.write(profile('i1', 'a'));
      await online.close();
      expect(dropped).toEqual(['closed']);
      await expect(online.prepare('item_profile').read(['i1'])).rejects.toBeInstanceOf(
        UnavailableError,
      );
      await expect(online.write(profile('i1', 'b'))).rejects.toBeInstanceOf(UnavailableError);
    });
  });

  describe('metrics', () => {
    it('exposes cache counts, store reads, degraded reads and served ages per view', async () => {
      const registry = new Registry();
      const metrics = new FeatureMetrics(registry);
      await store.inner.write(profile('i1', 'shoes', T0 - 90_000));
      const online = features({ metrics, cacheTtlMs: 60_000 });
      const reader = online.prepare('item_profile');
      await reader.read(['i1', 'i2']);
      vi.advanceTimersByTime(10_000);
      await reader.read(['i1', 'i2']);
      store.down = true;
      await online.prepare('item_realtime').read(['i1']);
      const text = await registry.metrics();
      expect(text).toContain('recsys_features_cache_hits_total{view="item_profile"} 2');
      expect(text).toContain('recsys_features_cache_misses_total{view="item_profile"} 2');
      expect(text).toContain('recsys_features_cache_entries{view="item_profile"} 2');
      expect(text).toContain(
        'recsys_features_store_reads_total{view="item_profile",outcome="ok"} 1',
      );
      expect(text).toContain(
        'recsys_features_store_reads_total{view="item_realtime",outcome="error"} 1',
      );
      expect(text).toContain('recsys_features_degraded_reads_total{view="item_realtime"} 1');
      // Two reads served i1: 90 s old, then 100 s old.
      expect(text).toContain('recsys_features_served_age_seconds_sum{view="item_profile"} 190');
      expect(text).toContain('recsys_features_served_age_seconds_count{view="item_profile"} 2');
      // Closed readers stop reporting.
      await online.close();
      expect(await registry.metrics()).not.toContain('recsys_features_cache_entries{view=');
    });
  });

  describe('write buffer', () => {
    it('while a batch is being retried, overflow drops the next oldest, never the one in flight', async () => {
      const landed: string[] = [];
      const dropped: string[] = [];
      let down = true;
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const buffer = new WriteBuffer({
        maxRows: 2,
        retryMs: 100,
        write: async (batch) => {
          const entity = batch.rows[0]?.entity ?? '';
          if (down) throw new UnavailableError('store down');
          if (entity === 'a') await held;
          landed.push(entity);
          return { written: 1, stale: 0 };
        },
        onDropped: (batch, reason) => dropped.push(`${batch.rows[0]?.entity}:${reason}`),
      });
      buffer.add(profile('a', 'a'));
      buffer.add(profile('b', 'b'));
      down = false;
      await vi.advanceTimersByTimeAsync(100);
      // `a` is being written now; the buffer overflows.
      buffer.add(profile('c', 'c'));
      expect(dropped).toEqual(['b:overflow']);
      expect(buffer.stats()).toMatchObject({ rows: 2, batches: 2 });
      release();
      await buffer.flush();
      expect(landed).toEqual(['a', 'c']);
      expect(buffer.stats()).toMatchObject({ rows: 0, landedRows: 2 });
      await buffer.close();
    });

    it('rejects bad options, naming them', () => {
      const write = (): Promise<WriteResult> => Promise.resolve({ written: 0, stale: 0 });
      expect(() => new WriteBuffer({ write, maxRows: 0 })).toThrow(/maxRows/);
      expect(() => new WriteBuffer({ write, retryMs: 0 })).toThrow(/retryMs/);
    });
  });
});
