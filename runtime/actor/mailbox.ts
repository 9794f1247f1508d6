/**
 * A bounded FIFO mailbox. Tasks run one at a time (or up to `concurrency` at a time for actors that
 * hand their work to a worker pool), in the order they were posted. A full mailbox refuses new
 * messages with a retryable `OverloadedError` instead of growing without bound: under overload the
 * caller backs off or tries another replica, and memory stays flat.
 */
import { OverloadedError } from '../errors.js';

export interface MailboxOptions {
  /** Messages that may wait (not counting those running). */
  capacity: number;
  /** Messages that may run at once. @default 1 */
  concurrency?: number;
}

type Task = () => Promise<void>;

export class Mailbox {
  readonly capacity: number;
  readonly concurrency: number;
  private readonly queue: Task[] = [];
  private head = 0;
  private running = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(options: MailboxOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError('capacity must be a positive integer');
    }
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError('concurrency must be a positive integer');
    }
    this.capacity = options.capacity;
    this.concurrency = concurrency;
  }

  /** Messages waiting plus messages running. */
  get depth(): number {
    return this.queue.length - this.head + this.running;
  }

  get isIdle(): boolean {
    return this.depth === 0;
  }

  /** Posts a message; throws `OverloadedError` when `capacity` messages already wait. */
  post(task: Task): void {
    if (this.queue.length - this.head >= this.capacity) {
      throw new OverloadedError(`mailbox full (${this.capacity} waiting)`, {
        data: { capacity: this.capacity },
      });
    }
    this.enqueue(task);
  }

  /**
   * Posts a task the runtime itself needs to run (a timer tick, activation, deactivation). It skips
   * the bound: dropping it would break the actor's lifecycle, and there is at most one per timer.
   */
  postSystem(task: Task): void {
    this.enqueue(task);
  }

  /** Resolves once nothing waits and nothing runs. */
  whenIdle(): Promise<void> {
    if (this.isIdle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(task: Task): void {
    this.queue.push(task);
    if (this.running < this.concurrency) this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.head < this.queue.length) {
      const task = this.queue[this.head] as Task;
      this.queue[this.head] = undefined as unknown as Task;
      this.head++;
      // Compact now and then so a long-lived mailbox does not keep a growing array.
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.running++;
      void this.run(task);
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
  }

  private async run(task: Task): Promise<void> {
    try {
      await task();
    } catch {
      // Tasks report their own failures (as error replies); a throw here must not stop the queue.
    } finally {
      this.running--;
      if (this.isIdle) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      } else {
        this.pump();
      }
    }
  }
}
