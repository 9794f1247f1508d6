/**
 * The transport contract as tests, written once and run against every implementation. `a` and `b`
 * are two independent connections to the same bus or server: a subscription made on one
 * connection is flushed before the other publishes, which is what makes it visible on NATS.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { NoRespondersError, TimeoutError, UnavailableError } from '../../runtime/errors.js';
import type {
  InboundMessage,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportStatus,
} from '../../runtime/transport/types.js';
import { eventually } from './eventually.js';

export interface TransportPair {
  a: Transport;
  b: Transport;
  cleanup(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (s: string): Uint8Array => encoder.encode(s);
const str = (data: Uint8Array): string => decoder.decode(data);

interface Collector {
  readonly messages: InboundMessage[];
  readonly sub: Subscription;
  subjects(): string[];
}

function collect(t: Transport, subject: string, options?: SubscribeOptions): Collector {
  const messages: InboundMessage[] = [];
  const sub = t.subscribe(subject, (msg) => messages.push(msg), options);
  return { messages, sub, subjects: () => messages.map((m) => m.subject) };
}

async function until(what: string, condition: () => boolean): Promise<void> {
  await eventually(() => condition(), { timeoutMs: 5_000, intervalMs: 5, message: what });
}

export function transportConformance(name: string, makePair: () => Promise<TransportPair>): void {
  describe(`transport conformance: ${name}`, () => {
    let pair: TransportPair;
    let a: Transport;
    let b: Transport;

    beforeEach(async () => {
      pair = await makePair();
      ({ a, b } = pair);
    });

    afterEach(async () => {
      await pair.cleanup();
    });

    /**
     * Publishes the given subjects then a sentinel on `done`; once the sentinel arrives, every
     * earlier message that was going to arrive has (one publisher, ordered delivery).
     */
    async function publishAndSettle(subjects: string[], done: Collector): Promise<void> {
      for (const subject of subjects) a.publish(subject, text(subject));
      const before = done.messages.length;
      a.publish(done.sub.subject, text('done'));
      await until('sentinel delivered', () => done.messages.length > before);
    }

    it('delivers on an exact subject, from one connection to another', async () => {
      const got = collect(b, 'conf.exact.one');
      const done = collect(b, 'conf.exact.done');
      await b.flush();
      await publishAndSettle(['conf.exact.one', 'conf.exact.two', 'conf.exact'], done);
      expect(got.subjects()).toEqual(['conf.exact.one']);
      expect(str(got.messages[0]!.data)).toBe('conf.exact.one');
      expect(got.messages[0]!.reply).toBeUndefined();
    });

    it('matches `*` against exactly one token', async () => {
      const got = collect(b, 'conf.star.*.x');
      const done = collect(b, 'conf.star.done');
      await b.flush();
      await publishAndSettle(
        ['conf.star.a.x', 'conf.star.a.b.x', 'conf.star.x', 'conf.star.b.y', 'conf.star.b.x'],
        done,
      );
      expect(got.subjects()).toEqual(['conf.star.a.x', 'conf.star.b.x']);
    });

    it('matches `>` against one or more trailing tokens', async () => {
      const got = collect(b, 'conf.gt.>');
      const done = collect(b, 'conf.done');
      await b.flush();
      await publishAndSettle(['conf.gt.a', 'conf.gt', 'conf.gt.a.b.c', 'conf.other.a'], done);
      expect(got.subjects()).toEqual(['conf.gt.a', 'conf.gt.a.b.c']);
    });

    it('delivers asynchronously, never inside publish', async () => {
      const got = collect(a, 'conf.async');
      await a.flush();
      a.publish('conf.async', text('x'));
      expect(got.messages).toHaveLength(0);
      await until('message delivered', () => got.messages.length === 1);
    });

    it('gives each message to one queue member and to every plain subscriber', async () => {
      const members = [
        collect(a, 'conf.queue.*', { queue: 'workers' }),
        collect(b, 'conf.queue.*', { queue: 'workers' }),
        collect(b, 'conf.queue.job', { queue: 'workers' }),
      ];
      const plain = [collect(a, 'conf.queue.job'), collect(b, 'conf.queue.>')];
      await Promise.all([a.flush(), b.flush()]);
      const n = 60;
      for (let i = 0; i < n; i++) a.publish('conf.queue.job', text(String(i)));
      await until('plain subscribers got every message', () =>
        plain.every((c) => c.messages.length === n),
      );
      await until('queue members got every message', () => {
        return members.reduce((sum, c) => sum + c.messages.length, 0) >= n;
      });
      await a.flush();
      await b.flush();
      const seen = members.flatMap((c) => c.messages.map((m) => str(m.data)));
      expect(seen).toHaveLength(n);
      expect(new Set(seen).size).toBe(n);
      expect(members.filter((c) => c.messages.length > 0).length).toBeGreaterThan(1);
    });

    it('round-trips a request with headers both ways', async () => {
      b.subscribe('conf.rpc.echo', (msg) => {
        msg.respond(text(`echo:${str(msg.data)}`), {
          'X-Reply': 'yes',
          'X-Seen': msg.headers['X-Trace'] ?? 'none',
        });
      });
      await b.flush();
      const reply = await a.request('conf.rpc.echo', text('hi'), {
        timeoutMs: 2_000,
        headers: { 'X-Trace': 'abc-123' },
      });
      expect(str(reply.data)).toBe('echo:hi');
      expect(reply.headers['X-Reply']).toBe('yes');
      expect(reply.headers['X-Seen']).toBe('abc-123');

      const plain = await a.request('conf.rpc.echo', text('no headers'), { timeoutMs: 2_000 });
      expect(str(plain.data)).toBe('echo:no headers');
      expect(plain.headers['X-Seen']).toBe('none');
    });

    it('rejects with TimeoutError when nobody answers in time', async () => {
      b.subscribe('conf.rpc.silent', () => undefined);
      await b.flush();
      const started = Date.now();
      await expect(
        a.request('conf.rpc.silent', text('?'), { timeoutMs: 200 }),
      ).rejects.toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    });

    it('rejects with NoRespondersError at once when nobody listens', async () => {
      const started = Date.now();
      await expect(
        a.request('conf.rpc.nobody', text('?'), { timeoutMs: 5_000 }),
      ).rejects.toBeInstanceOf(NoRespondersError);
      expect(Date.now() - started).toBeLessThan(1_000);
    });

    it('collects replies from several responders with requestMany', async () => {
      for (const [t, id] of [
        [a, 'r1'],
        [b, 'r2'],
        [b, 'r3'],
      ] as const) {
        t.subscribe('conf.scatter', (msg) => msg.respond(text(id)));
      }
      await Promise.all([a.flush(), b.flush()]);

      const all = await a.requestMany('conf.scatter', text('?'), { timeoutMs: 500 });
      expect(all.map((r) => str(r.data)).sort()).toEqual(['r1', 'r2', 'r3']);

      const started = Date.now();
      const capped = await b.requestMany('conf.scatter', text('?'), {
        timeoutMs: 5_000,
        maxReplies: 3,
      });
      expect(capped).toHaveLength(3);
      expect(Date.now() - started).toBeLessThan(2_000);

      const two = await a.requestMany('conf.scatter', text('?'), {
        timeoutMs: 5_000,
        maxReplies: 2,
      });
      expect(two).toHaveLength(2);
    });

    it('resolves requestMany with no replies when nobody listens', async () => {
      const started = Date.now();
      const none = await a.requestMany('conf.scatter.nobody', text('?'), { timeoutMs: 5_000 });
      expect(none).toEqual([]);
      expect(Date.now() - started).toBeLessThan(1_000);
    });

    it('stops delivery on unsubscribe', async () => {
      const got = collect(b, 'conf.unsub');
      const done = collect(b, 'conf.unsub.done');
      await b.flush();
      await publishAndSettle(['conf.unsub'], done);
      expect(got.messages).toHaveLength(1);
      got.sub.unsubscribe();
      await b.flush();
      await publishAndSettle(['conf.unsub', 'conf.unsub'], done);
      expect(got.messages).toHaveLength(1);
    });

    it('drain hands over messages already received, then stops', async () => {
      const got = collect(b, 'conf.drain');
      const done = collect(b, 'conf.drain.done');
      await b.flush();
      const n = 20;
      for (let i = 0; i < n; i++) a.publish('conf.drain', text(String(i)));
      await a.flush();
      await got.sub.drain();
      expect(got.messages.map((m) => str(m.data))).toEqual(
        Array.from({ length: n }, (_, i) => String(i)),
      );
      await publishAndSettle(['conf.drain', 'conf.drain'], done);
      expect(got.messages).toHaveLength(n);
    });

    it('carries binary payloads bit-exact, unaffected by later changes to the buffer', async () => {
      const payload = new Uint8Array(64 * 1024 + 256);
      for (let i = 0; i < 256; i++) payload[i] = i;
      for (let i = 256; i < payload.length; i++) payload[i] = (i * 2_654_435_761) >>> 24;
      const expected = payload.slice();

      b.subscribe('conf.binary.echo', (msg) => msg.respond(msg.data));
      const got = collect(b, 'conf.binary.pub');
      await b.flush();

      const reply = await a.request('conf.binary.echo', payload, { timeoutMs: 2_000 });
      expect(Buffer.from(reply.data).equals(Buffer.from(expected))).toBe(true);

      const empty = await a.request('conf.binary.echo', new Uint8Array(0), { timeoutMs: 2_000 });
      expect(empty.data).toHaveLength(0);

      a.publish('conf.binary.pub', payload);
      payload.fill(0xff);
      await until('binary message delivered', () => got.messages.length === 1);
      expect(Buffer.from(got.messages[0]!.data).equals(Buffer.from(expected))).toBe(true);
    });

    it('after close: rejects requests, refuses publish and subscribe, reports closed', async () => {
      const statuses: TransportStatus[] = [];
      a.onStatus((s) => statuses.push(s));
      const onA = collect(a, 'conf.close.a');
      b.subscribe('conf.close.silent', () => undefined);
      b.subscribe('conf.close.echo', (msg) => msg.respond(msg.data));
      await Promise.all([a.flush(), b.flush()]);

      const inflight = a.request('conf.close.silent', text('?'), { timeoutMs: 10_000 });
      const started = Date.now();
      await a.close();
      await expect(inflight).rejects.toBeInstanceOf(UnavailableError);
      expect(Date.now() - started).toBeLessThan(5_000);
      await until('closed reported', () => statuses.includes('closed'));

      await expect(
        a.request('conf.close.echo', text('?'), { timeoutMs: 1_000 }),
      ).rejects.toBeInstanceOf(UnavailableError);
      expect(() => a.publish('conf.close.echo', text('?'))).toThrow(UnavailableError);
      expect(() => a.subscribe('conf.close.x', () => undefined)).toThrow(UnavailableError);
      await a.close();

      // The other connection is unaffected, and the closed one's subscriptions are gone.
      const reply = await b.request('conf.close.echo', text('still here'), { timeoutMs: 2_000 });
      expect(str(reply.data)).toBe('still here');
      await expect(
        b.request('conf.close.a', text('?'), { timeoutMs: 2_000 }),
      ).rejects.toBeInstanceOf(NoRespondersError);
      expect(onA.messages).toHaveLength(0);
    });
  });
}
