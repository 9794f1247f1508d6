/**
 * The online-store contract as tests, written once and run against every implementation: what a
 * read returns, the event-time rule, versions, compare-and-set refusing whole batches, processed
 * marks, meta values, TTLs and the checks on what is written. Each test opens its own store;
 * implementations backed by a shared server give each one a fresh key prefix.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { BadRequestError, ConflictError, UnavailableError } from '../../runtime/errors.js';
import { parseFeatureDefinitions } from '../../runtime/features/definitions.js';
import type {
  FeatureDefinitions,
  FeatureValue,
  FeatureWrite,
  OnlineStore,
  StoredRow,
} from '../../runtime/features/types.js';
import { eventually } from './eventually.js';

/** Opens a store over `definitions`; with `clock`, its TTLs follow that clock. */
export type OpenOnlineStore = (
  definitions: FeatureDefinitions,
  clock?: () => number,
) => Promise<OnlineStore>;

/** Options of {@link onlineStoreSuite}. */
export interface OnlineStoreSuiteOptions {
  /**
   * How the TTL tests make time pass: `fake` hands `open` a clock the tests move; `real` waits
   * for real expiry, polling.
   */
  time: 'fake' | 'real';
}

/** Views of every field type, one with a short TTL, and a second view of the same entity. */
export const SUITE_DEFINITIONS_YAML = `
entities:
  - { name: user, description: A user. }
  - { name: item }
views:
  - name: everything
    entity: user
    source: stream
    ttl: 0
    description: One field of each type.
    fields:
      - { name: f, type: float, default: 0.5 }
      - { name: i, type: int, default: -1 }
      - { name: b, type: bool, default: false }
      - { name: s, type: string, default: 'none' }
      - { name: fl, type: float_list, default: [0, 0] }
      - { name: sl, type: string_list, default: [] }
  - name: other
    entity: user
    source: batch
    ttl: 24h
    fields:
      - { name: f, type: float, default: 0 }
  - name: short_lived
    entity: item
    source: stream
    ttl: 1s
    fields:
      - { name: n, type: int, default: 0 }
`;

export const SUITE_DEFINITIONS = parseFeatureDefinitions(SUITE_DEFINITIONS_YAML, 'suite.yaml');

/** TTL of `short_lived`, and of the marks the TTL tests write. */
const SHORT_TTL_MS = 1_000;

const FULL_VALUES: Record<string, FeatureValue> = {
  f: 0.30000000000000004,
  i: 2 ** 40,
  b: true,
  s: 'héllo: "quoted" \\ \n 😀',
  fl: [1.5, -2, 0, 1e-300, 123456789.125],
  sl: ['a', 'b:c', '', '{"json":1}'],
};

const DEFAULTS: Record<string, FeatureValue> = {
  f: 0.5,
  i: -1,
  b: false,
  s: 'none',
  fl: [0, 0],
  sl: [],
};

function put(
  entity: string,
  values: Record<string, FeatureValue>,
  eventTimeMs: number,
  extra: { view?: string; ifVersion?: number; state?: string } = {},
): FeatureWrite {
  const write: FeatureWrite = {
    view: extra.view ?? 'everything',
    entity,
    row:
      extra.state === undefined
        ? { values, eventTimeMs }
        : { values, eventTimeMs, state: extra.state },
  };
  return extra.ifVersion === undefined ? write : { ...write, ifVersion: extra.ifVersion };
}

async function readOne(
  store: OnlineStore,
  view: string,
  entity: string,
): Promise<StoredRow | null> {
  const [row] = await store.read(view, [entity]);
  if (row === undefined) throw new Error('read returned no slot for the entity');
  return row;
}

export function onlineStoreSuite(
  name: string,
  open: OpenOnlineStore,
  options: OnlineStoreSuiteOptions,
): void {
  describe(`online store conformance: ${name}`, () => {
    let store: OnlineStore;
    let nowMs = 1_700_000_000_000;
    const clock = (): number => nowMs;
    const advance = (ms: number): void => {
      nowMs += ms;
    };

    beforeEach(async () => {
      nowMs = 1_700_000_000_000;
      store =
        options.time === 'fake'
          ? await open(SUITE_DEFINITIONS, clock)
          : await open(SUITE_DEFINITIONS);
    });

    afterEach(async () => {
      await store.close();
    });

    it('writes a row and reads it back exactly: every type, state, event time, version', async () => {
      const state = 'opaque:{"buckets":[1,2]}:end';
      const first = await store.write({
        rows: [put('u1', FULL_VALUES, 1_700_000_000_123, { state })],
      });
      expect(first).toEqual({ written: 1, stale: 0 });
      expect(await readOne(store, 'everything', 'u1')).toEqual({
        values: FULL_VALUES,
        eventTimeMs: 1_700_000_000_123,
        state,
        version: 1,
      });

      const changed = { ...FULL_VALUES, f: -7.25, sl: ['z'] };
      await store.write({ rows: [put('u1', changed, 1_700_000_000_124)] });
      const second = await readOne(store, 'everything', 'u1');
      expect(second).toEqual({ values: changed, eventTimeMs: 1_700_000_000_124, version: 2 });
      // A write without state drops the old state: state belongs to the values it came with.
      expect(second).not.toHaveProperty('state');

      await store.write({ rows: [put('u1', changed, 1_700_000_000_125)] });
      expect((await readOne(store, 'everything', 'u1'))?.version).toBe(3);
    });

    it('fills the fields a row leaves out with their defaults', async () => {
      await store.write({ rows: [put('u1', { i: 3, sl: ['x'] }, 10)] });
      expect((await readOne(store, 'everything', 'u1'))?.values).toEqual({
        ...DEFAULTS,
        i: 3,
        sl: ['x'],
      });
      await store.write({ rows: [put('u2', {}, 10)] });
      expect((await readOne(store, 'everything', 'u2'))?.values).toEqual(DEFAULTS);
    });

    it('reads null for entities never written and keeps the order of many entities', async () => {
      const written = Array.from({ length: 50 }, (_, i) => `user-${i * 2}`);
      await store.write({ rows: written.map((entity, i) => put(entity, { i }, 100 + i)) });
      const asked = Array.from({ length: 100 }, (_, i) => `user-${(i * 37) % 100}`);
      const rows = await store.read('everything', asked);
      expect(rows).toHaveLength(100);
      rows.forEach((row, k) => {
        const n = (k * 37) % 100;
        if (n % 2 === 1) {
          expect(row, `user-${n}`).toBeNull();
        } else {
          expect(row?.values['i'], `user-${n}`).toBe(n / 2);
          expect(row?.eventTimeMs).toBe(100 + n / 2);
        }
      });
      expect(await store.read('everything', [])).toEqual([]);
    });

    it('keeps entities and views apart whatever characters the ids hold', async () => {
      const ids = ['a', 'a:b', 'a:b:c', ' spaced out ', 'ünïcode', '😀', '*', 'x'.repeat(256)];
      await store.write({ rows: ids.map((entity, i) => put(entity, { i }, 1)) });
      await store.write({ rows: [put('a', { f: 9 }, 1, { view: 'other' })] });
      const rows = await store.read('everything', ids);
      expect(rows.map((row) => row?.values['i'])).toEqual(ids.map((_, i) => i));
      expect((await readOne(store, 'other', 'a'))?.values).toEqual({ f: 9 });
      expect(await readOne(store, 'other', 'a:b')).toBeNull();
    });

    it('does not apply a row older than the stored one; an equal event time replaces', async () => {
      await store.write({ rows: [put('u1', { i: 1 }, 100)] });
      expect(await store.write({ rows: [put('u1', { i: 2 }, 99)] })).toEqual({
        written: 0,
        stale: 1,
      });
      expect(await readOne(store, 'everything', 'u1')).toMatchObject({
        values: { i: 1 },
        eventTimeMs: 100,
        version: 1,
      });
      expect(await store.write({ rows: [put('u1', { i: 3 }, 100)] })).toEqual({
        written: 1,
        stale: 0,
      });
      expect(await readOne(store, 'everything', 'u1')).toMatchObject({
        values: { i: 3 },
        eventTimeMs: 100,
        version: 2,
      });
    });

    it('applies rows of one entity in batch order, each against the one before', async () => {
      const forward = await store.write({
        rows: [put('u1', { i: 1 }, 10), put('u1', { i: 2 }, 20), put('u2', { i: 7 }, 5)],
      });
      expect(forward).toEqual({ written: 3, stale: 0 });
      expect(await readOne(store, 'everything', 'u1')).toMatchObject({
        values: { i: 2 },
        version: 2,
      });
      const backward = await store.write({
        rows: [put('u1', { i: 3 }, 30), put('u1', { i: 4 }, 25)],
      });
      expect(backward).toEqual({ written: 1, stale: 1 });
      expect(await readOne(store, 'everything', 'u1')).toMatchObject({
        values: { i: 3 },
        eventTimeMs: 30,
        version: 3,
      });
    });

    it('applies a compare-and-set batch when every ifVersion holds', async () => {
      await store.write({ rows: [put('u1', { i: 1 }, 1, { ifVersion: 0 })] });
      await store.write({
        rows: [put('u1', { i: 2 }, 2, { ifVersion: 1 }), put('u2', { i: 5 }, 2, { ifVersion: 0 })],
      });
      const rows = await store.read('everything', ['u1', 'u2']);
      expect(rows.map((row) => [row?.values['i'], row?.version])).toEqual([
        [2, 2],
        [5, 1],
      ]);
      // A compare-and-set that holds still obeys the event-time rule.
      expect(await store.write({ rows: [put('u1', { i: 9 }, 1, { ifVersion: 2 })] })).toEqual({
        written: 0,
        stale: 1,
      });
    });

    it('refuses the whole batch, marks included, when one ifVersion does not hold', async () => {
      await store.write({ rows: [put('a', { i: 1 }, 1), put('b', { i: 1 }, 1)] });
      const refused = store.write({
        rows: [
          put('a', { i: 2 }, 2, { ifVersion: 1 }),
          put('b', { i: 2 }, 2, { ifVersion: 0 }),
          put('c', { i: 2 }, 2),
        ],
        marks: { scope: 'writer', ids: ['e1'], ttlMs: 60_000 },
      });
      await expect(refused).rejects.toBeInstanceOf(ConflictError);
      const err = (await refused.catch((e: unknown) => e)) as ConflictError;
      expect(err.message).toContain('everything');
      expect(err.message).toContain('"b"');
      expect(err.data).toMatchObject({ view: 'everything', entity: 'b', version: 1, expected: 0 });

      const rows = await store.read('everything', ['a', 'b', 'c']);
      expect(rows.map((row) => row?.version ?? null)).toEqual([1, 1, null]);
      expect(rows.map((row) => row?.values['i'] ?? null)).toEqual([1, 1, null]);
      expect(await store.processed('writer', ['e1'])).toEqual([false]);
    });

    it('stores processed marks with the rows and answers per id, in order, per scope', async () => {
      await store.write({
        rows: [put('u1', { i: 1 }, 1)],
        marks: { scope: 'group-a', ids: ['e1', 'e2'], ttlMs: 60_000 },
      });
      expect(await store.processed('group-a', ['e2', 'nope', 'e1'])).toEqual([true, false, true]);
      expect(await store.processed('group-b', ['e1'])).toEqual([false]);
      expect(await store.processed('group-a', [])).toEqual([]);
      // Marks alone, and marks whose rows are stale, are stored all the same.
      await store.write({ rows: [], marks: { scope: 'group-b', ids: ['e1'], ttlMs: 60_000 } });
      await store.write({
        rows: [put('u1', { i: 0 }, 0)],
        marks: { scope: 'group-a', ids: ['e3:with:colons'], ttlMs: 60_000 },
      });
      expect(await store.processed('group-b', ['e1'])).toEqual([true]);
      expect(await store.processed('group-a', ['e3:with:colons', 'e3'])).toEqual([true, false]);
      expect(await store.write({ rows: [] })).toEqual({ written: 0, stale: 0 });
    });

    it('keeps meta values', async () => {
      expect(await store.getMeta('materialize:user_profile')).toBeNull();
      await store.setMeta('materialize:user_profile', '1700000000000');
      expect(await store.getMeta('materialize:user_profile')).toBe('1700000000000');
      await store.setMeta('materialize:user_profile', '');
      expect(await store.getMeta('materialize:user_profile')).toBe('');
      expect(await store.getMeta('other')).toBeNull();
    });

    if (options.time === 'fake') {
      it('expires a row a view TTL after its last write; the next write starts at version 1', async () => {
        await store.write({ rows: [put('i1', { n: 1 }, 1, { view: 'short_lived' })] });
        advance(SHORT_TTL_MS - 1);
        await store.write({ rows: [put('i1', { n: 2 }, 2, { view: 'short_lived' })] });
        advance(SHORT_TTL_MS - 1);
        expect(await readOne(store, 'short_lived', 'i1')).toMatchObject({ version: 2 });
        // A stale write does not restart the TTL.
        await store.write({ rows: [put('i1', { n: 0 }, 0, { view: 'short_lived' })] });
        advance(1);
        expect(await readOne(store, 'short_lived', 'i1')).toBeNull();
        await store.write({
          rows: [put('i1', { n: 3 }, 0, { view: 'short_lived', ifVersion: 0 })],
        });
        expect(await readOne(store, 'short_lived', 'i1')).toMatchObject({
          values: { n: 3 },
          version: 1,
        });
        // A view without TTL keeps its rows.
        await store.write({ rows: [put('u1', { i: 1 }, 1)] });
        advance(365 * 86_400_000);
        expect(await readOne(store, 'everything', 'u1')).not.toBeNull();
      });

      it('expires processed marks after their own TTL', async () => {
        await store.write({ rows: [], marks: { scope: 'g', ids: ['e1'], ttlMs: SHORT_TTL_MS } });
        advance(SHORT_TTL_MS - 1);
        expect(await store.processed('g', ['e1'])).toEqual([true]);
        advance(1);
        expect(await store.processed('g', ['e1'])).toEqual([false]);
      });
    } else {
      it('expires a row a view TTL after its last write; the next write starts at version 1', async () => {
        await store.write({ rows: [put('i1', { n: 1 }, 1, { view: 'short_lived' })] });
        await store.write({ rows: [put('i1', { n: 2 }, 2, { view: 'short_lived' })] });
        expect(await readOne(store, 'short_lived', 'i1')).toMatchObject({ version: 2 });
        await store.write({ rows: [put('u1', { i: 1 }, 1)] });
        await eventually(async () => (await readOne(store, 'short_lived', 'i1')) === null, {
          message: 'short_lived row expired',
        });
        await store.write({
          rows: [put('i1', { n: 3 }, 0, { view: 'short_lived', ifVersion: 0 })],
        });
        expect(await readOne(store, 'short_lived', 'i1')).toMatchObject({
          values: { n: 3 },
          version: 1,
        });
        expect(await readOne(store, 'everything', 'u1')).not.toBeNull();
      });

      it('expires processed marks after their own TTL', async () => {
        await store.write({ rows: [], marks: { scope: 'g', ids: ['e1'], ttlMs: SHORT_TTL_MS } });
        await store.write({ rows: [], marks: { scope: 'g', ids: ['e2'], ttlMs: 60_000 } });
        await eventually(async () => (await store.processed('g', ['e1']))[0] === false, {
          message: 'mark e1 expired',
        });
        expect(await store.processed('g', ['e2'])).toEqual([true]);
      });
    }

    it('rejects a bad row naming the field, and writes nothing of its batch', async () => {
      const cases: [string, FeatureWrite][] = [
        ['nope', put('u1', { nope: 1 }, 1)],
        ['f', put('u1', { f: 'x' }, 1)],
        ['f', put('u1', { f: Number.NaN }, 1)],
        ['f', put('u1', { f: Number.POSITIVE_INFINITY }, 1)],
        ['i', put('u1', { i: 1.5 }, 1)],
        ['i', put('u1', { i: 2 ** 53 }, 1)],
        ['b', put('u1', { b: 1 }, 1)],
        ['s', put('u1', { s: 3 }, 1)],
        ['fl', put('u1', { fl: [1, Number.NaN] }, 1)],
        ['fl', put('u1', { fl: 1 }, 1)],
        ['sl', put('u1', { sl: ['a', 1] as unknown as string[] }, 1)],
        ['entity', put('', { i: 1 }, 1)],
        ['entity', put('x'.repeat(257), { i: 1 }, 1)],
        ['eventTimeMs', put('u1', { i: 1 }, Number.NaN)],
        ['ifVersion', put('u1', { i: 1 }, 1, { ifVersion: -1 })],
        [
          'state',
          {
            view: 'everything',
            entity: 'u1',
            row: { values: {}, eventTimeMs: 1, state: 5 as unknown as string },
          },
        ],
        ['view', put('u1', { i: 1 }, 1, { view: 'nope' })],
      ];
      for (const [field, bad] of cases) {
        const write = store.write({ rows: [put('good', { i: 1 }, 1), bad] });
        await expect(write, field).rejects.toBeInstanceOf(BadRequestError);
        const err = (await write.catch((e: unknown) => e)) as BadRequestError;
        expect(err.field, err.message).toMatch(new RegExp(`(^|\\.)${field}$`));
      }
      const unknownField = (await store
        .write({ rows: [put('u9', { nope: 1 }, 1)] })
        .catch((e: unknown) => e)) as BadRequestError;
      expect(unknownField.message).toContain('everything');
      expect(unknownField.message).toContain('"u9"');
      expect(unknownField.data).toMatchObject({ view: 'everything', entity: 'u9' });

      expect(await readOne(store, 'everything', 'good')).toBeNull();
      const marks = { scope: 'g', ids: ['e1'], ttlMs: 0 };
      await expect(store.write({ rows: [], marks })).rejects.toBeInstanceOf(BadRequestError);
      await expect(
        store.write({ rows: [], marks: { scope: 'bad scope', ids: ['e1'], ttlMs: 1 } }),
      ).rejects.toBeInstanceOf(BadRequestError);
    });

    it('rejects an unknown view and bad entity ids on read', async () => {
      const read = store.read('nope', ['u1']);
      await expect(read).rejects.toBeInstanceOf(BadRequestError);
      const err = (await read.catch((e: unknown) => e)) as BadRequestError;
      expect(err.field).toBe('view');
      expect(err.message).toContain(
        'unknown feature view nope (known: everything, other, short_lived)',
      );
      await expect(store.read('everything', ['ok', ''])).rejects.toMatchObject({
        field: 'entities[1]',
      });
      await expect(store.read('everything', ['x'.repeat(257)])).rejects.toBeInstanceOf(
        BadRequestError,
      );
      await expect(store.processed('bad scope', ['e'])).rejects.toBeInstanceOf(BadRequestError);
      await expect(store.getMeta('')).rejects.toBeInstanceOf(BadRequestError);
    });

    it('copies values in and out', async () => {
      const fl = [1, 2];
      const values = { fl, sl: ['a'] };
      const writing = store.write({ rows: [put('u1', values, 1)] });
      fl.push(3);
      await writing;
      values.sl.push('b');
      const [row] = await store.read('everything', ['u1']);
      expect(row?.values['fl']).toEqual([1, 2]);
      expect(row?.values['sl']).toEqual(['a']);
      (row?.values['fl'] as number[]).push(4);
      (row?.values['sl'] as string[]).push('c');
      expect((await readOne(store, 'everything', 'u1'))?.values).toMatchObject({
        fl: [1, 2],
        sl: ['a'],
      });
      // Defaults filled in are copies too.
      await store.write({ rows: [put('u2', {}, 1)] });
      const [defaulted] = await store.read('everything', ['u2']);
      (defaulted?.values['fl'] as number[]).push(4);
      expect((await readOne(store, 'everything', 'u2'))?.values['fl']).toEqual([0, 0]);
    });

    it('rejects every call after close', async () => {
      await store.close();
      await expect(store.read('everything', ['u1'])).rejects.toBeInstanceOf(UnavailableError);
      await expect(store.write({ rows: [put('u1', {}, 1)] })).rejects.toBeInstanceOf(
        UnavailableError,
      );
      await expect(store.processed('g', ['e'])).rejects.toBeInstanceOf(UnavailableError);
      await expect(store.getMeta('k')).rejects.toBeInstanceOf(UnavailableError);
      await expect(store.setMeta('k', 'v')).rejects.toBeInstanceOf(UnavailableError);
    });
  });
}
