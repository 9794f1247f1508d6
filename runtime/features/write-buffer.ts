/**
 * Writes held back while the online store is unreachable: batches wait here, in the order they
 * came, and are retried every `retryMs` until they land, so a Redis restart loses nothing that
 * fits in the buffer. A batch stays whole (rows and processed marks of one batch are one atomic
 * step on the store), so the bound counts rows but drops whole batches, the oldest first.
 *
 * What the store refuses on a retry (a compare-and-set that no longer holds, a row it rejects) is
 * not retried: sending it again cannot succeed. It is dropped and reported to `onRefused`.
 */
import { ConflictError, BadRequestError, UnavailableError } from '../errors.js';
import type { WriteBatch, WriteResult } from './types.js';

/** Why buffered rows were dropped without landing. */
export const DropReason = {
  /** The buffer was full; the oldest batches made room. */
  Overflow: 'overflow',
  /** The store refused the batch on a retry (`ConflictError`, `BadRequestError`). */
  Refused: 'refused',
  /** Still buffered when the buffer was closed. */
  Closed: 'closed',
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

export interface WriteBufferOptions {
  /** Writes one batch to the store. */
  write: (batch: WriteBatch) => Promise<WriteResult>;
  /** Rows held at most; past it the oldest batches are dropped. @default 100000 */
  maxRows?: number;
  /** Pause between retries while the store is unreachable, in milliseconds. @default 1000 */
  retryMs?: number;
  /** Told about each buffered batch that landed. */
  onLanded?: (batch: WriteBatch, result: WriteResult) => void;
  /** Told about each buffered batch dropped without landing, and why. */
  onDropped?: (batch: WriteBatch, reason: DropReason, err?: Error) => void;
}

/** Whether the store answered "no" (retrying cannot help) rather than not answering. */
export function isRefusal(err: unknown): boolean {
  return err instanceof ConflictError || err instanceof BadRequestError;
}

export interface WriteBufferStats {
  /** Rows waiting (a batch being retried included). */
  rows: number;
  batches: number;
  /** Rows that landed from the buffer. */
  landedRows: number;
  /** Rows dropped, by reason. */
  droppedRows: Record<DropReason, number>;
}

export class WriteBuffer {
  readonly maxRows: number;
  readonly retryMs: number;
  private readonly options: WriteBufferOptions;
  /** Waiting batches, oldest at `queue[head]`. */
  private queue: WriteBatch[] = [];
  private head = 0;
  private rowCount = 0;
  private landedRows = 0;
  private readonly dropped: Record<DropReason, number> = { overflow: 0, refused: 0, closed: 0 };
  private timer: ReturnType<typeof setTimeout> | undefined;
  private draining: Promise<boolean> | undefined;
  /** The batch a retry is writing (at the head of the queue). */
  private inFlight: WriteBatch | undefined;
  private lastError: unknown;
  private closed = false;

  constructor(options: WriteBufferOptions) {
    const maxRows = options.maxRows ?? 100_000;
    if (!Number.isSafeInteger(maxRows) || maxRows < 1) {
      throw new RangeError('maxRows must be a positive integer');
    }
    const retryMs = options.retryMs ?? 1_000;
    if (!Number.isFinite(retryMs) || retryMs <= 0) {
      throw new RangeError('retryMs must be a positive number');
    }
    this.maxRows = maxRows;
    this.retryMs = retryMs;
    this.options = options;
  }

  /** Rows waiting to be written. */
  get rows(): number {
    return this.rowCount;
  }

  /** Whether nothing is waiting and no retry is running. */
  get idle(): boolean {
    return this.rowCount === 0 && this.draining === undefined && this.head === this.queue.length;
  }

  /**
   * Queues `batch` behind the ones waiting and schedules a retry. When the rows exceed `maxRows`,
   * the oldest batches are dropped (this one too, if it alone is larger), except one being written
   * at that moment.
   */
  add(batch: WriteBatch): void {
    if (this.closed) {
      this.drop(batch, DropReason.Closed);
      return;
    }
    this.queue.push(batch);
    this.rowCount += rowsOf(batch);
    this.trim();
    this.schedule();
  }

  /**
   * Writes what is waiting now, in order; resolves once the buffer is empty. Rejects with
   * `UnavailableError` (the store's error as cause) when the store is still unreachable: the rows
   * stay buffered and retries go on.
   */
  async flush(): Promise<void> {
    for (;;) {
      if (this.draining === undefined && this.head === this.queue.length) return;
      this.clearTimer();
      const emptied = await this.drain();
      if (!emptied) {
        throw new UnavailableError('online store unreachable: buffered writes are still waiting', {
          cause: this.lastError,
        });
      }
    }
  }

  /**
   * Stops retrying. Batches still waiting are dropped and reported (reason `closed`); call
   * {@link flush} first to write them.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.clearTimer();
    await this.draining;
    for (const batch of this.take()) this.drop(batch, DropReason.Closed);
  }

  stats(): WriteBufferStats {
    return {
      rows: this.rowCount,
      batches: this.queue.length - this.head,
      landedRows: this.landedRows,
      droppedRows: { ...this.dropped },
    };
  }

  private schedule(): void {
    if (this.closed || this.timer !== undefined || this.draining !== undefined) return;
    if (this.head === this.queue.length) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.drain();
    }, this.retryMs);
    // A pending retry alone does not keep the process alive.
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One pass over the queue; resolves true when it emptied it. One pass runs at a time. */
  private drain(): Promise<boolean> {
    this.draining ??= this.drainOnce().finally(() => {
      this.draining = undefined;
      this.schedule();
    });
    return this.draining;
  }

  private async drainOnce(): Promise<boolean> {
    while (this.head < this.queue.length && !this.closed) {
      // The batch stays at the head while it is written; `trim` leaves it there.
      const batch = this.queue[this.head] as WriteBatch;
      this.inFlight = batch;
      let result: WriteResult;
      try {
        result = await this.options.write(batch);
      } catch (err) {
        if (isRefusal(err)) {
          this.shift();
          this.drop(batch, DropReason.Refused, err as Error);
          continue;
        }
        this.lastError = err;
        return false;
      } finally {
        this.inFlight = undefined;
      }
      this.shift();
      this.landedRows += rowsOf(batch);
      this.options.onLanded?.(batch, result);
    }
    return this.head === this.queue.length;
  }

  private shift(): void {
    const batch = this.queue[this.head] as WriteBatch;
    this.queue[this.head] = undefined as unknown as WriteBatch;
    this.head++;
    this.rowCount -= rowsOf(batch);
    // Compact once the consumed front is half the array, so memory follows what is waiting.
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private trim(): void {
    while (this.rowCount > this.maxRows) {
      const first = this.queue[this.head];
      if (first === undefined) return;
      if (first !== this.inFlight) {
        this.shift();
        this.drop(first, DropReason.Overflow);
        continue;
      }
      // The oldest batch is being written and may be landing right now: the next oldest goes
      // instead. It swaps places with the one in flight, which stays at the head.
      const next = this.queue[this.head + 1];
      if (next === undefined) return;
      this.queue[this.head + 1] = first;
      this.queue[this.head] = next;
      this.shift();
      this.drop(next, DropReason.Overflow);
    }
  }

  private take(): WriteBatch[] {
    const rest = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    this.rowCount = 0;
    return rest;
  }

  private drop(batch: WriteBatch, reason: DropReason, err?: Error): void {
    this.dropped[reason] += rowsOf(batch);
    this.options.onDropped?.(batch, reason, err);
  }
}

/** A batch's weight in the bound: its rows, or 1 for a batch of marks only. */
function rowsOf(batch: WriteBatch): number {
  return Math.max(1, batch.rows.length);
}
