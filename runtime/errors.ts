/**
 * Every failure the runtime reports has its own class with a stable `code`. Errors that cross the
 * wire travel as headers plus a small JSON body and are rebuilt into the same class on the caller's
 * side, so `err instanceof OverloadedError` works across processes. The codes are listed in
 * `docs/errors.md`; a unit test fails when one is missing there.
 */

/** Stable error codes. A const object plus a same-named type, so codes can be listed at run time. */
export const ErrorCode = {
  BadRequest: 'bad_request',
  UnknownOp: 'unknown_op',
  NotOwner: 'not_owner',
  Overloaded: 'overloaded',
  DeadlineExceeded: 'deadline_exceeded',
  Timeout: 'timeout',
  NoResponders: 'no_responders',
  Unavailable: 'unavailable',
  Internal: 'internal',
  ConfigInvalid: 'config_invalid',
  Conflict: 'conflict',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Plain data an error carries across the wire; never nested JSON inside the message. */
export type ErrorData = Record<string, string | number | boolean | null>;

export interface RecsysErrorOptions {
  cause?: unknown;
  data?: ErrorData;
}

/** Base class of every runtime error. */
export abstract class RecsysError extends Error {
  abstract readonly code: ErrorCode;
  /** Whether the same request may succeed if sent again (to the same or another replica). */
  abstract readonly retryable: boolean;
  /** A numeric status in the HTTP range, sent as `Nats-Service-Error-Code` for NATS tools. */
  abstract readonly status: number;
  readonly data: ErrorData;
  /** True when the error was rebuilt from a callee's error reply (it answered; it did not vanish). */
  fromReply = false;

  constructor(message: string, options: RecsysErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.data = options.data ?? {};
  }
}

/** The request is malformed; `data.field` names the offending field. */
export class BadRequestError extends RecsysError {
  override readonly name = 'BadRequestError';
  readonly code = ErrorCode.BadRequest;
  readonly retryable = false;
  readonly status = 400;
  readonly field: string;

  constructor(field: string, message: string, options: RecsysErrorOptions = {}) {
    super(`${field}: ${message}`, { ...options, data: { ...options.data, field } });
    this.field = field;
  }
}

/** The actor kind has no handler for the operation. */
export class UnknownOpError extends RecsysError {
  override readonly name = 'UnknownOpError';
  readonly code = ErrorCode.UnknownOp;
  readonly retryable = false;
  readonly status = 404;
}

/** The receiving host does not (or no longer) own the key's partition; another host will. */
export class NotOwnerError extends RecsysError {
  override readonly name = 'NotOwnerError';
  readonly code = ErrorCode.NotOwner;
  readonly retryable = true;
  readonly status = 409;
}

/** The actor's mailbox is full; the caller should back off and retry. */
export class OverloadedError extends RecsysError {
  override readonly name = 'OverloadedError';
  readonly code = ErrorCode.Overloaded;
  readonly retryable = true;
  readonly status = 429;
}

/** The request's deadline passed before the callee could start on it. */
export class DeadlineExceededError extends RecsysError {
  override readonly name = 'DeadlineExceededError';
  readonly code = ErrorCode.DeadlineExceeded;
  readonly retryable = false;
  readonly status = 408;
}

/** No reply arrived within the caller's deadline. */
export class TimeoutError extends RecsysError {
  override readonly name = 'TimeoutError';
  readonly code = ErrorCode.Timeout;
  readonly retryable = false;
  readonly status = 504;
}

/** Nobody listens on the subject (no replica, or a partition mid-handoff). */
export class NoRespondersError extends RecsysError {
  override readonly name = 'NoRespondersError';
  readonly code = ErrorCode.NoResponders;
  readonly retryable = true;
  readonly status = 503;
}

/** The callee is shutting down, or the transport is closed. */
export class UnavailableError extends RecsysError {
  override readonly name = 'UnavailableError';
  readonly code = ErrorCode.Unavailable;
  readonly retryable = true;
  readonly status = 503;
}

/** A handler failed in a way it did not describe; the message is the handler's. */
export class InternalError extends RecsysError {
  override readonly name = 'InternalError';
  readonly code = ErrorCode.Internal;
  readonly retryable = false;
  readonly status = 500;
}

/** The configuration is invalid; `data.path` names the key. Thrown at start-up only. */
export class ConfigError extends RecsysError {
  override readonly name = 'ConfigError';
  readonly code = ErrorCode.ConfigInvalid;
  readonly retryable = false;
  readonly status = 500;
  readonly path: string;

  constructor(path: string, message: string, options: RecsysErrorOptions = {}) {
    super(`${path}: ${message}`, { ...options, data: { ...options.data, path } });
    this.path = path;
  }
}

/** A compare-and-set write lost: the key changed (or exists) since the caller last read it. */
export class ConflictError extends RecsysError {
  override readonly name = 'ConflictError';
  readonly code = ErrorCode.Conflict;
  readonly retryable = false;
  readonly status = 409;
}

/** The JSON body of an error reply. */
export interface WireError {
  code: string;
  message: string;
  retryable: boolean;
  data?: ErrorData;
}

/** Turns anything a handler threw into a runtime error; unknown throwables become `internal`. */
export function toRecsysError(err: unknown): RecsysError {
  if (err instanceof RecsysError) return err;
  if (err instanceof Error) return new InternalError(err.message, { cause: err });
  return new InternalError(String(err));
}

export function toWireError(err: RecsysError): WireError {
  return { code: err.code, message: err.message, retryable: err.retryable, data: err.data };
}

/**
 * Rebuilds a typed error from its wire form. The message is kept as sent (it already carries the
 * field or path prefix), so the rebuilt error reads the same as the original.
 */
export function fromWireError(wire: WireError): RecsysError {
  const data = wire.data ?? {};
  const options = { data };
  let err: RecsysError;
  switch (wire.code) {
    case ErrorCode.BadRequest:
      err = new BadRequestError(String(data['field'] ?? 'request'), '', options);
      break;
    case ErrorCode.UnknownOp:
      err = new UnknownOpError(wire.message, options);
      break;
    case ErrorCode.NotOwner:
      err = new NotOwnerError(wire.message, options);
      break;
    case ErrorCode.Overloaded:
      err = new OverloadedError(wire.message, options);
      break;
    case ErrorCode.DeadlineExceeded:
      err = new DeadlineExceededError(wire.message, options);
      break;
    case ErrorCode.Timeout:
      err = new TimeoutError(wire.message, options);
      break;
    case ErrorCode.NoResponders:
      err = new NoRespondersError(wire.message, options);
      break;
    case ErrorCode.Unavailable:
      err = new UnavailableError(wire.message, options);
      break;
    case ErrorCode.ConfigInvalid:
      err = new ConfigError(String(data['path'] ?? 'config'), '', options);
      break;
    case ErrorCode.Conflict:
      err = new ConflictError(wire.message, options);
      break;
    default:
      err = new InternalError(wire.message, options);
  }
  err.message = wire.message;
  err.fromReply = true;
  return err;
}
