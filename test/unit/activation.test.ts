/**
 * Actor lifecycle on a host, with fake timers: activation on the first message, passivation after
 * the idle time with state written behind, timers that run in the mailbox and stop with the actor.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ActorClient } from '../../runtime/client/client.js';
import { ActorHost } from '../../runtime/host/host.js';
import { silentLogger } from '../../runtime/log.js';
import { LocalPlacement } from '../../runtime/placement/local.js';
import { InProcessTransport } from '../../runtime/transport/inproc.js';
import { counterKind, memoryCounterStore } from '../helpers/test-kinds.js';
import type { CounterProtocol } from '../helpers/test-kinds.js';

describe('actor lifecycle', () => {
  let host: ActorHost;
  let transport: InProcessTransport;
  const store = memoryCounterStore();
  const log: string[] = [];

  beforeEach(async () => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    log.length = 0;
    store.data.clear();
    transport = new InProcessTransport();
    host = new ActorHost({
      hostId: 'h',
      transport,
      kinds: [
        counterKind(store, {
          activated: (key) => log.push(`activate ${key}`),
          deactivated: (key, total) => log.push(`deactivate ${key} ${total}`),
          ticked: (key) => log.push(`tick ${key}`),
          slow: (key, phase) => log.push(`slow ${key} ${phase}`),
        }),
      ],
      placement: new LocalPlacement(['counter'], 4),
      partitions: 4,
      passivateAfterMs: 10_000,
      log: silentLogger(),
    });
    await host.start();
  });

  afterEach(async () => {
    await host.stop();
    await transport.close();
    vi.useRealTimers();
  });

  const counters = () =>
    new ActorClient({ transport, partitions: 4, defaultTimeoutMs: 60_000 }).keyed<CounterProtocol>(
      'counter',
    );

  it('activates on the first message and passivates after the idle time, writing state behind', async () => {
    await counters().ask('a', 'add', { amount: 4 });
    expect(log).toEqual(['activate a']);
    expect(host.activeActors('counter')).toBe(1);

    // Activity resets the idle clock.
    await vi.advanceTimersByTimeAsync(8_000);
    await counters().ask('a', 'add', { amount: 1 });
    await vi.advanceTimersByTimeAsync(8_000);
    expect(host.activeActors('counter')).toBe(1);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(log).toEqual(['activate a', 'deactivate a 5']);
    expect(host.activeActors('counter')).toBe(0);
    expect(store.data.get('a')).toEqual({ total: 5, activations: 1 });

    // The next message activates again from the saved state.
    expect(await counters().ask('a', 'get', {})).toMatchObject({ total: 5, activations: 2 });
  });

  it('runs timers through the mailbox, and they neither keep the actor alive nor outlive it', async () => {
    await counters().ask('t', 'tick', { everyMs: 3_000 });
    await vi.advanceTimersByTimeAsync(9_500);
    expect(log.filter((l) => l === 'tick t')).toHaveLength(3);

    // A tick that falls due (at 12 s) while a handler runs (9.5 s to 12.5 s) waits for it.
    const slow = counters().ask('t', 'slow', { ms: 3_000 });
    await vi.advanceTimersByTimeAsync(3_000);
    await slow;
    expect(log.slice(-3)).toEqual(['slow t start', 'slow t end', 'tick t']);

    // Ticks do not count as activity: the actor still passivates, and its timer stops with it.
    await vi.advanceTimersByTimeAsync(15_000);
    expect(host.activeActors('counter')).toBe(0);
    const ticks = log.filter((l) => l === 'tick t').length;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(log.filter((l) => l === 'tick t')).toHaveLength(ticks);
  });

  it('deactivates every actor on stop', async () => {
    await counters().ask('x', 'add', { amount: 1 });
    await counters().ask('y', 'add', { amount: 2 });
    await host.stop();
    expect(log.filter((l) => l.startsWith('deactivate')).sort()).toEqual([
      'deactivate x 1',
      'deactivate y 2',
    ]);
  });
});
