/**
 * The gateway's HTTP contract as TypeBox schemas: one definition gives the request validation, the
 * response serialisation and the OpenAPI document (`GET /openapi.json`, `GET /docs`). Limits that
 * the configuration sets (largest count, largest feedback batch) are built into the schemas, so
 * the document states the deployment's real limits.
 *
 * Wire fields are snake_case. Requests reject unknown fields (a typo is a 400 naming it, not a
 * silently ignored option).
 */
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { FEEDBACK_TYPES, MAX_ID_LENGTH } from '../runtime/events/index.js';
import { Degraded } from '../actors/user/messages.js';

/** Most ids one `exclude` list may hold. */
export const MAX_EXCLUDE = 1000;
/** Most categories one `categories` filter may hold. */
export const MAX_CATEGORIES = 100;

/** The limits the schemas enforce, from the configuration. */
export interface SchemaLimits {
  /** `recommend.max_count`. */
  maxCount: number;
  /** `recommend.default_count`, documented as the default. */
  defaultCount: number;
  /** `gateway.max_feedback_batch`. */
  maxFeedbackBatch: number;
}

// Control characters would make an id unprintable in logs and ambiguous in tools.
const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f]+$';
/** The event id alphabet of the events stream (`parseFeedbackEvent`). */
export const EVENT_ID_PATTERN = '^[A-Za-z0-9_.:-]{1,128}$';

const id = (description: string) =>
  Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH, pattern: NO_CONTROL, description });

const feedbackType = (description: string) =>
  Type.Union(
    FEEDBACK_TYPES.map((type) => Type.Literal(type)),
    { description },
  );

export function gatewaySchemas(limits: SchemaLimits) {
  const count = (description: string, deprecated = false) =>
    Type.Integer({
      minimum: 1,
      maximum: limits.maxCount,
      description,
      ...(deprecated ? { deprecated: true } : {}),
    });

  const RecommendBody = Type.Object(
    {
      user_id: id('The user to recommend for.'),
      count: Type.Optional(
        count(`Items to return, 1..${limits.maxCount}; default ${limits.defaultCount}.`),
      ),
      num_recommendations: Type.Optional(
        count('Former name of `count`, still accepted; `count` wins when both are given.', true),
      ),
      exclude: Type.Optional(
        Type.Array(id('An item id.'), {
          maxItems: MAX_EXCLUDE,
          description:
            'Items never to return in this reply (besides those already seen or served).',
        }),
      ),
      categories: Type.Optional(
        Type.Array(id('A category.'), {
          minItems: 1,
          maxItems: MAX_CATEGORIES,
          description: 'Only items of these categories.',
        }),
      ),
      context: Type.Optional(
        Type.Record(Type.String(), Type.Unknown(), {
          description:
            'Free-form request context (page, device, ...). Accepted for compatibility; not used for ranking yet.',
        }),
      ),
    },
    { additionalProperties: false },
  );

  const RecommendParams = Type.Object(
    { userId: id('The user to recommend for.') },
    { additionalProperties: false },
  );

  const RecommendQuery = Type.Object(
    {
      count: Type.Optional(
        count(`Items to return, 1..${limits.maxCount}; default ${limits.defaultCount}.`),
      ),
    },
    { additionalProperties: false },
  );

  const RecommendedItem = Type.Object(
    {
      item_id: Type.String(),
      score: Type.Number({
        description: "The score the order is by: the ranker's, or retrieval's.",
      }),
      retrieval_score: Type.Optional(
        Type.Number({ description: 'Two-tower similarity; absent for a popular-items fallback.' }),
      ),
      category: Type.String({ description: "The item's primary category ('' when unknown)." }),
    },
    { additionalProperties: true },
  );

  const RecommendReply = Type.Object(
    {
      request_id: Type.String({
        description: 'Send it back as `request_id` with feedback on these items (attribution).',
      }),
      user_id: Type.String(),
      items: Type.Array(RecommendedItem, { description: 'Best first.' }),
      variant: Type.String({ description: 'The experiment variant that served it.' }),
      models: Type.Optional(
        Type.Object(
          { retrieval: Type.Optional(Type.String()), ranker: Type.Optional(Type.String()) },
          { additionalProperties: true, description: 'Model versions that served it.' },
        ),
      ),
      degraded: Type.Array(
        Type.String({ description: `One of ${Object.values(Degraded).join(', ')}.` }),
        { description: 'What degraded; empty when the full pipeline answered.' },
      ),
      timings_ms: Type.Optional(
        Type.Object(
          { retrieval: Type.Number(), ranking: Type.Number(), total: Type.Number() },
          { additionalProperties: true, description: 'Time spent per stage, in milliseconds.' },
        ),
      ),
      cold_start: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: true },
  );

  const FeedbackEventBody = Type.Object(
    {
      user_id: id('Who acted.'),
      item_id: id('On which item.'),
      event_type: Type.Optional(feedbackType('What the user did.')),
      type: Type.Optional(feedbackType('Alias of `event_type`.')),
      event_id: Type.Optional(
        Type.String({
          pattern: EVENT_ID_PATTERN,
          description:
            'Unique id of the event (1..128 chars of [A-Za-z0-9_.:-]); generated when absent. Send one to make retries safe: an id already stored is not stored again.',
        }),
      ),
      timestamp: Type.Optional(
        Type.Union([Type.String(), Type.Number({ minimum: 0 })], {
          description:
            'When it happened: an ISO-8601 date-time, or an epoch number (milliseconds; below 1e11, seconds). Default: now.',
        }),
      ),
      ts_ms: Type.Optional(
        Type.Number({ minimum: 0, description: 'When it happened, epoch milliseconds.' }),
      ),
      value: Type.Optional(
        Type.Number({
          description: 'The rating (required for `rating`), or the dwell time in seconds.',
        }),
      ),
      dwell_time_seconds: Type.Optional(
        Type.Number({ minimum: 0, description: 'Dwell time in seconds (stored as `value`).' }),
      ),
      request_id: Type.Optional(
        id('The `request_id` of the recommendation that showed the item (attribution).'),
      ),
      variant: Type.Optional(id('The variant that served that recommendation.')),
    },
    { additionalProperties: false, description: 'One feedback event.' },
  );

  const FeedbackBatchBody = Type.Object(
    {
      events: Type.Array(FeedbackEventBody, {
        minItems: 1,
        maxItems: limits.maxFeedbackBatch,
        description: `1..${limits.maxFeedbackBatch} events, stored together.`,
      }),
    },
    { additionalProperties: false, description: 'A batch of feedback events.' },
  );

  const FeedbackBody = Type.Union([FeedbackEventBody, FeedbackBatchBody]);

  const FeedbackReply = Type.Object({
    accepted: Type.Integer({ description: 'Events of the request, all now stored on the stream.' }),
    event_ids: Type.Array(Type.String(), { description: 'Their event ids, in request order.' }),
    duplicates: Type.Integer({
      description: 'How many of them the stream held already (a retried event id).',
    }),
  });

  const ErrorReply = Type.Object({
    error: Type.Object({
      code: Type.String({ description: 'Stable code: see the error table.' }),
      message: Type.String(),
      field: Type.Optional(Type.String({ description: 'The request field at fault, for a 400.' })),
      request_id: Type.String({ description: 'The `x-request-id` of the request.' }),
    }),
  });

  const HealthReply = Type.Object({ status: Type.Literal('ok') });

  const ReadyCheck = Type.Object({ ok: Type.Boolean(), detail: Type.String() });
  const ReadyReply = Type.Object({
    ready: Type.Boolean(),
    not_ready: Type.Array(Type.String(), { description: 'Names of the checks that failed.' }),
    checks: Type.Record(Type.String(), ReadyCheck),
  });

  return {
    RecommendBody,
    RecommendParams,
    RecommendQuery,
    RecommendReply,
    FeedbackEventBody,
    FeedbackBatchBody,
    FeedbackBody,
    FeedbackReply,
    ErrorReply,
    HealthReply,
    ReadyReply,
  };
}

export type GatewaySchemas = ReturnType<typeof gatewaySchemas>;
export type RecommendBody = Static<GatewaySchemas['RecommendBody']>;
export type FeedbackEventBody = Static<GatewaySchemas['FeedbackEventBody']>;
export type FeedbackBody = Static<GatewaySchemas['FeedbackBody']>;
export type ErrorReply = Static<GatewaySchemas['ErrorReply']>;
export type ReadyReply = Static<GatewaySchemas['ReadyReply']>;
