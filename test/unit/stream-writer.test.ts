/**
 * The stream feature writer on the in-memory online store and a fake clock: the shipped stream
 * views computed right (counts per window, top categories, CTR, velocity, last event), redelivered
 * batches changing nothing, a restarted writer carrying on from the stored state, two writers on
 * the same entities losing no event, windows expiring, failed writes leaving nothing behind,
 * start-up errors for fields it cannot compute, its metrics, and the events-stream consumer
 * feeding it.
 */
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, ConflictError, UnavailableError } from '../../runtime/errors.js';
import { openEventsStream, publishFeedback } from '../../runtime/events/events-stream.js';
import type { FeedbackEvent, FeedbackType } from '../../runtime/events/feedback.js';
import { FeatureChanges } from '../../runtime/features/changes.js';
import type { FeatureChangeNotice } from '../../runtime/features/changes.js';
import {
  loadFeatureDefinitions,
  parseFeatureDefinitions,
} from '../../runtime/features/definitions.js';
import { MemoryOnlineStore } from '../../runtime/features/memory-store.js';
import { StreamFeatureWriter, StreamWriterMetrics } from '../../runtime/features/stream-writer.js';
import type { StreamFeatureWriterOptions } from '../../runtime/features/stream-writer.js';
import type {
  FeatureDefinitions,
  FeatureValue,
  WriteBatch,
  WriteResult,
} from '../../runtime/features/types.js';
import { smoothedCtr, velocityScore } from '../../runtime/features/windows.js';
import { MemoryStreamStore } from '../../runtime/stream/memory.js';
import { InProcessBus, InProcessTransport } from '../../runtime/transport/inproc.js';
import { prng } from '../helpers/assertions.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
/** Midnight UTC plus an hour: a whole number of every bucket width. */
const T0 = Date.UTC(2025, 0, 1, 1);
const SHIPPED = loadFeatureDefinitions(
  fileURLToPath(new URL('../../configs/features.yaml', import.meta.url)),
);
const SCOPE = 'stream-features';

let seq = 0;
const fb = (
  user: string,
  item: string,
  type: FeedbackType,
  ts: number,
  id = `e${++seq}`,
): FeedbackEvent => ({ event_id: id, user_id: user, item_id: item, type, ts_ms: ts });

/** The current values of `entity` in `view`, with the row's version and event time. */
async function row(
  store: MemoryOnlineStore,
  view: string,
  entity: string,
): Promise<Record<string, FeatureValue> & { version?: number; eventTimeMs?: number }> {
  const [stored] = await store.read(view, [entity]);
  if (stored === null || stored === undefined) return {};
  return { ...stored.values, version: stored.version, eventTimeMs: stored.eventTimeMs };
}

async function categories(store: MemoryOnlineStore, of: Record<string, string>): Promise<void> {
  await store.write({
    rows: Object.entries(of).map(([entity, category]) => ({
      view: 'item_profile',
      entity,
      row: { values: { category }, eventTimeMs: T0 - 60 * MINUTE },
    })),
  });
}

/**
 * The memory store with faults injected into writes: `failNext` rejects the next write before it
 * is applied (the store unreachable), `loseNextReply` applies it and then rejects (the connection
 * dropped before the answer), `raceNext` has another writer rewrite every row the write touches
 * just before it (so its compare-and-set fails), as many times as it says.
 */
class FaultyStore extends MemoryOnlineStore {
  failNext = false;
  loseNextReply = false;
  raceNext = 0;
  writes = 0;

  override async write(batch: WriteBatch): Promise<WriteResult> {
    this.writes++;
    if (this.failNext) {
      this.failNext = false;
      throw new UnavailableError('online store unreachable');
    }
    if (this.raceNext > 0) {
      this.raceNext--;
      // Another replica rewrites what is stored (its own view of it), bumping every version.
      for (const write of batch.rows) {
        const [stored] = await super.read(write.view, [write.entity]);
        if (stored === null || stored === undefined) {
          await super.write({
            rows: [{ view: write.view, entity: write.entity, row: { values: {}, eventTimeMs: 0 } }],
          });
        } else {
          const { values, eventTimeMs, state } = stored;
          const again =
            state === undefined ? { values, eventTimeMs } : { values, eventTimeMs, state };
          await super.write({ rows: [{ view: write.view, entity: write.entity, row: again }] });
        }
      }
    }
    const result = await super.write(batch);
    if (this.loseNextReply) {
      this.loseNextReply = false;
      throw new UnavailableError('connection lost before the answer');
    }
    return result;
  }
}

describe('stream feature writer', () => {
  let store: FaultyStore;
  const writers: StreamFeatureWriter[] = [];

  function writer(options: Partial<StreamFeatureWriterOptions> = {}): StreamFeatureWriter {
    const created = new StreamFeatureWriter({ store, definitions: SHIPPED, ...options });
    writers.push(created);
    return created;
  }

  beforeEach(async () => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    seq = 0;
    store = new FaultyStore({ definitions: SHIPPED });
    await categories(store, {
      i1: 'books',
      i2: 'music',
      i3: 'books',
      i4: 'news',
      i5: 'news',
      i6: 'film',
      i7: 'tv',
    });
  });

  afterEach(async () => {
    for (const w of writers.splice(0)) await w.close();
    await store.close();
    vi.useRealTimers();
  });

  it('computes the shipped user and item views from feedback', async () => {
    const bus = new InProcessBus();
    const changes = new FeatureChanges(new InProcessTransport(bus), 'recsys');
    const notices: FeatureChangeNotice[] = [];
    new FeatureChanges(new InProcessTransport(bus), 'recsys').subscribe((n) => notices.push(n));
    const w = writer({ changes });
    const now = T0;
    const result = await w.processBatch([
      // Twenty minutes ago: in the 30-minute windows only.
      fb('u1', 'i6', 'view', now - 20 * MINUTE),
      fb('u1', 'i1', 'view', now - 4 * MINUTE),
      fb('u1', 'i1', 'click', now - 4 * MINUTE),
      fb('u1', 'i3', 'like', now - 3 * MINUTE),
      fb('u1', 'i2', 'view', now - 3 * MINUTE),
      fb('u1', 'i4', 'view', now - 2 * MINUTE),
      fb('u1', 'i5', 'click', now - 2 * MINUTE),
      fb('u1', 'i7', 'view', now - 1 * MINUTE),
      // No profile: no category.
      fb('u1', 'unknown', 'view', now - 30 * SECOND),
      fb('u2', 'i1', 'view', now - 10 * SECOND),
    ]);
    expect(result).toEqual({
      events: { applied: 10, duplicate: 0, old: 0, rejected: 0 },
      // u1, u2; i1 to i7 and `unknown`.
      rows: 2 + 8,
      conflicts: 0,
    });

    expect(await row(store, 'user_realtime', 'u1')).toEqual({
      views_5m: 5,
      clicks_5m: 2,
      views_30m: 6,
      clicks_30m: 2,
      ratings_5m: 0,
      ratings_30m: 0,
      // books 3, news 2, then tv and music with 1 each, tv the more recent; film too old.
      top_categories_5m: ['books', 'news', 'tv'],
      last_event_ms: now - 30 * SECOND,
      version: 1,
      eventTimeMs: now - 30 * SECOND,
    });
    expect(await row(store, 'user_realtime', 'u2')).toMatchObject({
      views_5m: 1,
      top_categories_5m: ['books'],
      last_event_ms: now - 10 * SECOND,
    });
    // i1: 2 views and a click; the writer has watched for 20 minutes, so the 30-minute window
    // predicts 3 · 5 / 20 events in the last 5.
    expect(await row(store, 'item_realtime', 'i1')).toEqual({
      views_5m: 2,
      clicks_5m: 1,
      views_30m: 2,
      clicks_30m: 1,
      ctr_30m: smoothedCtr(1, 2, 0.05, 20),
      velocity: velocityScore(3, 3, 5 * MINUTE, 20 * MINUTE, 5),
      version: 1,
      eventTimeMs: now - 10 * SECOND,
    });
    expect((await row(store, 'item_realtime', 'i1'))['ctr_30m']).toBeCloseTo(2 / 22, 12);
    expect(await row(store, 'item_realtime', 'i6')).toMatchObject({
      views_5m: 0,
      views_30m: 1,
      velocity: velocityScore(0, 1, 5 * MINUTE, 20 * MINUTE, 5),
    });
    expect((await row(store, 'item_realtime', 'i6'))['velocity']).toBeLessThan(0);
    const [stored] = await store.read('user_realtime', ['u1']);
    expect(typeof stored?.state).toBe('string');
    expect(stored!.state!.length).toBeLessThan(1000);

    await vi.waitFor(() => expect(notices).toHaveLength(2));
    expect(notices).toContainEqual({ view: 'user_realtime', entities: ['u1', 'u2'] });
    const items = notices.find((n) => n.view === 'item_realtime')!.entities;
    expect(items.sort()).toEqual(['i1', 'i2', 'i3', 'i4', 'i5', 'i6', 'i7', 'unknown'].sort());
    expect(await store.processed(SCOPE, ['e1', 'e10', 'e11'])).toEqual([true, true, false]);
  });

  it('changes nothing for a redelivered batch or an event repeated within one', async () => {
    const w = writer();
    const batch = [
      fb('u1', 'i1', 'view', T0 - MINUTE, 'a'),
      fb('u1', 'i1', 'click', T0 - MINUTE, 'b'),
      fb('u1', 'i1', 'click', T0 - MINUTE, 'b'),
    ];
    expect((await w.processBatch(batch)).events).toEqual({
      applied: 2,
      duplicate: 1,
      old: 0,
      rejected: 0,
    });
    const user = await row(store, 'user_realtime', 'u1');
    const item = await row(store, 'item_realtime', 'i1');
    expect(user).toMatchObject({ views_5m: 1, clicks_5m: 1, version: 1 });
    const writes = store.writes;

    vi.advanceTimersByTime(10 * SECOND);
    // Delivered again to this writer, and to another one with nothing in memory.
    for (const again of [w, writer()]) {
      expect(await again.processBatch(batch)).toEqual({
        events: { applied: 0, duplicate: 3, old: 0, rejected: 0 },
        rows: 0,
        conflicts: 0,
      });
    }
    expect(store.writes).toBe(writes);
    expect(await row(store, 'user_realtime', 'u1')).toEqual(user);
    expect(await row(store, 'item_realtime', 'i1')).toEqual(item);
    // Part old, part new: only the new part counts.
    await w.processBatch([...batch, fb('u1', 'i2', 'view', T0, 'c')]);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({
      views_5m: 2,
      clicks_5m: 1,
      version: 2,
    });
  });

  it('carries on from the stored state after a restart, and reloads what another writer changed', async () => {
    const first = writer();
    await first.processBatch([
      fb('u1', 'i1', 'view', T0 - 10 * MINUTE),
      fb('u1', 'i1', 'click', T0 - 2 * MINUTE),
      fb('u1', 'i4', 'view', T0 - MINUTE),
    ]);

    // A writer with nothing in memory, as after a restart.
    const second = writer();
    vi.advanceTimersByTime(MINUTE);
    await second.processBatch([
      fb('u1', 'i2', 'view', Date.now()),
      fb('u1', 'i1', 'view', Date.now()),
    ]);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({
      views_5m: 3,
      clicks_5m: 1,
      views_30m: 4,
      clicks_30m: 1,
      top_categories_5m: ['books', 'music', 'news'],
      version: 2,
    });
    expect(await row(store, 'item_realtime', 'i1')).toMatchObject({
      views_5m: 1,
      views_30m: 2,
      clicks_30m: 1,
      ctr_30m: smoothedCtr(1, 2, 0.05, 20),
      version: 2,
    });
    // The restored windows know how long the first writer had watched: 11 minutes by now.
    expect((await row(store, 'item_realtime', 'i1'))['velocity']).toBeCloseTo(
      velocityScore(2, 3, 5 * MINUTE, 11 * MINUTE, 5),
      12,
    );

    // The first writer still holds u1 and i1 as it wrote them (version 1): it must not count on
    // top of that, but on what the second wrote since.
    vi.advanceTimersByTime(MINUTE);
    // Seen when reading (the stored version is not the one it wrote), not by losing the race.
    expect((await first.processBatch([fb('u1', 'i1', 'click', Date.now())])).conflicts).toBe(0);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({
      views_5m: 3,
      clicks_5m: 2,
      views_30m: 4,
      top_categories_5m: ['books', 'music', 'news'],
      version: 3,
    });
    expect(await row(store, 'item_realtime', 'i1')).toMatchObject({
      views_30m: 2,
      clicks_30m: 2,
      version: 3,
    });

    // A late event moves the version but not the event time: the first writer reloads all the same.
    await second.processBatch([fb('u1', 'i1', 'view', T0 - 5 * MINUTE)]);
    expect((await first.processBatch([fb('u1', 'i1', 'like', Date.now())])).conflicts).toBe(0);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({
      views_5m: 3,
      views_30m: 5,
      clicks_30m: 2,
      eventTimeMs: Date.now(),
      version: 5,
    });
    expect(await row(store, 'item_realtime', 'i1')).toMatchObject({
      views_30m: 3,
      clicks_30m: 2,
      version: 5,
    });
  });

  it('does not take a row that expired and was written again for the one it wrote', async () => {
    const a = writer();
    const b = writer();
    await a.processBatch([fb('u1', 'i1', 'view', T0)]);
    // The view's TTL is a day: u1's row goes, and b writes a new one, version 1 again.
    vi.advanceTimersByTime(25 * 60 * MINUTE);
    await b.processBatch([fb('u1', 'i1', 'view', Date.now())]);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({ views_5m: 1, version: 1 });
    await a.processBatch([fb('u1', 'i2', 'view', Date.now())]);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({
      views_5m: 2,
      top_categories_5m: ['books', 'music'],
      version: 2,
    });
  });

  it('loses no event when two writers update the same entities at once', async () => {
    const a = writer({ maxAttempts: 50 });
    const b = writer({ maxAttempts: 50 });
    const rand = prng(3);
    const users = ['u1', 'u2', 'u3'];
    const items = ['i1', 'i2', 'i3', 'i4'];
    const batches: FeedbackEvent[][] = [];
    const expected = new Map<string, number>();
    for (let n = 0; n < 40; n++) {
      const batch: FeedbackEvent[] = [];
      for (let k = 0; k < 5; k++) {
        const user = users[Math.floor(rand() * users.length)]!;
        const item = items[Math.floor(rand() * items.length)]!;
        batch.push(fb(user, item, 'view', T0 - Math.floor(rand() * 4 * MINUTE)));
        expected.set(user, (expected.get(user) ?? 0) + 1);
        expected.set(item, (expected.get(item) ?? 0) + 1);
      }
      batches.push(batch);
    }
    // Both writers run their batches interleaved: each reads, the other writes, the first retries.
    await Promise.all(batches.map((batch, n) => (n % 2 === 0 ? a : b).processBatch(batch)));
    for (const user of users) {
      expect((await row(store, 'user_realtime', user))['views_5m'], user).toBe(expected.get(user));
    }
    for (const item of items) {
      expect((await row(store, 'item_realtime', item))['views_5m'], item).toBe(expected.get(item));
    }
    expect(a.stats().conflicts + b.stats().conflicts).toBeGreaterThan(0);
    expect(a.stats().events.applied + b.stats().events.applied).toBe(200);
  });

  it('retries a batch a bounded number of times, then rejects with nothing written', async () => {
    const w = writer({ maxAttempts: 3 });
    await w.processBatch([fb('u1', 'i1', 'view', T0 - MINUTE)]);
    store.raceNext = 2;
    // Two lost races, then it lands.
    const result = await w.processBatch([fb('u1', 'i1', 'view', T0, 'x')]);
    expect(result.conflicts).toBe(2);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({ views_5m: 2 });

    store.raceNext = 3;
    const batch = [fb('u1', 'i1', 'click', T0, 'y')];
    await expect(w.processBatch(batch)).rejects.toBeInstanceOf(ConflictError);
    expect(await store.processed(SCOPE, ['y'])).toEqual([false]);
    expect(w.stats()).toMatchObject({ failedBatches: 1 });
    // Delivered again, with the race over: counted once.
    await w.processBatch(batch);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({ views_5m: 2, clicks_5m: 1 });
  });

  it('resolves only after the write: a failed or unanswered write is redelivered and counted once', async () => {
    const w = writer();
    await w.processBatch([fb('u1', 'i1', 'view', T0 - MINUTE)]);
    // The store is away: the batch rejects, and the writer forgets what it counted meanwhile.
    store.failNext = true;
    const lost = [fb('u1', 'i1', 'view', T0, 'f1')];
    await expect(w.processBatch(lost)).rejects.toBeInstanceOf(UnavailableError);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({ views_5m: 1, version: 1 });
    await w.processBatch(lost);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({ views_5m: 2, version: 2 });

    // Written, but the answer never came: delivered again, the marks make it a no-op.
    store.loseNextReply = true;
    const unanswered = [fb('u1', 'i2', 'click', T0, 'f2')];
    await expect(w.processBatch(unanswered)).rejects.toBeInstanceOf(UnavailableError);
    expect((await w.processBatch(unanswered)).events.duplicate).toBe(1);
    await w.processBatch([fb('u1', 'i2', 'view', T0, 'f3')]);
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({
      views_5m: 3,
      clicks_5m: 1,
      version: 4,
    });
  });

  it('slides its windows with the clock: whole inside, in part in the oldest bucket, then gone', async () => {
    const w = writer();
    await w.processBatch([fb('u1', 'i1', 'view', T0), fb('u1', 'i1', 'click', T0)]);
    const at = async (offset: number): Promise<Record<string, FeatureValue>> => {
      vi.setSystemTime(T0 + offset);
      // A view of another item rewrites u1's row at the clock's time.
      await w.processBatch([fb('u1', 'i2', 'view', Date.now())]);
      return row(store, 'user_realtime', 'u1');
    };
    expect(await at(4 * MINUTE)).toMatchObject({ views_5m: 2, clicks_5m: 1, views_30m: 2 });
    // The minute of the first events is the oldest of the 5-minute window: half inside.
    expect(await at(5.5 * MINUTE)).toMatchObject({ views_5m: 2.5, clicks_5m: 0.5, views_30m: 3 });
    expect(await at(6 * MINUTE)).toMatchObject({
      views_5m: 3,
      clicks_5m: 0,
      clicks_30m: 1,
      top_categories_5m: ['music'],
    });
    expect(await at(30.5 * MINUTE)).toMatchObject({ clicks_30m: 0.5, views_5m: 1 });
    expect(await at(31 * MINUTE)).toMatchObject({ clicks_30m: 0, views_30m: 5 });
    // An event older than every window is old: it counts nowhere, yet it is marked and written.
    vi.setSystemTime(T0 + HOUR_AND_A_BIT);
    const result = await w.processBatch([fb('u5', 'i1', 'view', T0)]);
    expect(result.events).toMatchObject({ old: 1, applied: 0 });
    expect(await row(store, 'user_realtime', 'u5')).toMatchObject({
      views_30m: 0,
      last_event_ms: T0,
    });
    // One too far in the future counts nowhere and writes nothing.
    const future = await w.processBatch([fb('u6', 'i1', 'view', Date.now() + MINUTE)]);
    expect(future).toMatchObject({ rows: 0, events: { rejected: 1 } });
    expect(await row(store, 'user_realtime', 'u6')).toEqual({});
  });

  it('keeps at most maxEntities in memory and restores the others from their state', async () => {
    const w = writer({ maxEntities: 2 });
    for (let round = 0; round < 3; round++) {
      vi.advanceTimersByTime(10 * SECOND);
      for (const user of ['u1', 'u2', 'u3', 'u4']) {
        await w.processBatch([fb(user, `i${round + 1}`, 'view', Date.now())]);
      }
      expect(w.stats().entities).toEqual({
        user_realtime: 2,
        item_realtime: Math.min(2, round + 1),
      });
    }
    for (const user of ['u1', 'u2', 'u3', 'u4']) {
      expect(await row(store, 'user_realtime', user)).toMatchObject({
        views_5m: 3,
        top_categories_5m: ['books', 'music'],
      });
    }
    expect((await row(store, 'item_realtime', 'i2'))['views_5m']).toBe(4);
  });

  it('keeps a bounded number of categories per user, forgetting the emptied and least engaged', async () => {
    const w = writer();
    const many: Record<string, string> = {};
    for (let c = 0; c < 12; c++) many[`c${c}`] = `cat${c}`;
    await categories(store, many);
    const stateCategories = async (): Promise<string[]> => {
      const [stored] = await store.read('user_realtime', ['u1']);
      const state = JSON.parse(stored!.state!) as { c: Array<[string, string]> };
      return state.c.map(([category]) => category);
    };
    await w.processBatch([
      fb('u1', 'c0', 'view', T0 - 3 * MINUTE),
      fb('u1', 'c0', 'click', T0 - 3 * MINUTE),
      fb('u1', 'c1', 'view', T0 - 3 * MINUTE),
      fb('u1', 'c1', 'click', T0 - 3 * MINUTE),
    ]);
    for (let c = 2; c < 12; c++) {
      vi.advanceTimersByTime(SECOND);
      await w.processBatch([fb('u1', `c${c}`, 'view', Date.now())]);
    }
    const held = await stateCategories();
    expect(held).toHaveLength(8);
    expect(held).toEqual(expect.arrayContaining(['cat0', 'cat1', 'cat11']));
    expect((await row(store, 'user_realtime', 'u1'))['top_categories_5m']).toEqual([
      'cat0',
      'cat1',
      'cat11',
    ]);
    // Five minutes on, every category has emptied: a new one finds them gone.
    vi.advanceTimersByTime(6 * MINUTE);
    await w.processBatch([fb('u1', 'c3', 'view', Date.now())]);
    expect(await stateCategories()).toEqual(['cat3']);
  });

  it('writes a batch larger than one store write as several, each atomic', async () => {
    const w = writer();
    const batch = Array.from({ length: 10_001 }, (_, i) => fb(`u${i}`, `i${i % 7}`, 'view', T0));
    const writes = store.writes;
    const result = await w.processBatch(batch);
    expect(result.events.applied).toBe(10_001);
    // Two views: 5000 events a write keep rows and marks within the store's limit.
    expect(store.writes - writes).toBe(3);
    expect(await row(store, 'user_realtime', 'u10000')).toMatchObject({ views_5m: 1 });
    expect((await row(store, 'item_realtime', 'i0'))['views_5m']).toBe(1429);
  });

  it('passes over malformed events without writing them', async () => {
    const w = writer();
    const result = await w.processBatch([
      fb('', 'i1', 'view', T0),
      fb('u1', 'i1', 'view', Number.NaN),
      { ...fb('u1', 'i1', 'view', T0), event_id: '' },
      fb('u1', 'i1', 'view', T0),
    ]);
    expect(result.events).toEqual({ applied: 1, duplicate: 0, old: 0, rejected: 3 });
    expect(await row(store, 'user_realtime', 'u1')).toMatchObject({ views_5m: 1 });
  });

  it('measures how fresh its writes are, and counts events by outcome', async () => {
    const registry = new Registry();
    const metrics = new StreamWriterMetrics(registry);
    const w = writer({ metrics });
    expect(w.lagSeconds()).toBeUndefined();
    await w.processBatch([fb('u1', 'i1', 'view', T0 - 3 * SECOND, 'm1')]);
    await w.processBatch([fb('u1', 'i1', 'view', T0 - 3 * SECOND, 'm1')]);
    vi.advanceTimersByTime(2 * SECOND);
    expect(w.lagSeconds()).toBe(5);
    const text = await registry.metrics();
    expect(text).toContain('recsys_features_stream_lag_seconds 5');
    expect(text).toContain('recsys_features_stream_events_total{outcome="applied"} 1');
    expect(text).toContain('recsys_features_stream_events_total{outcome="duplicate"} 1');
    expect(w.stats()).toMatchObject({ newestEventMs: T0 - 3 * SECOND, rows: 2 });
  });

  it('applies the feedback of the events stream through a durable consumer', async () => {
    const streams = new MemoryStreamStore();
    const stream = await openEventsStream(streams, 'recsys');
    const w = writer();
    const consumer = await w.consume(stream, { prefix: 'recsys', batchDelayMs: 1 });
    try {
      for (const event of [
        fb('u1', 'i1', 'view', T0 - MINUTE),
        fb('u1', 'i2', 'click', T0 - MINUTE),
        fb('u2', 'i1', 'view', T0),
      ]) {
        await publishFeedback(stream, 'recsys', 4, event);
      }
      for (let i = 0; i < 100 && w.stats().events.applied < 3; i++) {
        await vi.advanceTimersByTimeAsync(1);
      }
      expect(w.stats().events.applied).toBe(3);
      expect(await row(store, 'user_realtime', 'u1')).toMatchObject({
        views_5m: 1,
        clicks_5m: 1,
        top_categories_5m: ['books', 'music'],
      });
      expect((await row(store, 'item_realtime', 'i1'))['views_5m']).toBe(2);
    } finally {
      await consumer.stop();
    }
  });

  describe('refuses at start-up a stream field it cannot compute, naming view and field', () => {
    const definitions = (fields: string, entity = 'user'): FeatureDefinitions =>
      parseFeatureDefinitions(
        `
entities:
  - { name: user }
  - { name: item }
  - { name: session }
views:
  - name: live
    entity: ${entity}
    source: stream
    ttl: 1h
    fields:
${fields
  .trim()
  .split('\n')
  .map((line) => `      - ${line.trim()}`)
  .join('\n')}
`,
        'test-features.yaml',
      );
    const refused = (
      defs: FeatureDefinitions,
      options: Partial<StreamFeatureWriterOptions> = {},
    ): ConfigError => {
      try {
        new StreamFeatureWriter({ store, definitions: defs, ...options });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return err as ConfigError;
      }
      throw new Error('expected a ConfigError');
    };

    it.each([
      ['a window not configured', '{ name: views_15m, type: float, default: 0 }', 'views_15m'],
      ['a kind not counted', '{ name: shares_5m, type: float, default: 0 }', 'shares_5m'],
      ['a count of type int', '{ name: clicks_5m, type: int, default: 0 }', 'clicks_5m'],
      ['an unknown field', '{ name: mood, type: string, default: "" }', 'mood'],
      ['a CTR of no window', '{ name: ctr_1h, type: float, default: 0 }', 'ctr_1h'],
      [
        'categories without item profiles',
        '{ name: top_categories_5m, type: string_list, default: [] }',
        'top_categories_5m',
      ],
    ])('%s', (_, field, name) => {
      const err = refused(definitions(`{ name: views_5m, type: float, default: 0 }\n${field}`));
      expect(err.path).toBe(`live.${name}`);
      expect(err.message).toContain(`field ${name} of stream view live`);
    });

    it('a view of another entity, velocity with one window, the shipped views with other windows', () => {
      expect(
        refused(definitions('{ name: views_5m, type: float, default: 0 }', 'session')).message,
      ).toMatch(/stream view live is keyed by entity session/);
      const velocity = refused(definitions('{ name: velocity, type: float, default: 0 }'), {
        windowsMinutes: [5],
      });
      expect(velocity.path).toBe('live.velocity');
      const shipped = refused(SHIPPED, { windowsMinutes: [5, 60] });
      expect(shipped.path).toBe('user_realtime.views_30m');
      expect(shipped.message).toContain('configured: 5m, 1h');
      expect(() => writer({ windowsMinutes: [5, 30, 60] })).not.toThrow();
    });

    it('bad options, naming them', () => {
      expect(() => writer({ markTtlMs: 1000 })).toThrow(/markTtlMs must be at least/);
      expect(() => writer({ scope: 'no spaces' })).toThrow(/^scope/);
      expect(() => writer({ windowsMinutes: [30, 5] })).toThrow(/windows\[1\]\.spanMs/);
      expect(() => writer({ maxAttempts: 0 })).toThrow(/^maxAttempts/);
      expect(() => writer({ views: ['user_profile'] })).toThrow(/not a stream view/);
      // Marks outlive the longest window by default: a later redelivery counts nowhere.
      expect(writer().options.markTtlMs).toBe(30 * MINUTE + 10 * SECOND);
      expect(writer({ ackWaitMs: 60_000, maxDeliver: 40 }).options.markTtlMs).toBe(2_400_000);
    });
  });
});

const HOUR_AND_A_BIT = 62 * MINUTE;
