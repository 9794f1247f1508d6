/**
 * Item updates travel as events on a stream, not only as calls to one replica: a shard's `upsert`
 * or `delete` is published to `<prefix>.events.items.<shard>` and every replica of the shard
 * applies it from there, in stream order. So replicas hold the same items, and a replica that
 * restarts rebuilds its delta by reading the stream again from the sequence its base file holds.
 * Other services (a catalogue) may publish the same events directly.
 *
 * An event is one batch: `{op: 'upsert', items: [{item_id, vector, category?}], model_version}` or
 * `{op: 'delete', item_ids: [..]}`, in the runtime's codec (vectors as raw float32 bytes, marked by
 * the `Recsys-Encoding: frame` header). An upsert's vectors are item-tower embeddings of one model:
 * a replica whose index comes from another model skips it rather than mixing two embedding spaces.
 */
import type { Logger } from 'pino';
import { decode, encode } from '../../runtime/codec.js';
import { BadRequestError, UnavailableError } from '../../runtime/errors.js';
import type { EventStream, StreamMessage, StreamReader } from '../../runtime/stream/index.js';
import { assertPrefix } from '../../runtime/subjects.js';
import { itemId, validateDelete, validateUpsert } from './messages.js';
import type { UpsertItem } from './messages.js';

export type ItemEvent =
  | { op: 'upsert'; items: UpsertItem[]; model_version: string }
  | { op: 'delete'; item_ids: string[] };

/** The stream that holds every shard's item events. */
export function itemEventsStreamName(prefix: string): string {
  return `${assertPrefix(prefix).replaceAll('.', '_')}_items`;
}

/** Subjects the item-events stream captures. */
export function itemEventsSubjects(prefix: string): string[] {
  return [`${assertPrefix(prefix)}.events.items.>`];
}

/** `<prefix>.events.items.<shard>`: the events of one shard. */
export function itemEventsSubject(prefix: string, shard: number): string {
  if (!Number.isSafeInteger(shard) || shard < 0) {
    throw new RangeError(`shard must be a non-negative integer, got ${shard}`);
  }
  return `${assertPrefix(prefix)}.events.items.${shard}`;
}

/** Checks a decoded event; throws `BadRequestError` naming the field, as a call would. */
export function validateItemEvent(payload: unknown, dims: number | undefined): ItemEvent {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new BadRequestError('payload', 'must be an object');
  }
  const { op, ...rest } = payload as Record<string, unknown>;
  if (op === 'delete') return { op, ...validateDelete(rest) };
  if (op === 'upsert') {
    const { model_version: model, ...items } = rest;
    if (typeof model !== 'string' || model.length === 0) {
      throw new BadRequestError('model_version', 'must name the model of the vectors');
    }
    return {
      op,
      model_version: itemId(model, 'model_version'),
      ...validateUpsert(items, { dims, maxK: 0 }),
    };
  }
  throw new BadRequestError('op', 'must be "upsert" or "delete"');
}

export interface ShardEventFeedOptions<R> {
  stream: EventStream;
  subject: string;
  /** The index's dimensions: an upsert of other dimensions is skipped. */
  dims: number;
  /** The model of the index: an upsert of another model's vectors is skipped. */
  modelVersion: string;
  /** Applies one event to the shard; synchronous, so no query sees half of it. */
  apply: (event: ItemEvent) => R;
  log: Logger;
}

/** Results kept for publishers still waiting on the stream's acknowledgement. */
const RECENT_RESULTS = 1024;

interface Waiter<R> {
  seq: number;
  done: (result: R | undefined) => void;
}

/**
 * One replica's reading of its shard's events: it applies each in order, knows the last sequence
 * it applied, and lets a caller wait until its own published event has been applied (so an
 * acknowledged upsert is visible to the next query on this replica), with what applying it gave.
 */
export class ShardEventFeed<R> {
  /** The last stream sequence applied (or skipped as unusable). */
  applied = 0;
  /** Events skipped: malformed, of another model, or of other dimensions. */
  skipped = 0;
  private reader: StreamReader | undefined;
  private readonly waiters = new Set<Waiter<R>>();
  /**
   * Results of the latest events, by sequence: the reader may apply an event before its publisher
   * has the stream's acknowledgement (and so its sequence) in hand.
   */
  private readonly recent = new Map<number, R>();

  constructor(private readonly options: ShardEventFeedOptions<R>) {}

  /**
   * Starts applying from `fromSeq` on and resolves once every event of this shard stored before
   * the call has been applied: a replica that restarts serves only after it has caught up.
   */
  async start(fromSeq: number, deadline: number): Promise<void> {
    const { stream, subject, log } = this.options;
    this.applied = Math.max(0, fromSeq - 1);
    const last = await stream.lastSeqOf(subject);
    this.reader = await stream.read(subject, fromSeq, (message) => this.onMessage(message), {
      onError: (err) => log.error({ err, subject }, 'item events reader stopped'),
    });
    if (last > this.applied) await this.waitApplied(last, deadline);
  }

  /**
   * Publishes `event` and resolves once this replica has applied it, with its sequence and what
   * applying it gave (`undefined` when it was skipped).
   */
  async publish(
    event: ItemEvent,
    deadline: number,
    msgId?: string,
  ): Promise<{ seq: number; result: R | undefined }> {
    const { data, headers } = encode(event);
    const ack = await this.options.stream.publish(this.options.subject, data, {
      headers,
      ...(msgId === undefined ? {} : { msgId }),
    });
    const result = await this.waitApplied(ack.seq, deadline);
    return { seq: ack.seq, result };
  }

  /**
   * Resolves once the event at `seq` has been applied, with its result (`undefined` if it had been
   * applied already or was skipped); rejects with `unavailable` at `deadline`.
   */
  waitApplied(seq: number, deadline: number): Promise<R | undefined> {
    if (this.applied >= seq) {
      const result = this.recent.get(seq);
      this.recent.delete(seq);
      return Promise.resolve(result);
    }
    return new Promise<R | undefined>((resolve, reject) => {
      const waiter: Waiter<R> = {
        seq,
        done: (result) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(result);
        },
      };
      const timer = setTimeout(
        () => {
          this.waiters.delete(waiter);
          reject(
            new UnavailableError(
              `item event ${seq} is stored but this replica has not applied it yet (at ${this.applied})`,
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      this.waiters.add(waiter);
    });
  }

  async stop(): Promise<void> {
    const reader = this.reader;
    this.reader = undefined;
    await reader?.stop();
  }

  private onMessage(message: StreamMessage): void {
    const { log, dims, modelVersion } = this.options;
    let result: R | undefined;
    // Moved first: what `apply` starts (a compaction's snapshot) sees this event as applied.
    this.applied = message.seq;
    try {
      const event = validateItemEvent(decode(message.data, message.headers), dims);
      if (event.op === 'upsert' && event.model_version !== modelVersion) {
        this.skipped++;
        log.warn(
          { seq: message.seq, model_version: event.model_version, index_model: modelVersion },
          'item upsert of another model skipped',
        );
      } else {
        result = this.options.apply(event);
        this.recent.set(message.seq, result);
        if (this.recent.size > RECENT_RESULTS) {
          this.recent.delete(this.recent.keys().next().value!);
        }
      }
    } catch (err) {
      // A bad event must not stop the shard: it is logged, counted and passed over.
      this.skipped++;
      log.warn({ err, seq: message.seq, subject: message.subject }, 'bad item event skipped');
    }
    for (const waiter of this.waiters) {
      if (waiter.seq > message.seq) continue;
      if (waiter.seq === message.seq) this.recent.delete(message.seq);
      waiter.done(waiter.seq === message.seq ? result : undefined);
    }
  }
}
