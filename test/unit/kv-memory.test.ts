import { afterEach, describe, expect, it, vi } from 'vitest';

import { BadRequestError, ConflictError } from '../../runtime/errors.js';
import { MemoryKvStore } from '../../runtime/kv/memory.js';
import { kvConformance } from '../helpers/kv-conformance.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

kvConformance('memory', () =>
  Promise.resolve({ store: new MemoryKvStore(), cleanup: () => Promise.resolve() }),
);

describe('MemoryKvStore', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires by time since the last write, on the fake clock', async () => {
    vi.useFakeTimers();
    const bucket = await new MemoryKvStore().bucket('ttl', { ttlMs: 1_000 });
    await bucket.put('k', text('1'));
    vi.advanceTimersByTime(900);
    await bucket.put('k', text('2'));
    vi.advanceTimersByTime(900);
    expect((await bucket.get('k'))?.value).toEqual(text('2'));
    vi.advanceTimersByTime(100);
    expect(await bucket.get('k')).toBeNull();
    expect(await bucket.keys()).toEqual([]);
  });

  it('accepts an update at the revision of a delete, as NATS does', async () => {
    const bucket = await new MemoryKvStore().bucket('del', { ttlMs: 0 });
    const put = await bucket.put('k', text('1'));
    await bucket.delete('k');
    const deleted = put + 1;
    await expect(bucket.update('k', text('x'), put)).rejects.toBeInstanceOf(ConflictError);
    await expect(bucket.update('k', text('2'), deleted)).resolves.toBe(deleted + 1);
  });

  it('expires tombstones too: afterwards the key is at revision 0 again', async () => {
    vi.useFakeTimers();
    const bucket = await new MemoryKvStore().bucket('tomb', { ttlMs: 1_000 });
    await bucket.put('k', text('1'));
    await bucket.delete('k');
    vi.advanceTimersByTime(1_000);
    await expect(bucket.update('k', text('x'), 2)).rejects.toBeInstanceOf(ConflictError);
    await bucket.create('k', text('fresh'));
  });

  it('shares buckets between users of one store, and copies values in and out', async () => {
    const store = new MemoryKvStore();
    const one = await store.bucket('shared', { ttlMs: 0 });
    const two = await store.bucket('shared', { ttlMs: 0 });
    const value = text('abc');
    await one.put('k', value);
    value.fill(0);
    const entry = await two.get('k');
    expect(entry?.value).toEqual(text('abc'));
    entry!.value.fill(0);
    expect((await one.get('k'))?.value).toEqual(text('abc'));
  });

  it('rejects bad names, keys and revisions', async () => {
    const store = new MemoryKvStore();
    await expect(store.bucket('no spaces', { ttlMs: 0 })).rejects.toBeInstanceOf(BadRequestError);
    await expect(store.bucket('b', { ttlMs: -1 })).rejects.toBeInstanceOf(BadRequestError);
    const bucket = await store.bucket('b', { ttlMs: 0 });
    await expect(bucket.put('a b', text(''))).rejects.toBeInstanceOf(BadRequestError);
    await expect(bucket.put('.a', text(''))).rejects.toBeInstanceOf(BadRequestError);
    await expect(bucket.update('a', text(''), 0)).rejects.toBeInstanceOf(BadRequestError);
  });
});
