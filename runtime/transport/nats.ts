/**
 * The NATS transport over nats.js 3.x. Request/reply is the hot path (every actor call), so it adds
 * as little as possible: headers are only converted when present, async stack traces are off for
 * the whole connection (nats.js only allows that per connection), and requests share one reply
 * inbox of this transport's own instead of going through `nc.request` (see `request`).
 *
 * Outgoing payloads are copied: nats.js keeps a reference to the caller's buffer until its next
 * write to the socket, so a caller reusing a buffer right after `publish` would change what is
 * sent. One memcpy per message is noise next to a network hop, and it keeps the contract the
 * in-process transport has.
 *
 * A request to a queue group this transport itself has a member of is served by that member
 * without a trip through the server (`localRequests`, on by default): a node that runs the ranker
 * or an item shard next to the user actors answers their calls in-process, saving two socket
 * writes, the server's routing and two wake-ups per call. Only queue groups qualify: a queue group
 * promises each request to one member, any member, so choosing the local one changes no outcome.
 * Such requests do not cross the server, so `nats sub` does not see them.
 */
import {
  createInbox,
  errors as natsErrors,
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription as NatsSubscription,
} from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';

import { BadRequestError, NoRespondersError, TimeoutError, UnavailableError } from '../errors.js';
import { timerDelay } from '../timeouts.js';
import { publishTokens, SubjectIndex, subscriptionTokens } from './subject-index.js';
import type {
  Headers,
  InboundMessage,
  MessageHandler,
  Reply,
  RequestManyOptions,
  RequestOptions,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportStatus,
} from './types.js';

export interface NatsTransportOptions {
  /** One or more server URLs, e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** Connection name shown by `nats server report connections`. */
  name?: string;
  /** Pause between reconnect attempts to the same server. @default 2000 */
  reconnectTimeWaitMs?: number;
  /** Reconnect attempts per server before giving up; -1 retries forever. @default -1 */
  maxReconnectAttempts?: number;
  /** How long `close()` waits for subscriptions to drain before closing anyway. @default 5000 */
  drainTimeoutMs?: number;
  /** Serve requests to a local queue-group member in-process (see the module). @default true */
  localRequests?: boolean;
}

/** A queue-group member of this transport, which requests from this process may reach directly. */
interface LocalMember {
  readonly handler: MessageHandler;
}

const DEFAULT_RECONNECT_WAIT_MS = 2000;

export class NatsTransport implements Transport {
  readonly kind = 'nats' as const;
  /** The underlying connection, for JetStream and KV users. */
  readonly connection: NatsConnection;
  private readonly drainTimeoutMs: number;
  private readonly listeners = new Set<(status: TransportStatus) => void>();
  private lastStatus: TransportStatus | undefined;
  private closing: Promise<void> | undefined;
  /** `_INBOX.<nuid>.`: the reply to a request arrives on `<inbox><token>`. */
  private inbox: string | undefined;
  private nextToken = 0;
  private readonly pending = new Map<string, PendingRequest>();
  private readonly replies: ReplyBatch;
  /** Queue-group members subscribed here, by subject; undefined when local requests are off. */
  private readonly localMembers: SubjectIndex<LocalMember> | undefined;
  private nextLocal = 0;
  /** Queue-group members subscribed here: with none (a gateway), requests skip the lookup. */
  private localCount = 0;

  /**
   * Wraps a connection made elsewhere. {@link NatsTransport.connect} is the usual way in: it sets
   * the reconnect policy and turns off async traces, which this class relies on.
   */
  constructor(
    connection: NatsConnection,
    options: { drainTimeoutMs?: number; localRequests?: boolean } = {},
  ) {
    this.connection = connection;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 5000;
    this.localMembers = options.localRequests === false ? undefined : new SubjectIndex();
    this.replies = new ReplyBatch(connection);
    void this.watchStatus();
  }

  static async connect(options: NatsTransportOptions): Promise<NatsTransport> {
    try {
      const nc = await connect({
        servers: options.servers,
        ...(options.name === undefined ? {} : { name: options.name }),
        // Never pass `undefined`: nats.js spreads options over its defaults, and an undefined
        // reconnect wait silently stops reconnection altogether.
        reconnectTimeWait: options.reconnectTimeWaitMs ?? DEFAULT_RECONNECT_WAIT_MS,
        maxReconnectAttempts: options.maxReconnectAttempts ?? -1,
        waitOnFirstConnect: false,
        noAsyncTraces: true,
      });
      return new NatsTransport(nc, options);
    } catch (err) {
      throw new UnavailableError(`cannot connect to NATS at ${String(options.servers)}`, {
        cause: err,
      });
    }
  }

  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription {
    // nats.js checks only for blanks; the server would reject `a..b` asynchronously, far from here.
    const tokens = subscriptionTokens(subject);
    const local = options?.queue === undefined ? undefined : this.localMembers;
    const member: LocalMember = { handler };
    try {
      const sub = this.connection.subscribe(subject, {
        queue: options?.queue,
        callback: (err, msg) => {
          // Errors here are permission or timeout notices for the subscription; there is no
          // message to hand over, and the subscription's own lifecycle already reflects them.
          if (err !== null) return;
          try {
            handler(new NatsInboundMessage(msg, this.replies));
          } catch (handlerErr) {
            reportHandlerError(handlerErr);
          }
        },
      });
      if (local !== undefined) {
        local.add(tokens, member);
        this.localCount++;
      }
      // Leaving (unsubscribe, or the start of a drain) ends local delivery at once: a draining
      // member takes no new requests, from the server or from here.
      let left = false;
      const leave = (): void => {
        if (local === undefined || left) return;
        left = true;
        local.remove(tokens, member);
        this.localCount--;
      };
      return new NatsTransportSubscription(subject, sub, leave);
    } catch (err) {
      throw mapError(err, subject);
    }
  }

  publish(subject: string, data: Uint8Array, headers?: Headers): void {
    try {
      this.connection.publish(
        subject,
        data.slice(),
        headers === undefined ? undefined : { headers: toMsgHdrs(headers) },
      );
    } catch (err) {
      throw mapError(err, subject);
    }
  }

  /**
   * Every request shares one wildcard subscription on this transport's inbox and is told apart by
   * a counter token. `nc.request` works the same way but costs about 10 µs more CPU per request
   * (`npm run bench -- runtime`): among other things it builds an `Error`, stack trace and all, to
   * cancel each request it has just resolved.
   */
  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Reply> {
    const nc = this.connection;
    if (nc.isClosed() || nc.isDraining()) {
      return Promise.reject(new UnavailableError('transport closed'));
    }
    let hdrs: MsgHdrs | undefined;
    let inbox: string;
    try {
      if (options.headers !== undefined) hdrs = toMsgHdrs(options.headers);
      inbox = this.inbox ?? this.openInbox();
    } catch (err) {
      return Promise.reject(mapError(err, subject));
    }
    const local = this.localMemberFor(subject);
    if (local !== undefined) return this.requestLocally(local, subject, data, options);
    const token = (this.nextToken++).toString(36);
    const { timeoutMs } = options;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new TimeoutError(`no reply on ${subject} within ${timeoutMs} ms`));
      }, timerDelay(timeoutMs));
      this.pending.set(token, { subject, resolve, reject, timer });
      try {
        nc.publish(subject, data.slice(), { reply: inbox + token, headers: hdrs });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(token);
        reject(mapError(err, subject));
      }
    });
  }

  /** A local member of a queue group `subject` reaches, taken in turn when there are several. */
  private localMemberFor(subject: string): LocalMember | undefined {
    if (this.localMembers === undefined || this.localCount === 0) return undefined;
    let members: LocalMember[];
    try {
      members = this.localMembers.match(publishTokens(subject));
    } catch {
      return undefined; // An invalid subject: nats.js reports it the usual way.
    }
    if (members.length === 0) return undefined;
    return members[this.nextLocal++ % members.length];
  }

  /**
   * Hands the request to a local member, as the server would have: on a later turn of the event
   * loop (never inside the caller's stack), with copies of the bytes, under the same timeout.
   */
  private requestLocally(
    member: LocalMember,
    subject: string,
    data: Uint8Array,
    options: RequestOptions,
  ): Promise<Reply> {
    const { timeoutMs } = options;
    return new Promise<Reply>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new TimeoutError(`no reply on ${subject} within ${timeoutMs} ms`));
      }, timerDelay(timeoutMs));
      const message: InboundMessage = {
        subject,
        data: data.slice(),
        headers: options.headers ?? NO_HEADERS,
        reply: LOCAL_REPLY,
        respond: (replyData, replyHeaders) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ data: replyData.slice(), headers: replyHeaders ?? NO_HEADERS });
        },
      };
      queueMicrotask(() => {
        try {
          member.handler(message);
        } catch (handlerErr) {
          reportHandlerError(handlerErr);
        }
      });
    });
  }

  private openInbox(): string {
    const inbox = `${createInbox()}.`;
    this.connection.subscribe(`${inbox}*`, {
      callback: (err, msg) => {
        if (err !== null) return;
        const token = msg.subject.slice(inbox.length);
        const pending = this.pending.get(token);
        // A reply after the timeout, or a second reply, finds nobody waiting.
        if (pending === undefined) return;
        this.pending.delete(token);
        clearTimeout(pending.timer);
        // The server answers a request nobody listens to with an empty 503 status message.
        if (msg.data.length === 0 && msg.headers?.code === 503) {
          pending.reject(new NoRespondersError(`no responders on ${pending.subject}`));
        } else {
          pending.resolve(toReply(msg));
        }
      },
    });
    this.inbox = inbox;
    return inbox;
  }

  /** Fails the requests still waiting once the connection is gone for good. */
  private failPending(): void {
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new UnavailableError('transport closed'));
    }
    this.pending.clear();
  }

  async requestMany(
    subject: string,
    data: Uint8Array,
    options: RequestManyOptions,
  ): Promise<Reply[]> {
    const replies: Reply[] = [];
    try {
      const maxReplies = options.maxReplies;
      const iter = await this.connection.requestMany(subject, data.slice(), {
        strategy: maxReplies === undefined ? 'timer' : 'count',
        maxWait: options.timeoutMs,
        maxMessages: maxReplies,
        headers: options.headers === undefined ? undefined : toMsgHdrs(options.headers),
      });
      for await (const msg of iter) replies.push(toReply(msg));
    } catch (err) {
      // Nobody listening is an empty answer to a scatter request, not a failure.
      if (isNoResponders(err)) return replies;
      throw mapError(err, subject, options.timeoutMs);
    }
    return replies;
  }

  flush(): Promise<void> {
    this.replies.flush();
    return this.connection.flush().catch((err: unknown) => {
      throw mapError(err, '');
    });
  }

  onStatus(listener: (status: TransportStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const nc = this.connection;
    this.replies.flush();
    if (nc.isClosed()) return;
    if (!nc.isDraining()) {
      // A drain needs the server; while disconnected it would wait for a reconnect, so it is
      // bounded and followed by a plain close.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.drainTimeoutMs);
      });
      await Promise.race([nc.drain().catch(() => undefined), timeout]);
      clearTimeout(timer);
    }
    if (!nc.isClosed()) await nc.close();
    await nc.closed();
    this.failPending();
  }

  private async watchStatus(): Promise<void> {
    const closed = this.connection.closed().then(() => {
      this.failPending();
      this.emit('closed');
    });
    for await (const status of this.connection.status()) {
      if (status.type === 'disconnect') this.emit('disconnected');
      else if (status.type === 'reconnect') this.emit('reconnected');
    }
    await closed;
  }

  private emit(status: TransportStatus): void {
    // nats.js reports a disconnect per failed server; a host wants one per outage.
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    for (const listener of [...this.listeners]) listener(status);
  }
}

interface PendingRequest {
  subject: string;
  resolve(reply: Reply): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** The reply subject a locally served request shows its handler (nothing is published to it). */
const LOCAL_REPLY = '_LOCAL';

class NatsTransportSubscription implements Subscription {
  constructor(
    readonly subject: string,
    private readonly sub: NatsSubscription,
    private readonly leave: () => void,
  ) {}

  unsubscribe(): void {
    this.leave();
    if (!this.sub.isClosed()) this.sub.unsubscribe();
  }

  async drain(): Promise<void> {
    this.leave();
    if (this.sub.isClosed()) return;
    try {
      await this.sub.drain();
    } catch (err) {
      // Already closed or draining with the connection: nothing left to hand over.
      if (!isClosedConnection(err)) throw mapError(err, this.subject);
    }
  }
}

/** Larger replies go out at once, where nats.js checks them against the server's payload limit. */
const BATCHED_REPLY_MAX_BYTES = 64 * 1024;

interface QueuedReply {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
}

/**
 * Replies made during one turn of the event loop, published together at its end (`setImmediate`
 * runs after the turn's I/O callbacks). nats.js writes to the socket once per microtask
 * checkpoint, and a shard's replies are made in checkpoints of their own (each search worker's
 * answer is an event of its own), so unbatched every reply was a write system call, and on one
 * machine a wake-up of nats-server that preempts this thread. Batched, the replies that become
 * ready together leave in one write.
 */
class ReplyBatch {
  private queued: QueuedReply[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly nc: NatsConnection) {}

  /**
   * Whether a reply may wait for the end of the turn: not while the connection closes or drains
   * (a drain must see every reply before it ends), and not when only nats.js can tell whether it
   * fits the server's payload limit. Such a reply is published at once, and fails at once.
   */
  accepts(data: Uint8Array): boolean {
    return data.length <= BATCHED_REPLY_MAX_BYTES && !this.nc.isClosed() && !this.nc.isDraining();
  }

  add(reply: QueuedReply): void {
    this.queued.push(reply);
    this.scheduled ??= setImmediate(() => this.flush());
  }

  flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const queued = this.queued;
    this.queued = [];
    for (const { subject, data, headers } of queued) {
      try {
        this.nc.publish(subject, data, headers === undefined ? undefined : { headers });
      } catch {
        // The connection closed within the turn: the reply is lost as one lost on the wire would
        // be, and the caller's request fails with its timeout.
      }
    }
  }
}

const NO_HEADERS: Headers = Object.freeze({});

class NatsInboundMessage implements InboundMessage {
  private mappedHeaders: Headers | undefined;

  constructor(
    private readonly msg: Msg,
    private readonly replies: ReplyBatch,
  ) {}

  get subject(): string {
    return this.msg.subject;
  }

  get data(): Uint8Array {
    return this.msg.data;
  }

  get reply(): string | undefined {
    return this.msg.reply || undefined;
  }

  /** Converted on first read: most handlers never look at headers. */
  get headers(): Headers {
    this.mappedHeaders ??= fromMsgHdrs(this.msg.headers);
    return this.mappedHeaders;
  }

  respond(data: Uint8Array, headers?: Headers): void {
    const subject = this.msg.reply;
    if (!subject) return;
    try {
      const hdrs = headers === undefined ? undefined : toMsgHdrs(headers);
      if (this.replies.accepts(data)) {
        this.replies.add({ subject, data: data.slice(), headers: hdrs });
      } else {
        this.msg.respond(data.slice(), hdrs === undefined ? undefined : { headers: hdrs });
      }
    } catch (err) {
      throw mapError(err, subject);
    }
  }
}

function toReply(msg: Msg): Reply {
  return { data: msg.data, headers: fromMsgHdrs(msg.headers) };
}

function toMsgHdrs(headers: Headers): MsgHdrs | undefined {
  let hdrs: MsgHdrs | undefined;
  for (const key in headers) {
    hdrs ??= natsHeaders();
    hdrs.set(key, headers[key] as string);
  }
  return hdrs;
}

function fromMsgHdrs(hdrs: MsgHdrs | undefined): Headers {
  if (hdrs === undefined) return NO_HEADERS;
  const out: Headers = {};
  for (const [key, values] of hdrs) {
    const value = values[0];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function isNoResponders(err: unknown): boolean {
  return (
    err instanceof natsErrors.NoRespondersError ||
    (err instanceof natsErrors.RequestError && err.isNoResponders())
  );
}

function isClosedConnection(err: unknown): boolean {
  return (
    err instanceof natsErrors.ClosedConnectionError ||
    err instanceof natsErrors.DrainingConnectionError
  );
}

/** Translates nats.js errors into the runtime's; anything unrecognised passes through. */
function mapError(err: unknown, subject: string, timeoutMs?: number): Error {
  if (err instanceof natsErrors.TimeoutError) {
    return new TimeoutError(`no reply on ${subject} within ${timeoutMs ?? 0} ms`, { cause: err });
  }
  if (isNoResponders(err)) {
    return new NoRespondersError(`no responders on ${subject}`, { cause: err });
  }
  if (isClosedConnection(err)) {
    return new UnavailableError('transport closed', { cause: err });
  }
  // In-flight requests fail this way when the connection drops or closes under them.
  if (err instanceof natsErrors.RequestError) {
    return new UnavailableError(err.message, { cause: err });
  }
  if (err instanceof natsErrors.InvalidSubjectError) {
    return new BadRequestError('subject', err.message, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** See the in-process transport: a throwing handler is a bug above us, surfaced, not swallowed. */
function reportHandlerError(err: unknown): void {
  setTimeout(() => {
    throw err;
  }, 0);
}
