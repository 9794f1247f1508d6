import { afterEach, describe, expect, it, vi } from 'vitest';

import { Mailbox } from '../../runtime/actor/mailbox.js';
import { OverloadedError, RecsysError } from '../../runtime/errors.js';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run (one macrotask turn drains the microtask queue). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Posting must throw synchronously; returns what was thrown. */
function thrownBy(fn: () => void): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

/** Tracks how many tasks run at once. */
class Probe {
  running = 0;
  maxRunning = 0;
  readonly events: string[] = [];

  task(id: number | string, work: () => Promise<void>): () => Promise<void> {
    return async () => {
      this.running++;
      this.maxRunning = Math.max(this.maxRunning, this.running);
      this.events.push(`start ${id}`);
      try {
        await work();
      } finally {
        this.events.push(`end ${id}`);
        this.running--;
      }
    };
  }
}

/** A task that records `item` in `list`. */
const push = (list: string[], item: string) => (): Promise<void> => {
  list.push(item);
  return Promise.resolve();
};

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('Mailbox', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('validates its options', () => {
    for (const capacity of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new Mailbox({ capacity }), `capacity ${capacity}`).toThrow(
        'capacity must be a positive integer',
      );
    }
    for (const concurrency of [0, -2, 2.5]) {
      expect(() => new Mailbox({ capacity: 1, concurrency }), `concurrency ${concurrency}`).toThrow(
        'concurrency must be a positive integer',
      );
    }
    const mailbox = new Mailbox({ capacity: 3 });
    expect(mailbox.capacity).toBe(3);
    expect(mailbox.concurrency).toBe(1);
  });

  it('runs tasks of varied durations one at a time, in the order they were posted', async () => {
    vi.useFakeTimers();
    const mailbox = new Mailbox({ capacity: 100 });
    const probe = new Probe();
    const durations = [30, 5, 20, 1, 0, 15, 10, 2, 25, 3];
    durations.forEach((ms, i) => mailbox.post(probe.task(i, () => delay(ms))));
    // The first task starts at once; the rest wait behind it.
    expect(probe.events).toEqual(['start 0']);
    expect(mailbox.depth).toBe(durations.length);

    const idle = mailbox.whenIdle();
    await vi.runAllTimersAsync();
    await idle;

    expect(probe.events).toEqual(durations.flatMap((_, i) => [`start ${i}`, `end ${i}`]));
    expect(probe.maxRunning).toBe(1);
    expect(mailbox.depth).toBe(0);
  });

  it('runs up to `concurrency` tasks at once and starts them in posting order', async () => {
    vi.useFakeTimers();
    const mailbox = new Mailbox({ capacity: 100, concurrency: 3 });
    const probe = new Probe();
    const durations = [40, 10, 25, 5, 5, 30, 1, 15, 20, 2, 8, 12];
    const runningAtStart: number[] = [];
    durations.forEach((ms, i) =>
      mailbox.post(
        probe.task(i, async () => {
          runningAtStart.push(probe.running);
          await delay(ms);
        }),
      ),
    );
    expect(probe.events).toEqual(['start 0', 'start 1', 'start 2']);
    expect(mailbox.depth).toBe(durations.length);

    // Task 1 (10 ms) ends first; its slot goes to task 3 while 0 and 2 still run.
    await vi.advanceTimersByTimeAsync(10);
    expect(probe.events).toEqual(['start 0', 'start 1', 'start 2', 'end 1', 'start 3']);
    expect(probe.running).toBe(3);

    const idle = mailbox.whenIdle();
    await vi.runAllTimersAsync();
    await idle;

    const starts = probe.events.filter((e) => e.startsWith('start'));
    expect(starts).toEqual(durations.map((_, i) => `start ${i}`));
    expect(probe.events.filter((e) => e.startsWith('end'))).toHaveLength(durations.length);
    expect(probe.maxRunning).toBe(3);
    expect(Math.max(...runningAtStart)).toBeLessThanOrEqual(3);
  });

  it('accepts `capacity` waiting messages; the running one does not count', async () => {
    const mailbox = new Mailbox({ capacity: 2 });
    const blocker = deferred();
    const ran: string[] = [];
    mailbox.post(async () => {
      ran.push('blocker');
      await blocker.promise;
    });
    mailbox.post(push(ran, 'a'));
    mailbox.post(push(ran, 'b'));
    expect(mailbox.depth).toBe(3);

    const err = thrownBy(() => mailbox.post(push(ran, 'refused')));
    expect(err).toBeInstanceOf(OverloadedError);
    expect(err).toBeInstanceOf(RecsysError);
    const overloaded = err as OverloadedError;
    expect(overloaded.code).toBe('overloaded');
    expect(overloaded.retryable).toBe(true);
    expect(overloaded.data).toEqual({ capacity: 2 });
    expect(mailbox.depth).toBe(3);

    blocker.resolve();
    await mailbox.whenIdle();
    expect(ran).toEqual(['blocker', 'a', 'b']);
  });

  it('frees a place as soon as a waiting message starts running', async () => {
    const mailbox = new Mailbox({ capacity: 1 });
    const first = deferred();
    const second = deferred();
    mailbox.post(() => first.promise);
    mailbox.post(() => second.promise);
    expect(() => mailbox.post(() => Promise.resolve())).toThrow(OverloadedError);

    first.resolve();
    await settle();
    // The second message now runs, so the one waiting place is free again.
    expect(mailbox.depth).toBe(1);
    mailbox.post(() => Promise.resolve());
    expect(() => mailbox.post(() => Promise.resolve())).toThrow(OverloadedError);

    second.resolve();
    await mailbox.whenIdle();
    expect(mailbox.depth).toBe(0);
  });

  it('does not count tasks running under concurrency > 1 against the bound', async () => {
    const mailbox = new Mailbox({ capacity: 1, concurrency: 2 });
    const gate = deferred();
    mailbox.post(() => gate.promise);
    mailbox.post(() => gate.promise);
    mailbox.post(() => gate.promise);
    expect(mailbox.depth).toBe(3);
    expect(() => mailbox.post(() => gate.promise)).toThrow(OverloadedError);
    gate.resolve();
    await mailbox.whenIdle();
  });

  it('postSystem skips the bound and keeps FIFO order', async () => {
    const mailbox = new Mailbox({ capacity: 1 });
    const blocker = deferred();
    const ran: string[] = [];
    mailbox.post(async () => {
      await blocker.promise;
      ran.push('blocker');
    });
    mailbox.post(push(ran, 'user'));
    expect(() => mailbox.post(() => Promise.resolve())).toThrow(OverloadedError);

    mailbox.postSystem(push(ran, 'tick'));
    mailbox.postSystem(push(ran, 'deactivate'));
    expect(mailbox.depth).toBe(4);
    // System tasks fill waiting places too: user messages stay refused.
    expect(() => mailbox.post(() => Promise.resolve())).toThrow(OverloadedError);

    blocker.resolve();
    await mailbox.whenIdle();
    expect(ran).toEqual(['blocker', 'user', 'tick', 'deactivate']);
  });

  it('keeps going after a task throws or rejects', async () => {
    const mailbox = new Mailbox({ capacity: 10 });
    const ran: string[] = [];
    mailbox.post(() => {
      ran.push('sync throw');
      throw new Error('sync');
    });
    mailbox.post(async () => {
      ran.push('async reject');
      await Promise.resolve();
      throw new Error('async');
    });
    mailbox.post(() => {
      ran.push('rejected promise');
      return Promise.reject(new RangeError('rejected'));
    });
    mailbox.post(push(ran, 'after'));

    await mailbox.whenIdle();
    expect(ran).toEqual(['sync throw', 'async reject', 'rejected promise', 'after']);
    expect(mailbox.depth).toBe(0);

    mailbox.post(push(ran, 'later'));
    await mailbox.whenIdle();
    expect(ran.at(-1)).toBe('later');
  });

  it('whenIdle resolves at once when idle and otherwise after the last task', async () => {
    const mailbox = new Mailbox({ capacity: 10 });
    expect(mailbox.isIdle).toBe(true);
    await mailbox.whenIdle();

    const a = deferred();
    const b = deferred();
    mailbox.post(() => a.promise);
    mailbox.post(() => b.promise);
    let idleCount = 0;
    void mailbox.whenIdle().then(() => idleCount++);
    void mailbox.whenIdle().then(() => idleCount++);

    a.resolve();
    await settle();
    expect(mailbox.isIdle).toBe(false);
    expect(idleCount).toBe(0);

    b.resolve();
    await settle();
    expect(mailbox.isIdle).toBe(true);
    expect(idleCount).toBe(2);

    // A mailbox that became idle can get busy again and be waited on again.
    const c = deferred();
    mailbox.post(() => c.promise);
    let idleAgain = false;
    void mailbox.whenIdle().then(() => (idleAgain = true));
    await settle();
    expect(idleAgain).toBe(false);
    c.resolve();
    await settle();
    expect(idleAgain).toBe(true);
  });

  it('whenIdle waits for tasks posted by a running task', async () => {
    const mailbox = new Mailbox({ capacity: 10 });
    const ran: string[] = [];
    mailbox.post(async () => {
      ran.push('parent');
      await Promise.resolve();
      mailbox.post(async () => {
        await Promise.resolve();
        ran.push('child');
      });
    });
    mailbox.post(push(ran, 'sibling'));
    await mailbox.whenIdle();
    // The child was posted after the sibling was queued, so it runs after it.
    expect(ran).toEqual(['parent', 'sibling', 'child']);
  });

  it('depth counts waiting plus running messages', async () => {
    const mailbox = new Mailbox({ capacity: 10, concurrency: 2 });
    const gates = [deferred(), deferred(), deferred(), deferred()];
    expect(mailbox.depth).toBe(0);
    for (const gate of gates) mailbox.post(() => gate.promise);
    expect(mailbox.depth).toBe(4);

    const expected = [3, 2, 1, 0];
    for (const [i, gate] of gates.entries()) {
      gate.resolve();
      await settle();
      expect(mailbox.depth, `after task ${i}`).toBe(expected[i]);
    }
    expect(mailbox.isIdle).toBe(true);
  });

  it('keeps FIFO order over a long run of many tasks, with posts while it drains', async () => {
    const total = 3500;
    const mailbox = new Mailbox({ capacity: total });
    const blocker = deferred();
    const order: number[] = [];
    mailbox.post(() => blocker.promise);
    let next = 0;
    let finished = 0;
    const wrongDepths: string[] = [];
    const post = (): void => {
      const id = next++;
      mailbox.post(async () => {
        order.push(id);
        // Everything posted and not finished is waiting or running; nothing else may count.
        if (mailbox.depth !== next - finished) wrongDepths.push(`${id}: ${mailbox.depth}`);
        await Promise.resolve();
        // The first tasks post more while thousands still wait, so the queue is appended to
        // while its consumed front is being compacted away.
        if (id < 600) post();
        finished++;
      });
    };
    for (let i = 0; i < 3000; i++) post();
    expect(mailbox.depth).toBe(3001);

    blocker.resolve();
    await mailbox.whenIdle();
    expect(order).toHaveLength(3600);
    expect(order).toEqual(Array.from({ length: 3600 }, (_, i) => i));
    expect(wrongDepths).toEqual([]);
    expect(mailbox.depth).toBe(0);

    // Still usable, and still bounded, after the long run.
    const gate = deferred();
    mailbox.post(() => gate.promise);
    for (let i = 0; i < total; i++) mailbox.post(() => Promise.resolve());
    expect(() => mailbox.post(() => Promise.resolve())).toThrow(OverloadedError);
    gate.resolve();
    await mailbox.whenIdle();
    expect(mailbox.depth).toBe(0);
  });
});
