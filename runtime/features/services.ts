/**
 * What a node hands its actors of the feature store: the definitions, the raw online store (for
 * stream writers, which need compare-and-set and processed marks, and must see a failed write
 * fail so the event is delivered again), the served view of it (cache, defaults, degraded reads,
 * buffered writes) and the change notices that keep caches fresh.
 *
 * One set per process: the memory store of the embedded mode only works if every user in the
 * process shares it, and one cache per process is what makes its hit rate worth having.
 */
import type { Registry } from 'prom-client';
import type { FeaturesConfig, Transport as TransportKind } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Transport } from '../transport/types.js';
import { FeatureChanges } from './changes.js';
import { FeatureRegistry, loadConfiguredDefinitions } from './definitions.js';
import { FeatureMetrics } from './feature-metrics.js';
import { MemoryOnlineStore } from './memory-store.js';
import { OnlineFeatures } from './online-features.js';
import { RedisOnlineStore } from './redis-store.js';
import { StreamWriterMetrics } from './stream-writer.js';
import type { FeatureDefinitions, OnlineStore } from './types.js';

export interface FeatureServices {
  readonly registry: FeatureRegistry;
  /** The online store itself: Redis, or memory in embedded mode. */
  readonly store: OnlineStore;
  /** Reads through the process's cache with defaults filled and outages degraded; buffered writes. */
  readonly online: OnlineFeatures;
  readonly changes: FeatureChanges;
  /** The runtime's metrics registry, where feature metrics are exported. */
  readonly metricsRegistry: Registry;
  /** The metrics every stream feature writer of this process shares (one set per registry). */
  streamWriterMetrics(): StreamWriterMetrics;
}

export interface CreateFeatureServicesOptions {
  features: FeaturesConfig;
  transport: TransportKind;
  redisUrl: string;
  prefix: string;
  /** Carries the change notices. */
  bus: Transport;
  /** The runtime's registry: the feature metrics are exported with the rest. */
  metricsRegistry: Registry;
  log: Logger;
  /** Definitions already loaded; read from `features.definitions` when absent. */
  definitions?: FeatureDefinitions;
  /**
   * An existing store to use instead of opening one (in-process clusters share one memory store;
   * tests). Not closed by {@link closeFeatureServices}.
   */
  store?: OnlineStore;
}

/** Services that opened their store themselves: only those close it. */
const ownStore = new WeakSet<FeatureServices>();

/**
 * Builds the feature services of a node. A Redis store is created without waiting for Redis: a
 * node started while Redis is down serves defaults (marked degraded) and catches up once it is
 * back, rather than refusing to start.
 */
export function createFeatureServices(options: CreateFeatureServicesOptions): FeatureServices {
  const definitions = options.definitions ?? loadConfiguredDefinitions(options.features);
  const registry = new FeatureRegistry(definitions);
  let store = options.store;
  if (store === undefined) {
    store =
      options.transport === 'nats'
        ? new RedisOnlineStore({
            url: options.redisUrl,
            prefix: options.prefix,
            definitions,
            log: options.log,
          })
        : new MemoryOnlineStore({ definitions });
  }
  const owned = options.store === undefined;
  const changes = new FeatureChanges(options.bus, options.prefix);
  const online = new OnlineFeatures({
    ...options.features,
    store,
    registry,
    changes,
    metrics: new FeatureMetrics(options.metricsRegistry),
    log: options.log,
  });
  let writerMetrics: StreamWriterMetrics | undefined;
  const services: FeatureServices = {
    registry,
    store,
    online,
    changes,
    metricsRegistry: options.metricsRegistry,
    streamWriterMetrics: () => (writerMetrics ??= new StreamWriterMetrics(options.metricsRegistry)),
  };
  if (owned) ownStore.add(services);
  return services;
}

/** Writes out what is buffered, then closes the store if these services opened it. */
export async function closeFeatureServices(services: FeatureServices): Promise<void> {
  await services.online.close();
  if (ownStore.has(services)) await services.store.close();
}
