/**
 * The in-process transport: the same subject, queue-group and request/reply semantics as NATS,
 * without a server. Delivery is always asynchronous (a per-subscription queue run in a microtask),
 * so a handler never runs inside `publish` and re-entrancy bugs show up here as they would on NATS.
 * Every receiver gets its own copy of the payload and headers.
 *
 * Several transports can share one {@link InProcessBus}: each acts as one host's connection and
 * can be closed on its own, which is how multi-host tests run in one process.
 */
import { NoRespondersError, TimeoutError, UnavailableError } from '../errors.js';
import { timerDelay } from '../timeouts.js';
import { hasWildcard, publishTokens, SubjectIndex, subscriptionTokens } from './subject-index.js';
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

const INBOX_PREFIX = '_INBOX.';
/** Published subjects can be unbounded (one per user); past this many routes the cache restarts. */
const MAX_CACHED_ROUTES = 10_000;

interface QueueGroup {
  readonly members: InProcessSubscription[];
  next: number;
}

/** Who gets a message published on one literal subject. */
interface Route {
  readonly plain: InProcessSubscription[];
  readonly groups: QueueGroup[];
}

type InboxHandler = (reply: Reply) => void;

/** The shared medium of one or more {@link InProcessTransport}s: subscriptions, routes, inboxes. */
export class InProcessBus {
  private readonly index = new SubjectIndex<InProcessSubscription>();
  private readonly routes = new Map<string, Route>();
  private readonly inboxes = new Map<string, InboxHandler>();
  private transports = 0;

  /** @internal */
  newInboxPrefix(): string {
    return `${INBOX_PREFIX}${(this.transports++).toString(36)}.`;
  }

  /** @internal */
  attach(sub: InProcessSubscription): void {
    this.index.add(sub.tokens, sub);
    this.invalidate(sub.subject);
  }

  /** @internal */
  detach(sub: InProcessSubscription): void {
    this.index.remove(sub.tokens, sub);
    this.invalidate(sub.subject);
  }

  /** @internal */
  openInbox(inbox: string, handler: InboxHandler): void {
    this.inboxes.set(inbox, handler);
  }

  /** @internal */
  closeInbox(inbox: string): void {
    this.inboxes.delete(inbox);
  }

  /**
   * Hands a copy of the message to every plain subscriber and to one member of each queue group;
   * returns how many received it. @internal
   */
  deliver(
    subject: string,
    data: Uint8Array,
    headers: Headers | undefined,
    reply: string | undefined,
  ): number {
    if (subject.startsWith(INBOX_PREFIX)) {
      const inbox = this.inboxes.get(subject);
      // A reply whose requester gave up (timeout, close) is dropped, as NATS drops it.
      if (inbox === undefined) return 0;
      inbox({ data: data.slice(), headers: copyHeaders(headers) });
      return 1;
    }
    const route = this.route(subject);
    for (const sub of route.plain) sub.enqueue(subject, data, headers, reply);
    for (const group of route.groups) {
      const member = group.members[group.next++ % group.members.length] as InProcessSubscription;
      member.enqueue(subject, data, headers, reply);
    }
    return route.plain.length + route.groups.length;
  }

  private route(subject: string): Route {
    const cached = this.routes.get(subject);
    if (cached !== undefined) return cached;
    const plain: InProcessSubscription[] = [];
    const byQueue = new Map<string, InProcessSubscription[]>();
    for (const sub of this.index.match(publishTokens(subject))) {
      if (sub.queue === undefined) {
        plain.push(sub);
        continue;
      }
      const members = byQueue.get(sub.queue);
      if (members === undefined) byQueue.set(sub.queue, [sub]);
      else members.push(sub);
    }
    const groups = [...byQueue.values()].map((members) => ({ members, next: 0 }));
    if (this.routes.size >= MAX_CACHED_ROUTES) this.routes.clear();
    const route = { plain, groups };
    this.routes.set(subject, route);
    return route;
  }

  private invalidate(subject: string): void {
    // A literal subscription changes one route; a wildcard one may change any.
    if (hasWildcard(subject)) this.routes.clear();
    else this.routes.delete(subject);
  }
}

function copyHeaders(headers: Headers | undefined): Headers {
  return headers === undefined ? {} : { ...headers };
}

class InProcessMessage implements InboundMessage {
  constructor(
    readonly subject: string,
    readonly data: Uint8Array,
    readonly headers: Headers,
    readonly reply: string | undefined,
    private readonly transport: InProcessTransport,
  ) {}

  respond(data: Uint8Array, headers?: Headers): void {
    if (this.reply !== undefined) this.transport.publish(this.reply, data, headers);
  }
}

type SubscriptionState = 'active' | 'draining' | 'closed';

/** @internal exported for the bus only */
export class InProcessSubscription implements Subscription {
  readonly tokens: string[];
  private pending: InProcessMessage[] = [];
  private scheduled = false;
  /** Inside `run`: a drain started by a handler must let the rest of the batch through. */
  private running = false;
  private state: SubscriptionState = 'active';
  private drained: Promise<void> | undefined;
  private resolveDrained: (() => void) | undefined;

  constructor(
    private readonly transport: InProcessTransport,
    readonly subject: string,
    readonly queue: string | undefined,
    private readonly handler: MessageHandler,
  ) {
    this.tokens = subscriptionTokens(subject);
  }

  enqueue(subject: string, data: Uint8Array, headers: Headers | undefined, reply?: string): void {
    // Copied now, inside publish, so a sender reusing its buffer cannot change what arrives.
    const msg = new InProcessMessage(
      subject,
      data.slice(),
      copyHeaders(headers),
      reply,
      this.transport,
    );
    this.pending.push(msg);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.run);
    }
  }

  private readonly run = (): void => {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    this.running = true;
    for (const msg of batch) {
      if (this.state === 'closed') break;
      try {
        this.handler(msg);
      } catch (err) {
        reportHandlerError(err);
      }
    }
    this.running = false;
    if (this.state === 'draining' && !this.scheduled) this.finish();
  };

  unsubscribe(): void {
    if (this.state === 'closed') return;
    if (this.state === 'active') this.transport.bus.detach(this);
    this.pending = [];
    this.finish();
  }

  drain(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    if (this.drained !== undefined) return this.drained;
    this.state = 'draining';
    this.transport.bus.detach(this);
    this.drained = new Promise((resolve) => (this.resolveDrained = resolve));
    if (!this.scheduled && !this.running) this.finish();
    return this.drained;
  }

  private finish(): void {
    this.state = 'closed';
    this.transport.forget(this);
    this.resolveDrained?.();
  }
}

/**
 * A handler that throws is a bug in the layer above (the actor host turns handler failures into
 * error replies). Rethrown outside the delivery loop so it surfaces as an uncaught exception
 * without stopping delivery to this or other subscriptions.
 */
function reportHandlerError(err: unknown): void {
  setTimeout(() => {
    throw err;
  }, 0);
}

type TransportState = 'open' | 'draining' | 'closed';

export class InProcessTransport implements Transport {
  readonly kind = 'inproc' as const;
  readonly bus: InProcessBus;
  private readonly inboxPrefix: string;
  private nextInbox = 0;
  private state: TransportState = 'open';
  private closing: Promise<void> | undefined;
  private readonly subscriptions = new Set<InProcessSubscription>();
  /** Cancels in-flight requests when the transport closes. */
  private readonly inflight = new Set<(err: Error) => void>();
  private readonly listeners = new Set<(status: TransportStatus) => void>();

  constructor(bus: InProcessBus = new InProcessBus()) {
    this.bus = bus;
    this.inboxPrefix = bus.newInboxPrefix();
  }

  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription {
    if (this.state !== 'open') throw unavailable();
    const sub = new InProcessSubscription(this, subject, options?.queue, handler);
    this.bus.attach(sub);
    this.subscriptions.add(sub);
    return sub;
  }

  publish(subject: string, data: Uint8Array, headers?: Headers): void {
    // Publishing goes on while draining, so handlers can still answer what they already took.
    if (this.state === 'closed') throw unavailable();
    this.bus.deliver(subject, data, headers, undefined);
  }

  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Reply> {
    if (this.state !== 'open') return Promise.reject(unavailable());
    return new Promise<Reply>((resolve, reject) => {
      const inbox = this.newInbox();
      const settle = (): void => {
        clearTimeout(timer);
        this.bus.closeInbox(inbox);
        this.inflight.delete(cancel);
      };
      const cancel = (err: Error): void => {
        settle();
        reject(err);
      };
      const timer = setTimeout(() => {
        cancel(new TimeoutError(`no reply on ${subject} within ${options.timeoutMs} ms`));
      }, timerDelay(options.timeoutMs));
      this.inflight.add(cancel);
      this.bus.openInbox(inbox, (reply) => {
        settle();
        resolve(reply);
      });
      try {
        if (this.bus.deliver(subject, data, options.headers, inbox) === 0) {
          cancel(new NoRespondersError(`no responders on ${subject}`));
        }
      } catch (err) {
        cancel(err as Error);
      }
    });
  }

  requestMany(subject: string, data: Uint8Array, options: RequestManyOptions): Promise<Reply[]> {
    if (this.state !== 'open') return Promise.reject(unavailable());
    return new Promise<Reply[]>((resolve, reject) => {
      const inbox = this.newInbox();
      const replies: Reply[] = [];
      const settle = (): void => {
        clearTimeout(timer);
        this.bus.closeInbox(inbox);
        this.inflight.delete(cancel);
      };
      const cancel = (err: Error): void => {
        settle();
        reject(err);
      };
      const finish = (): void => {
        settle();
        resolve(replies);
      };
      const timer = setTimeout(finish, timerDelay(options.timeoutMs));
      this.inflight.add(cancel);
      this.bus.openInbox(inbox, (reply) => {
        replies.push(reply);
        if (options.maxReplies !== undefined && replies.length >= options.maxReplies) finish();
      });
      try {
        if (this.bus.deliver(subject, data, options.headers, inbox) === 0) finish();
      } catch (err) {
        cancel(err as Error);
      }
    });
  }

  flush(): Promise<void> {
    // Publishing hands messages to the bus synchronously, so there is never anything in flight.
    return this.state === 'closed' ? Promise.reject(unavailable()) : Promise.resolve();
  }

  onStatus(listener: (status: TransportStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** @internal */
  forget(sub: InProcessSubscription): void {
    this.subscriptions.delete(sub);
  }

  private async shutdown(): Promise<void> {
    this.state = 'draining';
    await Promise.all([...this.subscriptions].map((sub) => sub.drain()));
    this.state = 'closed';
    for (const cancel of [...this.inflight]) cancel(unavailable());
    for (const listener of [...this.listeners]) listener('closed');
    this.listeners.clear();
  }

  private newInbox(): string {
    return this.inboxPrefix + (this.nextInbox++).toString(36);
  }
}

function unavailable(): UnavailableError {
  return new UnavailableError('transport closed');
}
