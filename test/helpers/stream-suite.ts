/**
 * The event-stream contract as tests, written once and run against every implementation. Each test
 * opens streams with fresh names and subjects of their own (a server refuses two streams that
 * capture the same subject), so implementations backed by a server shared across tests stay
 * isolated.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { BadRequestError } from '../../runtime/errors.js';
import type {
  ConsumeOptions,
  EventStream,
  ReadFrom,
  StreamHandler,
  StreamMessage,
  StreamOptions,
  StreamReader,
  StreamStore,
} from '../../runtime/stream/index.js';
import { eventually } from './eventually.js';

export interface StreamFixture {
  store: StreamStore;
  cleanup(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (s: string): Uint8Array => encoder.encode(s);
const str = (data: Uint8Array): string => decoder.decode(data);
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sorted = (values: number[]): number[] => [...values].sort((a, b) => a - b);

let streamCounter = 0;
function freshName(): string {
  return `st_${process.pid}_${Date.now().toString(36)}_${streamCounter++}`;
}

/** A handler waits on it until the test opens it. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/**
 * Lets a wrong implementation do what it must not (deliver after stop, run a fourth handler) before
 * the test checks that it did not. Never awaited for something to happen, so it cannot make a
 * correct implementation fail, whatever the machine's speed.
 */
const chance = (ms = 150): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Age limits apply on a server-side timer, so expiry can lag the limit by about a second. */
const EXPIRY_SLACK_MS = 4_000;

export function streamConformance(name: string, makeStore: () => Promise<StreamFixture>): void {
  describe(`stream conformance: ${name}`, () => {
    let fixture: StreamFixture;
    let store: StreamStore;
    let readers: StreamReader[];
    /** A subject token of this test's own; every stream of the test captures subjects under it. */
    let p: string;
    let stream: EventStream;

    const open = (options: Partial<StreamOptions> = {}, streamName = p): Promise<EventStream> =>
      store.stream(streamName, { subjects: [`${p}.>`], storage: 'memory', ...options });

    const read = async (
      from: ReadFrom,
      handler: StreamHandler,
      options: { filter?: string; onError?: (err: Error) => void; on?: EventStream } = {},
    ): Promise<StreamReader> => {
      const on = options.on ?? stream;
      const reader = await on.read(
        options.filter ?? `${p}.>`,
        from,
        handler,
        options.onError === undefined ? {} : { onError: options.onError },
      );
      readers.push(reader);
      return reader;
    };

    const consume = async (
      durable: string,
      handler: StreamHandler,
      options: ConsumeOptions = {},
    ): Promise<StreamReader> => {
      const reader = await stream.consume(durable, handler, options);
      readers.push(reader);
      return reader;
    };

    const publishMany = async (count: number, subject = `${p}.e`): Promise<number[]> => {
      const seqs: number[] = [];
      for (let i = 0; i < count; i++) seqs.push((await stream.publish(subject, text(`m${i}`))).seq);
      return seqs;
    };

    /** Every message from 1 on, through a fresh reader: proof that a message can be delivered. */
    const witness = async (count: number): Promise<number[]> => {
      const seen: number[] = [];
      const reader = await read(1, (m) => {
        seen.push(m.seq);
      });
      await eventually(() => seen.length >= count, { message: `witness saw ${count}` });
      await reader.stop();
      return seen;
    };

    /** The stored times of the first `count` messages, through a fresh reader. */
    const stamps = async (count: number): Promise<number[]> => {
      const times: number[] = [];
      const reader = await read(1, (m) => {
        if (times.length < count) times.push(m.timeMs);
      });
      await eventually(() => times.length === count, { message: `stamps of ${count}` });
      await reader.stop();
      return times;
    };

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
      readers = [];
      p = freshName();
      stream = await open();
    });

    afterEach(async () => {
      await Promise.all(readers.map((reader) => reader.stop()));
      await fixture.cleanup();
    });

    describe('publish and info', () => {
      it('numbers messages from 1, one sequence for the whole stream', async () => {
        expect(await stream.info()).toEqual({
          name: p,
          messages: 0,
          bytes: 0,
          firstSeq: 0,
          lastSeq: 0,
        });
        const a = await stream.publish(`${p}.a`, text('one'));
        const b = await stream.publish(`${p}.b.c`, text('two'));
        const c = await stream.publish(`${p}.a`, text('three'));
        expect([a, b, c]).toEqual([
          { seq: 1, duplicate: false },
          { seq: 2, duplicate: false },
          { seq: 3, duplicate: false },
        ]);
        const info = await stream.info();
        expect(info).toMatchObject({ name: p, messages: 3, firstSeq: 1, lastSeq: 3 });
      });

      it('counts bytes as JetStream memory storage does: subject, headers, payload, 16 each', async () => {
        await stream.publish(`${p}.a`, new Uint8Array(10));
        const plain = `${p}.a`.length + 10 + 16;
        expect((await stream.info()).bytes).toBe(plain);
        await stream.publish(`${p}.a`, new Uint8Array(10), { headers: { 'X-K': 'v' } });
        // `NATS/1.0\r\n`, `X-K: v\r\n`, `\r\n`
        const withHeaders = plain + 10 + 8 + 2;
        expect((await stream.info()).bytes).toBe(plain + withHeaders);
      });

      it('stores a message with a msgId once within the duplicate window', async () => {
        const first = await stream.publish(`${p}.a`, text('x'), { msgId: 'id-1' });
        const again = await stream.publish(`${p}.b`, text('y'), { msgId: 'id-1' });
        const other = await stream.publish(`${p}.a`, text('z'), { msgId: 'id-2' });
        expect(first).toEqual({ seq: 1, duplicate: false });
        expect(again).toEqual({ seq: 1, duplicate: true });
        expect(other).toEqual({ seq: 2, duplicate: false });
        expect((await stream.info()).messages).toBe(2);
        expect((await witness(2)).slice(0, 2)).toEqual([1, 2]);
      });

      it('gives messages the headers they were published with, and nothing of its own', async () => {
        await stream.publish(`${p}.a`, text('x'), {
          msgId: 'with-id',
          headers: { 'Recsys-Encoding': 'frame', 'X-Two': 'a b' },
        });
        await stream.publish(`${p}.a`, text('y'));
        const seen: StreamMessage[] = [];
        await read(1, (m) => {
          seen.push(m);
        });
        await eventually(() => seen.length === 2);
        expect(seen[0]!.headers).toEqual({ 'Recsys-Encoding': 'frame', 'X-Two': 'a b' });
        expect(seen[1]!.headers).toEqual({});
        expect(str(seen[0]!.data)).toBe('x');
        expect(seen[0]!.subject).toBe(`${p}.a`);
        expect(Math.abs(seen[0]!.timeMs - Date.now())).toBeLessThan(60_000);
      });

      it('refuses a subject the stream does not capture, wildcards and JetStream headers', async () => {
        await expect(stream.publish(`other_${p}.a`, text('x'))).rejects.toBeInstanceOf(
          BadRequestError,
        );
        await expect(stream.publish(p, text('x'))).rejects.toThrow(/not captured/);
        await expect(stream.publish(`${p}.*`, text('x'))).rejects.toBeInstanceOf(BadRequestError);
        await expect(stream.publish(`${p}..a`, text('x'))).rejects.toBeInstanceOf(BadRequestError);
        await expect(
          stream.publish(`${p}.a`, text('x'), { headers: { 'Nats-Msg-Id': 'sneaky' } }),
        ).rejects.toBeInstanceOf(BadRequestError);
        expect((await stream.info()).lastSeq).toBe(0);
      });

      it('tells the last sequence of one subject', async () => {
        await stream.publish(`${p}.a`, text('1'));
        await stream.publish(`${p}.b`, text('2'));
        await stream.publish(`${p}.a`, text('3'));
        await stream.publish(`${p}.b`, text('4'));
        expect(await stream.lastSeqOf(`${p}.a`)).toBe(3);
        expect(await stream.lastSeqOf(`${p}.b`)).toBe(4);
        expect(await stream.lastSeqOf(`${p}.never`)).toBe(0);
        await expect(stream.lastSeqOf(`${p}.*`)).rejects.toBeInstanceOf(BadRequestError);
        await expect(stream.lastSeqOf(`other_${p}`)).rejects.toBeInstanceOf(BadRequestError);
      });
    });

    describe('streams', () => {
      it('opens the same stream again with its messages, and updates its subjects', async () => {
        await stream.publish(`${p}.a.1`, text('kept'));
        const wider = await store.stream(p, {
          subjects: [`${p}.>`, `${p}_more.*`],
          storage: 'memory',
        });
        expect((await wider.info()).lastSeq).toBe(1);
        expect((await wider.publish(`${p}_more.x`, text('new'))).seq).toBe(2);
      });

      it('refuses bad names, subjects and limits, and subjects another stream captures', async () => {
        await expect(open({}, 'no spaces')).rejects.toBeInstanceOf(BadRequestError);
        await expect(open({}, 'a.b')).rejects.toBeInstanceOf(BadRequestError);
        await expect(open({ subjects: [] }, `${p}_2`)).rejects.toBeInstanceOf(BadRequestError);
        await expect(open({ subjects: [`${p}_2.>.x`] }, `${p}_2`)).rejects.toBeInstanceOf(
          BadRequestError,
        );
        await expect(open({ subjects: [`${p}_2.a`], maxAgeMs: 50 }, `${p}_2`)).rejects.toThrow(
          /maxAgeMs/,
        );
        await expect(open({ subjects: [`${p}_2.a`], maxBytes: 0 }, `${p}_2`)).rejects.toThrow(
          /maxBytes/,
        );
        await expect(
          open({ subjects: [`${p}_2.a`], duplicateWindowMs: 0 }, `${p}_2`),
        ).rejects.toThrow(/duplicateWindowMs/);
        const overlap = open({ subjects: [`${p}.a.*`] }, `${p}_2`);
        await expect(overlap).rejects.toBeInstanceOf(BadRequestError);
        await expect(overlap).rejects.toThrow(/overlap/);
        // Subjects of their own are fine.
        await open({ subjects: [`${p}_2.a`] }, `${p}_2`);
      });

      it('drops the oldest messages past the byte limit', async () => {
        const limited = await open({ subjects: [`${p}_b.>`], maxBytes: 1_000 }, `${p}_b`);
        for (let i = 0; i < 30; i++) await limited.publish(`${p}_b.e`, new Uint8Array(100));
        const info = await limited.info();
        expect(info.lastSeq).toBe(30);
        expect(info.bytes).toBeLessThanOrEqual(1_000);
        expect(info.messages).toBeGreaterThan(0);
        expect(info.messages).toBeLessThan(30);
        expect(info.firstSeq).toBe(info.lastSeq - info.messages + 1);
        const seen: number[] = [];
        await read(1, (m) => void seen.push(m.seq), { on: limited, filter: `${p}_b.>` });
        await eventually(() => seen.length === info.messages);
        expect(seen).toEqual(range(info.firstSeq, 30));
      });

      it('drops messages past the age limit, and forgets msgIds after the window (capped at the age)', async () => {
        const aging = await open({ subjects: [`${p}_t.>`], maxAgeMs: 1_000 }, `${p}_t`);
        await aging.publish(`${p}_t.e`, text('1'), { msgId: 'once' });
        await aging.publish(`${p}_t.e`, text('2'));
        expect((await aging.info()).messages).toBe(2);
        await eventually(async () => (await aging.info()).messages === 0, {
          timeoutMs: 1_000 + EXPIRY_SLACK_MS,
          intervalMs: 100,
          message: 'messages expired',
        });
        expect(await aging.info()).toMatchObject({ firstSeq: 3, lastSeq: 2, bytes: 0 });
        // A 120 s default window would still hold `once`; capped at the age, it is gone too.
        await eventually(
          async () => !(await aging.publish(`${p}_t.e`, text('3'), { msgId: 'once' })).duplicate,
          { timeoutMs: 1_000 + EXPIRY_SLACK_MS, intervalMs: 100, message: 'msgId forgotten' },
        );
      });
    });

    describe('read', () => {
      it('replays from a sequence, in order, then delivers live messages', async () => {
        await publishMany(5);
        const seen: StreamMessage[] = [];
        await read(3, (m) => void seen.push(m));
        await eventually(() => seen.length === 3, { message: 'replayed 3..5' });
        await stream.publish(`${p}.e`, text('live-1'));
        await stream.publish(`${p}.e`, text('live-2'));
        await eventually(() => seen.length === 5, { message: 'live 6 and 7' });
        expect(seen.map((m) => m.seq)).toEqual([3, 4, 5, 6, 7]);
        expect(seen.map((m) => str(m.data))).toEqual(['m2', 'm3', 'm4', 'live-1', 'live-2']);
      });

      it('starts past the end and waits for the stream to get there', async () => {
        await publishMany(2);
        const seen: number[] = [];
        await read(4, (m) => void seen.push(m.seq));
        await publishMany(3);
        await eventually(() => seen.length === 2);
        expect(seen).toEqual([4, 5]);
      });

      it('delivers only subjects matching the filter, with * and >', async () => {
        const s = await open({ subjects: [`${p}_f.a.*`, `${p}_f.b.>`] }, `${p}_f`);
        await s.publish(`${p}_f.a.x`, text('1'));
        await s.publish(`${p}_f.b.y.z`, text('2'));
        await s.publish(`${p}_f.a.y`, text('3'));
        await s.publish(`${p}_f.b.q`, text('4'));
        const filters: Record<string, number[]> = {
          [`${p}_f.a.*`]: [1, 3],
          [`${p}_f.b.>`]: [2, 4],
          [`${p}_f.a.x`]: [1],
          [`${p}_f.*.*`]: [1, 3, 4],
          [`${p}_f.>`]: [1, 2, 3, 4],
        };
        const seen: Record<string, number[]> = {};
        for (const filter of Object.keys(filters)) {
          const got: number[] = (seen[filter] = []);
          await read(1, (m) => void got.push(m.seq), { on: s, filter });
        }
        await s.publish(`${p}_f.a.x`, text('5'));
        filters[`${p}_f.a.*`]!.push(5);
        filters[`${p}_f.a.x`]!.push(5);
        filters[`${p}_f.*.*`]!.push(5);
        filters[`${p}_f.>`]!.push(5);
        await eventually(() => seen[`${p}_f.>`]!.length === 5);
        // Every reader has passed sequence 5 by now or is about to: wait for each to get there.
        for (const filter of Object.keys(filters)) {
          await eventually(() => seen[filter]!.length >= filters[filter]!.length);
        }
        expect(seen).toEqual(filters);
      });

      it('refuses a filter that cannot match the stream, and a sequence below 1', async () => {
        const noop = (): void => undefined;
        await expect(stream.read(`other_${p}.>`, 1, noop)).rejects.toBeInstanceOf(BadRequestError);
        await expect(stream.read(`${p}.>.x`, 1, noop)).rejects.toBeInstanceOf(BadRequestError);
        // Neither within one of the stream's subjects nor wider than one: JetStream refuses it.
        const s = await open({ subjects: [`${p}_f.a.*`, `${p}_f.b.>`] }, `${p}_f`);
        await expect(s.read(`${p}_f.*.y`, 1, noop)).rejects.toBeInstanceOf(BadRequestError);
        await expect(stream.read(`${p}.>`, 0, noop)).rejects.toBeInstanceOf(BadRequestError);
        await expect(stream.read(`${p}.>`, 1.5, noop)).rejects.toBeInstanceOf(BadRequestError);
      });

      it('finds the first message stored at or after a time, and reads from there', async () => {
        expect(await stream.seqAtTime(Date.now())).toBe(1);
        await stream.publish(`${p}.a`, text('1'));
        await stream.publish(`${p}.b`, text('2'));
        const [, second] = await stamps(2);
        // Stored times are whole milliseconds: wait until the next two have a later one.
        await eventually(() => Date.now() >= second! + 2, { message: 'the clock moved on' });
        await stream.publish(`${p}.a`, text('3'));
        await stream.publish(`${p}.b`, text('4'));
        const third = (await stamps(4))[2]!;
        expect(third).toBeGreaterThan(second!);
        expect(await stream.seqAtTime(third)).toBe(3);
        expect(await stream.seqAtTime(second!)).toBeLessThanOrEqual(2);
        expect(await stream.seqAtTime(0)).toBe(1);
        expect(await stream.seqAtTime(Date.now() + 60_000)).toBe(5);

        const all: number[] = [];
        const onlyB: number[] = [];
        await read({ fromTimeMs: third }, (m) => void all.push(m.seq));
        await read({ fromTimeMs: third }, (m) => void onlyB.push(m.seq), { filter: `${p}.b` });
        await stream.publish(`${p}.b`, text('5'));
        await eventually(() => all.length === 3 && onlyB.length === 2);
        expect(all).toEqual([3, 4, 5]);
        expect(onlyB).toEqual([4, 5]);
      });

      it('reads from a time past the last message: only later messages', async () => {
        await publishMany(2);
        const seen: number[] = [];
        await read({ fromTimeMs: Date.now() + 60_000 }, (m) => void seen.push(m.seq));
        await publishMany(1);
        await eventually(() => seen.length === 1);
        expect(seen).toEqual([3]);
      });

      it('refuses a start time that is not a finite, non-negative number', async () => {
        const noop = (): void => undefined;
        for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
          await expect(stream.read(`${p}.>`, { fromTimeMs: bad }, noop)).rejects.toThrow(
            /fromTimeMs/,
          );
          await expect(stream.seqAtTime(bad)).rejects.toBeInstanceOf(BadRequestError);
        }
      });

      it('runs one handler call at a time, in order, with an async handler', async () => {
        await publishMany(10);
        const order: number[] = [];
        let inside = 0;
        let most = 0;
        await read(1, async (m) => {
          inside++;
          most = Math.max(most, inside);
          // Uneven awaits: a reader that did not wait for the handler would reorder them.
          await new Promise((resolve) => setTimeout(resolve, (m.seq * 7) % 5));
          order.push(m.seq);
          inside--;
        });
        await publishMany(10);
        await eventually(() => order.length === 20, { message: 'all 20 handled' });
        expect(order).toEqual(range(1, 20));
        expect(most).toBe(1);
      });

      it('stop() waits for the running handler, and nothing is delivered after it', async () => {
        const held = gate();
        const seen: number[] = [];
        const reader = await read(1, async (m) => {
          seen.push(m.seq);
          if (m.seq === 1) await held.wait;
        });
        await publishMany(2);
        await eventually(() => seen.length === 1);
        let stopped = false;
        const stopping = reader.stop().then(() => {
          stopped = true;
        });
        await chance();
        expect(stopped).toBe(false);
        held.open();
        await stopping;
        await publishMany(1);
        expect(await witness(3)).toEqual([1, 2, 3]);
        expect(seen).toEqual([1]);
      });

      it('stops at a handler that throws, tells onError, and does not skip the message', async () => {
        await publishMany(3);
        const seen: number[] = [];
        const errors: Error[] = [];
        await read(
          1,
          (m) => {
            seen.push(m.seq);
            if (m.seq === 2) throw new Error('cannot apply 2');
          },
          { onError: (err) => errors.push(err) },
        );
        await eventually(() => errors.length === 1);
        expect(errors[0]!.message).toBe('cannot apply 2');
        await publishMany(1);
        await witness(4);
        expect(seen).toEqual([1, 2]);
      });
    });

    describe('consume', () => {
      it('shares a durable between its readers: each message handled once', async () => {
        const handled: Record<string, number[]> = { one: [], two: [] };
        let first: string | undefined;
        const otherHandled = gate();
        const handler =
          (me: string): StreamHandler =>
          async (m) => {
            // The first message waits until the other reader has handled one: only sharing
            // lets that happen.
            if (first === undefined) {
              first = me;
              await otherHandled.wait;
            }
            handled[me]!.push(m.seq);
            if (me !== first) otherHandled.open();
          };
        await consume('shared', handler('one'));
        await consume('shared', handler('two'));
        await publishMany(10);
        await eventually(() => handled['one']!.length + handled['two']!.length === 10, {
          message: '10 handled',
        });
        expect(sorted([...handled['one']!, ...handled['two']!])).toEqual(range(1, 10));
        expect(handled['one']!.length).toBeGreaterThan(0);
        expect(handled['two']!.length).toBeGreaterThan(0);
      });

      it('delivers again a message whose handler threw', async () => {
        const attempts = new Map<number, number>();
        const done: number[] = [];
        await consume('retry', (m) => {
          const n = (attempts.get(m.seq) ?? 0) + 1;
          attempts.set(m.seq, n);
          if (m.seq === 2 && n === 1) throw new Error('transient');
          done.push(m.seq);
        });
        await publishMany(3);
        await eventually(() => done.length === 3);
        expect(sorted(done)).toEqual([1, 2, 3]);
        expect([...attempts.entries()].sort((a, b) => a[0] - b[0])).toEqual([
          [1, 1],
          [2, 2],
          [3, 1],
        ]);
      });

      it('acknowledges a handled message: it is not delivered again after the ack wait', async () => {
        const attempts: number[] = [];
        await consume('acked', (m) => void attempts.push(m.seq), { ackWaitMs: 300 });
        await publishMany(3);
        await eventually(() => attempts.length === 3);
        await chance(900);
        expect(attempts).toEqual([1, 2, 3]);
      });

      it('delivers again a message not acknowledged within ackWaitMs', async () => {
        const held = gate();
        let attempts = 0;
        await consume(
          'slow',
          async () => {
            attempts++;
            if (attempts === 1) await held.wait;
          },
          { ackWaitMs: 500, concurrency: 2 },
        );
        await publishMany(1);
        await eventually(() => attempts === 2, { message: 'redelivered after the ack wait' });
        held.open();
      });

      it('gives up after maxDeliver failures, tells onGiveUp, and drops the message', async () => {
        const attempts = new Map<number, number>();
        const gaveUp: [number, string][] = [];
        const done: number[] = [];
        const reader = await consume(
          'poison',
          (m) => {
            attempts.set(m.seq, (attempts.get(m.seq) ?? 0) + 1);
            if (m.seq === 1) throw new Error('poison');
            done.push(m.seq);
          },
          { maxDeliver: 3, onGiveUp: (m, err) => gaveUp.push([m.seq, err.message]) },
        );
        await publishMany(2);
        await eventually(() => gaveUp.length === 1 && done.length === 1);
        expect(gaveUp).toEqual([[1, 'poison']]);
        expect(attempts.get(1)).toBe(3);
        await reader.stop();

        const later: number[] = [];
        await consume('poison', (m) => void later.push(m.seq), { maxDeliver: 3 });
        await publishMany(1);
        await eventually(() => later.length === 1);
        expect(later).toEqual([3]);
        expect(attempts.get(1)).toBe(3);
      });

      it('waits for an async onGiveUp before dropping the message, and stop() waits for it', async () => {
        const held = gate();
        const gaveUp: number[] = [];
        let attempts = 0;
        const reader = await consume(
          'dead',
          () => {
            attempts++;
            throw new Error('always');
          },
          {
            maxDeliver: 2,
            onGiveUp: async (m) => {
              gaveUp.push(m.seq);
              await held.wait;
            },
          },
        );
        await publishMany(1);
        await eventually(() => gaveUp.length === 1);
        let stopped = false;
        const stopping = reader.stop().then(() => {
          stopped = true;
        });
        await chance();
        expect(stopped).toBe(false);
        held.open();
        await stopping;
        expect(attempts).toBe(2);

        const later: number[] = [];
        await consume('dead', (m) => void later.push(m.seq), { maxDeliver: 2 });
        await publishMany(1);
        await eventually(() => later.length === 1);
        expect(later).toEqual([2]);
        expect(gaveUp).toEqual([1]);
      });

      it('resumes a durable where its stopped readers left off', async () => {
        const firstRun: number[] = [];
        const reader = await consume('resume', (m) => void firstRun.push(m.seq));
        await publishMany(3);
        await eventually(() => firstRun.length === 3);
        await reader.stop();
        await publishMany(2);

        const secondRun: number[] = [];
        await consume('resume', (m) => void secondRun.push(m.seq));
        await eventually(() => secondRun.length >= 2);
        expect(sorted(secondRun)).toEqual([4, 5]);

        // Another durable starts from the beginning of the stream.
        const fresh: number[] = [];
        await consume('other', (m) => void fresh.push(m.seq));
        await eventually(() => fresh.length === 5);
        expect(sorted(fresh)).toEqual(range(1, 5));
      });

      it('stop() waits for running handlers; a message not yet handled goes to another reader', async () => {
        const held = gate();
        const seenA: number[] = [];
        const a = await consume('handover', async (m) => {
          seenA.push(m.seq);
          await held.wait;
        });
        await publishMany(3);
        await eventually(() => seenA.length === 1);
        let stopped = false;
        const stopping = a.stop().then(() => {
          stopped = true;
        });
        await chance();
        expect(stopped).toBe(false);
        held.open();
        await stopping;

        const seenB: number[] = [];
        await consume('handover', (m) => void seenB.push(m.seq));
        await eventually(() => seenB.length >= 2);
        expect(seenA).toHaveLength(1);
        expect(sorted([...seenA, ...seenB])).toEqual([1, 2, 3]);
      });

      it('runs up to `concurrency` handlers at once', async () => {
        const held = gate();
        let inside = 0;
        let most = 0;
        const done: number[] = [];
        await consume(
          'parallel',
          async (m) => {
            inside++;
            most = Math.max(most, inside);
            await held.wait;
            inside--;
            done.push(m.seq);
          },
          { concurrency: 3 },
        );
        await publishMany(6);
        await eventually(() => inside === 3, { message: '3 handlers running' });
        await chance();
        expect(inside).toBe(3);
        held.open();
        await eventually(() => done.length === 6);
        expect(most).toBe(3);
        expect(sorted(done)).toEqual(range(1, 6));
      });

      it('takes only the subjects of its filter', async () => {
        const seen: string[] = [];
        await consume('only-a', (m) => void seen.push(m.subject), { filter: `${p}.a.*` });
        await stream.publish(`${p}.a.1`, text('x'));
        await stream.publish(`${p}.b.1`, text('x'));
        await stream.publish(`${p}.a.2`, text('x'));
        await eventually(() => seen.length === 2);
        await publishMany(1, `${p}.a.3`);
        await eventually(() => seen.length === 3);
        expect(seen).toEqual([`${p}.a.1`, `${p}.a.2`, `${p}.a.3`]);
      });

      it('refuses bad durable names, filters and options', async () => {
        const noop = (): void => undefined;
        await expect(stream.consume('a.b', noop)).rejects.toBeInstanceOf(BadRequestError);
        await expect(stream.consume('d', noop, { filter: `other_${p}` })).rejects.toBeInstanceOf(
          BadRequestError,
        );
        await expect(stream.consume('d', noop, { maxDeliver: 0 })).rejects.toThrow(/maxDeliver/);
        await expect(stream.consume('d', noop, { ackWaitMs: -1 })).rejects.toThrow(/ackWaitMs/);
        await expect(stream.consume('d', noop, { concurrency: 1.5 })).rejects.toThrow(
          /concurrency/,
        );
      });
    });
  });
}
