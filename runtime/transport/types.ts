/**
 * The transport contract. Two implementations keep the same semantics: NATS (production) and an
 * in-process bus (embedded mode and unit tests). Subjects use NATS syntax (`.` separated tokens,
 * `*` for one token, `>` for the rest), queue groups deliver each message to one member, and a
 * request nobody listens to fails fast with `NoRespondersError`.
 */

/** Message headers; single-valued, names are case-sensitive as in NATS. */
export type Headers = Record<string, string>;

/** A message as a subscriber sees it. */
export interface InboundMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers;
  /** The reply subject, when the sender expects an answer. */
  readonly reply: string | undefined;
  /** Answers a request; a no-op for a message that was published without a reply subject. */
  respond(data: Uint8Array, headers?: Headers): void;
}

export type MessageHandler = (msg: InboundMessage) => void;

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
}

export interface Subscription {
  readonly subject: string;
  /** Stops delivery at once; messages not yet handed to the handler are dropped. */
  unsubscribe(): void;
  /** Stops taking new messages, hands over the ones already received, then closes. */
  drain(): Promise<void>;
}

export interface RequestOptions {
  /** How long to wait for the reply, in milliseconds. */
  timeoutMs: number;
  headers?: Headers;
}

/** A reply to a request. */
export interface Reply {
  readonly data: Uint8Array;
  readonly headers: Headers;
}

export interface RequestManyOptions {
  /** Stop collecting after this long. */
  timeoutMs: number;
  /** Stop collecting after this many replies. */
  maxReplies?: number;
  headers?: Headers;
}

/** Connection state changes a host reacts to (log, metrics, resubscribe is the transport's job). */
export type TransportStatus = 'disconnected' | 'reconnected' | 'closed';

export interface Transport {
  /** `nats` or `inproc`: shown in logs and service metadata. */
  readonly kind: 'nats' | 'inproc';
  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription;
  publish(subject: string, data: Uint8Array, headers?: Headers): void;
  /** Rejects with `TimeoutError` or `NoRespondersError` (from `runtime/errors.ts`). */
  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Reply>;
  /** Scatter request: collects every reply until the timeout or `maxReplies` (for `$SRV.*` discovery). */
  requestMany(subject: string, data: Uint8Array, options: RequestManyOptions): Promise<Reply[]>;
  /** Resolves once everything published so far has reached the server (or the local bus). */
  flush(): Promise<void>;
  onStatus(listener: (status: TransportStatus) => void): () => void;
  /** Drains subscriptions and closes the connection. */
  close(): Promise<void>;
}
