/**
 * The actor base class and the description of an actor kind. An actor instance sees one message at
 * a time; everything it needs from the runtime (logger, timers, a client for other actors, the
 * event streams, its key) arrives in its context, so a test can build one with fakes.
 */
import type { KvStore } from '../kv/types.js';
import type { FeatureServices } from '../features/services.js';
import type { Logger } from 'pino';
import type { ActorClient } from '../client/client.js';
import type { StreamStore } from '../stream/index.js';
import { assertToken } from '../subjects.js';
import type { Handlers, Protocol, Validators } from './protocol.js';
import type { ActorTimers } from './timers.js';

/** What the runtime hands to each actor activation. */
export interface ActorContext {
  readonly kind: string;
  /** The actor's key (keyed kinds) or its group token (grouped kinds). */
  readonly key: string;
  /** The partition the key hashes to; `undefined` for grouped kinds. */
  readonly partition: number | undefined;
  readonly hostId: string;
  readonly log: Logger;
  readonly timers: ActorTimers;
  /** The deployment's subject prefix (`deployment.prefix`): an actor's own subjects go under it. */
  readonly prefix: string;
  /** For calling other actors; the same client outside services use. */
  readonly client: ActorClient;
  /**
   * The event streams (JetStream, or memory in embedded mode), to publish and read events. A
   * reader an actor starts is its own to stop, in `onDeactivate` at the latest.
   */
  readonly streams: StreamStore;
  /**
   * The feature store: definitions, the online store, cached reads and change notices. Given by
   * every node (`startNode`); absent only on a bare host built without it (runtime tests).
   */
  readonly features?: FeatureServices;
  /**
   * Key-value buckets (NATS KV, or memory in embedded mode): live configuration an actor watches,
   * such as which model version serves. Absent only on a bare host built without it.
   */
  readonly kv?: KvStore;
}

export abstract class Actor<P extends Protocol = Protocol> {
  constructor(protected readonly ctx: ActorContext) {}

  /** One handler per operation of the protocol. */
  abstract readonly handlers: Handlers<P>;

  /** Runs before the first message of an activation. */
  onActivate(): void | Promise<void> {}

  /** Runs before the activation goes (idle passivation, handoff, shutdown): write state behind here. */
  onDeactivate(): void | Promise<void> {}

  /**
   * Figures about this instance for `$SRV.STATS` (vectors held, model version, ...). Read between
   * messages on the host's event loop, so it must be cheap and must not change state. Shown per
   * group for grouped kinds; keyed kinds have too many instances to list.
   */
  stats(): object {
    return {};
  }
}

/**
 * `keyed`: one instance per key, keys hash into partitions, each partition owned by one host.
 * `grouped`: one instance per group token on each host serving it (an item shard, a model version);
 * replicas of a group share a NATS queue group.
 */
export type Placement = 'keyed' | 'grouped';

export interface ActorKind<P extends Protocol = Protocol> {
  /** The kind's name, also its subject token and its service name (`recsys-<name>`). */
  readonly name: string;
  readonly placement: Placement;
  readonly description: string;
  /** Semantic version of the protocol, shown by `$SRV.INFO`. */
  readonly version: string;
  /** One validator per operation; it throws `BadRequestError` naming the field. */
  readonly validators: Validators<P>;
  create(ctx: ActorContext): Actor<P>;
  /**
   * Messages one instance may run at once. Keep 1 (the actor model) unless the actor only hands
   * work to a worker pool and keeps no state a second message could see half-changed.
   * @default 1
   */
  readonly concurrency?: number;
  /** Idle time before passivation; `null` never passivates. @default runtime.passivate_after_ms */
  readonly passivateAfterMs?: number | null;
  /**
   * Grouped kinds only: activate every served group when the host starts, and join the group's
   * queue group only once `onActivate` has succeeded, so a replica takes traffic only when ready
   * (an index open, a model loaded). @default false
   */
  readonly activateOnStart?: boolean;
  /** Grouped kinds only: the groups a host serves when `host.groups` does not name this kind. */
  readonly defaultGroups?: readonly string[];
  /**
   * Work done once per host before the kind takes any message (loading what all its actors
   * share, such as a model): the host starts serving the kind, and says it is ready, only after
   * it. Without it, the first messages would wait for that work, or time out behind it.
   */
  readonly prepare?: () => Promise<void>;
  /**
   * Figures of the kind as a whole (totals over its instances: a keyed kind has too many to list
   * one by one), shown by `$SRV.STATS` as `kind_stats`. Read on the host's event loop: cheap, and
   * changing nothing.
   */
  readonly stats?: () => object;
}

/** Checks a kind's definition once, at registration, so a typo fails at start-up. */
export function defineActorKind<P extends Protocol>(kind: ActorKind<P>): ActorKind<P> {
  assertToken('kind', kind.name);
  for (const op of Object.keys(kind.validators)) assertToken('op', op);
  if (
    kind.concurrency !== undefined &&
    (!Number.isInteger(kind.concurrency) || kind.concurrency < 1)
  ) {
    throw new RangeError(`${kind.name}: concurrency must be a positive integer`);
  }
  return kind;
}
