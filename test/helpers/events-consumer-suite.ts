/**
 * The events consumer (batches, dead letters, redelivery, processed marks) as tests, written once
 * and run on the memory stream and on JetStream. Each test uses a prefix of its own, so its events
 * stream starts empty on a server shared by the file.
 */
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { BadRequestError } from '../../runtime/errors.js';
import {
  DeadLetterHeader,
  consumeEvents,
  deadLetterSubject,
  dropProcessed,
  encodeEvent,
  feedbackSubject,
  openEventsStream,
  parseFeedbackEvent,
  publishFeedback,
} from '../../runtime/events/index.js';
import type {
  EventBatchEntry,
  EventConsumer,
  EventConsumerOptions,
  FeedbackEvent,
} from '../../runtime/events/index.js';
import { MemoryOnlineStore, parseFeatureDefinitions } from '../../runtime/features/index.js';
import type { EventStream, StreamMessage, StreamStore } from '../../runtime/stream/index.js';
import { uniquePrefix } from './cluster.js';
import { eventually } from './eventually.js';

/** One client of the stream store the suite runs on. */
export interface EventsClient {
  store: StreamStore;
  /**
   * Takes `consumer` away without letting it finish its batch, as a crash would: on NATS its
   * connection closes; in memory its reader leaves the durable at once.
   */
  crash(consumer: EventConsumer): Promise<void>;
}

export interface EventsConsumerFixture {
  /** A new client of the same streams (on NATS, a connection of its own). */
  client(): Promise<EventsClient>;
  cleanup(): Promise<void>;
}

const PARTITIONS = 4;

/** A handler waits on it until the test opens it. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Lets a wrong implementation do what it must not before the test checks it did not. */
const chance = (ms = 200): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const DEFINITIONS = parseFeatureDefinitions(
  `
entities:
  - name: item
    description: An item.
views:
  - name: item_clicks
    entity: item
    source: stream
    ttl: 0
    description: Clicks counted from the events stream.
    fields:
      - name: clicks
        type: int
        default: 0
        description: Clicks counted.
`,
  'events-consumer-suite',
);

async function counterValue(registry: Registry, name: string, consumer: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values.find((v) => v.labels['consumer'] === consumer)?.value ?? 0;
}

export function eventsConsumerSuite(
  name: string,
  makeFixture: () => Promise<EventsConsumerFixture>,
): void {
  describe(`events consumer on ${name}`, () => {
    let fixture: EventsConsumerFixture;
    let client: EventsClient;
    let prefix: string;
    let stream: EventStream;
    let registry: Registry;
    let consumers: EventConsumer[];
    /** Run after the consumers stop: opens gates a test left shut. */
    let releases: (() => void)[];
    let counter = 0;

    const click = (item: string, over: Partial<FeedbackEvent> = {}): FeedbackEvent => ({
      event_id: `e${counter++}`,
      user_id: `u${counter % 7}`,
      item_id: item,
      type: 'click',
      ts_ms: Date.now(),
      ...over,
    });
    const publish = (event: FeedbackEvent) => publishFeedback(stream, prefix, PARTITIONS, event);

    const consume = async (
      options: Partial<EventConsumerOptions<FeedbackEvent>> & {
        handle: EventConsumerOptions<FeedbackEvent>['handle'];
      },
      on: EventStream = stream,
    ): Promise<EventConsumer> => {
      const consumer = await consumeEvents(on, {
        durable: 'clicks',
        filter: `${prefix}.events.feedback.>`,
        prefix,
        parse: parseFeedbackEvent,
        registry,
        retryDelayMs: 10,
        ...options,
      });
      consumers.push(consumer);
      return consumer;
    };

    /** Every dead letter of `durable` stored so far, once `count` are. */
    const deadLetters = async (count: number, durable = 'clicks'): Promise<StreamMessage[]> => {
      const seen: StreamMessage[] = [];
      const reader = await stream.read(deadLetterSubject(prefix, durable), 1, (m) => {
        seen.push(m);
      });
      await eventually(() => seen.length >= count, { message: `${count} dead letters` });
      await reader.stop();
      return seen;
    };

    beforeEach(async () => {
      fixture = await makeFixture();
      client = await fixture.client();
      prefix = uniquePrefix('ev');
      stream = await openEventsStream(client.store, prefix, {
        maxAgeDays: 1,
        maxBytes: -1,
        duplicateWindowMs: 60_000,
      });
      registry = new Registry();
      consumers = [];
      releases = [];
    });

    afterEach(async () => {
      for (const release of releases) release();
      await Promise.all(consumers.map((consumer) => consumer.stop()));
      await fixture.cleanup();
    });

    it('hands batches of at most batchSize, one at a time, and acknowledges what they held', async () => {
      const events = Array.from({ length: 10 }, (_, i) => click(`i${i}`));
      for (const event of events) await publish(event);
      const sizes: number[] = [];
      const handled: string[] = [];
      let inside = 0;
      let most = 0;
      const handle = async (batch: readonly EventBatchEntry<FeedbackEvent>[]): Promise<void> => {
        inside++;
        most = Math.max(most, inside);
        sizes.push(batch.length);
        await chance(20);
        handled.push(...batch.map((entry) => entry.event.event_id));
        inside--;
      };
      const first = await consume({ handle, batchSize: 4, batchDelayMs: 50 });
      await eventually(() => handled.length === 10, { message: '10 handled' });
      expect([...handled].sort()).toEqual(events.map((e) => e.event_id).sort());
      expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
      // Ten were waiting: the first batch filled without waiting for its delay.
      expect(sizes[0]).toBe(4);
      expect(most).toBe(1);
      expect(await counterValue(registry, 'recsys_events_processed_total', 'clicks')).toBe(10);
      await first.stop();

      // Acknowledged: the durable's next reader gets only what came after.
      const later: string[] = [];
      await consume({
        handle: (batch) => {
          later.push(...batch.map((entry) => entry.event.event_id));
          return Promise.resolve();
        },
      });
      const next = click('i-next');
      await publish(next);
      await eventually(() => later.length === 1);
      await chance();
      expect(later).toEqual([next.event_id]);
    });

    it('without a delay, handles a lone event at once and gathers the rest while a batch runs', async () => {
      const sizes: number[] = [];
      const firstIn = gate();
      const release = gate();
      await consume({
        handle: async (batch) => {
          sizes.push(batch.length);
          if (sizes.length === 1) {
            firstIn.open();
            await release.wait;
          }
        },
      });
      await publish(click('lone'));
      // The default has no delay: the idle reader starts on the lone event.
      await firstIn.wait;
      for (let i = 0; i < 5; i++) await publish(click(`during-${i}`));
      await chance(100);
      expect(sizes).toEqual([1]);
      release.open();
      // The five that came while the first batch ran are the next batch, together.
      await eventually(() => sizes.reduce((n, size) => n + size, 0) === 6, {
        message: '6 handled',
      });
      expect(sizes).toEqual([1, 5]);
    });

    it('with a delay, holds a lone event until the delay is over', async () => {
      const handled: string[] = [];
      const consumer = await consume({
        batchDelayMs: 60_000,
        handle: (batch) => {
          handled.push(...batch.map((entry) => entry.event.event_id));
          return Promise.resolve();
        },
      });
      await publish(click('held'));
      await chance();
      expect(handled).toEqual([]);
      // Stopping hands over what was gathered.
      await consumer.stop();
      expect(handled).toHaveLength(1);
    });

    it('stores an event id published twice once, so the consumer sees it once', async () => {
      const event = click('i1');
      const first = await publish(event);
      const again = await publish(event);
      expect(again).toEqual({ seq: first.seq, duplicate: true });
      const other = click('i2');
      await publish(other);
      const handled: string[] = [];
      await consume({
        handle: (batch) => {
          handled.push(...batch.map((entry) => entry.event.event_id));
          return Promise.resolve();
        },
      });
      await eventually(() => handled.length >= 2);
      await chance();
      expect(handled).toEqual([event.event_id, other.event_id]);
    });

    it('sends a malformed event to the dead letters with its reason, and goes on', async () => {
      const bad = { ...click('i1'), type: 'hover' };
      const badBytes = encodeEvent(bad as unknown as FeedbackEvent);
      const badSubject = feedbackSubject(prefix, PARTITIONS, bad.user_id);
      const badAck = await stream.publish(badSubject, badBytes);
      const good = click('i2');
      await publish(good);
      const parsed = new Map<number, number>();
      const handled: string[] = [];
      const parse = (data: Uint8Array, message: StreamMessage): FeedbackEvent => {
        parsed.set(message.seq, (parsed.get(message.seq) ?? 0) + 1);
        return parseFeedbackEvent(data);
      };
      const first = await consume({
        parse,
        handle: (batch) => {
          handled.push(...batch.map((entry) => entry.event.event_id));
          return Promise.resolve();
        },
      });
      await eventually(() => handled.length === 1);
      const [dead] = await deadLetters(1);
      expect(dead!.subject).toBe(`${prefix}.events.dead.clicks`);
      expect(dead!.data).toEqual(badBytes);
      expect(dead!.headers[DeadLetterHeader.Reason]).toBe(
        'type: must be one of view, click, like, purchase, rating',
      );
      expect(dead!.headers[DeadLetterHeader.Subject]).toBe(badSubject);
      expect(dead!.headers[DeadLetterHeader.Seq]).toBe(String(badAck.seq));
      expect(dead!.headers[DeadLetterHeader.Consumer]).toBe('clicks');
      expect(handled).toEqual([good.event_id]);
      expect(await counterValue(registry, 'recsys_events_dead_letters_total', 'clicks')).toBe(1);

      // Acknowledged once dead-lettered: never delivered again, the next events still are.
      await first.stop();
      const later: string[] = [];
      await consume({
        parse,
        handle: (batch) => {
          later.push(...batch.map((entry) => entry.event.event_id));
          return Promise.resolve();
        },
      });
      const next = click('i3');
      await publish(next);
      await eventually(() => later.length === 1);
      await chance();
      expect(later).toEqual([next.event_id]);
      expect(parsed.get(badAck.seq)).toBe(1);
      expect(await deadLetters(1)).toHaveLength(1);
    });

    it('sends an event whose batch keeps failing to the dead letters after maxDeliver, alone', async () => {
      const events = [click('i1'), click('poison'), click('i2'), click('i3')];
      const acks = [];
      for (const event of events) acks.push(await publish(event));
      let poisonAttempts = 0;
      const handled: string[] = [];
      await consume({
        maxDeliver: 3,
        batchSize: 8,
        batchDelayMs: 20,
        handle: (batch) => {
          if (batch.some((entry) => entry.event.item_id === 'poison')) {
            poisonAttempts++;
            return Promise.reject(new Error('cannot apply\npoison'));
          }
          handled.push(...batch.map((entry) => entry.event.event_id));
          return Promise.resolve();
        },
      });
      const [dead] = await deadLetters(1);
      expect(dead!.headers[DeadLetterHeader.Reason]).toBe('cannot apply poison');
      expect(dead!.headers[DeadLetterHeader.Seq]).toBe(String(acks[1]!.seq));
      expect(parseFeedbackEvent(dead!.data)).toEqual(events[1]);
      await eventually(() => handled.length === 3);
      await chance();
      // Its batch-mates were delivered again and handled, each once; it failed exactly 3 times.
      expect([...handled].sort()).toEqual(
        [events[0]!, events[2]!, events[3]!].map((e) => e.event_id).sort(),
      );
      expect(poisonAttempts).toBe(3);
      expect(await counterValue(registry, 'recsys_events_dead_letters_total', 'clicks')).toBe(1);
      expect(await counterValue(registry, 'recsys_events_processed_total', 'clicks')).toBe(3);
      expect(
        await counterValue(registry, 'recsys_events_failed_total', 'clicks'),
      ).toBeGreaterThanOrEqual(3 + 2);
    });

    it('survives a reader lost mid-batch: the next one handles every event, none twice in its effect', async () => {
      const store = new MemoryOnlineStore({ definitions: DEFINITIONS });
      const scope = 'item_clicks';
      const applied: string[] = [];
      /** Counts the batch's clicks per item, with processed marks, in one atomic write. */
      const effect = async (batch: readonly EventBatchEntry<FeedbackEvent>[]): Promise<void> => {
        const fresh = await dropProcessed(store, scope, batch, (event) => event.event_id);
        if (fresh.length === 0) return;
        const add = new Map<string, number>();
        for (const { event } of fresh) add.set(event.item_id, (add.get(event.item_id) ?? 0) + 1);
        const items = [...add.keys()];
        const rows = await store.read('item_clicks', items);
        await store.write({
          rows: items.map((item, i) => ({
            view: 'item_clicks',
            entity: item,
            row: {
              values: { clicks: Number(rows[i]?.values['clicks'] ?? 0) + add.get(item)! },
              eventTimeMs: Date.now(),
            },
          })),
          marks: { scope, ids: fresh.map((entry) => entry.event.event_id), ttlMs: 3_600_000 },
        });
        applied.push(...fresh.map((entry) => entry.event.event_id));
      };

      const events = Array.from({ length: 12 }, (_, i) => click(`i${i % 4}`));
      for (const event of events) await publish(event);

      // The first reader writes its first batch's effect, then never acknowledges it.
      const other = await fixture.client();
      const otherStream = await openEventsStream(other.store, prefix, {
        maxAgeDays: 1,
        maxBytes: -1,
        duplicateWindowMs: 60_000,
      });
      const written = gate();
      const hang = gate();
      releases.push(() => hang.open());
      const firstBatch: string[] = [];
      const lost = await consume(
        {
          batchSize: 5,
          ackWaitMs: 1_500,
          handle: async (batch) => {
            firstBatch.push(...batch.map((entry) => entry.event.event_id));
            await effect(batch);
            written.open();
            await hang.wait;
          },
        },
        otherStream,
      );
      await written.wait;
      expect(applied).toHaveLength(5);
      await other.crash(lost);

      const seenBySecond: string[] = [];
      await consume({
        batchSize: 5,
        ackWaitMs: 1_500,
        handle: async (batch) => {
          seenBySecond.push(...batch.map((entry) => entry.event.event_id));
          await effect(batch);
        },
      });
      await eventually(() => applied.length === 12, {
        timeoutMs: 20_000,
        message: 'every event applied',
      });
      // The lost batch came again, and the marks kept its effect from being applied twice.
      await eventually(() => firstBatch.every((id) => seenBySecond.includes(id)), {
        timeoutMs: 20_000,
        message: 'the lost batch delivered again',
      });
      await chance();
      expect([...applied].sort()).toEqual(events.map((e) => e.event_id).sort());
      const rows = await store.read('item_clicks', ['i0', 'i1', 'i2', 'i3']);
      expect(rows.map((row) => row?.values['clicks'])).toEqual([3, 3, 3, 3]);
    });

    it('refuses bad options, naming them', async () => {
      const handle = (): Promise<void> => Promise.resolve();
      const refused = async (
        options: Partial<EventConsumerOptions<FeedbackEvent>>,
      ): Promise<BadRequestError> => {
        const err: unknown = await consume({ handle, ...options }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BadRequestError);
        return err as BadRequestError;
      };
      // Its own dead letters would come back to it.
      expect((await refused({ filter: `${prefix}.events.>` })).field).toBe('filter');
      expect((await refused({ filter: `${prefix}.events.dead.*` })).field).toBe('filter');
      expect((await refused({ batchSize: 0 })).field).toBe('batchSize');
      expect((await refused({ batchDelayMs: -1 })).field).toBe('batchDelayMs');
      expect((await refused({ maxDeliver: 1.5 })).field).toBe('maxDeliver');
      await refused({ durable: 'a.b' });
      await refused({ prefix: 'bad prefix' });
      await refused({ filter: `other_${prefix}.events.feedback.>` });
    });
  });
}
