import { afterEach, describe, expect, it, vi } from 'vitest';

import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { Handlers } from '../../runtime/actor/protocol.js';
import { BadRequestError, UnavailableError } from '../../runtime/errors.js';
import type { RunningNode } from '../../runtime/node.js';
import { MemoryStreamStore } from '../../runtime/stream/memory.js';
import type { StreamMessage, StreamReader } from '../../runtime/stream/types.js';
import { testCluster, type TestCluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/eventually.js';
import { streamConformance } from '../helpers/stream-suite.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

streamConformance('memory', () =>
  Promise.resolve({ store: new MemoryStreamStore(), cleanup: () => Promise.resolve() }),
);

/** Lets queued microtasks run (the store yields once per operation) without touching the clock. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('MemoryStreamStore', () => {
  const readers: StreamReader[] = [];

  afterEach(async () => {
    await Promise.all(readers.splice(0).map((reader) => reader.stop()));
    vi.useRealTimers();
  });

  it('drops messages by age on the fake clock, oldest first', async () => {
    vi.useFakeTimers();
    const stream = await new MemoryStreamStore().stream('ages', {
      subjects: ['ages.>'],
      maxAgeMs: 1_000,
    });
    await stream.publish('ages.a', text('1'));
    vi.advanceTimersByTime(600);
    await stream.publish('ages.a', text('2'));
    vi.advanceTimersByTime(399);
    expect(await stream.info()).toMatchObject({ messages: 2, firstSeq: 1 });
    vi.advanceTimersByTime(1);
    expect(await stream.info()).toMatchObject({ messages: 1, firstSeq: 2, lastSeq: 2 });
    vi.advanceTimersByTime(600);
    expect(await stream.info()).toMatchObject({ messages: 0, firstSeq: 3, lastSeq: 2, bytes: 0 });
  });

  it('forgets a msgId after the duplicate window, on the fake clock', async () => {
    vi.useFakeTimers();
    const stream = await new MemoryStreamStore().stream('dups', {
      subjects: ['dups.>'],
      duplicateWindowMs: 10_000,
    });
    expect(await stream.publish('dups.a', text('x'), { msgId: 'k' })).toEqual({
      seq: 1,
      duplicate: false,
    });
    vi.advanceTimersByTime(9_999);
    expect(await stream.publish('dups.a', text('x'), { msgId: 'k' })).toEqual({
      seq: 1,
      duplicate: true,
    });
    vi.advanceTimersByTime(1);
    expect(await stream.publish('dups.a', text('x'), { msgId: 'k' })).toEqual({
      seq: 2,
      duplicate: false,
    });
  });

  it('redelivers exactly at the ack wait, and drops a last delivery that times out', async () => {
    vi.useFakeTimers();
    const stream = await new MemoryStreamStore().stream('acks', { subjects: ['acks.>'] });
    const deliveries: number[] = [];
    const gaveUp: StreamMessage[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    readers.push(
      await stream.consume(
        'slow',
        // Held past every ack wait: each delivery runs out of time.
        async () => {
          deliveries.push(Date.now());
          await released;
        },
        { ackWaitMs: 10_000, maxDeliver: 2, concurrency: 5, onGiveUp: (m) => gaveUp.push(m) },
      ),
    );
    const start = Date.now();
    await stream.publish('acks.a', text('x'));
    await settle();
    expect(deliveries).toEqual([start]);
    vi.advanceTimersByTime(9_999);
    await settle();
    expect(deliveries).toHaveLength(1);
    vi.advanceTimersByTime(1);
    await settle();
    expect(deliveries).toEqual([start, start + 10_000]);
    vi.advanceTimersByTime(60_000);
    await settle();
    expect(deliveries).toHaveLength(2);
    // Nobody saw it fail: the durable lets it go without onGiveUp, as JetStream does.
    expect(gaveUp).toEqual([]);
    release();
  });

  it('delivers redeliveries before new messages, lowest sequence first', async () => {
    const stream = await new MemoryStreamStore().stream('order', { subjects: ['order.>'] });
    for (let i = 0; i < 4; i++) await stream.publish('order.a', text(String(i)));
    const seen: number[] = [];
    const failed = new Set<number>();
    readers.push(
      await stream.consume('d', (m) => {
        seen.push(m.seq);
        if ((m.seq === 1 || m.seq === 2) && !failed.has(m.seq)) {
          failed.add(m.seq);
          throw new Error('again');
        }
      }),
    );
    await eventually(() => seen.length === 6);
    expect(seen).toEqual([1, 1, 2, 2, 3, 4]);
  });

  it('shares streams between users of one store, and copies data in and out', async () => {
    const store = new MemoryStreamStore();
    const one = await store.stream('shared', { subjects: ['shared.>'] });
    const two = await store.stream('shared', { subjects: ['shared.>'] });
    const data = text('abc');
    const headers = { 'X-A': '1' };
    await one.publish('shared.a', data, { headers });
    data.fill(0);
    headers['X-A'] = 'changed';
    const seen: StreamMessage[] = [];
    readers.push(await two.read('shared.>', 1, (m) => void seen.push(m)));
    await eventually(() => seen.length === 1);
    expect(seen[0]!.data).toEqual(text('abc'));
    expect(seen[0]!.headers).toEqual({ 'X-A': '1' });
    seen[0]!.data.fill(0);
    readers.push(await one.read('shared.>', 1, (m) => void seen.push(m)));
    await eventually(() => seen.length === 2);
    expect(seen[1]!.data).toEqual(text('abc'));
  });

  it('caps the duplicate window at the age limit', async () => {
    vi.useFakeTimers();
    const stream = await new MemoryStreamStore().stream('capped', {
      subjects: ['capped.>'],
      maxAgeMs: 1_000,
      duplicateWindowMs: 60_000,
    });
    await stream.publish('capped.a', text('x'), { msgId: 'k' });
    vi.advanceTimersByTime(1_000);
    expect((await stream.publish('capped.a', text('x'), { msgId: 'k' })).duplicate).toBe(false);
  });

  it('rejects bad arguments before yielding, as a rejected promise', async () => {
    const store = new MemoryStreamStore();
    await expect(store.stream('s', { subjects: ['s.*', 's.*'] })).rejects.toBeInstanceOf(
      BadRequestError,
    );
    const stream = await store.stream('s', { subjects: ['s.*'] });
    await expect(stream.publish('s.a.b', text('x'))).rejects.toThrow(/not captured/);
    await expect(
      stream.publish('s.a', text('x'), { headers: { 'bad name': 'v' } }),
    ).rejects.toBeInstanceOf(BadRequestError);
    await expect(
      stream.publish('s.a', text('x'), { headers: { ok: 'line\nbreak' } }),
    ).rejects.toBeInstanceOf(BadRequestError);
  });
});

type JournalProtocol = {
  write: { request: { text: string }; reply: { seq: number } };
};

/** A keyed kind that writes what it is told to the `journal` stream, from its context. */
const journalKind = defineActorKind<JournalProtocol>({
  name: 'journal',
  placement: 'keyed',
  description: 'Writes to the journal stream',
  version: '1.0.0',
  validators: {
    write: (payload) => {
      const value = (payload as { text?: unknown } | undefined)?.text;
      if (typeof value !== 'string') throw new BadRequestError('text', 'must be a string');
      return { text: value };
    },
  },
  create: (ctx) =>
    new (class extends Actor<JournalProtocol> {
      readonly handlers: Handlers<JournalProtocol> = {
        write: async ({ text: value }) => {
          const stream = await ctx.streams.stream('journal', { subjects: ['journal.>'] });
          const ack = await stream.publish(`journal.${ctx.key}`, text(value));
          return { seq: ack.seq };
        },
      };
    })(ctx),
});

describe('streams on in-process nodes', () => {
  let cluster: TestCluster;

  afterEach(async () => {
    await cluster.close();
  });

  it('hands actors the streams of their cluster, shared by its nodes', async () => {
    cluster = testCluster(undefined, { shared: true });
    const a: RunningNode = await cluster.node([journalKind]);
    const b: RunningNode = await cluster.node([journalKind]);
    const reply = await a.client.keyed<JournalProtocol>('journal').ask('k1', 'write', {
      text: 'hello',
    });
    expect(reply.seq).toBe(1);
    const journal = await b.streams.stream('journal', { subjects: ['journal.>'] });
    expect(await journal.lastSeqOf('journal.k1')).toBe(1);
  });

  it('gives a node alone streams of its own', async () => {
    cluster = testCluster(undefined);
    const a = await cluster.node([journalKind]);
    const b = await cluster.node([journalKind]);
    await (
      await a.streams.stream('journal', { subjects: ['journal.>'] })
    ).publish('journal.x', text('only a'));
    const other = await b.streams.stream('journal', { subjects: ['journal.>'] });
    expect((await other.info()).messages).toBe(0);
  });

  it('stops the readers a node left open when it stops', async () => {
    cluster = testCluster(undefined, { shared: true });
    const a = await cluster.node([]);
    const b = await cluster.node([]);
    const onA = await a.streams.stream('events', { subjects: ['events.>'] });
    const onB = await b.streams.stream('events', { subjects: ['events.>'] });
    const seenByA: number[] = [];
    await onA.read('events.>', 1, (m) => void seenByA.push(m.seq));
    await onA.consume('d', () => undefined);
    await onB.publish('events.x', text('1'));
    await eventually(() => seenByA.length === 1);

    await a.stop();
    await onB.publish('events.x', text('2'));
    const seenByB: number[] = [];
    const witness = await onB.read('events.>', 1, (m) => void seenByB.push(m.seq));
    await eventually(() => seenByB.length === 2);
    await witness.stop();
    expect(seenByA).toEqual([1]);
    await expect(onA.read('events.>', 1, () => undefined)).rejects.toBeInstanceOf(UnavailableError);
    // The durable outlives the node: its messages wait for the next reader.
    const later: number[] = [];
    const next = await onB.consume('d', (m) => void later.push(m.seq));
    await eventually(() => later.length === 1);
    await next.stop();
    expect(later).toEqual([2]);
  });
});
