/**
 * The client API for calling actors: `ask` (request/reply with a deadline) and `tell` (fire and
 * forget). The gateway, other actors and outside Node services all use it. A keyed call goes to
 * `<prefix>.<kind>.<partition>.<key>.<op>`; a grouped call to `<prefix>.<kind>.<group>.<op>`.
 *
 * `ask` retries, within its deadline, only the failures that prove the callee did not run the
 * request (no responders mid-handoff, not the owner, overloaded, shutting down), so a retried ask
 * is never answered twice. A timeout is not retried: the first attempt may still have run.
 */
import type { Logger } from 'pino';
import { encode } from '../codec.js';
import { NoRespondersError, RecsysError, TimeoutError } from '../errors.js';
import type { OpName, Protocol, ReplyOf, RequestOf } from '../actor/protocol.js';
import { partitionOf } from '../placement/hash.js';
import { Subjects } from '../subjects.js';
import type { Headers, Transport } from '../transport/types.js';
import { decodeReply, Header, RETRYABLE_BEFORE_WORK } from '../wire.js';
import { createIdGenerator } from './ids.js';

export type ActorRef = { kind: string; key: string } | { kind: string; group: string };

export interface CallOptions {
  /** Time budget from now, in ms. @default runtime.default_timeout_ms */
  timeoutMs?: number;
  /** Absolute deadline (epoch ms); wins over `timeoutMs`. Pass it down to keep one budget end to end. */
  deadline?: number;
  requestId?: string;
  traceparent?: string;
}

/** Observes client calls (metrics); optional. */
export interface ClientObserver {
  retried(kind: string, code: string): void;
  timedOut(kind: string, op: string): void;
}

export interface ActorClientOptions {
  transport: Transport;
  /** Subject prefix. @default 'recsys' */
  prefix?: string;
  /** Must equal the hosts' `runtime.partitions`. @default 64 */
  partitions?: number;
  /** @default 1000 */
  defaultTimeoutMs?: number;
  observer?: ClientObserver;
  log?: Logger;
}

/**
 * A request payload encoded once, for a caller that sends the same request to several actors (a
 * scatter over shards): `ask` and `tell` send its bytes as they are instead of encoding the value
 * again for every callee. `T` is the request type it was encoded from.
 */
export class EncodedRequest<T = unknown> {
  /** Never set: keeps the request type, so a typed ref takes it only for the right operation. */
  declare readonly request: T;

  constructor(
    readonly data: Uint8Array,
    readonly headers: Headers,
  ) {}

  static of<T>(request: T): EncodedRequest<T> {
    const { data, headers } = encode(request);
    return new EncodedRequest<T>(data, headers);
  }
}

const encodedOf = (request: unknown): EncodedRequest =>
  request instanceof EncodedRequest ? request : EncodedRequest.of(request);

const MIN_BACKOFF_MS = 2;
const MAX_BACKOFF_MS = 100;
/** Least time left for a retry to be sent: a round trip, with room for a busy event loop. */
const MIN_ATTEMPT_MS = 20;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ActorClient {
  readonly subjects: Subjects;
  readonly partitions: number;
  private readonly transport: Transport;
  private readonly defaultTimeoutMs: number;
  private readonly observer: ClientObserver | undefined;
  private readonly nextId = createIdGenerator();

  constructor(options: ActorClientOptions) {
    this.transport = options.transport;
    this.subjects = new Subjects(options.prefix ?? 'recsys');
    this.partitions = options.partitions ?? 64;
    if (!Number.isInteger(this.partitions) || this.partitions < 1) {
      throw new RangeError('partitions must be a positive integer');
    }
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 1000;
    this.observer = options.observer;
  }

  /** A typed handle on a keyed kind: `client.keyed<CounterProtocol>('counter').ask('u1', 'add', {...})`. */
  keyed<P extends Protocol>(kind: string): TypedRef<P, string> {
    return {
      ask: (key, op, request, options) => this.ask({ kind, key }, op, request, options),
      tell: (key, op, request, options) => this.tell({ kind, key }, op, request, options),
    };
  }

  /** A typed handle on a grouped kind: `client.grouped<ShardProtocol>('items').ask('3', 'search', {...})`. */
  grouped<P extends Protocol>(kind: string): TypedRef<P, string> {
    return {
      ask: (group, op, request, options) => this.ask({ kind, group }, op, request, options),
      tell: (group, op, request, options) => this.tell({ kind, group }, op, request, options),
    };
  }

  subjectFor(ref: ActorRef, op: string): string {
    if ('key' in ref) {
      return this.subjects.keyed(ref.kind, partitionOf(ref.key, this.partitions), ref.key, op);
    }
    return this.subjects.grouped(ref.kind, ref.group, op);
  }

  /**
   * Request/reply under a deadline; rejects with the callee's typed error or `TimeoutError`.
   * `request` may be an {@link EncodedRequest}, sent as it is.
   */
  async ask<Rep = unknown>(
    ref: ActorRef,
    op: string,
    request: unknown,
    options: CallOptions = {},
  ): Promise<Rep> {
    const subject = this.subjectFor(ref, op);
    const deadline = options.deadline ?? Date.now() + (options.timeoutMs ?? this.defaultTimeoutMs);
    const payload = encodedOf(request);
    const headers: Headers = {
      ...payload.headers,
      [Header.Deadline]: String(deadline),
      [Header.RequestId]: options.requestId ?? this.nextId(),
    };
    if (options.traceparent !== undefined) headers[Header.TraceParent] = options.traceparent;

    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        this.observer?.timedOut(ref.kind, op);
        throw new TimeoutError(`${subject}: no reply within the deadline`, {
          data: { subject, attempts: attempt },
        });
      }
      let refused: RecsysError;
      try {
        const reply = await this.transport.request(subject, payload.data, {
          timeoutMs: remaining,
          headers,
        });
        return decodeReply(reply) as Rep;
      } catch (err) {
        if (err instanceof TimeoutError) this.observer?.timedOut(ref.kind, op);
        if (!provesNotRun(err)) throw err;
        refused = err;
      }
      const backoff =
        Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** attempt) * (0.5 + Math.random());
      // A retry is worth starting only with time left for a round trip; else the caller gets the
      // refusal that proved nothing ran, not a timeout that says the callee may have.
      if (Date.now() + backoff + MIN_ATTEMPT_MS >= deadline) throw refused;
      this.observer?.retried(ref.kind, refused.code);
      await sleep(backoff);
    }
  }

  /**
   * Fire and forget: at most once, no reply, no retry. For effects that must not be lost, publish
   * an event to the stream instead.
   */
  tell(ref: ActorRef, op: string, request: unknown, options: CallOptions = {}): void {
    const payload = encodedOf(request);
    const deadline = options.deadline ?? Date.now() + (options.timeoutMs ?? this.defaultTimeoutMs);
    this.transport.publish(this.subjectFor(ref, op), payload.data, {
      ...payload.headers,
      [Header.Deadline]: String(deadline),
      [Header.RequestId]: options.requestId ?? this.nextId(),
    });
  }
}

/**
 * Only two kinds of failure prove a request did not run, so only they are retried: nobody was
 * subscribed, or the callee itself answered that it refused the request before any work. A
 * connection lost mid-request is neither: the callee may have run it.
 */
function provesNotRun(err: unknown): err is RecsysError {
  if (err instanceof NoRespondersError) return true;
  return err instanceof RecsysError && err.fromReply && RETRYABLE_BEFORE_WORK.has(err.code);
}

/** A handle typed by a kind's protocol. */
export interface TypedRef<P extends Protocol, Address> {
  ask<Op extends OpName<P>>(
    address: Address,
    op: Op,
    request: RequestOf<P, Op> | EncodedRequest<RequestOf<P, Op>>,
    options?: CallOptions,
  ): Promise<ReplyOf<P, Op>>;
  tell<Op extends OpName<P>>(
    address: Address,
    op: Op,
    request: RequestOf<P, Op> | EncodedRequest<RequestOf<P, Op>>,
    options?: CallOptions,
  ): void;
}
