/**
 * The runtime's Prometheus metrics, one registry per runtime instance (never the global one, so
 * several hosts in one test process do not collide). Names follow `recsys_<subsystem>_<what>_<unit>`;
 * labels are low-cardinality: actor kind, operation, outcome, never an actor key.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Live figures the gauges read at scrape time, so the hot path updates nothing for them. */
export interface RuntimeGaugeSource {
  activeActors(kind: string): number;
  mailboxDepth(kind: string): number;
  partitionsOwned(kind: string): number;
  kinds(): Iterable<string>;
}

export interface RuntimeMetricsOptions {
  registry?: Registry;
  /** Process metrics (CPU, memory, event loop lag). @default false */
  defaultMetrics?: boolean;
}

export type Outcome = 'ok' | 'error' | 'rejected' | 'expired';

/** Handler duration buckets: 50 µs to 5 s, since handlers here are mostly sub-millisecond. */
const DURATION_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
  5,
];

export class RuntimeMetrics {
  readonly registry: Registry;
  readonly messages: Counter<'kind' | 'op' | 'outcome'>;
  readonly handlerDuration: Histogram<'kind' | 'op'>;
  readonly activations: Counter<'kind'>;
  readonly passivations: Counter<'kind'>;
  readonly deadlineDrops: Counter<'kind'>;
  readonly clientTimeouts: Counter<'kind' | 'op'>;
  readonly clientRetries: Counter<'kind' | 'code'>;
  private readonly sources = new Set<RuntimeGaugeSource>();

  constructor(options: RuntimeMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    if (options.defaultMetrics === true)
      collectDefaultMetrics({ register: this.registry, prefix: 'recsys_' });

    this.messages = new Counter({
      name: 'recsys_actor_messages_total',
      help: 'Messages handled by actors, by outcome (ok, error, rejected before running, expired)',
      labelNames: ['kind', 'op', 'outcome'],
      registers,
    });
    this.handlerDuration = new Histogram({
      name: 'recsys_actor_handler_duration_seconds',
      help: 'Time from dequeue to reply, per actor kind and operation',
      labelNames: ['kind', 'op'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.activations = new Counter({
      name: 'recsys_actor_activations_total',
      help: 'Actor activations',
      labelNames: ['kind'],
      registers,
    });
    this.passivations = new Counter({
      name: 'recsys_actor_passivations_total',
      help: 'Actor deactivations (idle, handoff or shutdown)',
      labelNames: ['kind'],
      registers,
    });
    this.deadlineDrops = new Counter({
      name: 'recsys_actor_deadline_drops_total',
      help: 'Requests dropped by the callee because their deadline had passed',
      labelNames: ['kind'],
      registers,
    });
    this.clientTimeouts = new Counter({
      name: 'recsys_client_timeouts_total',
      help: 'Asks that got no reply within their deadline',
      labelNames: ['kind', 'op'],
      registers,
    });
    this.clientRetries = new Counter({
      name: 'recsys_client_retries_total',
      help: 'Asks sent again because the callee did not run them (no responders, not owner, overloaded)',
      labelNames: ['kind', 'code'],
      registers,
    });
    const sources = this.sources;
    const gauge = (
      name: string,
      help: string,
      read: (s: RuntimeGaugeSource, kind: string) => number,
    ): void => {
      new Gauge({
        name,
        help,
        labelNames: ['kind'],
        registers,
        collect() {
          this.reset();
          for (const source of sources) {
            for (const kind of source.kinds()) this.inc({ kind }, read(source, kind));
          }
        },
      });
    };
    gauge('recsys_actor_active', 'Actor activations currently in memory', (s, k) =>
      s.activeActors(k),
    );
    gauge('recsys_actor_mailbox_depth', 'Messages waiting or running in actor mailboxes', (s, k) =>
      s.mailboxDepth(k),
    );
    gauge('recsys_placement_partitions_owned', 'Partitions this host owns', (s, k) =>
      s.partitionsOwned(k),
    );
  }

  /** Registers a source of live figures (a host); returns a function that removes it. */
  addGaugeSource(source: RuntimeGaugeSource): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }

  /** Text exposition for `/metrics`. */
  async expose(): Promise<string> {
    return this.registry.metrics();
  }
}
