/**
 * An in-memory event stream with JetStream semantics: one sequence per stream starting at 1, subject
 * filters with NATS wildcards, age and size limits that drop the oldest messages, `msgId`
 * de-duplication within a window, ordered readers, and durable consumers whose messages are shared
 * between their readers, acknowledged when handled and redelivered when not. Age limits and the
 * duplicate window are applied lazily from `Date.now()`, and the acknowledgement deadline is a
 * `setTimeout`, so fake timers drive all three.
 *
 * One store can be shared by several in-process nodes: they see the same streams and durables.
 */
import { BadRequestError } from '../errors.js';
import type { Headers } from '../transport/types.js';
import type {
  ConsumeOptions,
  EventStream,
  PublishAck,
  ReadFrom,
  StreamHandler,
  StreamInfo,
  StreamMessage,
  StreamOptions,
  StreamReader,
  StreamStore,
} from './types.js';
import {
  checkDurableName,
  checkFilter,
  checkFromTime,
  checkHeaders,
  checkPublishSubject,
  checkReadFrom,
  checkStreamName,
  resolveConsumeOptions,
  resolveStreamOptions,
  subjectMatcher,
  subjectsOverlap,
  type ResolvedConsumeOptions,
  type ResolvedStreamOptions,
} from './validate.js';
import { report, surface, toError } from './report.js';

interface Stored {
  readonly subject: string;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly headers: Headers;
  readonly timeMs: number;
  /** What the size limit counts for this message. */
  readonly size: number;
}

// JetStream's memory storage counts a message as its subject, header block and payload plus 16
// bytes; the header block is `NATS/1.0\r\n`, a `name: value\r\n` line per header, then `\r\n`.
const MESSAGE_OVERHEAD = 16;
const HEADER_BLOCK_OVERHEAD = 12;
const encoder = new TextEncoder();
const NO_HEADERS: Headers = Object.freeze({});

/** The size JetStream would count, the `Nats-Msg-Id` header it stores with the message included. */
function messageSize(
  subject: string,
  headers: Headers,
  data: Uint8Array,
  msgId: string | undefined,
): number {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  if (msgId !== undefined) lines.push(`Nats-Msg-Id: ${msgId}\r\n`);
  let size = encoder.encode(subject).length + data.length + MESSAGE_OVERHEAD;
  if (lines.length > 0) size += HEADER_BLOCK_OVERHEAD + encoder.encode(lines.join('')).length;
  return size;
}

export class MemoryStreamStore implements StreamStore {
  private readonly streams = new Map<string, StreamState>();

  stream(name: string, options: StreamOptions): Promise<EventStream> {
    return Promise.resolve().then(() => this.open(name, options));
  }

  private open(name: string, options: StreamOptions): EventStream {
    checkStreamName(name);
    const config = resolveStreamOptions(options);
    for (const [other, state] of this.streams) {
      if (other === name) continue;
      for (const mine of config.subjects) {
        const theirs = state.config.subjects.find((subject) => subjectsOverlap(mine, subject));
        if (theirs !== undefined) {
          throw new BadRequestError(
            'subjects',
            `${mine} overlaps ${theirs} of stream ${other}; a subject belongs to one stream`,
          );
        }
      }
    }
    let state = this.streams.get(name);
    if (state === undefined) {
      state = new StreamState(config);
      this.streams.set(name, state);
    } else {
      state.reconfigure(config);
    }
    return new MemoryEventStream(name, config.subjects, state);
  }
}

class StreamState {
  /** Oldest first; sequences are consecutive, since only the oldest are ever dropped. */
  private messages: Stored[] = [];
  private bytes = 0;
  private lastSeq = 0;
  /** Insertion order is time order, so expired ids are always at the front. */
  private readonly msgIds = new Map<string, { seq: number; atMs: number }>();
  /** The newest stored message of each subject: `lastSeqOf` without a scan. */
  private readonly lastBySubject = new Map<string, Stored>();
  /** Filters compiled once: readers scan with the same few filters all the time. */
  private readonly matchers = new Map<string, (subject: string) => boolean>();
  readonly readers = new Set<OrderedReader>();
  readonly durables = new Map<string, Durable>();

  constructor(public config: ResolvedStreamOptions) {}

  reconfigure(config: ResolvedStreamOptions): void {
    // As on JetStream, the storage type of an existing stream stays what it was.
    this.config = { ...config, storage: this.config.storage };
    this.prune();
  }

  store(
    subject: string,
    data: Uint8Array,
    headers: Headers,
    msgId: string | undefined,
  ): PublishAck {
    const now = Date.now();
    this.prune();
    this.forgetMsgIds(now);
    if (msgId !== undefined) {
      const seen = this.msgIds.get(msgId);
      if (seen !== undefined) return { seq: seen.seq, duplicate: true };
    }
    const seq = ++this.lastSeq;
    const size = messageSize(subject, headers, data, msgId);
    const stored: Stored = { subject, seq, data: data.slice(), headers, timeMs: now, size };
    this.messages.push(stored);
    this.lastBySubject.set(subject, stored);
    this.bytes += size;
    if (msgId !== undefined) this.msgIds.set(msgId, { seq, atMs: now });
    // Applied after the append, as the server does: the new message may push the oldest out.
    this.prune();
    for (const reader of this.readers) reader.wake();
    for (const durable of this.durables.values()) durable.dispatch();
    return { seq, duplicate: false };
  }

  info(name: string): StreamInfo {
    this.prune();
    const first = this.messages[0];
    return {
      name,
      messages: this.messages.length,
      bytes: this.bytes,
      firstSeq: first?.seq ?? (this.lastSeq === 0 ? 0 : this.lastSeq + 1),
      lastSeq: this.lastSeq,
    };
  }

  /** The sequence of the newest message ever stored (0 before the first). */
  get end(): number {
    return this.lastSeq;
  }

  /**
   * The first stored message at or after `fromSeq` on `filter` (every subject when undefined).
   * When none is, every message up to {@link end} was looked at: a reader waiting for the next
   * match starts its next look after `end`, so following a stream costs each message one look,
   * not one per message stored since the reader's last match.
   */
  next(fromSeq: number, filter: string | undefined): Stored | undefined {
    this.prune();
    const first = this.messages[0];
    if (first === undefined) return undefined;
    const matches = filter === undefined ? undefined : this.matcher(filter);
    for (let i = Math.max(0, fromSeq - first.seq); i < this.messages.length; i++) {
      const message = this.messages[i]!;
      if (matches === undefined || matches(message.subject)) return message;
    }
    return undefined;
  }

  private matcher(filter: string): (subject: string) => boolean {
    let matches = this.matchers.get(filter);
    if (matches === undefined) {
      matches = subjectMatcher(filter);
      this.matchers.set(filter, matches);
    }
    return matches;
  }

  /**
   * The first stored message at or after `timeMs`, or the next sequence when none is. A scan from
   * the oldest, not a bisection: a clock set back (fake timers) may leave times out of order, and
   * the first match is still the answer.
   */
  seqAtTime(timeMs: number): number {
    this.prune();
    for (const message of this.messages) if (message.timeMs >= timeMs) return message.seq;
    return this.lastSeq + 1;
  }

  /** The last stored message on literal `subject`, if any. */
  last(subject: string): Stored | undefined {
    this.prune();
    return this.lastBySubject.get(subject);
  }

  get(seq: number): Stored | undefined {
    this.prune();
    const first = this.messages[0];
    return first === undefined ? undefined : this.messages[seq - first.seq];
  }

  /** Drops the oldest messages past the age or size limit. */
  private prune(): void {
    const { maxAgeMs, maxBytes } = this.config;
    const now = Date.now();
    let drop = 0;
    while (drop < this.messages.length) {
      const oldest = this.messages[drop]!;
      const tooOld = maxAgeMs > 0 && now - oldest.timeMs >= maxAgeMs;
      const tooBig = maxBytes > 0 && this.bytes > maxBytes;
      if (!tooOld && !tooBig) break;
      this.bytes -= oldest.size;
      if (this.lastBySubject.get(oldest.subject) === oldest)
        this.lastBySubject.delete(oldest.subject);
      drop++;
    }
    if (drop > 0) this.messages.splice(0, drop);
  }

  private forgetMsgIds(now: number): void {
    for (const [id, seen] of this.msgIds) {
      if (now - seen.atMs < this.config.duplicateWindowMs) break;
      this.msgIds.delete(id);
    }
  }
}

function toMessage(stored: Stored): StreamMessage {
  return {
    subject: stored.subject,
    seq: stored.seq,
    data: stored.data.slice(),
    headers: stored.headers === NO_HEADERS ? {} : { ...stored.headers },
    timeMs: stored.timeMs,
  };
}

/**
 * Every operation yields once before touching state, so callers cannot come to rely on a publish
 * having happened before its promise settles, which a JetStream round trip would not give them.
 * Subjects are checked against those the stream had when this handle opened it, as on JetStream.
 */
class MemoryEventStream implements EventStream {
  constructor(
    readonly name: string,
    private readonly subjects: readonly string[],
    private readonly state: StreamState,
  ) {}

  async publish(
    subject: string,
    data: Uint8Array,
    options: { msgId?: string; headers?: Headers } = {},
  ): Promise<PublishAck> {
    checkPublishSubject(this.name, subject, this.subjects);
    const headers = options.headers === undefined ? NO_HEADERS : { ...options.headers };
    checkHeaders(headers);
    await Promise.resolve();
    return this.state.store(subject, data, headers, options.msgId);
  }

  async read(
    filter: string,
    from: ReadFrom,
    handler: StreamHandler,
    options: { onError?: (err: Error) => void } = {},
  ): Promise<StreamReader> {
    checkFilter(filter, this.subjects);
    checkReadFrom(from);
    await Promise.resolve();
    const fromSeq = typeof from === 'number' ? from : this.state.seqAtTime(from.fromTimeMs);
    return new OrderedReader(this.state, filter, fromSeq, handler, options.onError);
  }

  async seqAtTime(timeMs: number): Promise<number> {
    checkFromTime(timeMs);
    await Promise.resolve();
    return this.state.seqAtTime(timeMs);
  }

  async consume(
    durable: string,
    handler: StreamHandler,
    options: ConsumeOptions = {},
  ): Promise<StreamReader> {
    checkDurableName(durable);
    const resolved = resolveConsumeOptions(options, this.subjects);
    await Promise.resolve();
    let shared = this.state.durables.get(durable);
    if (shared === undefined) {
      shared = new Durable(this.state, resolved);
      this.state.durables.set(durable, shared);
    } else {
      // As on JetStream, the last reader to join sets the durable's options for all its readers.
      shared.configure(resolved);
    }
    return shared.join(handler, resolved);
  }

  async info(): Promise<StreamInfo> {
    await Promise.resolve();
    return this.state.info(this.name);
  }

  async lastSeqOf(subject: string): Promise<number> {
    checkPublishSubject(this.name, subject, this.subjects);
    await Promise.resolve();
    return this.state.last(subject)?.seq ?? 0;
  }
}

/** Replays from a sequence, then follows the stream; one handler call at a time. */
class OrderedReader implements StreamReader {
  private stopped = false;
  private waiting: (() => void) | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly state: StreamState,
    private readonly filter: string,
    private nextSeq: number,
    private readonly handler: StreamHandler,
    private readonly onError: ((err: Error) => void) | undefined,
  ) {
    state.readers.add(this);
    this.done = this.run();
  }

  wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  stop(): Promise<void> {
    this.halt();
    return this.done;
  }

  private halt(): void {
    this.stopped = true;
    this.state.readers.delete(this);
    this.wake();
  }

  private async run(): Promise<void> {
    // Never call the handler from inside read() itself.
    await Promise.resolve();
    while (!this.stopped) {
      const next = this.state.next(this.nextSeq, this.filter);
      if (next === undefined) {
        // Nothing up to the stream's end matched: the next look starts after it.
        this.nextSeq = Math.max(this.nextSeq, this.state.end + 1);
        await new Promise<void>((resolve) => (this.waiting = resolve));
        continue;
      }
      this.nextSeq = next.seq + 1;
      try {
        await this.handler(toMessage(next));
      } catch (err) {
        this.halt();
        report(this.onError, toError(err));
        return;
      }
    }
  }
}

interface Pending {
  /** Deliveries so far, the current one included. */
  deliveries: number;
  /** Identifies the current delivery, so a late outcome of an earlier one changes nothing. */
  delivery: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * A durable consumer: where it is in the stream, which messages are out with a reader and not yet
 * acknowledged, and which wait for redelivery. Redeliveries go out before new messages, lowest
 * sequence first, as on JetStream.
 */
class Durable {
  private filter: string | undefined;
  private ackWaitMs: number;
  private maxDeliver: number;
  /** The next sequence never delivered. */
  private nextSeq = 1;
  private readonly pending = new Map<number, Pending>();
  private redeliver: number[] = [];
  private readonly readers: DurableReader[] = [];
  private turn = 0;
  private lastDelivery = 0;

  constructor(
    private readonly state: StreamState,
    options: ResolvedConsumeOptions,
  ) {
    this.filter = options.filter;
    this.ackWaitMs = options.ackWaitMs;
    this.maxDeliver = options.maxDeliver;
  }

  configure(options: ResolvedConsumeOptions): void {
    this.filter = options.filter;
    this.ackWaitMs = options.ackWaitMs;
    this.maxDeliver = options.maxDeliver;
  }

  join(handler: StreamHandler, options: ResolvedConsumeOptions): DurableReader {
    const reader = new DurableReader(this, handler, options);
    this.readers.push(reader);
    // Outside the caller's turn, so no handler runs inside consume() itself.
    queueMicrotask(() => this.dispatch());
    return reader;
  }

  leave(reader: DurableReader): void {
    const index = this.readers.indexOf(reader);
    if (index !== -1) this.readers.splice(index, 1);
  }

  /** Hands out messages while some reader has room. */
  dispatch(): void {
    for (;;) {
      const reader = this.nextReader();
      if (reader === undefined) return;
      const next = this.nextMessage();
      if (next === undefined) return;
      const [stored, pending] = next;
      pending.deliveries++;
      const delivery = ++this.lastDelivery;
      pending.delivery = delivery;
      pending.timer = setTimeout(() => this.expired(stored.seq, delivery), this.ackWaitMs);
      reader.deliver(stored, delivery);
    }
  }

  /** The handler resolved: acknowledged, whichever delivery it was. */
  acked(seq: number): void {
    const pending = this.pending.get(seq);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.pending.delete(seq);
    this.redeliver = this.redeliver.filter((s) => s !== seq);
  }

  /** The handler threw: redeliver, or give up once the deliveries are used up. */
  failed(seq: number, delivery: number): 'redeliver' | 'give-up' | 'stale' {
    const pending = this.pending.get(seq);
    if (pending === undefined || pending.delivery !== delivery) return 'stale';
    clearTimeout(pending.timer);
    pending.timer = undefined;
    if (pending.deliveries >= this.maxDeliver) {
      this.pending.delete(seq);
      return 'give-up';
    }
    this.queueRedelivery(seq);
    return 'redeliver';
  }

  /**
   * Not acknowledged in time: delivered again, to whichever reader has room. After the last
   * delivery the message is dropped without `onGiveUp`, as JetStream does: no reader saw it fail.
   */
  private expired(seq: number, delivery: number): void {
    const pending = this.pending.get(seq);
    if (pending === undefined || pending.delivery !== delivery) return;
    pending.timer = undefined;
    if (pending.deliveries >= this.maxDeliver) this.pending.delete(seq);
    else this.queueRedelivery(seq);
    this.dispatch();
  }

  private queueRedelivery(seq: number): void {
    let i = this.redeliver.length;
    while (i > 0 && this.redeliver[i - 1]! > seq) i--;
    this.redeliver.splice(i, 0, seq);
  }

  private nextReader(): DurableReader | undefined {
    for (let i = 0; i < this.readers.length; i++) {
      const reader = this.readers[(this.turn + i) % this.readers.length]!;
      if (reader.hasRoom()) {
        this.turn = (this.turn + i + 1) % this.readers.length;
        return reader;
      }
    }
    return undefined;
  }

  private nextMessage(): [Stored, Pending] | undefined {
    while (this.redeliver.length > 0) {
      const seq = this.redeliver.shift()!;
      const pending = this.pending.get(seq);
      if (pending === undefined) continue;
      const stored = this.state.get(seq);
      if (stored !== undefined) return [stored, pending];
      // Dropped by the stream's limits while it waited: nothing left to deliver.
      this.pending.delete(seq);
    }
    const stored = this.state.next(this.nextSeq, this.filter);
    if (stored === undefined) {
      // Nothing up to the stream's end matched: the next look starts after it.
      this.nextSeq = Math.max(this.nextSeq, this.state.end + 1);
      return undefined;
    }
    this.nextSeq = stored.seq + 1;
    const pending: Pending = { deliveries: 0, delivery: 0, timer: undefined };
    this.pending.set(stored.seq, pending);
    return [stored, pending];
  }
}

/** One reader of a durable: runs up to `concurrency` handlers at once. */
class DurableReader implements StreamReader {
  private stopped = false;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly durable: Durable,
    private readonly handler: StreamHandler,
    private readonly options: ResolvedConsumeOptions,
  ) {}

  hasRoom(): boolean {
    return !this.stopped && this.running.size < this.options.concurrency;
  }

  deliver(stored: Stored, delivery: number): void {
    const run = this.handle(stored, delivery).finally(() => {
      this.running.delete(run);
      this.durable.dispatch();
    });
    this.running.add(run);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.durable.leave(this);
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  private async handle(stored: Stored, delivery: number): Promise<void> {
    // Never call the handler from inside publish() or consume() itself.
    await Promise.resolve();
    const message = toMessage(stored);
    try {
      await this.handler(message);
    } catch (err) {
      if (this.durable.failed(stored.seq, delivery) !== 'give-up') return;
      const error = toError(err);
      try {
        await this.options.onGiveUp?.(message, error);
      } catch (thrown) {
        surface(thrown);
      }
      return;
    }
    this.durable.acked(stored.seq);
  }
}
