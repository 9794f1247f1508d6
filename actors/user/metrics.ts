/**
 * What the user actors measure: Prometheus instruments on the node's registry (one set per
 * registry, shared by every actor of the process), and the tally behind the kind's `$SRV.STATS`
 * figures.
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { Degraded } from './messages.js';
import type { UserKindStats } from './messages.js';

/** The stages a recommendation's latency is measured by. */
export const Stage = {
  Retrieval: 'retrieval',
  Ranking: 'ranking',
  Total: 'total',
} as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

export interface UserMetrics {
  readonly stageSeconds: Histogram<'stage'>;
  readonly recommendations: Counter<'outcome'>;
  readonly degraded: Counter<'reason'>;
  readonly feedback: Counter<'outcome'>;
  readonly impressionFailures: Counter;
  readonly sessionViewWait: Histogram;
  readonly sessionViewLate: Counter;
}

const byRegistry = new WeakMap<Registry, UserMetrics>();

/** The user actors' instruments on `registry`, made on first use. */
export function userMetrics(registry: Registry): UserMetrics {
  const known = byRegistry.get(registry);
  if (known !== undefined) return known;
  const registers = [registry];
  const metrics: UserMetrics = {
    stageSeconds: new Histogram({
      name: 'recsys_user_stage_duration_seconds',
      help: 'Time of a recommendation by stage (retrieval: tower and shard search; ranking; total)',
      labelNames: ['stage'],
      buckets: [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512],
      registers,
    }),
    recommendations: new Counter({
      name: 'recsys_user_recommendations_total',
      help: 'Recommendations answered, by outcome (full, degraded)',
      labelNames: ['outcome'],
      registers,
    }),
    degraded: new Counter({
      name: 'recsys_user_degraded_total',
      help: 'Recommendations that degraded, by reason',
      labelNames: ['reason'],
      registers,
    }),
    feedback: new Counter({
      name: 'recsys_user_feedback_events_total',
      help: 'Feedback events given to user sessions, by outcome (applied, duplicate)',
      labelNames: ['outcome'],
      registers,
    }),
    impressionFailures: new Counter({
      name: 'recsys_user_impression_failures_total',
      help: 'Impression events that could not be stored on the events stream',
      registers,
    }),
    sessionViewWait: new Histogram({
      name: 'recsys_user_session_view_wait_seconds',
      help: 'Time feedback waited for the session view the ranker reads to hold it (read-your-writes for ranking)',
      buckets: [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064],
      registers,
    }),
    sessionViewLate: new Counter({
      name: 'recsys_user_session_view_late_total',
      help: 'Feedback answered before the session view held it (the wait ran out)',
      registers,
    }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

const LATENCY_WINDOW = 1024;

/** Counts of one kind instance (one host), for `$SRV.STATS`. */
export class UserTally {
  recommends = 0;
  coldStarts = 0;
  observed = 0;
  duplicates = 0;
  impressionFailures = 0;
  readonly degraded: Record<Degraded, number> = {
    [Degraded.ShardsMissing]: 0,
    [Degraded.PopularFallback]: 0,
    [Degraded.RankerFallback]: 0,
    [Degraded.FeaturesMissing]: 0,
  };
  private readonly latencies = new Float64Array(LATENCY_WINDOW);

  recommended(ms: number, reasons: readonly Degraded[], coldStart: boolean): void {
    this.latencies[this.recommends % LATENCY_WINDOW] = ms;
    this.recommends++;
    if (coldStart) this.coldStarts++;
    for (const reason of reasons) this.degraded[reason]++;
  }

  stats(model: { version: string; ready: boolean; popular: number }): UserKindStats {
    const filled = Math.min(this.recommends, LATENCY_WINDOW);
    const sorted = this.latencies.slice(0, filled).sort();
    const at = (q: number): number | null =>
      filled === 0 ? null : (sorted[Math.min(filled - 1, Math.floor(q * filled))] as number);
    return {
      recommends: this.recommends,
      degraded: { ...this.degraded },
      cold_starts: this.coldStarts,
      observed: this.observed,
      duplicates: this.duplicates,
      impression_failures: this.impressionFailures,
      latency_p50_ms: at(0.5),
      latency_p99_ms: at(0.99),
      model_version: model.version,
      tower_loaded: model.ready,
      popular_items: model.popular,
    };
  }
}
