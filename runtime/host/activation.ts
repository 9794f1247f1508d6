/**
 * One actor instance in memory with its mailbox and timers. Activation runs `onActivate` as the
 * first task of the mailbox; deactivation runs `onDeactivate` as the last, so neither interleaves
 * with a message. Messages that were queued behind a deactivation find the activation closed and
 * are handed back to the dispatcher, which starts a fresh activation for them.
 */
import type { Actor, ActorContext, ActorKind } from '../actor/actor.js';
import { Mailbox } from '../actor/mailbox.js';
import { ActorTimers } from '../actor/timers.js';
import type { Protocol } from '../actor/protocol.js';

export type ActivationState = 'new' | 'active' | 'closed';

export class Activation {
  readonly mailbox: Mailbox;
  readonly timers: ActorTimers;
  readonly actor: Actor<Protocol>;
  readonly key: string;
  readonly partition: number | undefined;
  state: ActivationState = 'new';
  /** Epoch ms of the last message posted; timer ticks do not count (they must not keep it alive). */
  lastActive: number;
  private activating: Promise<void> | undefined;
  private deactivating: Promise<void> | undefined;

  constructor(
    kind: ActorKind<Protocol>,
    context: Omit<ActorContext, 'timers'>,
    mailboxCapacity: number,
  ) {
    this.key = context.key;
    this.partition = context.partition;
    this.mailbox = new Mailbox({ capacity: mailboxCapacity, concurrency: kind.concurrency ?? 1 });
    this.timers = new ActorTimers((task) => {
      this.mailbox.postSystem(async () => {
        if (this.state === 'active') await task();
      });
    });
    this.actor = kind.create({ ...context, timers: this.timers });
    this.lastActive = Date.now();
  }

  /** Runs `onActivate` once; every message task awaits it first. A failure closes the activation. */
  ensureActive(): Promise<void> {
    if (this.state === 'active') return Promise.resolve();
    this.activating ??= (async () => {
      try {
        await this.actor.onActivate();
        if (this.state === 'new') this.state = 'active';
      } catch (err) {
        this.state = 'closed';
        this.timers.cancelAll();
        throw err;
      }
    })();
    return this.activating;
  }

  /**
   * Queues deactivation behind the messages already posted; resolves when `onDeactivate` has run.
   * Idempotent.
   */
  deactivate(): Promise<void> {
    this.deactivating ??= new Promise<void>((resolve, reject) => {
      this.mailbox.postSystem(async () => {
        const wasActive = this.state === 'active';
        this.state = 'closed';
        this.timers.cancelAll();
        try {
          if (wasActive) await this.actor.onDeactivate();
          resolve();
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    return this.deactivating;
  }
}
