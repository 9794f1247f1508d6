/**
 * Operations routes: `GET /health` (the process answers), `GET /ready` (what a recommendation
 * needs is reachable; 503 naming what is not) and `GET /metrics` (Prometheus text of the
 * registry the gateway was given).
 */
import type { GatewayApp, GatewayContext } from '../app.js';

export function registerOpsRoutes(app: GatewayApp, ctx: GatewayContext): void {
  const { schemas } = ctx;

  app.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the gateway process answers',
        response: { 200: schemas.HealthReply },
      },
    },
    () => Promise.resolve({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: user actors, item shards, ranker and events stream reachable',
        description:
          '200 when every check passes; 503 with `not_ready` naming the checks that failed and `checks` saying what each found.',
        response: { 200: schemas.ReadyReply, 503: schemas.ReadyReply },
      },
    },
    async (_request, reply) => {
      const report = await ctx.ready();
      return reply.code(report.ready ? 200 : 503).send(report);
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
      },
    },
    async (_request, reply) => {
      const text = await ctx.registry.metrics();
      return reply.type(ctx.registry.contentType).send(text);
    },
  );
}
