/**
 * The HTTP gateway on a real in-process node, through `app.inject()`: validation naming the
 * field, the one error format, request ids, feedback stored on the events stream before the 202,
 * duplicates, the original design's payloads, readiness, metrics and the OpenAPI document. The
 * recommendation routes against a real user actor are in gateway-recommend.test.ts.
 */
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  GatewayErrorCode,
  gatewayBanner,
  REQUEST_ID_HEADER,
  serveEmbeddedGateway,
  toHttpError,
} from '../../gateway/index.js';
import { describeSchema, fieldOf } from '../../gateway/validation.js';
import {
  BadRequestError,
  ErrorCode,
  NoRespondersError,
  OverloadedError,
  TimeoutError,
} from '../../runtime/errors.js';
import { silentLogger } from '../../runtime/log.js';
import type { RunningNode } from '../../runtime/node.js';
import type { EventStream } from '../../runtime/stream/index.js';
import { Type } from '@sinclair/typebox';
import { testCluster, testConfig } from '../helpers/cluster.js';
import type { RawConfig } from '../helpers/cluster.js';
import { gatewayOn, storedFeedback } from '../helpers/gateway.js';
import type { TestGateway } from '../helpers/gateway.js';

const RAW: RawConfig = {
  runtime: { partitions: 8 },
  gateway: { body_limit_bytes: 2048, max_feedback_batch: 3 },
  recommend: { max_count: 50 },
};

interface ErrorJson {
  error: { code: string; message: string; field?: string; request_id: string };
}

describe('the HTTP gateway', () => {
  const cluster = testCluster(undefined);
  let node: RunningNode;
  let gw: TestGateway;

  beforeEach(async () => {
    node = await cluster.node([], RAW);
    // No user actor runs here: the observe after a feedback POST fails fast.
    gw = await gatewayOn(node, testConfig('inproc', undefined, RAW), { observeTimeoutMs: 20 });
  });

  afterEach(async () => {
    await gw.app.close();
    await cluster.close();
  });

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    gw.app.inject({ method: 'POST', url, payload: payload as object, headers });

  const expectError = (
    response: { statusCode: number; body: string; headers: Record<string, unknown> },
    status: number,
    code: string,
    field?: string,
  ): ErrorJson['error'] => {
    expect(response.statusCode).toBe(status);
    const body = JSON.parse(response.body) as ErrorJson;
    expect(body.error.code).toBe(code);
    if (field !== undefined) expect(body.error.field).toBe(field);
    // The error names the request it answers, as the header does.
    expect(body.error.request_id).toBe(response.headers[REQUEST_ID_HEADER]);
    return body.error;
  };

  describe('validation', () => {
    it('names the field of a bad recommend request', async () => {
      const missing = expectError(
        await post('/recommend', { count: 3 }),
        400,
        'bad_request',
        'user_id',
      );
      expect(missing.message).toBe('user_id: is required');
      const zero = expectError(
        await post('/recommend', { user_id: 'u1', count: 0 }),
        400,
        'bad_request',
        'count',
      );
      expect(zero.message).toBe('count: must be an integer in 1..50');
      expectError(
        await post('/recommend', { user_id: 'u1', count: 51 }),
        400,
        'bad_request',
        'count',
      );
      expectError(
        await post('/recommend', { user_id: 'u1', num_recommendations: 1.5 }),
        400,
        'bad_request',
        'num_recommendations',
      );
      // Bodies are not coerced: a count sent as a string is refused.
      expectError(
        await post('/recommend', { user_id: 'u1', count: '5' }),
        400,
        'bad_request',
        'count',
      );
      const unknown = expectError(
        await post('/recommend', { user_id: 'u1', cuont: 5 }),
        400,
        'bad_request',
        'cuont',
      );
      expect(unknown.message).toContain('unknown field (expected one of: user_id, count');
      expectError(
        await post('/recommend', { user_id: 'u1', exclude: ['ok', ''] }),
        400,
        'bad_request',
        'exclude[1]',
      );
      expectError(await post('/recommend', { user_id: 'u\u0001' }), 400, 'bad_request', 'user_id');
      expectError(
        await gw.app.inject({ method: 'GET', url: '/recommend/u1?count=0' }),
        400,
        'bad_request',
        'count',
      );
      expectError(
        await gw.app.inject({ method: 'GET', url: '/recommend/u1?limit=3' }),
        400,
        'bad_request',
        'limit',
      );
    });

    it('names the field of a bad feedback event, in a batch by its index', async () => {
      const bad = expectError(
        await post('/feedback', { user_id: 'u1', item_id: 'i1', event_type: 'clack' }),
        400,
        'bad_request',
        'event_type',
      );
      expect(bad.message).toBe('event_type: must be one of view, click, like, purchase, rating');
      expectError(
        await post('/feedback', { user_id: 'u1', item_id: 'i1' }),
        400,
        'bad_request',
        'event_type',
      );
      expectError(
        await post('/feedback', {
          events: [
            { user_id: 'u1', item_id: 'i1', event_type: 'click' },
            { user_id: 'u1', item_id: 'i2', type: 'bad' },
          ],
        }),
        400,
        'bad_request',
        'events[1].type',
      );
      // The stream's own rules, under the name the client used.
      expectError(
        await post('/feedback', { events: [{ user_id: 'u1', item_id: 'i1', type: 'rating' }] }),
        400,
        'bad_request',
        'events[0].value',
      );
      expectError(
        await post('/feedback', {
          user_id: 'u1',
          item_id: 'i1',
          event_type: 'view',
          timestamp: 'yesterday',
        }),
        400,
        'bad_request',
        'timestamp',
      );
      expectError(
        await post('/feedback', {
          user_id: 'u1',
          item_id: 'i1',
          event_type: 'view',
          event_id: 'a b',
        }),
        400,
        'bad_request',
        'event_id',
      );
      expectError(
        await post('/feedback', { user_id: 'u1', item_id: 'i1', event_type: 'view', extra: 1 }),
        400,
        'bad_request',
        'extra',
      );
      const event = { user_id: 'u1', item_id: 'i1', event_type: 'click' };
      const tooMany = expectError(
        await post('/feedback', { events: [event, event, event, event] }),
        400,
        'bad_request',
        'events',
      );
      expect(tooMany.message).toBe('events: must be an array of 1..3 items');
      expectError(await post('/feedback', { events: [] }), 400, 'bad_request', 'events');
      // Nothing of the refused requests was stored.
      expect(await storedFeedback(gw.events, 'test')).toEqual([]);
    });

    it('answers malformed bodies, oversized bodies and unknown routes in the same format', async () => {
      const malformed = expectError(
        await gw.app.inject({
          method: 'POST',
          url: '/feedback',
          payload: '{"user_id": ',
          headers: { 'content-type': 'application/json' },
        }),
        400,
        'bad_request',
        'body',
      );
      expect(malformed.message).toBe('body: is not valid JSON');
      expectError(
        await gw.app.inject({ method: 'POST', url: '/recommend' }),
        400,
        'bad_request',
        'body',
      );
      const empty = expectError(
        await gw.app.inject({
          method: 'POST',
          url: '/recommend',
          payload: '',
          headers: { 'content-type': 'application/json' },
        }),
        400,
        'bad_request',
        'body',
      );
      expect(empty.message).toBe('body: is empty; send a JSON object');
      expectError(
        await gw.app.inject({
          method: 'POST',
          url: '/recommend',
          payload: '<user/>',
          headers: { 'content-type': 'application/xml' },
        }),
        415,
        GatewayErrorCode.UnsupportedMediaType,
      );
      const big = await post('/feedback', {
        user_id: 'u1',
        item_id: 'x'.repeat(3000),
        event_type: 'click',
      });
      const tooLarge = expectError(big, 413, GatewayErrorCode.PayloadTooLarge);
      expect(tooLarge.message).toContain('gateway.body_limit_bytes');
      const missing = expectError(
        await gw.app.inject({ method: 'GET', url: '/nope?x=1' }),
        404,
        GatewayErrorCode.NotFound,
      );
      expect(missing.message).toBe('no route GET /nope');
      expectError(await gw.app.inject({ method: 'DELETE', url: '/feedback' }), 404, 'not_found');
    });
  });

  describe('request ids', () => {
    it("answers with the caller's x-request-id, or a fresh one", async () => {
      const mine = await gw.app.inject({ url: '/health', headers: { 'x-request-id': 'req-42' } });
      expect(mine.headers[REQUEST_ID_HEADER]).toBe('req-42');
      const fresh = await gw.app.inject({ url: '/health' });
      const other = await gw.app.inject({ url: '/health' });
      expect(fresh.headers[REQUEST_ID_HEADER]).toMatch(/^[A-Za-z0-9_.:-]{8,}$/);
      expect(fresh.headers[REQUEST_ID_HEADER]).not.toBe(other.headers[REQUEST_ID_HEADER]);
      // An id that could not travel in a header or an event is replaced.
      const odd = await gw.app.inject({ url: '/health', headers: { 'x-request-id': 'a b/c' } });
      expect(odd.headers[REQUEST_ID_HEADER]).not.toBe('a b/c');
      const notFound = await gw.app.inject({ url: '/x', headers: { 'x-request-id': 'req-43' } });
      expect(notFound.json<ErrorJson>().error.request_id).toBe('req-43');
    });
  });

  describe('feedback', () => {
    it("stores the original design's payload on the stream before answering 202", async () => {
      const before = Date.now();
      const response = await post('/feedback', {
        user_id: 'user_123',
        item_id: 'item_456',
        event_type: 'click',
      });
      expect(response.statusCode).toBe(202);
      const body = response.json<{ accepted: number; event_ids: string[]; duplicates: number }>();
      expect(body.accepted).toBe(1);
      expect(body.duplicates).toBe(0);
      expect(body.event_ids).toHaveLength(1);
      // Stored by the time the 202 came: read straight from the stream, no waiting.
      const stored = await storedFeedback(gw.events, 'test');
      expect(stored).toHaveLength(1);
      expect(stored[0]).toMatchObject({
        event_id: body.event_ids[0],
        user_id: 'user_123',
        item_id: 'item_456',
        type: 'click',
      });
      expect(stored[0]!.ts_ms).toBeGreaterThanOrEqual(before);
      expect(stored[0]!.ts_ms).toBeLessThanOrEqual(Date.now());
    });

    it('stores a batch, with the aliases and timestamps mapped to the stored fields', async () => {
      const response = await post('/feedback', {
        events: [
          {
            user_id: 'u1',
            item_id: 'i1',
            type: 'view',
            event_id: 'ev-1',
            dwell_time_seconds: 12.5,
            timestamp: '2024-05-01T10:00:00Z',
            request_id: 'rec-1',
            variant: 'control',
          },
          { user_id: 'u2', item_id: 'i2', event_type: 'rating', value: 4, timestamp: 1714557600 },
          { user_id: 'u1', item_id: 'i3', event_type: 'purchase', ts_ms: 1714557600123 },
        ],
      });
      expect(response.statusCode).toBe(202);
      const body = response.json<{ accepted: number; event_ids: string[] }>();
      expect(body.accepted).toBe(3);
      expect(body.event_ids[0]).toBe('ev-1');
      const stored = await storedFeedback(gw.events, 'test');
      expect(stored.map((e) => e.event_id).sort()).toEqual([...body.event_ids].sort());
      const byId = new Map(stored.map((e) => [e.event_id, e]));
      expect(byId.get('ev-1')).toMatchObject({
        type: 'view',
        value: 12.5,
        ts_ms: Date.parse('2024-05-01T10:00:00Z'),
        request_id: 'rec-1',
        variant: 'control',
      });
      // An epoch number below 1e11 is seconds.
      expect(byId.get(body.event_ids[1]!)).toMatchObject({
        type: 'rating',
        value: 4,
        ts_ms: 1714557600000,
      });
      expect(byId.get(body.event_ids[2]!)).toMatchObject({
        type: 'purchase',
        ts_ms: 1714557600123,
      });
    });

    it('stores an event sent twice once, and says it was a duplicate', async () => {
      const event = { user_id: 'u1', item_id: 'i1', event_type: 'like', event_id: 'like-1' };
      const first = await post('/feedback', event);
      const second = await post('/feedback', event);
      expect(first.statusCode).toBe(202);
      expect(second.statusCode).toBe(202);
      expect(first.json()).toEqual({ accepted: 1, event_ids: ['like-1'], duplicates: 0 });
      expect(second.json()).toEqual({ accepted: 1, event_ids: ['like-1'], duplicates: 1 });
      // Within one batch too.
      const batch = await post('/feedback', { events: [event, { ...event, event_id: 'like-2' }] });
      expect(batch.json()).toMatchObject({ accepted: 2, duplicates: 1 });
      const stored = await storedFeedback(gw.events, 'test');
      expect(stored.map((e) => e.event_id)).toEqual(['like-1', 'like-2']);
    });

    it('answers 504, naming the budget, when the stream does not store in time', async () => {
      await gw.app.close();
      const real = await gatewayOn(node, testConfig('inproc', undefined, RAW));
      await real.app.close();
      // A stream that never acknowledges: the gateway must not answer 202.
      const stuck: EventStream = {
        ...real.events,
        name: real.events.name,
        publish: () => new Promise(() => undefined),
        info: () => real.events.info(),
      };
      const raw = { ...RAW, gateway: { ...RAW['gateway'], feedback_timeout_ms: 50 } };
      gw = await gatewayOn(node, testConfig('inproc', undefined, raw), { events: stuck });
      const late = expectError(
        await post('/feedback', { user_id: 'u1', item_id: 'i1', event_type: 'click' }),
        504,
        ErrorCode.Timeout,
      );
      expect(late.message).toBe(
        'the events stream did not store 1 event within 50 ms (gateway.feedback_timeout_ms)',
      );
    });
  });

  describe('recommend without a user actor', () => {
    it("accepts the original design's request and answers 503: nobody serves users", async () => {
      const response = await post('/recommend', { user_id: 'user_123', num_recommendations: 10 });
      const error = expectError(response, 503, ErrorCode.NoResponders);
      expect(error.message).toContain('the user actor of "user_123"');
      expect(response.headers['retry-after']).toBe('1');
    });
  });

  describe('operations', () => {
    it('answers /health, and /ready with what is missing', async () => {
      const health = await gw.app.inject({ url: '/health' });
      expect(health.statusCode).toBe(200);
      expect(health.json()).toEqual({ status: 'ok' });
      const ready = await gw.app.inject({ url: '/ready' });
      expect(ready.statusCode).toBe(503);
      const report = ready.json<{
        ready: boolean;
        not_ready: string[];
        checks: Record<string, { ok: boolean; detail: string }>;
      }>();
      expect(report.ready).toBe(false);
      expect(report.not_ready).toEqual(['user', 'items.0', 'rank.gbdt']);
      expect(report.checks['user']).toEqual({ ok: false, detail: 'no host runs the user actor' });
      expect(report.checks['items.0']!.detail).toMatch(/^no_responders: /);
      expect(report.checks['events']!.ok).toBe(true);
      expect(report.checks['events']!.detail).toContain('test_events');
    });

    it("serves Prometheus metrics from the node's registry, with the route histogram", async () => {
      await post('/feedback', { user_id: 'u1', item_id: 'i1', event_type: 'click', variant: 'a' });
      await post('/recommend', { user_id: 'u1', count: 0 });
      await gw.app.inject({ url: '/nope' });
      const response = await gw.app.inject({ url: '/metrics' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toContain('text/plain');
      const text = response.body;
      expect(text).toMatch(
        /recsys_gateway_http_request_duration_seconds_count\{method="POST",route="\/feedback",status="202"\} 1/,
      );
      expect(text).toMatch(
        /recsys_gateway_http_request_duration_seconds_bucket\{le="0.005",method="POST",route="\/recommend",status="400"\} \d/,
      );
      expect(text).toContain('route="unmatched",status="404"');
      expect(text).toContain(
        'recsys_gateway_feedback_events_total{type="click",outcome="stored"} 1',
      );
      expect(text).toContain('recsys_gateway_engagements_total{variant="a",type="click"} 1');
      expect(text).toContain('recsys_gateway_errors_total{code="bad_request"} 1');
      expect(text).toContain('recsys_gateway_errors_total{code="not_found"} 1');
      // The node's own metrics are on the same registry (one /metrics in embedded mode).
      expect(text).toContain('# TYPE recsys_actor_messages_total counter');
      expect(text).toContain('# TYPE recsys_features_store_reads_total counter');
    });

    it('documents every route with its schemas in /openapi.json, and serves /docs', async () => {
      const response = await gw.app.inject({ url: '/openapi.json' });
      expect(response.statusCode).toBe(200);
      const doc = response.json<{
        openapi: string;
        paths: Record<string, Record<string, Record<string, unknown>>>;
      }>();
      expect(doc.openapi).toMatch(/^3\.1/);
      expect(Object.keys(doc.paths).sort()).toEqual(
        ['/feedback', '/health', '/metrics', '/ready', '/recommend', '/recommend/{userId}'].sort(),
      );
      expect(Object.keys(doc.paths['/recommend']!)).toEqual(['post']);
      expect(Object.keys(doc.paths['/recommend/{userId}']!)).toEqual(['get']);
      const recommend = JSON.stringify(doc.paths['/recommend']!['post']);
      for (const field of ['user_id', 'count', 'num_recommendations', 'exclude', 'categories']) {
        expect(recommend).toContain(`"${field}"`);
      }
      // The configured limits are in the document.
      expect(recommend).toContain('"maximum":50');
      expect(recommend).toContain('"items"');
      const feedback = JSON.stringify(doc.paths['/feedback']!['post']);
      expect(feedback).toContain('"event_type"');
      expect(feedback).toContain('"maxItems":3');
      expect(feedback).toContain('"202"');
      expect(JSON.stringify(doc.paths['/recommend/{userId}'])).toContain('"count"');
      const docs = await gw.app.inject({ url: '/docs' });
      expect(docs.statusCode).toBe(200);
      expect(docs.headers['content-type']).toContain('text/html');
      expect(docs.body).toContain('swagger-ui');
    });
  });
});

describe('gateway error mapping', () => {
  it('maps runtime errors to one status each, keeping the field of a bad request', () => {
    expect(toHttpError(new BadRequestError('count', 'must be positive'))).toEqual({
      status: 400,
      code: 'bad_request',
      message: 'count: must be positive',
      field: 'count',
    });
    expect(toHttpError(new TimeoutError('late'))).toMatchObject({ status: 504, code: 'timeout' });
    expect(toHttpError(new NoRespondersError('none'))).toMatchObject({
      status: 503,
      retryAfterS: 1,
    });
    expect(toHttpError(new OverloadedError('full'))).toMatchObject({ status: 429, retryAfterS: 1 });
    // Anything else is an internal error whose message is not shown.
    expect(toHttpError(new Error('secret detail'))).toEqual({
      status: 500,
      code: 'internal',
      message: 'internal error',
    });
  });

  it('turns JSON pointers and schemas into fields and rules', () => {
    expect(fieldOf('/events/3/event_type', 'body')).toBe('events[3].event_type');
    expect(fieldOf('', 'querystring')).toBe('querystring');
    expect(describeSchema(Type.Integer({ minimum: 1, maximum: 9 }))).toBe(
      'must be an integer in 1..9',
    );
    expect(describeSchema(Type.Array(Type.String(), { maxItems: 4 }))).toBe(
      'must be an array of <= 4 items',
    );
    expect(describeSchema(Type.String({ minLength: 1, maxLength: 3 }))).toBe(
      'must be a string of 1..3 characters',
    );
  });

  it('prints where the embedded gateway is and how to try it', () => {
    const banner = gatewayBanner('http://127.0.0.1:8000');
    expect(banner).toContain('curl -s http://127.0.0.1:8000/recommend');
    expect(banner).toContain('"event_type": "click"');
    expect(banner).toContain('http://127.0.0.1:8000/docs');
  });
});

describe('the embedded gateway of recsys start', () => {
  const cluster = testCluster(undefined);
  afterEach(() => cluster.close());

  it("listens with the node's client and registry, and prints how to try it", async () => {
    const raw = { ...RAW, gateway: { host: '127.0.0.1', port: 0 } };
    const node = await cluster.node([], raw);
    const out = new PassThrough();
    let printed = '';
    out.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    const gateway = await serveEmbeddedGateway({
      config: testConfig('inproc', undefined, raw),
      log: silentLogger(),
      node,
      out,
    });
    try {
      expect(gateway?.url).toBe(`http://127.0.0.1:${gateway?.port}`);
      expect(printed).toContain(`curl -s ${gateway!.url}/recommend`);
      const health = await fetch(`${gateway!.url}/health`, { headers: { 'x-request-id': 'h-1' } });
      expect(health.status).toBe(200);
      expect(health.headers.get('x-request-id')).toBe('h-1');
      const metrics = await (await fetch(`${gateway!.url}/metrics`)).text();
      expect(metrics).toContain('route="/health",status="200"');
      expect(metrics).toContain('# TYPE recsys_actor_messages_total counter');
    } finally {
      await gateway?.close();
    }
    // A node on NATS serves none: `recsys gateway` runs there.
    const onNats = testConfig('nats', 'nats://127.0.0.1:1', raw);
    expect(await serveEmbeddedGateway({ config: onNats, log: silentLogger(), node })).toBe(
      undefined,
    );
  });
});
