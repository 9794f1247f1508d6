/**
 * The KV contract as tests, written once and run against every implementation. Each test uses a
 * fresh bucket name, so implementations backed by a server shared across tests stay isolated.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ConflictError } from '../../runtime/errors.js';
import type { KvBucket, KvEntry, KvStore } from '../../runtime/kv/types.js';
import { eventually } from './eventually.js';

export interface KvFixture {
  store: KvStore;
  cleanup(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (s: string): Uint8Array => encoder.encode(s);
const str = (data: Uint8Array): string => decoder.decode(data);

let bucketCounter = 0;
function freshName(): string {
  return `conf_${process.pid}_${Date.now().toString(36)}_${bucketCounter++}`;
}

/** NATS applies `max_age` on a timer, so expiry can lag the TTL by up to about a second. */
const EXPIRY_SLACK_MS = 4_000;

export function kvConformance(name: string, makeStore: () => Promise<KvFixture>): void {
  describe(`kv conformance: ${name}`, () => {
    let fixture: KvFixture;
    let store: KvStore;
    let bucket: KvBucket;

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
      bucket = await store.bucket(freshName(), { ttlMs: 60_000, storage: 'memory' });
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    it('creates a key once; a second create conflicts', async () => {
      const rev = await bucket.create('k', text('first'));
      await expect(bucket.create('k', text('second'))).rejects.toBeInstanceOf(ConflictError);
      const entry = await bucket.get('k');
      expect(entry).not.toBeNull();
      expect(str(entry!.value)).toBe('first');
      expect(entry!.revision).toBe(rev);
      expect(entry!.operation).toBe('PUT');
      expect(entry!.key).toBe('k');
    });

    it('numbers revisions per bucket, increasing across keys', async () => {
      const r1 = await bucket.put('a', text('1'));
      const r2 = await bucket.put('b', text('2'));
      const r3 = await bucket.put('a', text('3'));
      expect(r2).toBeGreaterThan(r1);
      expect(r3).toBeGreaterThan(r2);
      expect((await bucket.get('a'))!.revision).toBe(r3);
      expect(await bucket.get('missing')).toBeNull();
    });

    it('updates only at the expected revision', async () => {
      const r1 = await bucket.create('k', text('v1'));
      const r2 = await bucket.update('k', text('v2'), r1);
      expect(r2).toBeGreaterThan(r1);
      await expect(bucket.update('k', text('stale'), r1)).rejects.toBeInstanceOf(ConflictError);
      await expect(bucket.update('nope', text('x'), r2)).rejects.toBeInstanceOf(ConflictError);
      const entry = await bucket.get('k');
      expect(str(entry!.value)).toBe('v2');
      expect(entry!.revision).toBe(r2);
    });

    it('deletes only at the expected previous revision', async () => {
      const r1 = await bucket.put('k', text('v1'));
      const r2 = await bucket.put('k', text('v2'));
      await expect(bucket.delete('k', r1)).rejects.toBeInstanceOf(ConflictError);
      expect(str((await bucket.get('k'))!.value)).toBe('v2');
      await bucket.delete('k', r2);
      expect(await bucket.get('k')).toBeNull();
    });

    it('treats a deleted key as absent: get is null, create works again', async () => {
      await bucket.put('k', text('v1'));
      await bucket.delete('k');
      expect(await bucket.get('k')).toBeNull();
      const rev = await bucket.create('k', text('again'));
      const entry = await bucket.get('k');
      expect(str(entry!.value)).toBe('again');
      expect(entry!.revision).toBe(rev);
      await expect(bucket.create('k', text('third'))).rejects.toBeInstanceOf(ConflictError);
    });

    it('lists current keys, without deleted ones', async () => {
      expect(await bucket.keys()).toEqual([]);
      await bucket.put('a', text('1'));
      await bucket.put('b', text('2'));
      await bucket.put('c.d', text('3'));
      await bucket.delete('b');
      expect((await bucket.keys()).sort()).toEqual(['a', 'c.d']);
    });

    it('opens the same bucket again with its data', async () => {
      await bucket.put('k', text('v'));
      const again = await store.bucket(bucket.name, { ttlMs: 60_000, storage: 'memory' });
      expect(str((await again.get('k'))!.value)).toBe('v');
    });

    it('watch sees current entries, then later puts and deletes in order', async () => {
      const r1 = await bucket.put('one', text('1'));
      const r2 = await bucket.put('two', text('2'));
      await bucket.put('gone', text('x'));
      await bucket.delete('gone');
      const seen: KvEntry[] = [];
      const watch = await bucket.watch((entry) => seen.push(entry));
      const r3 = await bucket.put('three', text('3'));
      await bucket.delete('one');
      const r5 = await bucket.put('two', text('2b'));

      const summary = (): string[] => seen.map((e) => `${e.operation} ${e.key}`);
      await eventually(() => seen.length >= 5, { message: 'watch delivered 5 entries' });
      expect(summary()).toEqual(['PUT one', 'PUT two', 'PUT three', 'DEL one', 'PUT two']);
      expect(seen[0]!.revision).toBe(r1);
      expect(seen[1]!.revision).toBe(r2);
      expect(seen[2]!.revision).toBe(r3);
      expect(seen[4]!.revision).toBe(r5);
      expect(str(seen[4]!.value)).toBe('2b');
      const revisions = seen.map((e) => e.revision);
      expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);

      watch.stop();
      const other: KvEntry[] = [];
      const second = await bucket.watch((entry) => other.push(entry));
      await bucket.put('after-stop', text('x'));
      await eventually(() => other.some((e) => e.key === 'after-stop'));
      second.stop();
      expect(seen).toHaveLength(5);
    });

    it('expires entries not written for the bucket TTL, without telling watchers', async () => {
      // Reopening with a shorter TTL reconfigures the bucket, as NATS does.
      const short = await store.bucket(bucket.name, { ttlMs: 1_000, storage: 'memory' });
      const seen: KvEntry[] = [];
      const watch = await short.watch((entry) => seen.push(entry));
      await short.put('lease', text('owner-1'));
      expect(str((await short.get('lease'))!.value)).toBe('owner-1');

      await eventually(async () => (await short.get('lease')) === null, {
        timeoutMs: 1_000 + EXPIRY_SLACK_MS,
        intervalMs: 50,
        message: 'entry expired',
      });
      expect(await short.keys()).toEqual([]);
      // After expiry the key is free for the next owner.
      await short.create('lease', text('owner-2'));
      expect(str((await short.get('lease'))!.value)).toBe('owner-2');

      await eventually(() => seen.length >= 2, { message: 'watch saw both puts' });
      watch.stop();
      expect(seen.map((e) => `${e.operation} ${str(e.value)}`)).toEqual([
        'PUT owner-1',
        'PUT owner-2',
      ]);
    });
  });
}
