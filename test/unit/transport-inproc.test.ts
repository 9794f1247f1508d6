import { afterEach, describe, expect, it } from 'vitest';

import { BadRequestError, TimeoutError } from '../../runtime/errors.js';
import { InProcessBus, InProcessTransport } from '../../runtime/transport/inproc.js';
import type { InboundMessage } from '../../runtime/transport/types.js';
import { eventually } from '../helpers/eventually.js';
import { transportConformance } from '../helpers/transport-conformance.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

transportConformance('in-process', () => {
  const bus = new InProcessBus();
  const a = new InProcessTransport(bus);
  const b = new InProcessTransport(bus);
  return Promise.resolve({
    a,
    b,
    cleanup: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  });
});

describe('InProcessTransport', () => {
  const open: InProcessTransport[] = [];
  const transport = (bus?: InProcessBus): InProcessTransport => {
    const t = new InProcessTransport(bus);
    open.push(t);
    return t;
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  it('isolates transports on different buses', async () => {
    const a = transport();
    const b = transport();
    const got: InboundMessage[] = [];
    b.subscribe('iso.x', (msg) => got.push(msg));
    a.publish('iso.x', text('1'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(got).toHaveLength(0);
  });

  it('drops messages still queued when a subscription unsubscribes', async () => {
    const t = transport();
    const got: string[] = [];
    const sub = t.subscribe('drop.x', (msg) => got.push(new TextDecoder().decode(msg.data)));
    t.publish('drop.x', text('1'));
    t.publish('drop.x', text('2'));
    sub.unsubscribe();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(got).toEqual([]);
  });

  it('stops a batch when the handler unsubscribes mid-way', async () => {
    const t = transport();
    const got: number[] = [];
    const sub = t.subscribe('mid.x', (msg) => {
      got.push(msg.data[0]!);
      if (got.length === 2) sub.unsubscribe();
    });
    for (let i = 0; i < 5; i++) t.publish('mid.x', new Uint8Array([i]));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(got).toEqual([0, 1]);
  });

  it('routes to subscriptions made after a subject was last published (cache invalidation)', async () => {
    const t = transport();
    const first: string[] = [];
    const later: string[] = [];
    t.subscribe('cache.a.b', (msg) => first.push(msg.subject));
    t.publish('cache.a.b', text('1'));
    const wildcard = t.subscribe('cache.*.b', (msg) => later.push(msg.subject));
    const literal = t.subscribe('cache.a.b', (msg) => later.push(`lit:${msg.subject}`));
    t.publish('cache.a.b', text('2'));
    await eventually(() => later.length === 2);
    wildcard.unsubscribe();
    literal.unsubscribe();
    t.publish('cache.a.b', text('3'));
    await eventually(() => first.length === 3);
    expect(later.sort()).toEqual(['cache.a.b', 'lit:cache.a.b']);
  });

  it('spreads a queue group evenly', async () => {
    const t = transport();
    const counts = [0, 0, 0];
    counts.forEach((_, i) => t.subscribe('rr.x', () => counts[i]!++, { queue: 'q' }));
    for (let i = 0; i < 300; i++) t.publish('rr.x', text(''));
    await eventually(() => counts.reduce((x, y) => x + y) === 300);
    expect(counts).toEqual([100, 100, 100]);
  });

  it('drops a late reply silently', async () => {
    const t = transport();
    let late: InboundMessage | undefined;
    t.subscribe('late.x', (msg) => (late = msg));
    await expect(t.request('late.x', text(''), { timeoutMs: 20 })).rejects.toBeInstanceOf(
      TimeoutError,
    );
    expect(() => late!.respond(text('too late'))).not.toThrow();
  });

  it('rejects malformed subjects', () => {
    const t = transport();
    expect(() => t.subscribe('a..b', () => undefined)).toThrow(BadRequestError);
    expect(() => t.subscribe('a.>.b', () => undefined)).toThrow(BadRequestError);
    expect(() => t.subscribe('', () => undefined)).toThrow(BadRequestError);
    expect(() => t.publish('a.*', text(''))).toThrow(BadRequestError);
    expect(() => t.publish('a b', text(''))).toThrow(BadRequestError);
  });

  it('finishes the current batch when a handler drains its own subscription', async () => {
    const t = transport();
    const got: number[] = [];
    let drained: Promise<void> | undefined;
    const sub = t.subscribe('self.drain', (msg) => {
      got.push(msg.data[0]!);
      drained ??= sub.drain();
    });
    for (let i = 0; i < 3; i++) t.publish('self.drain', new Uint8Array([i]));
    await eventually(() => drained !== undefined);
    await drained;
    t.publish('self.drain', new Uint8Array([9]));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(got).toEqual([0, 1, 2]);
  });

  it('lets a draining subscription still answer what it took', async () => {
    const t = transport();
    const sub = t.subscribe('drain.rpc', (msg) => msg.respond(text('ok')));
    const reply = t.request('drain.rpc', text(''), { timeoutMs: 1_000 });
    await sub.drain();
    expect(new TextDecoder().decode((await reply).data)).toBe('ok');
  });
});
