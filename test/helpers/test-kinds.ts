/**
 * Actor kinds used by the runtime's own tests: a keyed counter with state written behind on
 * deactivation, and a grouped echo. They exercise everything a real kind does (validation,
 * activation, timers, passivation, errors) without any model or index behind them.
 */
import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { ActorContext } from '../../runtime/actor/actor.js';
import type { Handlers } from '../../runtime/actor/protocol.js';
import { BadRequestError } from '../../runtime/errors.js';

export type CounterProtocol = {
  add: { request: { amount: number }; reply: { total: number; host: string } };
  get: {
    request: Record<string, never>;
    reply: { total: number; host: string; activations: number };
  };
  slow: { request: { ms: number }; reply: { done: true } };
  fail: { request: { message: string }; reply: never };
  tick: { request: { everyMs: number }; reply: { ticking: true } };
};

export type EchoProtocol = {
  echo: { request: { text: string }; reply: { text: string; host: string; group: string } };
  sum: { request: { vector: Float32Array }; reply: { sum: number; vector: Float32Array } };
};

/** Where counters write their state behind; a Map in one process, NATS KV across processes. */
export interface CounterStore {
  load(key: string): Promise<{ total: number; activations: number } | undefined>;
  save(key: string, value: { total: number; activations: number }): Promise<void>;
}

export function memoryCounterStore(): CounterStore & {
  data: Map<string, { total: number; activations: number }>;
} {
  const data = new Map<string, { total: number; activations: number }>();
  return {
    data,
    load: (key) => Promise.resolve(data.get(key)),
    save: (key, value) => {
      data.set(key, value);
      return Promise.resolve();
    },
  };
}

function object(payload: unknown): Record<string, unknown> {
  if (payload === undefined) return {};
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new BadRequestError('payload', 'must be a JSON object');
  }
  return payload as Record<string, unknown>;
}

function finiteNumber(payload: unknown, field: string): number {
  const value = object(payload)[field];
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new BadRequestError(field, 'must be a finite number');
  return value;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface CounterHooks {
  activated?(key: string): void;
  deactivated?(key: string, total: number): void;
  ticked?(key: string): void;
  slow?(key: string, phase: 'start' | 'end'): void;
}

class CounterActor extends Actor<CounterProtocol> {
  private total = 0;
  private activations = 0;

  constructor(
    ctx: ActorContext,
    private readonly store: CounterStore,
    private readonly hooks: CounterHooks,
  ) {
    super(ctx);
  }

  override async onActivate(): Promise<void> {
    const saved = await this.store.load(this.ctx.key);
    this.total = saved?.total ?? 0;
    this.activations = (saved?.activations ?? 0) + 1;
    this.hooks.activated?.(this.ctx.key);
  }

  override async onDeactivate(): Promise<void> {
    await this.store.save(this.ctx.key, { total: this.total, activations: this.activations });
    this.hooks.deactivated?.(this.ctx.key, this.total);
  }

  readonly handlers: Handlers<CounterProtocol> = {
    add: ({ amount }) => {
      this.total += amount;
      return { total: this.total, host: this.ctx.hostId };
    },
    get: () => ({ total: this.total, host: this.ctx.hostId, activations: this.activations }),
    slow: async ({ ms }) => {
      this.hooks.slow?.(this.ctx.key, 'start');
      await sleep(ms);
      this.hooks.slow?.(this.ctx.key, 'end');
      return { done: true };
    },
    fail: ({ message }) => {
      throw new Error(message);
    },
    tick: ({ everyMs }) => {
      this.ctx.timers.start('tick', everyMs, () => this.hooks.ticked?.(this.ctx.key), {
        repeat: true,
      });
      return { ticking: true };
    },
  };
}

export function counterKind(store: CounterStore = memoryCounterStore(), hooks: CounterHooks = {}) {
  return defineActorKind<CounterProtocol>({
    name: 'counter',
    placement: 'keyed',
    description: 'A test counter keyed by name',
    version: '1.0.0',
    validators: {
      add: (p) => ({ amount: finiteNumber(p, 'amount') }),
      get: (p) => (object(p), {}),
      slow: (p) => ({ ms: finiteNumber(p, 'ms') }),
      fail: (p) => {
        const message = object(p)['message'];
        return { message: typeof message === 'string' ? message : 'failed' };
      },
      tick: (p) => ({ everyMs: finiteNumber(p, 'everyMs') }),
    },
    create: (ctx) => new CounterActor(ctx, store, hooks),
  });
}

class EchoActor extends Actor<EchoProtocol> {
  private echoed = 0;

  constructor(
    ctx: ActorContext,
    private readonly activation: EchoActivation,
  ) {
    super(ctx);
  }

  override async onActivate(): Promise<void> {
    if (this.activation.delayMs !== undefined) await sleep(this.activation.delayMs);
    if (this.activation.failGroups?.includes(this.ctx.key) === true) {
      throw new Error(`group ${this.ctx.key} cannot start`);
    }
  }

  override stats(): { echoed: number } {
    return { echoed: this.echoed };
  }

  readonly handlers: Handlers<EchoProtocol> = {
    echo: ({ text }) => {
      this.echoed++;
      return { text, host: this.ctx.hostId, group: this.ctx.key };
    },
    sum: ({ vector }) => ({ sum: vector.reduce((a, b) => a + b, 0), vector }),
  };
}

/** How echo actors start: slowly, failing for some groups, eagerly at host start. */
export interface EchoActivation {
  delayMs?: number;
  failGroups?: readonly string[];
  activateOnStart?: boolean;
  defaultGroups?: readonly string[];
  /** The kind's `prepare`. */
  prepare?: () => Promise<void>;
}

export function echoKind(activation: EchoActivation = {}) {
  return defineActorKind<EchoProtocol>({
    name: 'echo',
    placement: 'grouped',
    description: 'A test echo served by groups of replicas',
    version: '1.0.0',
    validators: {
      echo: (p) => {
        const text = object(p)['text'];
        if (typeof text !== 'string') throw new BadRequestError('text', 'must be a string');
        return { text };
      },
      sum: (p) => {
        const vector = object(p)['vector'];
        if (!(vector instanceof Float32Array))
          throw new BadRequestError('vector', 'must be a Float32Array');
        return { vector };
      },
    },
    create: (ctx) => new EchoActor(ctx, activation),
    ...(activation.activateOnStart === undefined
      ? {}
      : { activateOnStart: activation.activateOnStart }),
    ...(activation.defaultGroups === undefined ? {} : { defaultGroups: activation.defaultGroups }),
    ...(activation.prepare === undefined ? {} : { prepare: activation.prepare }),
  });
}
