/**
 * Actor timers. A timer never runs beside a handler: when it fires it posts a task to the actor's
 * mailbox, so its callback sees the same one-at-a-time world as message handlers. A repeating timer
 * whose previous tick is still queued skips a beat instead of piling up ticks behind a slow actor.
 */

export type TimerCallback = () => void | Promise<void>;

export interface TimerOptions {
  /** Fire every `delayMs` until cancelled. @default false */
  repeat?: boolean;
}

interface TimerEntry {
  handle: ReturnType<typeof setTimeout>;
  repeat: boolean;
  pending: boolean;
}

export class ActorTimers {
  private readonly timers = new Map<string, TimerEntry>();

  constructor(private readonly post: (task: () => Promise<void>) => void) {}

  /** Starts (or restarts) the named timer. */
  start(name: string, delayMs: number, callback: TimerCallback, options: TimerOptions = {}): void {
    this.cancel(name);
    const repeat = options.repeat ?? false;
    const fire = (): void => {
      const entry = this.timers.get(name);
      if (entry === undefined || entry.pending) return;
      entry.pending = true;
      this.post(async () => {
        // A timer cancelled or restarted after its tick was queued must not run that tick.
        if (this.timers.get(name) !== entry) return;
        entry.pending = false;
        if (!repeat) this.timers.delete(name);
        await callback();
      });
    };
    const handle = repeat ? setInterval(fire, delayMs) : setTimeout(fire, delayMs);
    // Timers must not keep a process alive that is otherwise done.
    handle.unref?.();
    this.timers.set(name, { handle, repeat, pending: false });
  }

  cancel(name: string): void {
    const entry = this.timers.get(name);
    if (entry === undefined) return;
    if (entry.repeat) clearInterval(entry.handle);
    else clearTimeout(entry.handle);
    this.timers.delete(name);
  }

  cancelAll(): void {
    for (const name of [...this.timers.keys()]) this.cancel(name);
  }

  get size(): number {
    return this.timers.size;
  }
}
