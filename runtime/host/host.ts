/**
 * A host process's actor runtime: it runs a chosen set of actor kinds on one transport, serves the
 * partitions placement gives it (keyed kinds) and the groups it is configured for (grouped kinds),
 * registers each kind with the NATS services protocol, passivates idle actors, and shuts down
 * gracefully: stop taking work, drain, deactivate, release leases.
 */
import type { KvStore } from '../kv/types.js';
import type { FeatureServices } from '../features/services.js';
import type { Logger } from 'pino';
import type { ActorKind } from '../actor/actor.js';
import type { Protocol } from '../actor/protocol.js';
import { ActorClient } from '../client/client.js';
import { BadRequestError } from '../errors.js';
import { RuntimeMetrics } from '../metrics.js';
import { partitionOf } from '../placement/hash.js';
import type { Placement, PartitionListener } from '../placement/types.js';
import { MicroService } from '../services/micro.js';
import { MemoryStreamStore, type StreamStore } from '../stream/index.js';
import { decodeKey, Subjects } from '../subjects.js';
import type { InboundMessage, Subscription, Transport } from '../transport/types.js';
import { encodeErrorReply } from '../wire.js';
import { Dispatcher } from './dispatcher.js';

export interface ActorHostOptions {
  hostId: string;
  transport: Transport;
  /** Kinds this host runs. */
  kinds: readonly ActorKind<Protocol>[];
  /** Placement of keyed kinds; see `LocalPlacement` and `LeasePlacement`. */
  placement: Placement;
  /** Group tokens served per grouped kind (e.g. `{ items: ['0', '1'] }`). */
  groups?: Readonly<Record<string, readonly string[]>>;
  /** @default 'recsys' */
  prefix?: string;
  /** @default 64 */
  partitions?: number;
  /** @default 1024 */
  mailboxCapacity?: number;
  /** @default 300000 */
  passivateAfterMs?: number;
  /** @default 1000 */
  defaultTimeoutMs?: number;
  /** Graceful shutdown waits at most this long for in-flight work. @default 10000 */
  drainTimeoutMs?: number;
  /** A handler that runs longer is logged as slow. @default 30000 */
  maxHandlerMs?: number;
  /** Version shown by `$SRV.INFO`. @default '0.1.0' */
  version?: string;
  log: Logger;
  metrics?: RuntimeMetrics;
  /** Client for actors to call other actors; built on the same transport when not given. */
  client?: ActorClient;
  /** Event streams handed to actors; a store of this host's own, in memory, when not given. */
  streams?: StreamStore;
  /** The feature store handed to actors; none when not given. */
  features?: FeatureServices;
  /** Key-value buckets handed to actors; none when not given. */
  kv?: KvStore;
}

interface ServedPartition {
  subscription: Subscription;
  /** Set while the partition is being handed over. */
  releasing: boolean;
}

interface KindState {
  kind: ActorKind<Protocol>;
  dispatcher: Dispatcher;
  service: MicroService;
  partitions: Map<number, ServedPartition>;
  groups: Map<string, Subscription>;
  log: Logger;
}

export type HostState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export class ActorHost implements PartitionListener {
  readonly hostId: string;
  readonly metrics: RuntimeMetrics;
  readonly client: ActorClient;
  readonly streams: StreamStore;
  readonly subjects: Subjects;
  private readonly options: Required<
    Pick<
      ActorHostOptions,
      | 'partitions'
      | 'mailboxCapacity'
      | 'passivateAfterMs'
      | 'defaultTimeoutMs'
      | 'drainTimeoutMs'
      | 'maxHandlerMs'
      | 'version'
    >
  >;
  private readonly kinds = new Map<string, KindState>();
  private readonly log: Logger;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private removeGaugeSource: (() => void) | undefined;
  private stateValue: HostState = 'new';

  constructor(private readonly config: ActorHostOptions) {
    this.hostId = config.hostId;
    this.subjects = new Subjects(config.prefix ?? 'recsys');
    this.options = {
      partitions: config.partitions ?? 64,
      mailboxCapacity: config.mailboxCapacity ?? 1024,
      passivateAfterMs: config.passivateAfterMs ?? 300_000,
      defaultTimeoutMs: config.defaultTimeoutMs ?? 1000,
      drainTimeoutMs: config.drainTimeoutMs ?? 10_000,
      maxHandlerMs: config.maxHandlerMs ?? 30_000,
      version: config.version ?? '0.1.0',
    };
    this.log = config.log.child({ host: config.hostId });
    this.metrics = config.metrics ?? new RuntimeMetrics();
    this.client =
      config.client ??
      new ActorClient({
        transport: config.transport,
        prefix: this.subjects.prefix,
        partitions: this.options.partitions,
        defaultTimeoutMs: this.options.defaultTimeoutMs,
      });
    this.streams = config.streams ?? new MemoryStreamStore();
    const seen = new Set<string>();
    for (const kind of config.kinds) {
      if (seen.has(kind.name)) throw new RangeError(`actor kind ${kind.name} is listed twice`);
      seen.add(kind.name);
      if (kind.placement === 'grouped' && this.groupsOf(kind).length === 0) {
        throw new RangeError(
          `host.groups.${kind.name} must list at least one group for grouped kind ${kind.name}`,
        );
      }
    }
  }

  get state(): HostState {
    return this.stateValue;
  }

  async start(): Promise<void> {
    if (this.stateValue !== 'new')
      throw new Error(`host ${this.hostId} cannot start from state ${this.stateValue}`);
    this.stateValue = 'starting';
    for (const kind of this.config.kinds) this.kinds.set(kind.name, this.createKindState(kind));
    await Promise.all(
      this.config.kinds.flatMap((kind) => (kind.prepare === undefined ? [] : [kind.prepare()])),
    );
    this.removeGaugeSource = this.metrics.addGaugeSource({
      kinds: () => this.kinds.keys(),
      activeActors: (k) => this.kinds.get(k)?.dispatcher.activations.size ?? 0,
      mailboxDepth: (k) => this.kinds.get(k)?.dispatcher.mailboxDepth ?? 0,
      partitionsOwned: (k) => this.kinds.get(k)?.partitions.size ?? 0,
    });
    for (const state of this.kinds.values()) {
      state.service.start();
      if (state.kind.placement === 'grouped') await this.startGroups(state);
    }
    await this.config.placement.start(this);
    const sweepEvery = Math.max(
      250,
      Math.min(30_000, Math.floor(this.options.passivateAfterMs / 2)),
    );
    this.sweepTimer = setInterval(() => void this.passivateIdle(), sweepEvery);
    this.sweepTimer.unref();
    this.stateValue = 'running';
    this.log.info(
      { kinds: [...this.kinds.keys()], transport: this.config.transport.kind },
      'host started',
    );
  }

  /**
   * Graceful shutdown: stop taking new work, let in-flight messages finish (bounded by
   * `drainTimeoutMs`), deactivate every actor, release the leases, leave the services protocol.
   */
  async stop(): Promise<void> {
    if (this.stateValue === 'stopping' || this.stateValue === 'stopped') return;
    this.stateValue = 'stopping';
    clearInterval(this.sweepTimer);
    this.log.info('host stopping');
    const groupDrains = [...this.kinds.values()].flatMap((state) =>
      [...state.groups.values()].map((sub) => sub.drain().catch(() => undefined)),
    );
    await Promise.all(groupDrains);
    await this.config.placement.stop();
    await Promise.all(
      [...this.kinds.values()].map(async (state) => {
        const left = await state.dispatcher.deactivate(() => true, this.options.drainTimeoutMs);
        if (left > 0) state.log.warn({ left }, 'actors still busy at shutdown');
        await state.service.stop();
      }),
    );
    this.removeGaugeSource?.();
    this.stateValue = 'stopped';
    this.log.info('host stopped');
  }

  /** Partitions of a keyed kind this host serves right now. */
  servedPartitions(kind: string): number[] {
    return [...(this.kinds.get(kind)?.partitions.keys() ?? [])].sort((a, b) => a - b);
  }

  /** Actor activations of a kind in memory right now. */
  activeActors(kind: string): number {
    return this.kinds.get(kind)?.dispatcher.activations.size ?? 0;
  }

  // PartitionListener: called by placement.

  acquired(kindName: string, partition: number): Promise<void> {
    const state = this.kinds.get(kindName);
    if (state === undefined || state.partitions.has(partition)) return Promise.resolve();
    const prefixLength = this.subjects.keyedPartition(kindName, partition).length - 1;
    const subscription = this.config.transport.subscribe(
      this.subjects.keyedPartition(kindName, partition),
      (msg) => this.onKeyedMessage(state, partition, prefixLength, msg),
    );
    state.partitions.set(partition, { subscription, releasing: false });
    state.log.info({ evt: 'partition_acquired', partition, at: Date.now() }, 'partition acquired');
    return Promise.resolve();
  }

  async release(kindName: string, partition: number): Promise<void> {
    const state = this.kinds.get(kindName);
    const served = state?.partitions.get(partition);
    if (state === undefined || served === undefined || served.releasing) return;
    served.releasing = true;
    // Drain, not unsubscribe: messages the client library already holds are still handled.
    await served.subscription.drain().catch(() => undefined);
    const left = await state.dispatcher.deactivate(
      (activation) => activation.partition === partition,
      this.options.drainTimeoutMs,
    );
    if (left > 0) state.log.warn({ partition, left }, 'handoff went ahead with actors still busy');
    state.partitions.delete(partition);
    state.log.info({ evt: 'partition_released', partition, at: Date.now() }, 'partition released');
  }

  lost(kindName: string, partition: number): void {
    const state = this.kinds.get(kindName);
    const served = state?.partitions.get(partition);
    if (state === undefined || served === undefined) return;
    served.subscription.unsubscribe();
    state.partitions.delete(partition);
    state.log.warn(
      { evt: 'partition_lost', partition, at: Date.now() },
      'partition lost (lease not renewed)',
    );
    // The actors' state may be stale now that another host can own them; drop them without waiting.
    void state.dispatcher.deactivate((activation) => activation.partition === partition);
  }

  private createKindState(kind: ActorKind<Protocol>): KindState {
    const log = this.log.child({ actor: kind.name });
    const grouped = kind.placement === 'grouped';
    const service = new MicroService(
      this.config.transport,
      {
        name: `${this.subjects.prefix.replaceAll('.', '_')}-${kind.name}`,
        version: kind.version,
        description: kind.description,
        metadata: {
          host: this.hostId,
          kind: kind.name,
          placement: kind.placement,
          transport: this.config.transport.kind,
          runtime_version: this.options.version,
        },
      },
      () => this.kindStats(kind.name),
    );
    const partitions = new Map<number, ServedPartition>();
    const dispatcher = new Dispatcher({
      kind,
      hostId: this.hostId,
      log,
      prefix: this.subjects.prefix,
      client: this.client,
      streams: this.streams,
      features: this.config.features,
      kv: this.config.kv,
      metrics: this.metrics,
      service,
      endpointSubject: (op) =>
        grouped
          ? `${this.subjects.prefix}.${kind.name}.*.${op}`
          : `${this.subjects.prefix}.${kind.name}.*.*.${op}`,
      // Replicas of each group share the queue group `<prefix>.<kind>.<group>`; endpoints are per
      // operation, so they name the groups served here instead of one queue group.
      endpointMetadata: grouped
        ? {
            groups: this.groupsOf(kind).join(','),
            queue_groups: `${this.subjects.prefix}.${kind.name}.<group>`,
          }
        : { partitions: String(this.options.partitions) },
      mailboxCapacity: this.options.mailboxCapacity,
      defaultTimeoutMs: this.options.defaultTimeoutMs,
      maxHandlerMs: this.options.maxHandlerMs,
      owns: (partition) => partitions.has(partition),
    });
    return { kind, dispatcher, service, partitions, groups: new Map(), log };
  }

  /**
   * Serves the configured groups. A kind that activates on start joins a group's queue group only
   * after that group's actor is active; one that fails to activate is logged and not joined, so
   * its share goes to the ready replicas.
   */
  private async startGroups(state: KindState): Promise<void> {
    const groups = this.groupsOf(state.kind);
    if (state.kind.activateOnStart !== true) {
      this.subscribeGroups(state, groups);
      return;
    }
    const ready = await Promise.all(
      groups.map(async (group) => {
        try {
          await state.dispatcher.activate(group);
          return group;
        } catch (err) {
          state.log.error({ err, group }, 'group failed to activate; not serving it');
          return undefined;
        }
      }),
    );
    this.subscribeGroups(
      state,
      ready.filter((g): g is string => g !== undefined),
    );
  }

  private subscribeGroups(state: KindState, groups: readonly string[]): void {
    const name = state.kind.name;
    for (const group of groups) {
      const subject = this.subjects.groupedAll(name, group);
      const opOffset = subject.length - 1;
      const subscription = this.config.transport.subscribe(
        subject,
        (msg) => state.dispatcher.dispatch(msg, group, undefined, msg.subject.slice(opOffset)),
        { queue: this.subjects.queueGroup(name, group) },
      );
      state.groups.set(group, subscription);
    }
  }

  private onKeyedMessage(
    state: KindState,
    partition: number,
    prefixLength: number,
    msg: InboundMessage,
  ): void {
    // The subject is `<prefix>.<kind>.<partition>.<key>.<op>`; the key token never contains a dot.
    const rest = msg.subject.slice(prefixLength);
    const dot = rest.lastIndexOf('.');
    if (dot <= 0) return;
    const refuse = (err: BadRequestError): void => {
      const reply = encodeErrorReply(err);
      msg.respond(reply.data, reply.headers);
    };
    let key: string;
    try {
      key = decodeKey(rest.slice(0, dot));
    } catch (err) {
      if (err instanceof BadRequestError) return refuse(err);
      throw err;
    }
    // A hand-built subject with the wrong partition would activate the key beside its real owner.
    const expected = partitionOf(key, this.options.partitions);
    if (expected !== partition) {
      return refuse(
        new BadRequestError(
          'subject',
          `key ${JSON.stringify(key)} belongs to partition ${expected}, not ${partition}`,
        ),
      );
    }
    state.dispatcher.dispatch(msg, key, partition, rest.slice(dot + 1));
  }

  private kindStats(kindName: string): Record<string, unknown> {
    const state = this.kinds.get(kindName);
    if (state === undefined) return {};
    return {
      host: this.hostId,
      state: this.stateValue,
      actors_active: state.dispatcher.activations.size,
      mailbox_depth: state.dispatcher.mailboxDepth,
      ...(state.kind.placement === 'keyed'
        ? { partitions_owned: state.partitions.size, partitions: this.servedPartitions(kindName) }
        : { groups: [...state.groups.keys()], actors: this.groupStats(state) }),
      ...(state.kind.stats === undefined ? {} : { kind_stats: this.kindLevelStats(state) }),
    };
  }

  private kindLevelStats(state: KindState): object {
    try {
      return state.kind.stats!();
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  }

  /** Groups served for a grouped kind: from `host.groups`, else the kind's defaults. */
  private groupsOf(kind: ActorKind<Protocol>): readonly string[] {
    return this.config.groups?.[kind.name] ?? kind.defaultGroups ?? [];
  }

  private groupStats(state: KindState): Record<string, unknown> {
    const stats: Record<string, unknown> = {};
    for (const [group, activation] of state.dispatcher.activations) {
      if (activation.state !== 'active') continue;
      try {
        stats[group] = activation.actor.stats();
      } catch (err) {
        stats[group] = { error: err instanceof Error ? err.message : String(err) };
      }
    }
    return stats;
  }

  /** Whether every configured group of every grouped kind is served (its replica is ready). */
  get ready(): boolean {
    if (this.stateValue !== 'running') return false;
    for (const state of this.kinds.values()) {
      if (state.kind.placement !== 'grouped') continue;
      if (state.groups.size < this.groupsOf(state.kind).length) return false;
    }
    return true;
  }

  private async passivateIdle(): Promise<void> {
    const now = Date.now();
    for (const state of this.kinds.values()) {
      const idleMs =
        state.kind.passivateAfterMs === undefined
          ? this.options.passivateAfterMs
          : state.kind.passivateAfterMs;
      if (idleMs === null) continue;
      await state.dispatcher.passivateIdle(idleMs, now);
    }
  }
}
