/**
 * `POST /recommend` and `GET /recommend/:userId`: one `recommend` ask to the user's actor under
 * `recommend.timeout_ms`, its reply answered as it is. The request id of the HTTP request is the
 * actor call's, and the reply's `request_id`, so feedback sent with it is attributed.
 */
import type { FastifyRequest } from 'fastify';
import { NoRespondersError, TimeoutError, toRecsysError } from '../../runtime/errors.js';
import { ErrorCode } from '../../runtime/errors.js';
import { USER_KIND } from '../../actors/user/messages.js';
import type { RecommendReply, RecommendRequest, UserProtocol } from '../../actors/user/messages.js';
import type { GatewayApp, GatewayContext } from '../app.js';

/** What a recommendation asks for, from either route. */
interface RecommendInput {
  count?: number | undefined;
  num_recommendations?: number | undefined;
  exclude?: string[] | undefined;
  categories?: string[] | undefined;
}

/** A W3C trace context header, passed on to the actor call when the caller sent one. */
function traceparentOf(request: FastifyRequest): string | undefined {
  const value = request.headers['traceparent'];
  return typeof value === 'string' && value.length <= 128 ? value : undefined;
}

/**
 * Restates an actor call's failure for an HTTP client: what did not answer, within what budget
 * (the class, so the status, stays).
 */
export function explainCallError(
  err: unknown,
  what: string,
  timeoutMs: number,
  budgetName: string,
): Error {
  const e = toRecsysError(err);
  if (e.code === ErrorCode.Timeout || e.code === ErrorCode.DeadlineExceeded) {
    return new TimeoutError(`${what} did not answer within ${timeoutMs} ms (${budgetName})`, {
      cause: err,
      data: e.data,
    });
  }
  if (e.code === ErrorCode.NoResponders) {
    return new NoRespondersError(`${what} is not reachable: no host serves it right now`, {
      cause: err,
      data: e.data,
    });
  }
  return e;
}

export function registerRecommendRoutes(app: GatewayApp, ctx: GatewayContext): void {
  const { schemas, metrics } = ctx;
  const users = ctx.client.keyed<UserProtocol>(USER_KIND);
  const timeoutMs = ctx.config.recommend.timeoutMs;

  const recommend = async (
    userId: string,
    input: RecommendInput,
    request: FastifyRequest,
  ): Promise<RecommendReply> => {
    const ask: RecommendRequest = {};
    // `count` is the current name; `num_recommendations` is the original design's.
    const count = input.count ?? input.num_recommendations;
    if (count !== undefined) ask.count = count;
    if (input.exclude !== undefined) ask.exclude = input.exclude;
    if (input.categories !== undefined) ask.categories = input.categories;
    const traceparent = traceparentOf(request);
    let reply: RecommendReply;
    try {
      reply = await users.ask(userId, 'recommend', ask, {
        timeoutMs,
        requestId: request.id,
        ...(traceparent === undefined ? {} : { traceparent }),
      });
    } catch (err) {
      throw explainCallError(
        err,
        `the user actor of ${JSON.stringify(userId)} (recommend)`,
        timeoutMs,
        'recommend.timeout_ms',
      );
    }
    const variant = ctx.variants.label(reply.variant);
    metrics.recommendations.labels(variant).inc();
    metrics.impressions.labels(variant).inc(reply.items.length);
    for (const reason of reply.degraded) metrics.degraded.labels(reason).inc();
    const timings = reply.timings_ms;
    if (timings !== undefined) {
      metrics.recommendStage.labels('retrieval').observe(timings.retrieval / 1000);
      metrics.recommendStage.labels('ranking').observe(timings.ranking / 1000);
      metrics.recommendStage.labels('total').observe(timings.total / 1000);
    }
    return reply;
  };

  const responses = {
    200: schemas.RecommendReply,
    '4xx': schemas.ErrorReply,
    '5xx': schemas.ErrorReply,
  };

  app.post(
    '/recommend',
    {
      schema: {
        tags: ['recommend'],
        summary: 'Recommend items to a user',
        description:
          "Asks the user's actor for a recommendation within `recommend.timeout_ms`. 400 names the field at fault; 503 when no actor serves the user; 504 when it did not answer in time.",
        body: schemas.RecommendBody,
        response: responses,
      },
    },
    async (request) => recommend(request.body.user_id, request.body, request),
  );

  app.get(
    '/recommend/:userId',
    {
      schema: {
        tags: ['recommend'],
        summary: 'Recommend items to a user (query form)',
        params: schemas.RecommendParams,
        querystring: schemas.RecommendQuery,
        response: responses,
      },
    },
    async (request) => recommend(request.params.userId, request.query, request),
  );
}
