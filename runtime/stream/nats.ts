/**
 * The event stream on NATS JetStream (`@nats-io/jetstream`), for servers from 2.9 on: a limits
 * stream that drops its oldest messages, ordered consumers for `read` (ephemeral, flow-controlled
 * by the client, recreated from the last sequence seen if the server loses them) and durable pull
 * consumers with explicit acknowledgement for `consume`.
 *
 * Subjects are checked against the stream before publishing: a subject no stream captures would
 * otherwise fail as "jetstream is not enabled", and one captured by another stream would land
 * there.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
  type StreamInfo as NatsStreamInfo,
} from '@nats-io/jetstream';
import {
  headers as natsHeaders,
  nanos,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/nats-core';

import { BadRequestError, UnavailableError } from '../errors.js';
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
  isJetStreamHeader,
  resolveStreamOptions,
  type ResolvedConsumeOptions,
} from './validate.js';
import { report, surface, toError } from './report.js';

// JetStream API error codes this module tells apart (server `errors.json`).
const STREAM_NAME_IN_USE = 10058;
const STREAM_SUBJECT_OVERLAP = 10065;
const STREAM_INVALID_CONFIG = 10052;
/** How long a `seqAtTime` probe consumer outlives a lost delete. */
const PROBE_INACTIVE_MS = 30_000;

export class NatsStreamStore implements StreamStore {
  private readonly js: JetStreamClient;
  private manager: Promise<JetStreamManager> | undefined;

  constructor(private readonly connection: NatsConnection) {
    this.js = jetstream(connection);
  }

  async stream(name: string, options: StreamOptions): Promise<EventStream> {
    checkStreamName(name);
    const resolved = resolveStreamOptions(options);
    const jsm = await this.jsm();
    const limits: Partial<StreamConfig> = {
      subjects: [...resolved.subjects],
      max_age: nanos(resolved.maxAgeMs),
      max_bytes: resolved.maxBytes,
      duplicate_window: nanos(resolved.duplicateWindowMs),
    };
    const storage = resolved.storage === 'memory' ? StorageType.Memory : StorageType.File;
    let info: NatsStreamInfo;
    try {
      info = await this.createOrUpdate(jsm, name, limits, storage);
    } catch (err) {
      throw mapConfigError(err);
    }
    return new NatsEventStream(name, info.config.subjects ?? [], this.connection, this.js, jsm);
  }

  /**
   * Creates the stream, or, when it exists with other settings, updates its limits. The storage
   * type cannot be changed on a stream; an existing one keeps the one it has.
   */
  private async createOrUpdate(
    jsm: JetStreamManager,
    name: string,
    limits: Partial<StreamConfig>,
    storage: StorageType,
  ): Promise<NatsStreamInfo> {
    try {
      return await jsm.streams.add({
        ...limits,
        name,
        storage,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
      });
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NAME_IN_USE) throw err;
    }
    return jsm.streams.update(name, limits);
  }

  private jsm(): Promise<JetStreamManager> {
    this.manager ??= jetstreamManager(this.connection).catch((err: unknown) => {
      this.manager = undefined;
      throw err;
    });
    return this.manager;
  }
}

function mapConfigError(err: unknown): unknown {
  if (err instanceof JetStreamApiError) {
    if (err.code === STREAM_SUBJECT_OVERLAP) {
      return new BadRequestError('subjects', `${err.message}; a subject belongs to one stream`, {
        cause: err,
      });
    }
    if (err.code === STREAM_INVALID_CONFIG) {
      return new BadRequestError('options', err.message, { cause: err });
    }
  }
  return err;
}

function toMessage(msg: JsMsg): StreamMessage {
  return {
    subject: msg.subject,
    seq: msg.seq,
    data: msg.data,
    headers: fromMsgHdrs(msg.headers),
    timeMs: msg.time.getTime(),
  };
}

function toMsgHdrs(headers: Headers): MsgHdrs | undefined {
  let hdrs: MsgHdrs | undefined;
  for (const [name, value] of Object.entries(headers)) {
    hdrs ??= natsHeaders();
    hdrs.set(name, value);
  }
  return hdrs;
}

/** The headers the message was published with: JetStream's own (`Nats-Msg-Id`) are left out. */
function fromMsgHdrs(hdrs: MsgHdrs | undefined): Headers {
  const out: Headers = {};
  if (hdrs === undefined) return out;
  for (const [name, values] of hdrs) {
    const value = values[0];
    if (value !== undefined && !isJetStreamHeader(name)) out[name] = value;
  }
  return out;
}

class NatsEventStream implements EventStream {
  constructor(
    readonly name: string,
    private readonly subjects: readonly string[],
    private readonly connection: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  async publish(
    subject: string,
    data: Uint8Array,
    options: { msgId?: string; headers?: Headers } = {},
  ): Promise<PublishAck> {
    checkPublishSubject(this.name, subject, this.subjects);
    if (options.headers !== undefined) checkHeaders(options.headers);
    const hdrs = options.headers === undefined ? undefined : toMsgHdrs(options.headers);
    try {
      const ack = await this.js.publish(subject, data, {
        ...(options.msgId === undefined ? {} : { msgID: options.msgId }),
        ...(hdrs === undefined ? {} : { headers: hdrs }),
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      // What the client reports when no stream answered: ours was deleted or changed under us.
      if (err instanceof Error && err.name === 'JetStreamNotEnabled') {
        throw new UnavailableError(`no stream on the server captures ${subject}`, {
          cause: err,
          data: { stream: this.name, subject },
        });
      }
      throw err;
    }
  }

  async read(
    filter: string,
    from: ReadFrom,
    handler: StreamHandler,
    options: { onError?: (err: Error) => void } = {},
  ): Promise<StreamReader> {
    checkFilter(filter, this.subjects);
    checkReadFrom(from);
    // A time becomes a sequence first: the ordered consumer, should it be recreated before its
    // first message, would carry a start time into a by-sequence configuration the server refuses.
    const fromSeq = typeof from === 'number' ? from : await this.seqAtTime(from.fromTimeMs);
    const consumer = await this.js.consumers.get(this.name, {
      filter_subjects: filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: fromSeq,
    });
    const messages = await consumer.consume();
    const reader = new OrderedReader(this.connection, messages, fromSeq, handler, options.onError);
    reader.onStopped(() => {
      // Ephemeral: the server would drop it after its inactivity threshold anyway.
      void consumer.delete().catch(() => undefined);
    });
    return reader;
  }

  async consume(
    durable: string,
    handler: StreamHandler,
    options: ConsumeOptions = {},
  ): Promise<StreamReader> {
    checkDurableName(durable);
    const resolved = resolveConsumeOptions(options, this.subjects);
    await this.ensureDurable(durable, resolved);
    const consumer = await this.js.consumers.get(this.name, durable);
    // A pulled message's acknowledgement deadline runs while it waits in the client's buffer, so
    // pull no more than the reader can start on; it also leaves the rest to the other readers.
    const messages = await consumer.consume({ max_messages: resolved.concurrency });
    return new DurableReader(this.connection, messages, handler, resolved);
  }

  async info(): Promise<StreamInfo> {
    const { state } = await this.jsm.streams.info(this.name);
    return {
      name: this.name,
      messages: state.messages,
      bytes: state.bytes,
      firstSeq: state.first_seq,
      lastSeq: state.last_seq,
    };
  }

  async lastSeqOf(subject: string): Promise<number> {
    checkPublishSubject(this.name, subject, this.subjects);
    const stored = await this.jsm.streams.getMessage(this.name, { last_by_subj: subject });
    return stored?.seq ?? 0;
  }

  /**
   * NATS 2.9 has no "message at a time" lookup (a get by `start_time` came in 2.11), so this asks
   * the server to place a consumer by start time and reads where it placed it: a new consumer
   * reports the sequence before its first as delivered. The probe pulls nothing and is deleted at
   * once; its inactivity threshold removes it should the delete be lost.
   */
  async seqAtTime(timeMs: number): Promise<number> {
    checkFromTime(timeMs);
    const probe = await this.jsm.consumers.add(this.name, {
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(timeMs).toISOString(),
      ack_policy: AckPolicy.None,
      mem_storage: true,
      inactive_threshold: nanos(PROBE_INACTIVE_MS),
    });
    await this.jsm.consumers.delete(this.name, probe.name).catch(() => undefined);
    return probe.delivered.stream_seq + 1;
  }

  /**
   * Creates the durable, or updates its limits and filter: the last reader to join sets them for
   * all its readers. NATS 2.9 updates an existing durable through `add`; later servers take the
   * request as a create and refuse a changed configuration, and then the explicit update does it.
   */
  private async ensureDurable(durable: string, options: ResolvedConsumeOptions): Promise<void> {
    const limits = {
      ack_wait: nanos(options.ackWaitMs),
      max_deliver: options.maxDeliver,
      filter_subject: options.filter,
    };
    try {
      await this.jsm.consumers.add(this.name, {
        ...limits,
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
      });
      return;
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code === JetStreamApiCodes.StreamNotFound) {
        throw err;
      }
    }
    await this.jsm.consumers.update(this.name, durable, limits);
  }
}

/** Ordered delivery to one handler, one call at a time, until stopped or the handler throws. */
class OrderedReader implements StreamReader {
  private stopped = false;
  private readonly done: Promise<void>;
  private readonly stoppedListeners: (() => void)[] = [];

  constructor(
    private readonly connection: NatsConnection,
    private readonly messages: ConsumerMessages,
    private readonly fromSeq: number,
    private readonly handler: StreamHandler,
    private readonly onError: ((err: Error) => void) | undefined,
  ) {
    this.done = this.run();
  }

  onStopped(listener: () => void): void {
    this.stoppedListeners.push(listener);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.messages.stop();
    await this.done;
  }

  private async run(): Promise<void> {
    let handlerError: Error | undefined;
    let consumerError: Error | undefined;
    try {
      for await (const msg of this.messages) {
        if (this.stopped) break;
        // The server moves a start past the end of the stream back to just after the end.
        if (msg.seq < this.fromSeq) continue;
        try {
          await this.handler(toMessage(msg));
        } catch (err) {
          handlerError = toError(err);
          break;
        }
      }
    } catch (err) {
      consumerError = toError(err);
    }
    this.messages.stop();
    // Stopping, or the connection closing under a node that shuts down, ends a reader normally.
    const expected = this.stopped || this.connection.isClosed() || this.connection.isDraining();
    this.stopped = true;
    for (const listener of this.stoppedListeners) listener();
    if (handlerError !== undefined) {
      report(this.onError, handlerError);
    } else if (!expected) {
      report(
        this.onError,
        consumerError ?? new UnavailableError('the stream reader ended on its own'),
      );
    }
  }
}

/** One reader of a durable: up to `concurrency` handlers at once, acknowledging each message. */
class DurableReader implements StreamReader {
  private stopped = false;
  private readonly running = new Set<Promise<void>>();
  private roomMade: (() => void) | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly connection: NatsConnection,
    private readonly messages: ConsumerMessages,
    private readonly handler: StreamHandler,
    private readonly options: ResolvedConsumeOptions,
  ) {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.messages.stop();
      this.makeRoom();
    }
    await this.done;
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  private makeRoom(): void {
    const roomMade = this.roomMade;
    this.roomMade = undefined;
    roomMade?.();
  }

  private async run(): Promise<void> {
    try {
      for await (const msg of this.messages) {
        while (!this.stopped && this.running.size >= this.options.concurrency) {
          await new Promise<void>((resolve) => (this.roomMade = resolve));
        }
        if (this.stopped) {
          // Pulled but not started: back to the durable at once rather than after the ack wait.
          msg.nak();
          continue;
        }
        const run = this.handle(msg).finally(() => {
          this.running.delete(run);
          this.makeRoom();
        });
        this.running.add(run);
      }
    } catch (err) {
      const expected = this.stopped || this.connection.isClosed() || this.connection.isDraining();
      if (!expected) report(this.options.onError, toError(err));
    }
  }

  private async handle(msg: JsMsg): Promise<void> {
    const message = toMessage(msg);
    try {
      await this.handler(message);
    } catch (err) {
      if (msg.info.deliveryCount < this.options.maxDeliver) {
        msg.nak();
        return;
      }
      try {
        await this.options.onGiveUp?.(message, toError(err));
      } catch (thrown) {
        surface(thrown);
      }
      msg.term();
      return;
    }
    // A closed connection acknowledges nothing (the server delivers the message again), and a
    // confirmation asked on it would only wait out its timeout.
    if (this.connection.isClosed()) return;
    // Confirmed, so a reader that joins after stop() resolves never sees a handled message again.
    await msg.ackAck().catch(() => undefined);
  }
}
