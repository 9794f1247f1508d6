/**
 * The runtime's message envelope: which headers a request carries, and how a reply says it failed.
 * An error reply keeps the NATS services convention (`Nats-Service-Error`, `Nats-Service-Error-Code`)
 * so `nats req` and `nats micro` show it, and adds the runtime's stable code and retryability, with
 * the full error as a small JSON body. The caller rebuilds the typed error from that body.
 */
import { decode, encode } from './codec.js';
import { ErrorCode, fromWireError, InternalError, toWireError } from './errors.js';
import type { RecsysError, WireError } from './errors.js';
import type { Headers, Reply } from './transport/types.js';

export const Header = {
  /** Absolute deadline, epoch milliseconds. Hosts must keep their clocks in sync (NTP). */
  Deadline: 'Recsys-Deadline',
  RequestId: 'Recsys-Request-Id',
  /** W3C trace context. */
  TraceParent: 'traceparent',
  ErrorCode: 'Recsys-Error-Code',
  ErrorRetryable: 'Recsys-Error-Retryable',
  ServiceError: 'Nats-Service-Error',
  ServiceErrorCode: 'Nats-Service-Error-Code',
} as const;
export type Header = (typeof Header)[keyof typeof Header];

export interface EncodedMessage {
  data: Uint8Array;
  headers: Headers;
}

/** Encodes a successful reply. */
export function encodeReply(value: unknown): EncodedMessage {
  return encode(value);
}

/** Encodes an error reply. */
export function encodeErrorReply(err: RecsysError): EncodedMessage {
  const body = encode({ error: toWireError(err) });
  return {
    data: body.data,
    headers: {
      [Header.ServiceError]: err.message,
      [Header.ServiceErrorCode]: String(err.status),
      [Header.ErrorCode]: err.code,
      [Header.ErrorRetryable]: err.retryable ? 'true' : 'false',
    },
  };
}

/** Decodes a reply, throwing the rebuilt typed error when it is an error reply. */
export function decodeReply(reply: Reply): unknown {
  const code = reply.headers[Header.ErrorCode];
  if (code === undefined) {
    // A service that only speaks the NATS convention still gets its error surfaced.
    const serviceError = reply.headers[Header.ServiceError];
    if (serviceError !== undefined) {
      throw new InternalError(serviceError, {
        data: { status: Number(reply.headers[Header.ServiceErrorCode] ?? 500) },
      });
    }
    return decode(reply.data, reply.headers);
  }
  let wire: WireError | undefined;
  try {
    wire = (decode(reply.data) as { error?: WireError } | undefined)?.error;
  } catch {
    wire = undefined;
  }
  throw fromWireError(
    wire ?? {
      code,
      message: reply.headers[Header.ServiceError] ?? code,
      retryable: reply.headers[Header.ErrorRetryable] === 'true',
    },
  );
}

/** Codes a caller may safely send again: the callee did not run the request. */
export const RETRYABLE_BEFORE_WORK: ReadonlySet<string> = new Set<string>([
  ErrorCode.NotOwner,
  ErrorCode.NoResponders,
  ErrorCode.Overloaded,
  ErrorCode.Unavailable,
]);
