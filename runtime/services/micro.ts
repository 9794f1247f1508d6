/**
 * The NATS services ("micro") protocol, spoken over our own `Transport`, so `nats micro list`,
 * `nats micro info` and `nats micro stats` show every actor kind on every host.
 *
 * We do not serve with `@nats-io/services`: it owns the endpoint subscriptions, closes the whole
 * service when one of them stops, and cannot remove an endpoint. Keyed actors subscribe and
 * unsubscribe per partition as ownership moves, so here endpoints are declarative: the host does
 * its own subscribing and reports each handled message through an {@link EndpointRecorder}.
 *
 * Wire format (micro v1, the same as the Go and JS reference implementations):
 * - requests on `$SRV.<VERB>`, `$SRV.<VERB>.<name>` and `$SRV.<VERB>.<name>.<id>`, VERB one of
 *   PING, INFO, STATS, subscribed without a queue group so every instance answers;
 * - replies are JSON objects whose `type` is `io.nats.micro.v1.<verb>_response`;
 * - times are integer nanoseconds, `started` is an ISO-8601 UTC timestamp.
 */
import { randomBytes } from 'node:crypto';
import { BadRequestError } from '../errors.js';
import { assertToken } from '../subjects.js';
import type { InboundMessage, Subscription, Transport } from '../transport/types.js';

/** The root of every control subject. */
export const SERVICE_API_PREFIX = '$SRV';

/** Headers of a micro error reply, read by `nats` and the reference clients. */
export const SERVICE_ERROR_HEADER = 'Nats-Service-Error';
export const SERVICE_ERROR_CODE_HEADER = 'Nats-Service-Error-Code';

/** The three control verbs. A const object plus a same-named type, as the reference has it. */
export const ServiceVerb = { Ping: 'PING', Info: 'INFO', Stats: 'STATS' } as const;
export type ServiceVerb = (typeof ServiceVerb)[keyof typeof ServiceVerb];

/** The `type` field of each reply; clients use it to tell the replies apart. */
export const ServiceResponseType = {
  Ping: 'io.nats.micro.v1.ping_response',
  Info: 'io.nats.micro.v1.info_response',
  Stats: 'io.nats.micro.v1.stats_response',
} as const;
export type ServiceResponseType = (typeof ServiceResponseType)[keyof typeof ServiceResponseType];

/** Wire: the reply to `$SRV.PING`, and the identity every other reply starts with. */
export interface ServiceIdentity {
  type: ServiceResponseType;
  /** The service kind, shared by all instances (`[A-Za-z0-9_-]+`). */
  name: string;
  /** This instance, unique across the deployment. */
  id: string;
  /** Semantic version of the service. */
  version: string;
  /** Always present, `{}` when none was configured. */
  metadata: Record<string, string>;
}

/** Wire: one endpoint in an INFO reply. */
export interface EndpointInfo {
  name: string;
  subject: string;
  /** `""` when the endpoint is not served by a queue group. */
  queue_group: string;
  /** Absent when the endpoint has none, as in the JS reference. */
  metadata?: Record<string, string>;
}

/** Wire: the reply to `$SRV.INFO`. */
export interface ServiceInfo extends ServiceIdentity {
  description: string;
  endpoints: EndpointInfo[];
}

/** Wire: one endpoint in a STATS reply. */
export interface EndpointStats {
  name: string;
  subject: string;
  queue_group: string;
  num_requests: number;
  num_errors: number;
  /** `"<code>:<message>"` of the last error; absent until one happens, as in the JS reference. */
  last_error?: string;
  /** Total handling time, integer nanoseconds. */
  processing_time: number;
  /** `processing_time / num_requests`, rounded to integer nanoseconds (Go decodes an int64). */
  average_processing_time: number;
  /** What the service's stats callback returned for this endpoint; absent when `undefined`. */
  data?: unknown;
}

/** Wire: the reply to `$SRV.STATS`. */
export interface ServiceStats extends ServiceIdentity {
  /** When the instance started, or its stats were last reset (ISO-8601, UTC). */
  started: string;
  endpoints: EndpointStats[];
}

export interface MicroServiceConfig {
  /** The service kind, e.g. the actor kind: `[A-Za-z0-9_-]+`. */
  name: string;
  /** Semantic version (semver.org), e.g. `1.4.0` or `1.4.0-rc.1+build.7`. */
  version: string;
  /** @default '' */
  description?: string;
  /** @default {} */
  metadata?: Record<string, string>;
  /** @default a fresh 22-character `[A-Za-z0-9]` id, like the reference's nuid */
  id?: string;
}

export interface MicroEndpoint {
  /** Unique within the service: `[A-Za-z0-9_-]+`. */
  name: string;
  /** The subject the host serves it on; wildcards allowed, `>` only as the last token. */
  subject: string;
  /** @default '' (no queue group) */
  queueGroup?: string;
  metadata?: Record<string, string>;
}

/** Where the host reports each message it handled on an endpoint. */
export interface EndpointRecorder {
  /**
   * Counts one handled message. Called on every actor message, so it is O(1) and allocates
   * nothing; the error's code and message are kept as given and formatted only for STATS.
   */
  record(durationNs: number, error?: { code: number; message: string }): void;
}

/** Optional custom `data` for an endpoint in STATS replies (actor-specific numbers). */
export type StatsData = (endpoint: string) => unknown;

// The regular expression semver.org recommends; the Go reference validates with the same one.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

const ID_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ID_LENGTH = 22;

/** A random 22-character `[A-Za-z0-9]` id (about 131 bits), the shape of a NATS nuid. */
export function newServiceId(): string {
  let id = '';
  while (id.length < ID_LENGTH) {
    for (const byte of randomBytes(ID_LENGTH * 2)) {
      // 248 = 4 * 62: bytes above it are dropped so every character is equally likely.
      if (byte < 248 && id.length < ID_LENGTH) id += ID_ALPHABET[byte % 62];
    }
  }
  return id;
}

/**
 * The control subject for a verb: all services, all instances of `name`, or one instance.
 * Throws `BadRequestError` for a bad token, or for an `id` without a `name`.
 */
export function controlSubject(verb: ServiceVerb, name = '', id = ''): string {
  if (name === '' && id === '') return `${SERVICE_API_PREFIX}.${verb}`;
  if (name === '') throw new BadRequestError('name', 'is required when an id is given');
  assertToken('name', name);
  if (id === '') return `${SERVICE_API_PREFIX}.${verb}.${name}`;
  return `${SERVICE_API_PREFIX}.${verb}.${name}.${assertToken('id', id)}`;
}

function assertEndpointSubject(subject: string): void {
  const tokens = subject.split('.');
  tokens.forEach((token, i) => {
    const bad =
      token === '' ||
      /\s/.test(token) ||
      (token === '>' && i !== tokens.length - 1) ||
      (token.length > 1 && /[*>]/.test(token));
    if (bad) {
      throw new BadRequestError(
        'endpoint.subject',
        `must be a NATS subject ('>' only last), got ${JSON.stringify(subject)}`,
      );
    }
  });
}

class EndpointState implements EndpointRecorder {
  numRequests = 0;
  numErrors = 0;
  processingTimeNs = 0;
  lastErrorCode = 0;
  lastErrorMessage: string | undefined = undefined;

  constructor(
    readonly name: string,
    readonly subject: string,
    readonly queueGroup: string,
    readonly metadata: Readonly<Record<string, string>> | undefined,
  ) {}

  record(durationNs: number, error?: { code: number; message: string }): void {
    this.numRequests++;
    // A NaN or negative duration (a clock step) would poison the totals for good; count it as 0.
    if (durationNs > 0) this.processingTimeNs += durationNs;
    if (error !== undefined) {
      this.numErrors++;
      this.lastErrorCode = error.code;
      this.lastErrorMessage = error.message;
    }
  }

  reset(): void {
    this.numRequests = 0;
    this.numErrors = 0;
    this.processingTimeNs = 0;
    this.lastErrorCode = 0;
    this.lastErrorMessage = undefined;
  }
}

const textEncoder = new TextEncoder();
const toJson = (value: unknown): Uint8Array => textEncoder.encode(JSON.stringify(value));
const EMPTY = new Uint8Array(0);

/**
 * Replies with the JSON of `build()`. Custom stats data may not serialize (a BigInt, a cycle);
 * then the caller gets a micro error reply, as the Go reference sends, instead of no reply at all.
 */
function respondJson(msg: InboundMessage, build: () => unknown): void {
  let body: Uint8Array;
  try {
    body = toJson(build());
  } catch (err) {
    // A header value cannot carry a line break on the NATS wire.
    const message = (err instanceof Error ? err.message : String(err)).replace(/[\r\n]+/g, ' ');
    msg.respond(EMPTY, { [SERVICE_ERROR_HEADER]: message, [SERVICE_ERROR_CODE_HEADER]: '500' });
    return;
  }
  msg.respond(body);
}

/**
 * One service instance: answers PING, INFO and STATS for the endpoints the host declares.
 * Invalid configuration throws `BadRequestError` naming the field (`name`, `version`, ...).
 */
export class MicroService {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly metadata: Readonly<Record<string, string>>;

  private readonly endpoints = new Map<string, EndpointState>();
  private subscriptions: Subscription[] = [];
  private started = new Date().toISOString();
  // The identity never changes, so the PING reply is encoded once.
  private readonly pingReply: Uint8Array;

  constructor(
    private readonly transport: Transport,
    config: MicroServiceConfig,
    private readonly statsData?: StatsData,
  ) {
    this.name = assertToken('name', config.name);
    if (!SEMVER.test(config.version)) {
      throw new BadRequestError(
        'version',
        `must be a semantic version such as 1.0.0, got ${JSON.stringify(config.version)}`,
      );
    }
    this.version = config.version;
    this.id = config.id === undefined ? newServiceId() : assertToken('id', config.id);
    this.description = config.description ?? '';
    this.metadata = Object.freeze({ ...config.metadata });
    this.pingReply = toJson(this.ping());
  }

  /** Subscribes the nine `$SRV` subjects, without a queue group so every instance answers. */
  start(): void {
    if (this.subscriptions.length > 0) return;
    this.started = new Date().toISOString();
    const handlers: Record<ServiceVerb, (msg: InboundMessage) => void> = {
      PING: (msg) => msg.respond(this.pingReply),
      INFO: (msg) => respondJson(msg, () => this.info()),
      STATS: (msg) => respondJson(msg, () => this.stats()),
    };
    try {
      for (const verb of Object.values(ServiceVerb)) {
        for (const subject of [
          controlSubject(verb),
          controlSubject(verb, this.name),
          controlSubject(verb, this.name, this.id),
        ]) {
          this.subscriptions.push(this.transport.subscribe(subject, handlers[verb]));
        }
      }
    } catch (err) {
      // All nine or none: a half-registered instance would answer PING but not STATS.
      for (const sub of this.subscriptions.splice(0)) sub.unsubscribe();
      throw err;
    }
  }

  /** Declares an endpoint (the host subscribes to it itself) and returns its recorder. */
  addEndpoint(endpoint: MicroEndpoint): EndpointRecorder {
    const name = assertToken('endpoint.name', endpoint.name);
    if (this.endpoints.has(name)) {
      throw new BadRequestError('endpoint.name', `${JSON.stringify(name)} is already declared`);
    }
    assertEndpointSubject(endpoint.subject);
    const queueGroup = endpoint.queueGroup ?? '';
    if (/[\s*>]/.test(queueGroup)) {
      throw new BadRequestError(
        'endpoint.queueGroup',
        `must not contain spaces or wildcards, got ${JSON.stringify(queueGroup)}`,
      );
    }
    const metadata =
      endpoint.metadata === undefined ? undefined : Object.freeze({ ...endpoint.metadata });
    const state = new EndpointState(name, endpoint.subject, queueGroup, metadata);
    this.endpoints.set(name, state);
    return state;
  }

  /**
   * Forgets an endpoint; it leaves INFO and STATS at once. A recorder the host still holds keeps
   * working (a message in flight may finish after the partition moved) but is no longer reported.
   */
  removeEndpoint(name: string): void {
    this.endpoints.delete(name);
  }

  recorder(name: string): EndpointRecorder | undefined {
    return this.endpoints.get(name);
  }

  /** Zeroes every endpoint's counters and restarts the `started` clock, as the reference does. */
  reset(): void {
    for (const state of this.endpoints.values()) state.reset();
    this.started = new Date().toISOString();
  }

  /** Stops answering `$SRV` requests; endpoints and counters are kept, `start()` resumes. */
  async stop(): Promise<void> {
    const subscriptions = this.subscriptions;
    this.subscriptions = [];
    for (const sub of subscriptions) sub.unsubscribe();
    // Let a reply already handed to the transport reach the server before the caller closes it.
    // A transport that is already closed has nothing left to flush, so its rejection is moot.
    await this.transport.flush().catch(() => undefined);
  }

  ping(): ServiceIdentity {
    return {
      type: ServiceResponseType.Ping,
      name: this.name,
      id: this.id,
      version: this.version,
      metadata: this.metadata,
    };
  }

  info(): ServiceInfo {
    const endpoints: EndpointInfo[] = [];
    for (const e of this.endpoints.values()) {
      const info: EndpointInfo = { name: e.name, subject: e.subject, queue_group: e.queueGroup };
      if (e.metadata !== undefined) info.metadata = e.metadata;
      endpoints.push(info);
    }
    return {
      type: ServiceResponseType.Info,
      name: this.name,
      id: this.id,
      version: this.version,
      description: this.description,
      metadata: this.metadata,
      endpoints,
    };
  }

  stats(): ServiceStats {
    const endpoints: EndpointStats[] = [];
    for (const e of this.endpoints.values()) {
      const data = this.endpointData(e);
      const processingTime = Math.round(e.processingTimeNs);
      const stats: EndpointStats = {
        name: e.name,
        subject: e.subject,
        queue_group: e.queueGroup,
        num_requests: e.numRequests,
        num_errors: e.numErrors,
        processing_time: processingTime,
        average_processing_time: e.numRequests > 0 ? Math.round(processingTime / e.numRequests) : 0,
      };
      if (e.lastErrorMessage !== undefined) {
        stats.last_error = `${e.lastErrorCode}:${e.lastErrorMessage}`;
      }
      if (data !== undefined) stats.data = data;
      endpoints.push(stats);
    }
    return {
      type: ServiceResponseType.Stats,
      name: this.name,
      id: this.id,
      version: this.version,
      started: this.started,
      metadata: this.metadata,
      endpoints,
    };
  }

  private endpointData(e: EndpointState): unknown {
    if (this.statsData === undefined) return undefined;
    try {
      return this.statsData(e.name);
    } catch (err) {
      // As in the reference: a failing stats callback shows up as an endpoint error in STATS,
      // where an operator looking at `nats micro stats` will see it.
      e.numErrors++;
      e.lastErrorCode = 500;
      e.lastErrorMessage = err instanceof Error ? err.message : String(err);
      return undefined;
    }
  }
}
