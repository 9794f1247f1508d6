/**
 * Builds a running node from the resolved configuration: transport (NATS or in-process), placement
 * (NATS KV leases, or local ownership in embedded mode), event streams (JetStream, or memory),
 * metrics, and the actor host. `recsys node` and the embedded `recsys start` both come through here,
 * so both modes run the same code.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ActorKind } from './actor/actor.js';
import type { Protocol } from './actor/protocol.js';
import { ActorClient } from './client/client.js';
import type { ResolvedConfig } from './config/index.js';
import { ConfigError } from './errors.js';
import { closeFeatureServices, createFeatureServices } from './features/services.js';
import type { FeatureServices } from './features/services.js';
import type { FeatureDefinitions, OnlineStore } from './features/types.js';
import { ActorHost } from './host/host.js';
import { MemoryKvStore } from './kv/memory.js';
import { NatsKvStore } from './kv/nats.js';
import type { KvStore } from './kv/types.js';
import { RuntimeMetrics } from './metrics.js';
import { startMetricsServer } from './metrics-server.js';
import type { MetricsServer } from './metrics-server.js';
import { LeasePlacement } from './placement/leases.js';
import { LocalPlacement } from './placement/local.js';
import type { Placement } from './placement/types.js';
import {
  MemoryStreamStore,
  NatsStreamStore,
  ScopedStreamStore,
  type StreamStore,
} from './stream/index.js';
import { Subjects } from './subjects.js';
import { InProcessBus, InProcessTransport } from './transport/inproc.js';
import { NatsTransport } from './transport/nats.js';
import type { Transport } from './transport/types.js';

/** Shared in-process infrastructure, so several nodes in one process form one cluster (tests). */
export interface InProcessCluster {
  bus: InProcessBus;
  kv: MemoryKvStore;
  /** The cluster's event streams: what one member publishes, the others read. */
  streams: MemoryStreamStore;
  /** The cluster's online feature store, opened by the first node that starts. */
  featureStore?: OnlineStore;
}

export function createInProcessCluster(): InProcessCluster {
  return { bus: new InProcessBus(), kv: new MemoryKvStore(), streams: new MemoryStreamStore() };
}

export interface StartNodeOptions {
  config: ResolvedConfig;
  /** Every kind this process knows; `host.actors` selects among them (empty: all). */
  kinds: readonly ActorKind<Protocol>[];
  log: Logger;
  /**
   * In-process transport only: join this cluster (its members place partitions by leases in the
   * shared memory KV, and share its streams). Without it, an in-process node is alone: it owns
   * every partition and has streams of its own.
   */
  cluster?: InProcessCluster;
  /** Feature definitions already loaded; read from `features.definitions` when absent. */
  features?: FeatureDefinitions;
}

export interface RunningNode {
  readonly hostId: string;
  readonly host: ActorHost;
  readonly client: ActorClient;
  readonly transport: Transport;
  /** The event streams this node's actors use; readers still open stop with the node. */
  readonly streams: StreamStore;
  /** The feature store this node's actors use. */
  readonly features: FeatureServices;
  /** The key-value buckets this node's actors use (the model registry lives there). */
  readonly kv: KvStore;
  readonly metrics: RuntimeMetrics;
  /** The `/metrics` endpoint, when `metrics.port` is not 0. */
  readonly metricsServer: MetricsServer | undefined;
  /**
   * Graceful: drains, deactivates, releases leases, stops the stream readers left open, then closes
   * the connection.
   */
  stop(): Promise<void>;
}

/** Picks the configured kinds, failing on a name nobody registered. */
export function selectKinds(
  available: readonly ActorKind<Protocol>[],
  wanted: readonly string[],
): ActorKind<Protocol>[] {
  if (wanted.length === 0) return [...available];
  const byName = new Map(available.map((kind) => [kind.name, kind]));
  return wanted.map((name) => {
    const kind = byName.get(name);
    if (kind === undefined) {
      const known = [...byName.keys()].join(', ') || 'none';
      throw new ConfigError(
        'host.actors',
        `unknown actor kind ${JSON.stringify(name)} (known: ${known})`,
      );
    }
    return kind;
  });
}

export function generateHostId(): string {
  return `${hostname().replace(/[^A-Za-z0-9_-]/g, '-')}-${randomBytes(3).toString('hex')}`;
}

/** The NATS connection of a process, named `<nats.name>-<who>` for the server's monitoring. */
export function connectNats(config: ResolvedConfig, who: string): Promise<NatsTransport> {
  return NatsTransport.connect({
    servers: config.nats.url.split(',').map((url) => url.trim()),
    name: `${config.nats.name}-${who}`,
    reconnectTimeWaitMs: config.nats.reconnectWaitMs,
    maxReconnectAttempts: config.nats.maxReconnectAttempts,
    drainTimeoutMs: config.runtime.drainTimeoutMs,
    localRequests: config.nats.localRequests,
  });
}

/** The actor client of a process, its retries and timeouts counted in `metrics`. */
export function createActorClient(
  config: ResolvedConfig,
  transport: Transport,
  metrics: RuntimeMetrics,
): ActorClient {
  return new ActorClient({
    transport,
    prefix: config.deployment.prefix,
    partitions: config.runtime.partitions,
    defaultTimeoutMs: config.runtime.defaultTimeoutMs,
    observer: {
      retried: (kind, code) => metrics.clientRetries.labels(kind, code).inc(),
      timedOut: (kind, op) => metrics.clientTimeouts.labels(kind, op).inc(),
    },
  });
}

export async function startNode(options: StartNodeOptions): Promise<RunningNode> {
  const { config, log } = options;
  const kinds = selectKinds(options.kinds, config.host.actors);
  const hostId = config.host.id === '' ? generateHostId() : config.host.id;
  const subjects = new Subjects(config.deployment.prefix);
  const metrics = new RuntimeMetrics({
    defaultMetrics: config.metrics.enabled && config.metrics.defaultMetrics,
  });

  let transport: Transport;
  let kv: KvStore | undefined;
  let sharedStreams: StreamStore;
  if (config.deployment.transport === 'nats') {
    const nats = await connectNats(config, hostId);
    transport = nats;
    kv = new NatsKvStore(nats.connection);
    sharedStreams = new NatsStreamStore(nats.connection);
  } else {
    transport = new InProcessTransport(options.cluster?.bus);
    kv = options.cluster?.kv;
    sharedStreams = options.cluster?.streams ?? new MemoryStreamStore();
  }
  const streams = new ScopedStreamStore(sharedStreams);
  let features: FeatureServices;
  try {
    features = createFeatureServices({
      features: config.features,
      transport: config.deployment.transport,
      redisUrl: config.redis.url,
      prefix: config.deployment.prefix,
      bus: transport,
      metricsRegistry: metrics.registry,
      log: log.child({ module: 'features' }),
      ...(options.features === undefined ? {} : { definitions: options.features }),
      ...(options.cluster?.featureStore === undefined
        ? {}
        : { store: options.cluster.featureStore }),
    });
  } catch (err) {
    await transport.close().catch(() => undefined);
    throw err;
  }
  if (options.cluster !== undefined) options.cluster.featureStore ??= features.store;

  // Actors get the cluster's KV when there is one, and a bucket store of this node's own otherwise.
  const actorKv: KvStore = kv ?? new MemoryKvStore();
  const keyed = kinds.filter((kind) => kind.placement === 'keyed').map((kind) => kind.name);
  const placement: Placement =
    kv === undefined
      ? new LocalPlacement(keyed, config.runtime.partitions)
      : new LeasePlacement({
          kv,
          subjects,
          hostId,
          kinds: keyed,
          partitions: config.runtime.partitions,
          leaseTtlMs: config.placement.leaseTtlMs,
          renewIntervalMs: config.placement.renewIntervalMs,
          heartbeatIntervalMs: config.placement.heartbeatIntervalMs,
          memberTtlMs: config.placement.memberTtlMs,
          log,
        });

  const client = createActorClient(config, transport, metrics);
  const host = new ActorHost({
    hostId,
    transport,
    kinds,
    placement,
    groups: config.host.groups,
    prefix: config.deployment.prefix,
    partitions: config.runtime.partitions,
    mailboxCapacity: config.runtime.mailboxCapacity,
    passivateAfterMs: config.runtime.passivateAfterMs,
    defaultTimeoutMs: config.runtime.defaultTimeoutMs,
    drainTimeoutMs: config.runtime.drainTimeoutMs,
    maxHandlerMs: config.runtime.maxHandlerMs,
    log,
    metrics,
    client,
    streams,
    features,
    kv: actorKv,
  });
  try {
    await host.start();
  } catch (err) {
    await host.stop().catch(() => undefined);
    await streams.close().catch(() => undefined);
    await closeFeatureServices(features).catch(() => undefined);
    await transport.close().catch(() => undefined);
    throw err;
  }

  let metricsServer: MetricsServer | undefined;
  if (config.metrics.enabled && config.metrics.port !== 0) {
    metricsServer = await startMetricsServer({
      metrics,
      port: config.metrics.port,
      healthy: () => host.state === 'running',
      ready: () => host.ready,
    });
  }

  let stopping: Promise<void> | undefined;
  return {
    hostId,
    host,
    client,
    transport,
    streams,
    features,
    kv: actorKv,
    metrics,
    metricsServer,
    stop: () =>
      (stopping ??= (async () => {
        await host.stop();
        await streams.close();
        await closeFeatureServices(features);
        await metricsServer?.close();
        await transport.close();
      })()),
  };
}
