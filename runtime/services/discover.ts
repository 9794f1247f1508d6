/**
 * The client side of the micro protocol: one scatter request on a `$SRV` subject, every instance
 * that hears it answers. `recsys services` prints what `nats micro list/info/stats` would.
 */
import { BadRequestError, NoRespondersError } from '../errors.js';
import type { Reply, Transport } from '../transport/types.js';
import {
  SERVICE_ERROR_HEADER,
  ServiceResponseType,
  controlSubject,
  type ServiceIdentity,
  type ServiceInfo,
  type ServiceStats,
  type ServiceVerb,
} from './micro.js';

export interface DiscoverOptions {
  /** Only instances of this service kind. */
  name?: string;
  /** Only this instance (needs `name`); the request then ends at the first reply. */
  id?: string;
  /** How long to collect replies, in milliseconds. @default 500 */
  timeoutMs?: number;
}

/** The reply type of each verb. */
export interface DiscoverResult {
  PING: ServiceIdentity;
  INFO: ServiceInfo;
  STATS: ServiceStats;
}

const RESPONSE_TYPE: Record<ServiceVerb, ServiceResponseType> = {
  PING: ServiceResponseType.Ping,
  INFO: ServiceResponseType.Info,
  STATS: ServiceResponseType.Stats,
};

const DEFAULT_TIMEOUT_MS = 500;
const textDecoder = new TextDecoder();

/**
 * Asks every matching service instance for its identity, info or stats, and lists the replies
 * sorted by name, then id. No instance at all is an empty list, not an error.
 */
export async function discoverServices<V extends ServiceVerb>(
  transport: Transport,
  verb: V,
  options: DiscoverOptions = {},
): Promise<Array<DiscoverResult[V]>> {
  const subject = controlSubject(verb, options.name, options.id);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) {
    throw new BadRequestError('timeoutMs', `must be a positive number, got ${timeoutMs}`);
  }
  let replies: Reply[];
  try {
    replies = await transport.requestMany(subject, new Uint8Array(0), {
      timeoutMs,
      // An instance id is unique, so there is nothing to wait for after its reply.
      ...(options.id === undefined || options.id === '' ? {} : { maxReplies: 1 }),
    });
  } catch (err) {
    if (err instanceof NoRespondersError) return [];
    throw err;
  }
  const found: Array<DiscoverResult[V]> = [];
  for (const reply of replies) {
    const parsed = parseReply(reply, RESPONSE_TYPE[verb]);
    if (parsed !== undefined) found.push(parsed as DiscoverResult[V]);
  }
  return found.sort((a, b) => (a.name === b.name ? compare(a.id, b.id) : compare(a.name, b.name)));
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * One reply, or `undefined` for an error reply or one that is not a micro reply of the expected
 * type: a single misbehaving responder must not hide every other instance from the listing.
 */
function parseReply(reply: Reply, type: ServiceResponseType): ServiceIdentity | undefined {
  if (reply.headers[SERVICE_ERROR_HEADER] !== undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(textDecoder.decode(reply.data));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (v['type'] !== type || typeof v['name'] !== 'string' || typeof v['id'] !== 'string') {
    return undefined;
  }
  return value as ServiceIdentity;
}
