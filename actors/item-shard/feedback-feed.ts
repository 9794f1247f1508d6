/**
 * The item counters fed by the feedback stream: every replica of a shard reads every user's
 * feedback from the events stream (an ordered reader, not a durable: each replica needs all of
 * it) and counts the events of the items its shard holds, `shardOf(item_id, S)`, the rule upserts
 * are routed by. So the replicas of a shard count alike without any caller sending to each.
 *
 * At activation the reader starts at the first event stored within the longest counter window of
 * now: older events would be ignored by the counters anyway, and the counters are rebuilt from the
 * stream on every start, so nothing is counted twice across restarts. Within one activation an
 * event id is counted once: the stream stores a repeated id once within its duplicate window, and
 * a bounded memory of the ids counted here catches a publisher that retried later than that.
 *
 * Event times are the events' own (`ts_ms`), so a replay counts as the live run did.
 */
import type { Logger } from 'pino';
import { EventKind, eventFilter, parseFeedbackEvent } from '../../runtime/events/index.js';
import type { FeedbackType } from '../../runtime/events/index.js';
import type { EventStream, StreamMessage, StreamReader } from '../../runtime/stream/index.js';
import { shardOf } from './index-file.js';
import type { CounterEvent, CounterEventType, RecordReply } from './messages.js';

/** Feedback types as counter types; a type added to either list fails to compile here. */
const COUNTER_TYPE: Readonly<Record<FeedbackType, CounterEventType>> = {
  view: 'view',
  click: 'click',
  like: 'like',
  purchase: 'purchase',
  rating: 'rating',
};

export interface FeedbackFeedOptions {
  /** The events stream (`openEventsStream`). */
  stream: EventStream;
  /** The deployment's subject prefix. */
  prefix: string;
  /** This shard's number, and the shard count its index was built for. */
  shard: number;
  shards: number;
  /** Counts events: the shard's `ItemCounters.record`. */
  record: (events: readonly CounterEvent[], now: number) => RecordReply;
  /** How far back the replay at start goes: the longest counter window. */
  replayMs: number;
  /**
   * How long an event id counted is remembered, by the stream's clock. The stream itself stores a
   * repeated id once within its duplicate window (2 minutes by default); this covers a publisher
   * that retries later, after an outage. @default 600000
   */
  dedupeWindowMs?: number;
  /** Ids remembered at most, oldest forgotten first. About 100 bytes each. @default 100000 */
  dedupeMaxIds?: number;
  log: Logger;
  /** The clock the counters' windows end at. @default Date.now */
  now?: () => number;
}

/** Where the feed is and what it did, shown in the shard's stats (`feedback`). */
export interface FeedbackFeedStats {
  /** The last events-stream sequence read (every user's feedback, of this shard's items or not). */
  seq: number;
  /** The sequence the replay at activation started from. */
  from_seq: number;
  /** Feedback events of this shard's items handed to the counters. */
  events: number;
  /** Events of this shard's items dropped as repeats of an event id already counted. */
  duplicates: number;
  /** Malformed events passed over (the consumers send them to the dead letters). */
  malformed: number;
}

const DEFAULT_DEDUPE_WINDOW_MS = 10 * 60_000;
const DEFAULT_DEDUPE_MAX_IDS = 100_000;

export class FeedbackFeed {
  private reader: StreamReader | undefined;
  private readonly tally: FeedbackFeedStats = {
    seq: 0,
    from_seq: 0,
    events: 0,
    duplicates: 0,
    malformed: 0,
  };
  /** Event ids counted, with the stream time they came at; oldest first. */
  private readonly counted = new Map<string, number>();
  private readonly dedupeWindowMs: number;
  private readonly dedupeMaxIds: number;
  private readonly now: () => number;

  constructor(private readonly options: FeedbackFeedOptions) {
    const { shard, shards, replayMs } = options;
    if (!Number.isSafeInteger(shards) || shards < 1) {
      throw new RangeError('shards must be a positive integer');
    }
    if (!Number.isSafeInteger(shard) || shard < 0 || shard >= shards) {
      throw new RangeError(`shard must be an integer in 0..${shards - 1}`);
    }
    if (!Number.isFinite(replayMs) || replayMs < 0) {
      throw new RangeError('replayMs must be a non-negative number');
    }
    this.dedupeWindowMs = options.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_MS;
    if (!Number.isFinite(this.dedupeWindowMs) || this.dedupeWindowMs < 0) {
      throw new RangeError('dedupeWindowMs must be a non-negative number');
    }
    this.dedupeMaxIds = options.dedupeMaxIds ?? DEFAULT_DEDUPE_MAX_IDS;
    if (!Number.isSafeInteger(this.dedupeMaxIds) || this.dedupeMaxIds < 1) {
      throw new RangeError('dedupeMaxIds must be a positive integer');
    }
    this.now = options.now ?? Date.now;
  }

  /**
   * Starts reading at the first feedback stored within `replayMs` of now. Resolves once the
   * reader runs, without waiting for the replay: until it has caught up the counters read low,
   * which is better than a shard that does not answer (`stats().seq` shows how far it is).
   */
  async start(): Promise<void> {
    const { stream, prefix, log } = this.options;
    const fromSeq = await stream.seqAtTime(Math.max(0, this.now() - this.options.replayMs));
    this.tally.from_seq = fromSeq;
    this.tally.seq = fromSeq - 1;
    const filter = eventFilter(prefix, EventKind.Feedback);
    this.reader = await stream.read(filter, fromSeq, (message) => this.onMessage(message), {
      onError: (err) => log.error({ err, filter }, 'feedback reader stopped: counters stand still'),
    });
  }

  async stop(): Promise<void> {
    const reader = this.reader;
    this.reader = undefined;
    await reader?.stop();
  }

  stats(): FeedbackFeedStats {
    return { ...this.tally };
  }

  private onMessage(message: StreamMessage): void {
    this.tally.seq = message.seq;
    let event;
    try {
      event = parseFeedbackEvent(message.data);
    } catch (err) {
      // Never stops the reader: the counters go on with the next event.
      this.tally.malformed++;
      this.options.log.debug({ err, seq: message.seq }, 'malformed feedback event passed over');
      return;
    }
    if (shardOf(event.item_id, this.options.shards) !== this.options.shard) return;
    if (this.seen(event.event_id, message.timeMs)) {
      this.tally.duplicates++;
      return;
    }
    this.options.record(
      [{ item_id: event.item_id, type: COUNTER_TYPE[event.type], ts_ms: event.ts_ms }],
      this.now(),
    );
    this.tally.events++;
  }

  /** Whether `id` was counted within the window; remembers it if not. */
  private seen(id: string, atMs: number): boolean {
    for (const [old, at] of this.counted) {
      if (atMs - at < this.dedupeWindowMs) break;
      this.counted.delete(old);
    }
    if (this.counted.has(id)) return true;
    this.counted.set(id, atMs);
    if (this.counted.size > this.dedupeMaxIds) {
      this.counted.delete(this.counted.keys().next().value!);
    }
    return false;
  }
}
