/**
 * One error format for every gateway response that is not a success:
 *
 *   {"error": {"code": "bad_request", "message": "count: must be an integer in 1..100",
 *              "field": "count", "request_id": "..."}}
 *
 * The codes are the runtime's (`runtime/errors.ts`, listed in `docs/errors.md`) plus three of HTTP's
 * own: `not_found`, `payload_too_large`, `unsupported_media_type`. Each maps to one status.
 */
import { ErrorCode, RecsysError } from '../runtime/errors.js';
import { fieldOf } from './validation.js';
import type { FieldError } from './validation.js';

/** Codes only the gateway answers (no actor raises them). A const object plus a same-named type. */
export const GatewayErrorCode = {
  NotFound: 'not_found',
  PayloadTooLarge: 'payload_too_large',
  UnsupportedMediaType: 'unsupported_media_type',
} as const;
export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];

/** The HTTP status of each runtime error code, as the gateway answers it. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  [ErrorCode.BadRequest]: 400,
  // The gateway and the actors disagree on the protocol: the upstream answered nonsense.
  [ErrorCode.UnknownOp]: 502,
  // `ask` already retried these within the deadline; what is left is "not available now".
  [ErrorCode.NotOwner]: 503,
  [ErrorCode.Overloaded]: 429,
  [ErrorCode.DeadlineExceeded]: 504,
  [ErrorCode.Timeout]: 504,
  [ErrorCode.NoResponders]: 503,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.Internal]: 500,
  [ErrorCode.ConfigInvalid]: 500,
  [ErrorCode.Conflict]: 409,
};

/** What the error handler answers. */
export interface HttpError {
  status: number;
  code: string;
  message: string;
  field?: string;
  /** Seconds for `Retry-After`, on answers a client should retry later. */
  retryAfterS?: number;
}

/** A fastify error: validation errors carry `validation`, others a `statusCode` and a `code`. */
interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  validation?: ReadonlyArray<Partial<FieldError>>;
  validationContext?: string;
  message?: string;
}

/** Turns whatever a route threw into the status, code and message the client gets. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof RecsysError) {
    const status = HTTP_STATUS[err.code];
    const field = err.data['field'];
    return {
      status,
      code: err.code,
      message: err.message,
      ...(typeof field === 'string' ? { field } : {}),
      ...(status === 503 || status === 429 ? { retryAfterS: 1 } : {}),
    };
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as FastifyLikeError;
  const validation = e.validation;
  if (validation !== undefined && validation.length > 0) {
    const first: Partial<FieldError> = validation[0] ?? {};
    const root = e.validationContext ?? 'body';
    const field = first.field ?? fieldOf(first.instancePath ?? '', root);
    const message = first.message ?? 'is invalid';
    return { status: 400, code: ErrorCode.BadRequest, message: `${field}: ${message}`, field };
  }
  const status = e.statusCode;
  if (status === 413) {
    return {
      status,
      code: GatewayErrorCode.PayloadTooLarge,
      message: 'the request body is larger than gateway.body_limit_bytes',
    };
  }
  if (status === 415) {
    return {
      status,
      code: GatewayErrorCode.UnsupportedMediaType,
      message: `${e.message ?? 'unsupported media type'}: send application/json`,
    };
  }
  if (status === 404) {
    return { status, code: GatewayErrorCode.NotFound, message: e.message ?? 'not found' };
  }
  if (status !== undefined && status >= 400 && status < 500) {
    // The body could not be read as JSON (malformed, or empty with a JSON content type).
    const message =
      e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError
        ? 'is not valid JSON'
        : e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
          ? 'is empty; send a JSON object'
          : (e.message ?? 'is invalid');
    return { status: 400, code: ErrorCode.BadRequest, message: `body: ${message}`, field: 'body' };
  }
  return { status: 500, code: ErrorCode.Internal, message: 'internal error' };
}
