/**
 * Prometheus metrics of the serving side of the feature store, registered once per runtime
 * registry (the one of `RuntimeMetrics`) and shared by every {@link OnlineFeatures} of the runtime.
 * Cache counts and the write buffer's size are read from their owners at scrape time, so a cache
 * hit updates no metric; what is counted on the hot path is counted once per read, not per entity.
 *
 * Names follow `recsys_features_<what>_<unit>`; the only per-view label is the view name, a short
 * list fixed by the definitions.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { FeatureCacheStats } from './cache.js';

/** Live figures read at scrape time: one per {@link OnlineFeatures}. */
export interface FeatureMetricsSource {
  cacheStats(): FeatureCacheStats;
  /** Rows waiting in the write buffer. */
  bufferedRows(): number;
}

/** How a store read ended. */
export const StoreReadOutcome = {
  Ok: 'ok',
  /** The store rejected (unreachable, or failed). */
  Error: 'error',
  /** No answer within `read_timeout_ms`. */
  Timeout: 'timeout',
} as const;
export type StoreReadOutcome = (typeof StoreReadOutcome)[keyof typeof StoreReadOutcome];

/** How a write through {@link OnlineFeatures.write} (or a retry of a buffered one) ended. */
export const StoreWriteOutcome = {
  /** Stored at the first attempt. */
  Ok: 'ok',
  /** The store was unreachable: the batch went to the write buffer. */
  Buffered: 'buffered',
  /** Stored by a retry from the write buffer. */
  Retried: 'retried',
  /** The store refused it (a compare-and-set conflict, a bad row): reported, never retried. */
  Refused: 'refused',
} as const;
export type StoreWriteOutcome = (typeof StoreWriteOutcome)[keyof typeof StoreWriteOutcome];

/** Store call durations: 50 µs to 5 s. */
const DURATION_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
  5,
];

/** Ages of served values: a second to a week (stream views are seconds old, batch views days). */
const AGE_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400];

/** The instruments of one view, bound once so the serving path does not build label objects. */
export interface ViewInstruments {
  readOk: Counter.Internal;
  readError: Counter.Internal;
  readTimeout: Counter.Internal;
  readDuration: Histogram.Internal<'view'>;
  degraded: Counter.Internal;
  servedAge: Histogram.Internal<'view'>;
}

export class FeatureMetrics {
  readonly storeReads: Counter<'view' | 'outcome'>;
  readonly storeReadDuration: Histogram<'view'>;
  readonly degradedReads: Counter<'view'>;
  readonly servedAge: Histogram<'view'>;
  /** Batches written, by outcome. */
  readonly storeWrites: Counter<'outcome'>;
  /** Rows of buffered batches that never landed, by reason: `overflow`, `refused`, `closed`. */
  readonly droppedRows: Counter<'reason'>;
  private readonly sources = new Set<FeatureMetricsSource>();
  private readonly views = new Map<string, ViewInstruments>();

  constructor(registry: Registry) {
    const registers = [registry];
    const sources = this.sources;

    this.storeReads = new Counter({
      name: 'recsys_features_store_reads_total',
      help: 'Reads of the online store (one per feature read with cache misses), by outcome',
      labelNames: ['view', 'outcome'],
      registers,
    });
    this.storeReadDuration = new Histogram({
      name: 'recsys_features_store_read_duration_seconds',
      help: 'Duration of online store reads that answered in time',
      labelNames: ['view'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.degradedReads = new Counter({
      name: 'recsys_features_degraded_reads_total',
      help: 'Feature reads that served defaults for their cache misses: the store failed or was slow',
      labelNames: ['view'],
      registers,
    });
    this.servedAge = new Histogram({
      name: 'recsys_features_served_age_seconds',
      help: 'Age (now minus event time) of the oldest stored value served by each feature read',
      labelNames: ['view'],
      buckets: AGE_BUCKETS,
      registers,
    });
    this.storeWrites = new Counter({
      name: 'recsys_features_store_writes_total',
      help: 'Batches written to the online store, by outcome (ok, buffered, retried, refused)',
      labelNames: ['outcome'],
      registers,
    });
    this.droppedRows = new Counter({
      name: 'recsys_features_write_buffer_dropped_rows_total',
      help: 'Buffered rows that never landed: buffer full (overflow), refused on retry, left at close',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: 'recsys_features_write_buffer_rows',
      help: 'Rows waiting in the write buffer for the online store to come back',
      registers,
      collect() {
        let rows = 0;
        for (const source of sources) rows += source.bufferedRows();
        this.set(rows);
      },
    });
    const cacheMetric = (
      name: string,
      help: string,
      read: (stats: FeatureCacheStats['views'][string]) => number,
      type: 'counter' | 'gauge',
    ): void => {
      const config = {
        name,
        help,
        labelNames: ['view'] as const,
        registers,
        collect(this: Counter<'view'> | Gauge<'view'>) {
          this.reset();
          for (const source of sources) {
            for (const [view, counts] of Object.entries(source.cacheStats().views)) {
              this.inc({ view }, read(counts));
            }
          }
        },
      };
      if (type === 'counter') new Counter(config);
      else new Gauge(config);
    };
    cacheMetric(
      'recsys_features_cache_hits_total',
      'Feature cache lookups answered from memory (an entity known to have no row included)',
      (c) => c.hits,
      'counter',
    );
    cacheMetric(
      'recsys_features_cache_misses_total',
      'Feature cache lookups that went to the online store (absent, expired, or cache off)',
      (c) => c.misses,
      'counter',
    );
    cacheMetric(
      'recsys_features_cache_evictions_total',
      'Feature cache entries pushed out by the size bound',
      (c) => c.evictions,
      'counter',
    );
    cacheMetric(
      'recsys_features_cache_entries',
      'Rows held in the feature cache',
      (c) => c.entries,
      'gauge',
    );
  }

  /** Registers a source of live figures; returns a function that removes it. */
  addSource(source: FeatureMetricsSource): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }

  /** The instruments of `view`, bound to its label. */
  view(view: string): ViewInstruments {
    let instruments = this.views.get(view);
    if (instruments === undefined) {
      instruments = {
        readOk: this.storeReads.labels(view, StoreReadOutcome.Ok),
        readError: this.storeReads.labels(view, StoreReadOutcome.Error),
        readTimeout: this.storeReads.labels(view, StoreReadOutcome.Timeout),
        readDuration: this.storeReadDuration.labels(view),
        degraded: this.degradedReads.labels(view),
        servedAge: this.servedAge.labels(view),
      };
      this.views.set(view, instruments);
    }
    return instruments;
  }
}
