/**
 * The `features` actor: the feature store's service. Each replica runs a stream feature writer,
 * one member of the durable consumer its replicas share on the feedback stream, which keeps the
 * `source: stream` views (the live session and item counters) up to date in the online store; and
 * it answers `get` for any service that wants features over NATS.
 *
 * Replicas scale out by joining the same group from more hosts: they share the consumer's events,
 * and the writer's compare-and-set writes keep two replicas that touch one entity from losing an
 * event. A replica takes its share of events once activated, and on deactivation stops taking
 * more, finishes its batch, and leaves the rest to the others (or to its restart).
 */
import type { ActorKind } from '../../runtime/actor/actor.js';
import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { ActorContext } from '../../runtime/actor/actor.js';
import type { Handlers } from '../../runtime/actor/protocol.js';
import type { EventsConfig } from '../../runtime/config/index.js';
import { ConfigError } from '../../runtime/errors.js';
import { openEventsStream } from '../../runtime/events/index.js';
import type { EventConsumer } from '../../runtime/events/index.js';
import { FeatureRegistry } from '../../runtime/features/definitions.js';
import type { FeatureServices } from '../../runtime/features/services.js';
import { StreamFeatureWriter } from '../../runtime/features/stream-writer.js';
import type { FeatureDefinitions } from '../../runtime/features/types.js';
import { validateGet, validateStats } from './messages.js';
import type { FeaturesProtocol, FeaturesStats, GetFeaturesReply } from './messages.js';

export const FEATURES_KIND = 'features';

export interface FeaturesKindOptions {
  /** The definitions requests are checked against (the node's own, `features.definitions`). */
  definitions: FeatureDefinitions;
  /** The events stream's retention and the writer's windows (`events` of the configuration). */
  events: EventsConfig;
  /**
   * Run the stream feature writer in this kind's replicas. Off for a replica meant only to answer
   * `get` (the writer's events are then shared by the replicas that run it). @default true
   */
  writer?: boolean;
}

export class FeaturesActor extends Actor<FeaturesProtocol> {
  private writer: StreamFeatureWriter | undefined;
  private consumer: EventConsumer | undefined;

  constructor(
    ctx: ActorContext,
    private readonly options: FeaturesKindOptions,
  ) {
    super(ctx);
  }

  private services(): FeatureServices {
    const services = this.ctx.features;
    if (services === undefined) {
      throw new ConfigError('features', 'this host was started without a feature store');
    }
    return services;
  }

  override async onActivate(): Promise<void> {
    const services = this.services();
    if (this.options.writer === false) return;
    const { events } = this.options;
    const stream = await openEventsStream(this.ctx.streams, this.ctx.prefix, events);
    const writer = new StreamFeatureWriter({
      store: services.store,
      definitions: services.registry.definitions,
      windowsMinutes: events.windowsMinutes,
      duplicateWindowMs: events.duplicateWindowMs,
      maxDeliver: events.maxDeliver,
      changes: services.changes,
      metrics: services.streamWriterMetrics(),
      log: this.ctx.log,
    });
    this.consumer = await writer.consume(stream, {
      prefix: this.ctx.prefix,
      registry: services.metricsRegistry,
      log: this.ctx.log,
      onError: (err) => this.ctx.log.error({ err }, 'stream feature writer stopped'),
    });
    this.writer = writer;
  }

  override async onDeactivate(): Promise<void> {
    await this.consumer?.stop();
    this.consumer = undefined;
    await this.writer?.close();
    this.writer = undefined;
  }

  readonly handlers: Handlers<FeaturesProtocol> = {
    get: async ({ view, entities, fields }) => {
      const { rows, degraded } = await this.services().online.read(view, entities, fields);
      const reply: GetFeaturesReply = {
        rows: rows.map((row, i) => ({
          entity: entities[i]!,
          values: { ...row.values },
          event_time_ms: Number.isNaN(row.eventTimeMs) ? null : row.eventTimeMs,
        })),
        degraded,
      };
      return reply;
    },
    stats: () => this.stats(),
  };

  override stats(): FeaturesStats {
    const writer = this.writer;
    return {
      online: this.services().online.stats(),
      writer:
        writer === undefined
          ? null
          : { ...writer.stats(), lag_seconds: writer.lagSeconds() ?? null },
    };
  }
}

export function featuresKind(options: FeaturesKindOptions): ActorKind<FeaturesProtocol> {
  const registry = new FeatureRegistry(options.definitions);
  return defineActorKind<FeaturesProtocol>({
    name: FEATURES_KIND,
    placement: 'grouped',
    description:
      'The feature store: reads of feature views over NATS, and the writer of the stream views',
    version: '0.1.0',
    validators: {
      get: (payload) => validateGet(payload, registry),
      stats: validateStats,
    },
    create: (ctx) => new FeaturesActor(ctx, options),
    // Reads only wait on the store, and the writer runs on its own consumer: handlers share no
    // half-changed state, so several reads may wait on Redis at once.
    concurrency: 16,
    // The writer is a member of the consumer group for as long as the host runs.
    passivateAfterMs: null,
    activateOnStart: true,
    defaultGroups: ['0'],
  });
}
