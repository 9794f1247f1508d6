/**
 * `POST /feedback`: one event or a batch. Every event of the request is checked first (a bad one
 * refuses the whole request, naming its field: nothing is stored in part), then each is stored on
 * the events stream with its event id as the message id, so an event sent twice is stored once.
 * The answer (202) comes only once the stream holds every event; before it, within a short
 * budget, each user's actor is told about its events (`observe`) so the user's next
 * recommendation reflects them. That step is best effort: the stream is the source of truth, and
 * the actors read it as well.
 */
import { randomUUID } from 'node:crypto';
import { BadRequestError, TimeoutError, toRecsysError } from '../../runtime/errors.js';
import { FeedbackType, parseFeedbackEvent, publishFeedback } from '../../runtime/events/index.js';
import type { FeedbackEvent } from '../../runtime/events/index.js';
import type { PublishAck } from '../../runtime/stream/index.js';
import { within } from '../../runtime/timeouts.js';
import { USER_KIND } from '../../actors/user/messages.js';
import type { UserProtocol } from '../../actors/user/messages.js';
import type { GatewayApp, GatewayContext } from '../app.js';
import type { FeedbackEventBody } from '../schemas.js';

/** Epoch numbers below this are seconds (1e11 s is the year 5138; 1e11 ms is 1973). */
const SECONDS_BELOW = 1e11;

/** The names the client used for the fields the stream's own check may refuse. */
interface ClientNames {
  type: string;
  ts_ms: string;
  value: string;
}

function timestampOf(body: FeedbackEventBody, at: string): number | undefined {
  if (body.ts_ms !== undefined && body.timestamp !== undefined) {
    throw new BadRequestError(`${at}timestamp`, 'give timestamp or ts_ms, not both');
  }
  if (body.ts_ms !== undefined) return body.ts_ms;
  const ts = body.timestamp;
  if (ts === undefined) return undefined;
  if (typeof ts === 'number') return ts < SECONDS_BELOW ? ts * 1000 : ts;
  const ms = Date.parse(ts);
  if (!Number.isFinite(ms) || ms < 0) {
    throw new BadRequestError(`${at}timestamp`, 'must be an ISO-8601 date-time or an epoch number');
  }
  return ms;
}

/**
 * The stored form of one event of the request, checked by the stream's own rules; `at` prefixes
 * the fields of a batch's event (`events[3].`).
 */
export function toFeedbackEvent(body: FeedbackEventBody, nowMs: number, at = ''): FeedbackEvent {
  if (body.event_type !== undefined && body.type !== undefined && body.event_type !== body.type) {
    throw new BadRequestError(`${at}type`, 'differs from event_type; give one of them');
  }
  const type = body.event_type ?? body.type;
  if (type === undefined) {
    throw new BadRequestError(
      `${at}event_type`,
      `is required (one of ${Object.values(FeedbackType).join(', ')})`,
    );
  }
  if (body.value !== undefined && body.dwell_time_seconds !== undefined) {
    throw new BadRequestError(
      `${at}dwell_time_seconds`,
      'give value or dwell_time_seconds, not both',
    );
  }
  if (body.dwell_time_seconds !== undefined && type === FeedbackType.Rating) {
    throw new BadRequestError(`${at}dwell_time_seconds`, 'a rating carries its rating in value');
  }
  const names: ClientNames = {
    type: body.event_type !== undefined ? 'event_type' : 'type',
    ts_ms: body.timestamp !== undefined ? 'timestamp' : 'ts_ms',
    value: body.dwell_time_seconds !== undefined ? 'dwell_time_seconds' : 'value',
  };
  const event: Record<string, unknown> = {
    event_id: body.event_id ?? randomUUID(),
    user_id: body.user_id,
    item_id: body.item_id,
    type,
    ts_ms: timestampOf(body, at) ?? nowMs,
  };
  const value = body.value ?? body.dwell_time_seconds;
  if (value !== undefined) event['value'] = value;
  if (body.request_id !== undefined) event['request_id'] = body.request_id;
  if (body.variant !== undefined) event['variant'] = body.variant;
  try {
    return parseFeedbackEvent(event);
  } catch (err) {
    if (!(err instanceof BadRequestError)) throw err;
    const field = names[err.field as keyof ClientNames] ?? err.field;
    const rule = err.message.slice(err.message.indexOf(':') + 1).trim();
    throw new BadRequestError(`${at}${field}`, rule);
  }
}

/** Rejects with `TimeoutError` naming `what` when `work` takes longer than `ms`. */
function storedWithin<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return within(
    work,
    ms,
    () => new TimeoutError(`${what} within ${ms} ms (gateway.feedback_timeout_ms)`),
  );
}

export function registerFeedbackRoutes(app: GatewayApp, ctx: GatewayContext): void {
  const { schemas, metrics, config } = ctx;
  const users = ctx.client.keyed<UserProtocol>(USER_KIND);
  const prefix = config.deployment.prefix;
  const partitions = config.runtime.partitions;

  /** Tells each user's actor about its events, all at once under one short deadline. */
  const observe = async (events: readonly FeedbackEvent[], requestId: string): Promise<void> => {
    const byUser = new Map<string, FeedbackEvent[]>();
    for (const event of events) {
      const list = byUser.get(event.user_id);
      if (list === undefined) byUser.set(event.user_id, [event]);
      else list.push(event);
    }
    const deadline = Date.now() + ctx.observeTimeoutMs;
    await Promise.all(
      [...byUser].map(async ([userId, own]) => {
        try {
          await users.ask(userId, 'observe', { events: own }, { deadline, requestId });
          metrics.observe.labels('ok').inc();
        } catch (err) {
          // The events are stored: the actor reads them from the stream in any case.
          metrics.observe.labels(toRecsysError(err).code).inc();
        }
      }),
    );
  };

  app.post(
    '/feedback',
    {
      schema: {
        tags: ['feedback'],
        summary: 'Store feedback events',
        description:
          'One event, or `{"events": [...]}`. Answered 202 once the events stream stored every event; an `event_id` already stored is not stored again (`duplicates`). A bad event refuses the whole request (400 naming its field), so nothing is stored in part.',
        body: schemas.FeedbackBody,
        response: {
          202: schemas.FeedbackReply,
          '4xx': schemas.ErrorReply,
          '5xx': schemas.ErrorReply,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const nowMs = ctx.now();
      const events =
        'events' in body
          ? body.events.map((event, i) => toFeedbackEvent(event, nowMs, `events[${i}].`))
          : [toFeedbackEvent(body, nowMs)];

      let acks: PublishAck[];
      try {
        acks = await storedWithin(
          Promise.all(
            events.map((event) => publishFeedback(ctx.events, prefix, partitions, event)),
          ),
          config.gateway.feedbackTimeoutMs,
          `the events stream did not store ${events.length} event${events.length === 1 ? '' : 's'}`,
        );
      } catch (err) {
        throw toRecsysError(err);
      }
      let duplicates = 0;
      for (const [i, event] of events.entries()) {
        const duplicate = acks[i]?.duplicate === true;
        metrics.feedbackEvents.labels(event.type, duplicate ? 'duplicate' : 'stored').inc();
        if (duplicate) duplicates++;
        else metrics.engagements.labels(ctx.variants.label(event.variant), event.type).inc();
      }
      await observe(events, request.id);
      return reply.code(202).send({
        accepted: events.length,
        event_ids: events.map((event) => event.event_id),
        duplicates,
      });
    },
  );
}
