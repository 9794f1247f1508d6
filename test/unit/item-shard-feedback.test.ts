/**
 * Item counters fed by the feedback stream: the feed on its own (which events it counts, from
 * where it replays, on the fake clock), then shards on the in-process cluster counting what is
 * published to the stream, on every replica, and again after a restart.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FeedbackFeed } from '../../actors/item-shard/feedback-feed.js';
import type { FeedbackFeedStats } from '../../actors/item-shard/feedback-feed.js';
import { itemShardKind, shardOf, unpackCounters } from '../../actors/item-shard/index.js';
import type { CounterEvent, ItemShardProtocol, ShardStats } from '../../actors/item-shard/index.js';
import {
  encodeEvent,
  feedbackSubject,
  openEventsStream,
  publishFeedback,
} from '../../runtime/events/index.js';
import type { FeedbackEvent, FeedbackType } from '../../runtime/events/index.js';
import { silentLogger } from '../../runtime/log.js';
import type { RunningNode } from '../../runtime/node.js';
import { MemoryStreamStore } from '../../runtime/stream/index.js';
import type { EventStream, StreamReader } from '../../runtime/stream/index.js';
import { testCluster, uniquePrefix } from '../helpers/cluster.js';
import { eventually } from '../helpers/eventually.js';
import { itemIndexFixture } from '../helpers/item-index-fixture.js';
import { clusteredItems } from '../helpers/item-vectors.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = Date.UTC(2025, 0, 1);
const SHARDS = 2;
const PARTITIONS = 8;
const silent = silentLogger();

/** Item ids of `shard` among {@link SHARDS}. */
function itemsOf(shard: number, count: number): string[] {
  const ids: string[] = [];
  for (let i = 0; ids.length < count; i++)
    if (shardOf(`item-${i}`, SHARDS) === shard) ids.push(`item-${i}`);
  return ids;
}

let sequence = 0;
const event = (item_id: string, type: FeedbackType, ts_ms: number): FeedbackEvent => ({
  event_id: `fb-${sequence++}`,
  user_id: `user-${sequence % 5}`,
  item_id,
  type,
  ts_ms,
  ...(type === 'rating' ? { value: 4 } : {}),
});

describe('the feedback feed', () => {
  const feeds: FeedbackFeed[] = [];
  const readers: StreamReader[] = [];

  afterEach(async () => {
    await Promise.all(feeds.splice(0).map((feed) => feed.stop()));
    await Promise.all(readers.splice(0).map((reader) => reader.stop()));
    vi.useRealTimers();
  });

  const start = async (
    stream: EventStream,
    shard: number,
    replayMs = HOUR,
  ): Promise<{ feed: FeedbackFeed; counted: CounterEvent[] }> => {
    const counted: CounterEvent[] = [];
    const feed = new FeedbackFeed({
      stream,
      prefix: 'fx',
      shard,
      shards: SHARDS,
      record: (events) => {
        counted.push(...events);
        return { recorded: events.length, ignored: 0, rejected: 0 };
      },
      replayMs,
      log: silent,
    });
    feeds.push(feed);
    await feed.start();
    return { feed, counted };
  };

  /** Resolves once the feed has read up to the stream's last sequence. */
  const caughtUp = async (feed: FeedbackFeed, stream: EventStream): Promise<FeedbackFeedStats> => {
    const { lastSeq } = await stream.info();
    return eventually(() => {
      const stats = feed.stats();
      expect(stats.seq).toBe(lastSeq);
      return stats;
    });
  };

  it("counts its shard's items only, once per event id, and passes over malformed events", async () => {
    const stream = await openEventsStream(new MemoryStreamStore(), 'fx');
    const [mine, mine2] = itemsOf(0, 2) as [string, string];
    const [theirs] = itemsOf(1, 1) as [string];
    const { feed, counted } = await start(stream, 0);
    const now = Date.now();
    const click = event(mine, 'click', now - MINUTE);
    await publishFeedback(stream, 'fx', PARTITIONS, click);
    await publishFeedback(stream, 'fx', PARTITIONS, event(mine2, 'rating', now));
    await publishFeedback(stream, 'fx', PARTITIONS, event(theirs, 'purchase', now));
    // Stored twice, as by a publisher retrying after the stream's duplicate window.
    await stream.publish(feedbackSubject('fx', PARTITIONS, click.user_id), encodeEvent(click));
    await stream.publish(feedbackSubject('fx', PARTITIONS, 'u'), new TextEncoder().encode('{"x"'));
    await publishFeedback(stream, 'fx', PARTITIONS, event(mine, 'view', now));

    const stats = await caughtUp(feed, stream);
    expect(counted).toEqual([
      { item_id: mine, type: 'click', ts_ms: now - MINUTE },
      { item_id: mine2, type: 'rating', ts_ms: now },
      { item_id: mine, type: 'view', ts_ms: now },
    ]);
    expect(stats).toEqual({ seq: 6, from_seq: 1, events: 3, duplicates: 1, malformed: 1 });
  });

  it('replays from the first event stored within replayMs of its start, on the fake clock', async () => {
    vi.useFakeTimers({ now: T0, toFake: ['Date'] });
    const stream = await openEventsStream(new MemoryStreamStore(), 'fx');
    const [item] = itemsOf(1, 1) as [string];
    await publishFeedback(stream, 'fx', PARTITIONS, event(item, 'view', T0));
    vi.setSystemTime(T0 + 2 * HOUR);
    await publishFeedback(stream, 'fx', PARTITIONS, event(item, 'click', T0 + 2 * HOUR));
    vi.setSystemTime(T0 + 2 * HOUR + 30 * MINUTE);
    await publishFeedback(stream, 'fx', PARTITIONS, event(item, 'like', T0 + 2 * HOUR));

    const { feed, counted } = await start(stream, 1, HOUR);
    expect(await caughtUp(feed, stream)).toMatchObject({ from_seq: 2, seq: 3, events: 2 });
    expect(counted.map((e) => e.type)).toEqual(['click', 'like']);
    // Then it follows the stream.
    await publishFeedback(stream, 'fx', PARTITIONS, event(item, 'purchase', Date.now()));
    await eventually(() => counted.length === 3);
  });

  it('starts past the end of a stream whose events are all older than the window', async () => {
    vi.useFakeTimers({ now: T0, toFake: ['Date'] });
    const stream = await openEventsStream(new MemoryStreamStore(), 'fx');
    const [item] = itemsOf(0, 1) as [string];
    await publishFeedback(stream, 'fx', PARTITIONS, event(item, 'view', T0));
    vi.setSystemTime(T0 + 3 * HOUR);
    const { feed, counted } = await start(stream, 0, HOUR);
    expect(feed.stats()).toMatchObject({ from_seq: 2, seq: 1, events: 0 });
    await publishFeedback(stream, 'fx', PARTITIONS, event(item, 'view', Date.now()));
    await eventually(() => counted.length === 1);
  });

  it('refuses a shard outside the shard count', () => {
    const options = {
      stream: undefined as unknown as EventStream,
      prefix: 'fx',
      record: () => ({ recorded: 0, ignored: 0, rejected: 0 }),
      replayMs: HOUR,
      log: silent,
    };
    expect(() => new FeedbackFeed({ ...options, shard: 2, shards: 2 })).toThrow(/shard/);
    expect(() => new FeedbackFeed({ ...options, shard: 0, shards: 0 })).toThrow(/shards/);
    expect(() => new FeedbackFeed({ ...options, shard: 0, shards: 2, replayMs: -1 })).toThrow(
      /replayMs/,
    );
  });
});

describe('item shards counting the feedback stream, on the in-process cluster', () => {
  const DIMS = 8;
  const items = clusteredItems(200, DIMS, { seed: 11 });
  const index = itemIndexFixture(items, {
    dims: DIMS,
    shards: SHARDS,
    expansionSearch: 64,
    modelVersion: 'feedback-model',
  });
  const serveBoth = { host: { groups: { items: ['0', '1'] } } };
  type Stats = ShardStats & { feedback: FeedbackFeedStats | null };

  const counters = async (node: RunningNode, shard: number, ids: string[]) =>
    unpackCounters(
      await node.client.grouped<ItemShardProtocol>('items').ask(String(shard), 'counters', {
        item_ids: ids,
      }),
    );
  const stats = async (node: RunningNode, shard: number): Promise<Stats> =>
    await node.client.grouped<ItemShardProtocol>('items').ask(String(shard), 'stats', {});

  it('counts what is published on every replica, and again after a restart', async () => {
    const prefix = uniquePrefix();
    const cluster = index.use(testCluster(undefined, { shared: true, prefix }));
    const kind = itemShardKind({ indexDir: index.dir, workers: 0 });
    const first = await cluster.node([kind], serveBoth);
    const second = await cluster.node([kind], serveBoth);
    const stream = await openEventsStream(first.streams, prefix);
    const [a] = itemsOf(0, 1) as [string];
    const [b] = itemsOf(1, 1) as [string];
    const now = Date.now();
    const publish = (e: FeedbackEvent) => publishFeedback(stream, prefix, PARTITIONS, e);
    const view = event(a, 'view', now);
    for (const e of [
      event(a, 'click', now),
      event(a, 'click', now),
      event(a, 'click', now),
      view,
      event(a, 'view', now),
      event(b, 'purchase', now),
    ]) {
      await publish(e);
    }
    // A repeat the stream stores again (no message id): the shards count it once.
    await stream.publish(feedbackSubject(prefix, PARTITIONS, view.user_id), encodeEvent(view));
    const { lastSeq } = await stream.info();

    // Every replica counts: with the first gone, the second answers every call alone.
    await first.stop();
    await eventually(async () => (await stats(second, 0)).feedback?.seq === lastSeq);
    await eventually(async () => (await stats(second, 1)).feedback?.seq === lastSeq);
    const expectCounts = async (node: RunningNode): Promise<void> => {
      expect((await counters(node, 0, [a]))[0]).toMatchObject({ clicks_5m: 3, views_5m: 2 });
      expect((await counters(node, 1, [b]))[0]).toMatchObject({ purchases_5m: 1, clicks_5m: 0 });
      // A shard counts only its own items.
      expect((await counters(node, 1, [a]))[0]).toMatchObject({ clicks_5m: 0, views_5m: 0 });
      const zero = await stats(node, 0);
      expect(zero.counters).toMatchObject({ items: 1, recorded: 5 });
      expect(zero.feedback).toMatchObject({ events: 5, duplicates: 1, malformed: 0, from_seq: 1 });
    };
    await expectCounts(second);

    // A replica that starts now rebuilds its counters from the stream.
    const third = await cluster.node([kind], serveBoth);
    await second.stop();
    await eventually(async () => (await stats(third, 0)).feedback?.seq === lastSeq);
    await eventually(async () => (await stats(third, 1)).feedback?.seq === lastSeq);
    await expectCounts(third);

    // `record` still counts, beside the stream.
    await third.client
      .grouped<ItemShardProtocol>('items')
      .ask('0', 'record', { events: [{ item_id: a, type: 'like' }] });
    expect((await counters(third, 0, [a]))[0]).toMatchObject({ likes_5m: 1, clicks_5m: 3 });
    // And new feedback keeps coming in.
    await publish(event(a, 'click', Date.now()));
    await eventually(async () => (await counters(third, 0, [a]))[0]!['clicks_5m'] === 4);
  });
});
