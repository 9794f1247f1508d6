import type { Headers } from '../transport/types.js';

/**
 * An append-only event stream: what item updates and user feedback travel on. Implemented on
 * JetStream (production) and in memory (embedded mode, unit tests), so the actors that publish and
 * replay events are the same code on both.
 *
 * Two ways to read: {@link EventStream.read} replays from a sequence, in order, for a reader that
 * keeps its own position (every replica of an item shard reads every update, and resumes from the
 * sequence its base file holds); {@link EventStream.consume} shares the messages of a named durable
 * consumer between its readers, each message acknowledged once handled and redelivered if not.
 */

export interface StreamOptions {
  /** Subjects the stream captures; NATS wildcards (`*`, `>`) allowed. */
  subjects: string[];
  /**
   * Messages older than this are dropped (0: kept until a size limit). At least 100 when set, the
   * server's floor. @default 0
   */
  maxAgeMs?: number;
  /**
   * The stream keeps at most this many bytes, dropping the oldest first (-1: no limit); counted as
   * {@link StreamInfo.bytes} counts them. @default -1
   */
  maxBytes?: number;
  /** Survive a server restart (`file`) or not (`memory`). @default 'file' */
  storage?: 'file' | 'memory';
  /**
   * Publishes with the same `msgId` within this window are stored once. Capped at `maxAgeMs` when
   * that is set: the server refuses a longer window. @default 120_000
   */
  duplicateWindowMs?: number;
}

export interface StreamMessage {
  readonly subject: string;
  /** The stream's sequence: 1 for the first message ever stored, increasing by one. */
  readonly seq: number;
  readonly data: Uint8Array;
  /** The headers it was published with (empty when none), e.g. the codec's encoding. */
  readonly headers: Headers;
  /** When the stream stored it (epoch ms). */
  readonly timeMs: number;
}

export interface PublishAck {
  readonly seq: number;
  /** The stream already held a message with this `msgId`: `seq` is that message's. */
  readonly duplicate: boolean;
}

export interface StreamInfo {
  readonly name: string;
  readonly messages: number;
  /**
   * Subjects, headers and payloads plus 16 bytes a message, as JetStream's memory storage counts
   * them (its file storage counts a few bytes more).
   */
  readonly bytes: number;
  /** 0 when the stream is empty and always was; `lastSeq + 1` once every message was dropped. */
  readonly firstSeq: number;
  readonly lastSeq: number;
}

export interface StreamReader {
  /**
   * Stops delivering; resolves once no handler call is running. Not to be awaited inside this
   * reader's own handler, which it would wait for.
   */
  stop(): Promise<void>;
}

export type StreamHandler = (message: StreamMessage) => void | Promise<void>;

/**
 * Where {@link EventStream.read} starts: a sequence (1: the first message ever stored), or the first
 * message stored at or after a time (epoch ms), for a reader that rebuilds state over a window of
 * time ("the last 24 hours of feedback") rather than from a position it kept.
 */
export type ReadFrom = number | { readonly fromTimeMs: number };

export interface ConsumeOptions {
  /** Only subjects matching this filter (NATS wildcards); the whole stream when absent. */
  filter?: string;
  /** A message not acknowledged within this time is delivered again. @default 30_000 */
  ackWaitMs?: number;
  /**
   * Deliveries before a message is given up on (reported to `onGiveUp`). A message whose last
   * delivery is not acknowledged in time is dropped without `onGiveUp`, as JetStream does: no
   * reader saw it fail. @default 5
   */
  maxDeliver?: number;
  /** How many messages may be in a handler at once, across this reader. @default 1 */
  concurrency?: number;
  /**
   * Told about a message that failed `maxDeliver` times; it is then acknowledged and dropped. A
   * returned promise is awaited first (the reader's `stop()` waits for it too), so the callback can
   * store the message elsewhere (a dead-letter subject) before it is gone; a rejection, like a
   * throw, is thrown out of band.
   */
  onGiveUp?: (message: StreamMessage, err: Error) => unknown;
  /**
   * Told when this reader stops on its own: the consumer or the connection failed for good (not
   * at shutdown). A handler's error is not reported here; it has the message delivered again.
   * Without it, the error is thrown out of band, so a reader never stops unnoticed.
   */
  onError?: (err: Error) => void;
}

export interface EventStream {
  readonly name: string;
  /**
   * Stores `data` on `subject` (one of the stream's subjects); resolves once it is stored. Rejects
   * with `BadRequestError` for a subject the stream does not capture, and for `Nats-*` headers,
   * which are JetStream's own.
   */
  publish(
    subject: string,
    data: Uint8Array,
    options?: { msgId?: string; headers?: Headers },
  ): Promise<PublishAck>;
  /**
   * Delivers every stored message on `filter` with sequence >= `from`, in order, then every later
   * one as it is stored. The next message waits for the handler's promise; a handler that throws
   * stops the reader (`onError` is told) rather than skipping a message. Without `onError` the
   * error is thrown out of band, so a reader never stops unnoticed. Messages the stream's limits
   * dropped are passed over. The filter must fit the stream's subjects (within one of them, or
   * wider than one), as JetStream requires; a sequence is at least 1. `{ fromTimeMs }` starts at
   * {@link seqAtTime} of that time, taken when the call is made.
   */
  read(
    filter: string,
    from: ReadFrom,
    handler: StreamHandler,
    options?: { onError?: (err: Error) => void },
  ): Promise<StreamReader>;
  /**
   * The sequence of the first message stored at or after `timeMs` (epoch ms, the stream's clock),
   * whatever its subject; `lastSeq + 1`, the next message's, when none is. Rejects with
   * `BadRequestError` for a time that is not a finite, non-negative number.
   */
  seqAtTime(timeMs: number): Promise<number>;
  /**
   * Joins durable consumer `durable` (created on first use, from the start of the stream): its
   * messages are shared between every reader that joined it. A handler that resolves acknowledges
   * the message; one that throws has it delivered again (after `ackWaitMs` at most). The last
   * reader to join sets the durable's filter, `ackWaitMs` and `maxDeliver` for all its readers.
   */
  consume(durable: string, handler: StreamHandler, options?: ConsumeOptions): Promise<StreamReader>;
  info(): Promise<StreamInfo>;
  /**
   * The sequence of the last stored message on exactly `subject` (no wildcards); 0 when none. A
   * subject the stream does not capture is refused, as by `publish`.
   */
  lastSeqOf(subject: string): Promise<number>;
}

export interface StreamStore {
  /** Opens (creating, or updating its limits) the named stream. Names: `[A-Za-z0-9_-]+`. */
  stream(name: string, options: StreamOptions): Promise<EventStream>;
}
