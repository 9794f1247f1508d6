import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, timerDelay, within } from '../../runtime/timeouts.js';

import { Mailbox } from '../../runtime/actor/mailbox.js';
import { ActorTimers } from '../../runtime/actor/timers.js';

type Task = () => Promise<void>;

/** A post function that holds tasks until the test runs them, like a busy mailbox. */
class HeldPosts {
  readonly tasks: Task[] = [];
  readonly post = (task: Task): void => {
    this.tasks.push(task);
  };

  get pending(): number {
    return this.tasks.length;
  }

  /** Runs every held task in order, including tasks they post. */
  async runAll(): Promise<void> {
    for (let task = this.tasks.shift(); task !== undefined; task = this.tasks.shift()) await task();
  }
}

/** A post function that runs each task at once, like an idle mailbox. */
function immediatePost(): { post: (task: Task) => void; posted: () => number } {
  let posted = 0;
  return {
    post: (task) => {
      posted++;
      void task();
    },
    posted: () => posted,
  };
}

describe('ActorTimers', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires a one-shot timer once, through the post function', async () => {
    const held = new HeldPosts();
    const timers = new ActorTimers(held.post);
    const callback = vi.fn();
    timers.start('once', 100, callback);
    expect(timers.size).toBe(1);

    await vi.advanceTimersByTimeAsync(99);
    expect(held.pending).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(held.pending).toBe(1);
    // The timer only posts; the callback runs when the mailbox runs the task.
    expect(callback).not.toHaveBeenCalled();

    await held.runAll();
    expect(callback).toHaveBeenCalledTimes(1);
    expect(timers.size).toBe(0);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(held.pending).toBe(0);
    expect(callback).toHaveBeenCalledTimes(1);
  });

  it('fires a repeating timer every period until cancelled', async () => {
    const { post, posted } = immediatePost();
    const timers = new ActorTimers(post);
    const callback = vi.fn();
    timers.start('tick', 100, callback, { repeat: true });

    await vi.advanceTimersByTimeAsync(350);
    expect(callback).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(50);
    expect(callback).toHaveBeenCalledTimes(4);
    expect(timers.size).toBe(1);

    timers.cancel('tick');
    expect(timers.size).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(callback).toHaveBeenCalledTimes(4);
    expect(posted()).toBe(4);
  });

  it('does not fire a timer cancelled before it is due', async () => {
    const held = new HeldPosts();
    const timers = new ActorTimers(held.post);
    timers.start('once', 100, vi.fn());
    timers.start('tick', 100, vi.fn(), { repeat: true });
    await vi.advanceTimersByTimeAsync(50);
    timers.cancel('once');
    timers.cancel('tick');
    timers.cancel('never-started');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(held.pending).toBe(0);
    expect(timers.size).toBe(0);
  });

  it('restarting a timer replaces its schedule and its callback', async () => {
    const { post } = immediatePost();
    const timers = new ActorTimers(post);
    const first = vi.fn();
    const second = vi.fn();
    timers.start('t', 100, first);
    await vi.advanceTimersByTimeAsync(60);
    timers.start('t', 100, second);
    expect(timers.size).toBe(1);

    await vi.advanceTimersByTimeAsync(99);
    expect(second).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(second).toHaveBeenCalledTimes(1);
    expect(first).not.toHaveBeenCalled();
  });

  it('skips a one-shot tick that was queued but not run when the timer is cancelled', async () => {
    const held = new HeldPosts();
    const timers = new ActorTimers(held.post);
    const callback = vi.fn();
    timers.start('once', 10, callback);
    await vi.advanceTimersByTimeAsync(10);
    expect(held.pending).toBe(1);

    timers.cancel('once');
    await held.runAll();
    expect(callback).not.toHaveBeenCalled();
  });

  it('skips a repeating tick that was queued but not run when the timer is cancelled', async () => {
    const held = new HeldPosts();
    const timers = new ActorTimers(held.post);
    const callback = vi.fn();
    timers.start('tick', 10, callback, { repeat: true });
    await vi.advanceTimersByTimeAsync(10);
    expect(held.pending).toBe(1);

    timers.cancel('tick');
    await held.runAll();
    await vi.advanceTimersByTimeAsync(100);
    expect(held.pending).toBe(0);
    expect(callback).not.toHaveBeenCalled();
  });

  it('skips the old tick queued before a restart, and runs the new timer', async () => {
    const held = new HeldPosts();
    const timers = new ActorTimers(held.post);
    const old = vi.fn();
    const fresh = vi.fn();
    timers.start('t', 10, old, { repeat: true });
    await vi.advanceTimersByTimeAsync(10);
    expect(held.pending).toBe(1);

    timers.start('t', 10, fresh, { repeat: true });
    await held.runAll();
    expect(old).not.toHaveBeenCalled();
    // The new timer is not blocked by the old one's stale pending tick.
    await vi.advanceTimersByTimeAsync(10);
    expect(held.pending).toBe(1);
    await held.runAll();
    expect(fresh).toHaveBeenCalledTimes(1);
    expect(old).not.toHaveBeenCalled();
  });

  it('posts only one pending tick of a repeating timer while the mailbox holds it', async () => {
    const held = new HeldPosts();
    const timers = new ActorTimers(held.post);
    const callback = vi.fn();
    timers.start('tick', 10, callback, { repeat: true });

    await vi.advanceTimersByTimeAsync(100);
    expect(held.pending).toBe(1);

    await held.runAll();
    expect(callback).toHaveBeenCalledTimes(1);

    // Once the tick ran, the next period posts again, and again only once.
    await vi.advanceTimersByTimeAsync(10);
    expect(held.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(held.pending).toBe(1);
    await held.runAll();
    expect(callback).toHaveBeenCalledTimes(2);
  });

  it('keeps a repeating timer alive when its callback throws', async () => {
    const held = new HeldPosts();
    const timers = new ActorTimers(held.post);
    const callback = vi.fn(() => {
      throw new Error('tick failed');
    });
    timers.start('tick', 10, callback, { repeat: true });

    await vi.advanceTimersByTimeAsync(10);
    // The task reports the failure to whoever runs it (the mailbox swallows it).
    await expect(held.tasks.shift()?.()).rejects.toThrow('tick failed');
    await vi.advanceTimersByTimeAsync(10);
    expect(held.pending).toBe(1);
    await expect(held.tasks.shift()?.()).rejects.toThrow('tick failed');
    expect(callback).toHaveBeenCalledTimes(2);
  });

  it('the posted task settles only when an async callback has finished', async () => {
    const held = new HeldPosts();
    const timers = new ActorTimers(held.post);
    let release!: () => void;
    let finished = false;
    timers.start('slow', 10, async () => {
      await new Promise<void>((resolve) => (release = resolve));
      finished = true;
    });
    await vi.advanceTimersByTimeAsync(10);
    const task = held.tasks.shift();
    expect(task).toBeDefined();

    let settled = false;
    const running = task?.().then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);

    release();
    await running;
    expect(finished).toBe(true);
    expect(settled).toBe(true);
  });

  it('lets a one-shot callback schedule the same timer again', async () => {
    const { post } = immediatePost();
    const timers = new ActorTimers(post);
    let fired = 0;
    const again = (): void => {
      fired++;
      if (fired < 3) timers.start('again', 50, again);
    };
    timers.start('again', 50, again);

    await vi.advanceTimersByTimeAsync(500);
    expect(fired).toBe(3);
    expect(timers.size).toBe(0);
  });

  it('cancelAll stops every timer and skips their queued ticks', async () => {
    const held = new HeldPosts();
    const timers = new ActorTimers(held.post);
    const [a, b, c] = [vi.fn(), vi.fn(), vi.fn()];
    timers.start('a', 10, a);
    timers.start('b', 10, b, { repeat: true });
    timers.start('c', 1_000, c, { repeat: true });
    expect(timers.size).toBe(3);

    await vi.advanceTimersByTimeAsync(10);
    expect(held.pending).toBe(2);

    timers.cancelAll();
    expect(timers.size).toBe(0);
    await held.runAll();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(held.pending).toBe(0);
    for (const callback of [a, b, c]) expect(callback).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never runs a tick beside a handler when posting to a mailbox', async () => {
    const mailbox = new Mailbox({ capacity: 10 });
    const timers = new ActorTimers((task) => mailbox.postSystem(task));
    let running = 0;
    let overlapped = false;
    const events: string[] = [];
    const enter = (what: string): void => {
      if (running > 0) overlapped = true;
      running++;
      events.push(what);
    };
    const leave = (): void => {
      running--;
    };

    timers.start(
      'tick',
      10,
      () => {
        enter('tick');
        leave();
      },
      { repeat: true },
    );
    // A slow handler holds the mailbox for 100 ms, ten timer periods.
    mailbox.post(async () => {
      enter('handler');
      await new Promise((resolve) => setTimeout(resolve, 100));
      leave();
    });

    await vi.advanceTimersByTimeAsync(100);
    // The ticks that fell due during the handler were coalesced into one queued tick.
    expect(events).toEqual(['handler', 'tick']);
    await vi.advanceTimersByTimeAsync(30);
    expect(events).toEqual(['handler', 'tick', 'tick', 'tick', 'tick']);
    expect(overlapped).toBe(false);
    timers.cancelAll();
    await mailbox.whenIdle();
  });
});

describe('timerDelay', () => {
  it('keeps a delay within what setTimeout honours', () => {
    expect(timerDelay(25)).toBe(25);
    expect(timerDelay(-5)).toBe(0);
    // Past 2^31 - 1 ms node would fire after 1 ms: a far deadline must not become "now".
    expect(timerDelay(30 * 24 * 3_600_000)).toBe(MAX_TIMER_MS);
    expect(MAX_TIMER_MS).toBe(2_147_483_647);
  });
});

describe('within', () => {
  const late = () => new Error('late');

  it('passes the work through when it settles in time', async () => {
    await expect(within(Promise.resolve(7), 50, late)).resolves.toBe(7);
    await expect(within(Promise.reject(new Error('own')), 50, late)).rejects.toThrow('own');
  });

  it('rejects with its own error once the time is up, and at once with none left', async () => {
    const never = new Promise<number>(() => undefined);
    await expect(within(never, 10, late)).rejects.toThrow('late');
    // The work failing later is not left unhandled.
    const failing = new Promise<number>((_, reject) => setTimeout(() => reject(new Error('x')), 5));
    await expect(within(failing, 0, late)).rejects.toThrow('late');
    await new Promise((resolve) => setTimeout(resolve, 10));
  });
});
