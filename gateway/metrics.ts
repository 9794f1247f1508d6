/**
 * The gateway's Prometheus metrics, registered on the registry it is given: in `recsys start` the
 * node's own, so one `/metrics` shows the actors, the feature store and the gateway together.
 * Registered once per registry (prom-client refuses a name twice), so several gateways built on one
 * registry (tests) share them.
 *
 * Names follow `recsys_gateway_<what>_<unit>`; labels are low-cardinality: the route pattern (never
 * the path with its user id), the status, the error code, the feedback type, and the experiment
 * variant, bounded in number (see {@link VariantLabels}).
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** HTTP latency buckets: 250 µs to 10 s. The p50/p95/p99 come from these. */
const HTTP_BUCKETS = [
  0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Stage latency buckets: 100 µs to 5 s. */
const STAGE_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
];

export class GatewayMetrics {
  /** Every HTTP request, by method, route pattern and status code. */
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Stage times the user actor reported (`timings_ms`): retrieval, ranking, total. */
  readonly recommendStage: Histogram<'stage'>;
  /** Recommendations answered, by variant. */
  readonly recommendations: Counter<'variant'>;
  /** Degraded recommendations, by reason (a reply with two reasons counts in both). */
  readonly degraded: Counter<'reason'>;
  /** Items served (impressions), by variant: the denominator of the click-through rate. */
  readonly impressions: Counter<'variant'>;
  /** Feedback events, by type and outcome (`stored`, `duplicate`). */
  readonly feedbackEvents: Counter<'type' | 'outcome'>;
  /** Newly stored feedback by variant and type: clicks over impressions is the CTR. */
  readonly engagements: Counter<'variant' | 'type'>;
  /** `observe` calls after a feedback POST, by outcome (`ok`, or the error code). */
  readonly observe: Counter<'outcome'>;
  /** Error answers, by code. */
  readonly errors: Counter<'code'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.httpDuration = new Histogram({
      name: 'recsys_gateway_http_request_duration_seconds',
      help: 'HTTP requests served by the gateway, by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.recommendStage = new Histogram({
      name: 'recsys_gateway_recommend_stage_duration_seconds',
      help: 'Time per recommendation stage as the user actor reported it (retrieval, ranking, total)',
      labelNames: ['stage'],
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.recommendations = new Counter({
      name: 'recsys_gateway_recommendations_total',
      help: 'Recommendations answered, by experiment variant',
      labelNames: ['variant'],
      registers,
    });
    this.degraded = new Counter({
      name: 'recsys_gateway_recommend_degraded_total',
      help: 'Recommendations that degraded, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.impressions = new Counter({
      name: 'recsys_gateway_impressions_total',
      help: 'Items served in recommendations, by experiment variant',
      labelNames: ['variant'],
      registers,
    });
    this.feedbackEvents = new Counter({
      name: 'recsys_gateway_feedback_events_total',
      help: 'Feedback events stored through the gateway, by type and outcome (stored, duplicate)',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.engagements = new Counter({
      name: 'recsys_gateway_engagements_total',
      help: 'Newly stored feedback events by the variant that served the item and type (CTR: clicks / impressions)',
      labelNames: ['variant', 'type'],
      registers,
    });
    this.observe = new Counter({
      name: 'recsys_gateway_observe_total',
      help: "Calls telling a user's actor about stored feedback, by outcome (ok, or the error code)",
      labelNames: ['outcome'],
      registers,
    });
    this.errors = new Counter({
      name: 'recsys_gateway_errors_total',
      help: 'Error answers of the gateway, by code',
      labelNames: ['code'],
      registers,
    });
  }
}

const byRegistry = new WeakMap<Registry, GatewayMetrics>();

/** The gateway metrics of `registry`, registered on first use. */
export function gatewayMetrics(registry: Registry): GatewayMetrics {
  let metrics = byRegistry.get(registry);
  if (metrics === undefined) {
    metrics = new GatewayMetrics(registry);
    byRegistry.set(registry, metrics);
  }
  return metrics;
}

/** Distinct variants the `variant` label takes at most; later ones count under `other`. */
const MAX_VARIANTS = 64;

/**
 * Bounds the `variant` label: feedback carries whatever variant the client sends, so the first
 * {@link MAX_VARIANTS} distinct variants seen (served or fed back) become labels and any later one
 * counts under `other`. Experiments run a handful of variants, far below the bound.
 */
export class VariantLabels {
  private readonly seen = new Set<string>();

  /** The label of `variant` (absent: `none`). */
  label(variant: string | undefined): string {
    if (variant === undefined || variant === '') return 'none';
    if (this.seen.has(variant)) return variant;
    if (this.seen.size >= MAX_VARIANTS) return 'other';
    this.seen.add(variant);
    return variant;
  }
}
