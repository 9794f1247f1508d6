/**
 * A validated, batching consumer of the events stream, on top of a durable {@link EventStream}
 * consumer: what every owner of an effect of events (session windows, feature writes, experiment
 * counters) reads through.
 *
 * - Batches: the effect's owner writes a batch in one round trip (one Redis transaction), not one
 *   per event. Messages are gathered up to `batchSize` or for `batchDelayMs` after the first; with
 *   no delay (the default) a batch starts as soon as the reader is idle, with what arrived in the
 *   same turn of the event loop, and what arrives while it runs forms the next one (natural
 *   batching: an event waits for no timer when the reader is idle, and batches grow with the
 *   load). One batch is handled at a time, and a batch's messages are acknowledged only once its `handle`
 *   has resolved. A rejected `handle` has every message of the batch delivered again (after
 *   `retryDelayMs`); the durable may hand them to another reader. This reader handles each of
 *   them alone when it comes back, so one event that always fails reaches the dead letters by
 *   itself rather than with its whole batch.
 * - Dead letters: an event `parse` refuses (`BadRequestError`) is stored on
 *   `<prefix>.events.dead.<durable>` with the reason and then acknowledged, so a malformed event
 *   never loops; an event whose batch failed `maxDeliver` times goes there too, with the last
 *   error. The dead letter is the original payload with `Recsys-Dead-*` headers, on the events
 *   stream itself, so `nats stream view` shows it beside the events.
 * - Repeats: delivery is at least once. A batch may hold an event its effect already has (a
 *   reader that stopped between writing and acknowledging, an event published twice after the
 *   stream's duplicate window). Dropping those is the effect's owner's job, with processed marks
 *   written in the same atomic step as the effect (`WriteBatch.marks`, `OnlineStore.processed`):
 *   a memory of ids here would be lost with the reader, which is exactly when it is needed.
 *   {@link dropProcessed} does the reading half.
 */
import type { Logger } from 'pino';
import { Counter, Registry } from 'prom-client';

import { BadRequestError } from '../errors.js';
import type { OnlineStore } from '../features/index.js';
import { subjectsOverlap } from '../stream/index.js';
import type { EventStream, StreamMessage, StreamReader } from '../stream/index.js';
import { assertPrefix } from '../subjects.js';
import { deadLetterFilter, deadLetterSubject } from './feedback.js';

/** Headers a dead letter carries besides those the event was published with. */
export const DeadLetterHeader = {
  /** Why it was given up: the parse error, or the last error of its batch's `handle`. */
  Reason: 'Recsys-Dead-Reason',
  /** The subject it was published on. */
  Subject: 'Recsys-Dead-Subject',
  /** Its sequence in the events stream. */
  Seq: 'Recsys-Dead-Seq',
  /** The durable consumer that gave it up. */
  Consumer: 'Recsys-Dead-Consumer',
} as const;
export type DeadLetterHeader = (typeof DeadLetterHeader)[keyof typeof DeadLetterHeader];

/** One event of a batch, with the stream message it came in. */
export interface EventBatchEntry<E> {
  readonly event: E;
  readonly message: StreamMessage;
}

export interface EventConsumerOptions<E> {
  /**
   * The durable consumer (`[A-Za-z0-9_-]+`): its place in the stream, shared by every reader that
   * joins it, and the last token of its dead-letter subject.
   */
  durable: string;
  /** The subjects it takes, e.g. `<prefix>.events.feedback.>`; never the dead letters. */
  filter: string;
  /** The deployment's subject prefix: where dead letters go. */
  prefix: string;
  /**
   * Turns a message's payload into an event; throws `BadRequestError` for a malformed one, which
   * then goes to the dead letters (any other error has the message delivered again).
   * `parseFeedbackEvent` and `parseImpressionEvent` fit.
   */
  parse: (data: Uint8Array, message: StreamMessage) => E;
  /**
   * Applies a batch, in the order this reader got it (an event delivered again comes after later
   * ones). Resolving acknowledges every message of the batch; rejecting has them all delivered
   * again. It may see an event again (see the file's header): an effect that must not count twice
   * checks processed marks keyed by event id ({@link dropProcessed}) and writes them in the same
   * atomic step as the effect (`WriteBatch.marks`), kept longer than a repeat can come late (at
   * least `maxDeliver × ackWaitMs`).
   */
  handle: (batch: readonly EventBatchEntry<E>[]) => Promise<void>;
  /** Most events in one batch; also how many messages the reader holds at once. @default 256 */
  batchSize?: number;
  /**
   * How long a batch gathers after its first event before it is handled; 0 handles it as soon as
   * the reader is idle (see the module). @default 0
   */
  batchDelayMs?: number;
  /**
   * Deliveries of an event before it goes to the dead letters (`events.max_deliver`).
   * @default 5
   */
  maxDeliver?: number;
  /**
   * A message not acknowledged within this time is delivered again; keep it well above the time a
   * batch takes, pauses after failures included. @default 30000
   */
  ackWaitMs?: number;
  /**
   * Pause after a rejected `handle` before its messages go back for redelivery, so a store that is
   * away for a moment does not use up `maxDeliver` in milliseconds. @default 1000
   */
  retryDelayMs?: number;
  /**
   * Where the counters go (`recsys_events_processed_total`, `recsys_events_failed_total`,
   * `recsys_events_dead_letters_total`, `recsys_events_lost_total`, labelled by consumer).
   * @default a registry of its own, not exposed
   */
  registry?: Registry;
  log?: Logger;
  /** Told when the reader stops on its own (the consumer or connection failed for good). */
  onError?: (err: Error) => void;
}

export interface ResolvedEventConsumerOptions<E> {
  durable: string;
  filter: string;
  prefix: string;
  parse: (data: Uint8Array, message: StreamMessage) => E;
  handle: (batch: readonly EventBatchEntry<E>[]) => Promise<void>;
  batchSize: number;
  batchDelayMs: number;
  maxDeliver: number;
  ackWaitMs: number;
  retryDelayMs: number;
}

/** Largest batch: a processed-mark write holds at most this many ids. */
export const MAX_BATCH_SIZE = 10_000;
/** Longest dead-letter reason kept, in characters. */
const MAX_REASON_LENGTH = 1000;

function integer(value: number, name: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new BadRequestError(name, `must be an integer in ${min}..${max}`);
  }
  return value;
}

/** Validates once, naming the option, and applies the defaults. */
export function resolveEventConsumerOptions<E>(
  options: EventConsumerOptions<E>,
): ResolvedEventConsumerOptions<E> {
  const prefix = assertPrefix(options.prefix);
  if (typeof options.parse !== 'function') throw new BadRequestError('parse', 'must be a function');
  if (typeof options.handle !== 'function') {
    throw new BadRequestError('handle', 'must be a function');
  }
  // The dead letters of this consumer would come back to it, fail to parse, and go round again.
  if (typeof options.filter !== 'string' || options.filter.length === 0) {
    throw new BadRequestError('filter', 'must name the subjects to consume');
  }
  if (subjectsOverlap(options.filter, deadLetterFilter(prefix))) {
    throw new BadRequestError(
      'filter',
      `must not take the dead letters (${deadLetterFilter(prefix)})`,
    );
  }
  // Checked here as a token, so a bad name fails before the durable is created.
  deadLetterSubject(prefix, options.durable);
  return {
    durable: options.durable,
    filter: options.filter,
    prefix,
    parse: options.parse,
    handle: options.handle,
    batchSize: integer(options.batchSize ?? 256, 'batchSize', 1, MAX_BATCH_SIZE),
    batchDelayMs: integer(options.batchDelayMs ?? 0, 'batchDelayMs', 0, 60_000),
    maxDeliver: integer(options.maxDeliver ?? 5, 'maxDeliver', 1, 1000),
    ackWaitMs: integer(options.ackWaitMs ?? 30_000, 'ackWaitMs', 1, 86_400_000),
    retryDelayMs: integer(options.retryDelayMs ?? 1000, 'retryDelayMs', 0, 600_000),
  };
}

/** The consumers' counters, made once per registry (prom-client refuses a name twice). */
export interface EventConsumerMetrics {
  readonly processed: Counter<'consumer'>;
  readonly failed: Counter<'consumer'>;
  readonly deadLetters: Counter<'consumer'>;
  readonly lost: Counter<'consumer'>;
}

const metricsByRegistry = new WeakMap<Registry, EventConsumerMetrics>();

export function eventConsumerMetrics(registry: Registry): EventConsumerMetrics {
  const known = metricsByRegistry.get(registry);
  if (known !== undefined) return known;
  const counter = (name: string, help: string): Counter<'consumer'> =>
    new Counter({ name, help, labelNames: ['consumer'], registers: [registry] });
  const metrics: EventConsumerMetrics = {
    processed: counter(
      'recsys_events_processed_total',
      'Events whose batch was handled and acknowledged, by consumer',
    ),
    failed: counter(
      'recsys_events_failed_total',
      'Events whose batch handler failed (each is delivered again), by consumer',
    ),
    deadLetters: counter(
      'recsys_events_dead_letters_total',
      'Events stored on the dead-letter subject (malformed, or failed max_deliver times)',
    ),
    lost: counter(
      'recsys_events_lost_total',
      'Events given up on whose dead letter could not be stored',
    ),
  };
  metricsByRegistry.set(registry, metrics);
  return metrics;
}

/**
 * The entries of `batch` whose effect is not done yet: those without a processed mark of `scope`,
 * first occurrence only (an id repeated within the batch is one event). Write the effect of what
 * it returns with `marks: { scope, ids, ttlMs }` in the same `OnlineStore.write`.
 */
export async function dropProcessed<E>(
  store: Pick<OnlineStore, 'processed'>,
  scope: string,
  batch: readonly EventBatchEntry<E>[],
  idOf: (event: E) => string,
): Promise<EventBatchEntry<E>[]> {
  const seen = new Set<string>();
  const unique: EventBatchEntry<E>[] = [];
  for (const entry of batch) {
    const id = idOf(entry.event);
    if (seen.has(id)) continue;
    seen.add(id);
    unique.push(entry);
  }
  if (unique.length === 0) return unique;
  const done = await store.processed(
    scope,
    unique.map((entry) => idOf(entry.event)),
  );
  return unique.filter((_, i) => done[i] !== true);
}

/** A running consumer. */
export interface EventConsumer {
  /**
   * Stops taking messages, hands what it gathered to `handle` at once, and resolves when no batch
   * is running. Not to be awaited inside `handle`, which it would wait for.
   */
  stop(): Promise<void>;
}

/**
 * Joins durable `options.durable` on `stream` (the events stream, which also captures the dead
 * letters) and feeds `options.handle` with batches of parsed events. Rejects with
 * `BadRequestError` naming a bad option.
 */
export async function consumeEvents<E>(
  stream: EventStream,
  options: EventConsumerOptions<E>,
): Promise<EventConsumer> {
  const resolved = resolveEventConsumerOptions(options);
  const consumer = new BatchingConsumer(
    stream,
    resolved,
    eventConsumerMetrics(options.registry ?? new Registry()),
    options.log,
  );
  await consumer.start(options.onError);
  return consumer;
}

interface Waiting<E> {
  readonly entry: EventBatchEntry<E>;
  readonly settle: (err: Error | undefined) => void;
}

/** Sequences of failed batches remembered at most; past it the oldest are forgotten. */
const MAX_SUSPECTS = 100_000;

class BatchingConsumer<E> implements EventConsumer {
  private reader: StreamReader | undefined;
  /** Gathered, not yet handed to `handle`. Never more than `batchSize`: the reader holds no more. */
  private gathered: Waiting<E>[] = [];
  /** Events of a failed batch, delivered again: each is handled alone. */
  private readonly isolated: Waiting<E>[] = [];
  /**
   * Sequences of the events of failed batches. Their next delivery is handled alone, so one event
   * that always fails goes to the dead letters by itself instead of taking its batch with it.
   */
  private readonly suspects = new Set<number>();
  /** The gathered batch is due: full, its delay over, or the consumer stopping. */
  private due = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The idle reader's next batch, at the end of this turn of the event loop (no delay). */
  private immediate: ReturnType<typeof setImmediate> | undefined;
  /** The batch being handled, if any: one at a time. */
  private running: Promise<void> | undefined;
  private stopping = false;
  /** Ends the pause after a failure early, when the consumer stops. */
  private wake: (() => void) | undefined;
  private readonly deadSubject: string;
  private readonly label: { consumer: string };

  constructor(
    private readonly stream: EventStream,
    private readonly options: ResolvedEventConsumerOptions<E>,
    private readonly metrics: EventConsumerMetrics,
    private readonly log: Logger | undefined,
  ) {
    this.deadSubject = deadLetterSubject(options.prefix, options.durable);
    this.label = { consumer: options.durable };
  }

  async start(onError: ((err: Error) => void) | undefined): Promise<void> {
    const { durable, filter, batchSize, maxDeliver, ackWaitMs } = this.options;
    this.reader = await this.stream.consume(durable, (message) => this.onMessage(message), {
      filter,
      // As many messages in hand as a batch holds, so a batch can fill.
      concurrency: batchSize,
      maxDeliver,
      ackWaitMs,
      onGiveUp: (message, err) => this.giveUp(message, err),
      ...(onError === undefined ? {} : { onError }),
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    this.markDue();
    await this.reader?.stop();
    await this.running;
  }

  /** Resolves when the message's batch was handled; rejects when it must come again. */
  private async onMessage(message: StreamMessage): Promise<void> {
    let event: E;
    try {
      event = this.options.parse(message.data, message);
    } catch (err) {
      if (!(err instanceof BadRequestError)) throw err;
      // Stored before the acknowledgement: if this fails, the message comes again.
      await this.deadLetter(message, err.message);
      return;
    }
    return new Promise<void>((resolve, reject) => {
      const waiting: Waiting<E> = {
        entry: { event, message },
        settle: (err) => (err === undefined ? resolve() : reject(err)),
      };
      if (this.suspects.has(message.seq)) {
        this.isolated.push(waiting);
      } else {
        this.gathered.push(waiting);
        if (this.gathered.length >= this.options.batchSize || this.stopping) this.due = true;
        else if (this.options.batchDelayMs > 0) {
          this.timer ??= setTimeout(() => this.markDue(), this.options.batchDelayMs);
        } else if (this.running === undefined) {
          // The rest of this turn's deliveries join the batch; a running batch's end starts the next.
          this.immediate ??= setImmediate(() => this.markDue());
        }
      }
      this.pump();
    });
  }

  private markDue(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    clearImmediate(this.immediate);
    this.immediate = undefined;
    this.due = true;
    this.pump();
  }

  /** Starts the next batch, if one is ready and none runs: an isolated event first. */
  private pump(): void {
    if (this.running !== undefined) return;
    let batch: Waiting<E>[];
    if (this.isolated.length > 0) {
      batch = this.isolated.splice(0, 1);
    } else if (this.due && this.gathered.length > 0) {
      this.due = false;
      clearTimeout(this.timer);
      this.timer = undefined;
      batch = this.gathered.splice(0, this.options.batchSize);
    } else {
      return;
    }
    this.running = this.run(batch).finally(() => {
      this.running = undefined;
      // What gathered meanwhile may be due already (full, its delay over, or no delay at all).
      const gathered = this.gathered.length;
      if (
        gathered >= this.options.batchSize ||
        this.stopping ||
        (gathered > 0 && this.options.batchDelayMs === 0)
      ) {
        this.due = true;
      }
      this.pump();
    });
  }

  private async run(batch: Waiting<E>[]): Promise<void> {
    try {
      await this.options.handle(batch.map((waiting) => waiting.entry));
    } catch (thrown) {
      const err = thrown instanceof Error ? thrown : new Error(String(thrown));
      this.metrics.failed.inc(this.label, batch.length);
      this.log?.warn(
        { err, consumer: this.options.durable, events: batch.length },
        'event batch failed; it will be delivered again',
      );
      for (const { entry } of batch) this.suspect(entry.message.seq);
      await this.pause();
      for (const waiting of batch) waiting.settle(err);
      return;
    }
    this.metrics.processed.inc(this.label, batch.length);
    for (const waiting of batch) {
      this.suspects.delete(waiting.entry.message.seq);
      waiting.settle(undefined);
    }
  }

  private suspect(seq: number): void {
    this.suspects.add(seq);
    if (this.suspects.size > MAX_SUSPECTS) {
      this.suspects.delete(this.suspects.values().next().value!);
    }
  }

  private pause(): Promise<void> {
    if (this.stopping || this.options.retryDelayMs === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.options.retryDelayMs);
      this.wake = done;
    });
  }

  /** The message failed its last delivery: to the dead letters, or counted as lost. */
  private async giveUp(message: StreamMessage, err: Error): Promise<void> {
    this.suspects.delete(message.seq);
    try {
      await this.deadLetter(message, err.message);
    } catch (lost) {
      this.metrics.lost.inc(this.label);
      this.log?.error(
        { err: lost, reason: err.message, consumer: this.options.durable, seq: message.seq },
        'event given up on and its dead letter not stored: it is lost',
      );
    }
  }

  private async deadLetter(message: StreamMessage, reason: string): Promise<void> {
    const { durable } = this.options;
    await this.stream.publish(this.deadSubject, message.data, {
      headers: {
        ...message.headers,
        [DeadLetterHeader.Reason]: headerValue(reason),
        [DeadLetterHeader.Subject]: message.subject,
        [DeadLetterHeader.Seq]: String(message.seq),
        [DeadLetterHeader.Consumer]: durable,
      },
      // One dead letter per event and consumer, however often the event is given up on.
      msgId: `dead.${durable}.${message.seq}`,
    });
    this.metrics.deadLetters.inc(this.label);
    this.log?.warn(
      { consumer: durable, seq: message.seq, subject: message.subject, reason },
      'event sent to the dead letters',
    );
  }
}

/** A header value holds no line break; a reason is kept short. */
function headerValue(reason: string): string {
  const line = reason.replace(/[\r\n]+/g, ' ').trim();
  if (line.length === 0) return '-';
  return line.length > MAX_REASON_LENGTH ? `${line.slice(0, MAX_REASON_LENGTH - 3)}...` : line;
}
