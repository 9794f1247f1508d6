/**
 * How an actor kind describes its protocol. A protocol maps each operation (the last subject token)
 * to its request and reply types; the kind supplies a validator per operation that turns an untyped
 * payload into the request type or throws `BadRequestError` naming the field.
 */
import type { Logger } from 'pino';

/** Operation name → request and reply types. */
export type Protocol = Record<string, { request: unknown; reply: unknown }>;

export type OpName<P extends Protocol> = keyof P & string;
export type RequestOf<P extends Protocol, Op extends OpName<P>> = P[Op]['request'];
export type ReplyOf<P extends Protocol, Op extends OpName<P>> = P[Op]['reply'];

/** What a handler knows about the message besides its payload. */
export interface RequestMeta {
  readonly op: string;
  /** Caller-supplied id, or one generated on arrival; echoed in logs. */
  readonly requestId: string;
  /** Absolute deadline (epoch ms). Work that cannot finish before it should stop early. */
  readonly deadline: number;
  /** W3C trace context, passed through when the caller sent one. */
  readonly traceparent: string | undefined;
  readonly log: Logger;
}

/**
 * A handler for one operation. Declared as a method so its parameter is bivariant: a kind with a
 * specific protocol can then be listed among `ActorKind<Protocol>`s; the validators guarantee the
 * request type at run time.
 */
export type Handler<Req, Rep> = {
  handle(request: Req, meta: RequestMeta): Rep | Promise<Rep>;
}['handle'];

export type Handlers<P extends Protocol> = {
  [Op in OpName<P>]: Handler<RequestOf<P, Op>, ReplyOf<P, Op>>;
};

export type Validators<P extends Protocol> = {
  [Op in OpName<P>]: (payload: unknown) => RequestOf<P, Op>;
};
