/**
 * The HTTP gateway as a fastify application that has not listened: `buildGateway` wires the
 * routes, the validation, the one error format, the request ids, the metrics and the OpenAPI
 * document, and hands the instance back; `listenGateway` (server.ts) binds it to a port, and
 * tests call `app.inject()` on it directly.
 *
 * The gateway holds no state of its own: a recommendation is one `ask` to the user's actor, and
 * feedback is stored on the events stream before it is acknowledged. Any number of gateways can
 * run side by side.
 */
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { TSchema } from '@sinclair/typebox';
import { fastify, LogController } from 'fastify';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ActorClient } from '../runtime/client/client.js';
import { UnavailableError } from '../runtime/errors.js';
import type { ResolvedConfig } from '../runtime/config/index.js';
import type { EventStream } from '../runtime/stream/index.js';
import { toHttpError } from './errors.js';
import type { HttpError } from './errors.js';
import { gatewayMetrics, VariantLabels } from './metrics.js';
import type { ReadyCheck } from './ready.js';
import { registerFeedbackRoutes } from './routes/feedback.js';
import { registerOpsRoutes } from './routes/ops.js';
import { registerRecommendRoutes } from './routes/recommend.js';
import { EVENT_ID_PATTERN, gatewaySchemas } from './schemas.js';
import type { GatewaySchemas } from './schemas.js';
import { compileValidator } from './validation.js';

/** The gateway's fastify instance, typed by its TypeBox schemas. */
export type GatewayApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** The header carrying the request id, both ways. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** The configuration sections the gateway reads. */
export type GatewayConfig = Pick<
  ResolvedConfig,
  'deployment' | 'runtime' | 'recommend' | 'gateway'
>;

export interface GatewayOptions {
  /** Calls the actors (the user actor, and the readiness checks). */
  client: ActorClient;
  /** The events stream (`openEventsStream`): feedback is stored there before it is answered. */
  events: EventStream;
  config: GatewayConfig;
  log: Logger;
  /** Where the gateway's metrics are registered, and what `GET /metrics` exposes. */
  registry: Registry;
  /** Asked by `GET /ready` (`createReadyCheck`). */
  ready: ReadyCheck;
  /**
   * Budget for telling the users' actors about stored feedback before answering, ms. Best effort:
   * the stream already holds the events, and the actors read it too. @default 100
   */
  observeTimeoutMs?: number;
  /** The clock feedback timestamps default to. @default Date.now */
  now?: () => number;
}

/** What the route modules share. */
export interface GatewayContext {
  readonly client: ActorClient;
  readonly events: EventStream;
  readonly config: GatewayConfig;
  readonly registry: Registry;
  readonly ready: ReadyCheck;
  readonly schemas: GatewaySchemas;
  readonly metrics: ReturnType<typeof gatewayMetrics>;
  readonly variants: VariantLabels;
  readonly observeTimeoutMs: number;
  readonly now: () => number;
}

// Request ids follow event ids' alphabet: they travel in NATS headers and feedback events.
const REQUEST_ID = new RegExp(EVENT_ID_PATTERN);

/** The caller's `x-request-id` when it is a usable id, else a fresh one. */
function requestIdOf(req: RawRequestDefaultExpression): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** The error body every failure answers with. */
export function errorBody(err: HttpError, requestId: string) {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.field === undefined ? {} : { field: err.field }),
      request_id: requestId,
    },
  };
}

export function buildGateway(options: GatewayOptions): GatewayApp {
  const { config } = options;
  // Typed as fastify's logger, so the instance is the plain `FastifyBaseLogger` kind.
  const log: FastifyBaseLogger = options.log.child({ module: 'gateway' });
  const app = fastify({
    loggerInstance: log,
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'request_id',
    }),
    bodyLimit: config.gateway.bodyLimitBytes,
    genReqId: requestIdOf,
    // Requests that come in while the gateway closes are refused by the hook below, in our format.
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>();

  const context: GatewayContext = {
    client: options.client,
    events: options.events,
    config,
    registry: options.registry,
    ready: options.ready,
    schemas: gatewaySchemas({
      maxCount: config.recommend.maxCount,
      defaultCount: config.recommend.defaultCount,
      maxFeedbackBatch: config.gateway.maxFeedbackBatch,
    }),
    metrics: gatewayMetrics(options.registry),
    variants: new VariantLabels(),
    observeTimeoutMs: options.observeTimeoutMs ?? 100,
    now: options.now ?? Date.now,
  };

  app.setValidatorCompiler(({ schema, httpPart }) => {
    const validate = compileValidator(schema as TSchema, httpPart);
    // fastify takes `{ value }` or `{ error }`; our errors carry the field and the rule.
    return validate as never;
  });

  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', async (request, reply) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    if (closing) {
      void reply.header('connection', 'close');
      throw new UnavailableError('the gateway is shutting down');
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    context.metrics.httpDuration
      .labels(request.method, route, String(reply.statusCode))
      .observe(reply.elapsedTime / 1000);
  });

  app.setErrorHandler(async (err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const mapped = toHttpError(err);
    context.metrics.errors.labels(mapped.code).inc();
    if (mapped.status >= 500) {
      request.log.warn({ err, code: mapped.code, url: request.url }, 'request failed');
    }
    if (mapped.retryAfterS !== undefined) void reply.header('retry-after', mapped.retryAfterS);
    return reply.code(mapped.status).send(errorBody(mapped, request.id));
  });
  app.setNotFoundHandler(async (request, reply) => {
    const mapped = toHttpError({
      statusCode: 404,
      message: `no route ${request.method} ${request.url.split('?')[0] ?? ''}`,
    });
    context.metrics.errors.labels(mapped.code).inc();
    return reply.code(404).send(errorBody(mapped, request.id));
  });

  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'recsys gateway',
        description:
          'Real-time recommendations and feedback. Every answer carries `x-request-id` (the caller\'s, when given); errors are `{"error": {"code", "message", "field"?, "request_id"}}`.',
        version: '0.1.0',
      },
      tags: [
        { name: 'recommend', description: 'Recommendations for a user' },
        { name: 'feedback', description: 'What users did with what they were shown' },
        { name: 'operations', description: 'Health, readiness, metrics' },
      ],
    },
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });
  // Routes go in a plugin registered after swagger's, so its route hook sees every one of them.
  void app.register((scope, _options, done) => {
    const routes = scope as unknown as GatewayApp;
    registerRecommendRoutes(routes, context);
    registerFeedbackRoutes(routes, context);
    registerOpsRoutes(routes, context);
    routes.get('/openapi.json', { schema: { hide: true } }, (_request, reply) =>
      reply.send(app.swagger()),
    );
    done();
  });
  return app;
}
