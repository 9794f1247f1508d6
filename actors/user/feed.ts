/**
 * The `user-feed` actor: brings feedback that other services publish straight to the events
 * stream to the users' sessions. One instance per host (group `0`, started with the host), each a
 * reader of one durable consumer over every user's feedback subjects; the durable shares the
 * events between the hosts, so each event is forwarded once (and again only after a failure: the
 * session drops an event it has applied). Each event goes to its user's actor as `observe`, the
 * events of one user in a batch together, and the batch is acknowledged once every user's actor
 * has answered. A malformed event goes to the dead letters (`<prefix>.events.dead.user-feed`);
 * one whose user's actor keeps failing is retried, alone, up to `events.max_deliver` times.
 *
 * Events older than the replay window (`recommend.replay_hours`) are acknowledged without being
 * forwarded: a session would not replay them either, and a durable created on a long stream would
 * otherwise wake every user who ever clicked.
 *
 *   nats req recsys.user-feed.0.stats '{}'
 */
import type { ActorContext, ActorKind } from '../../runtime/actor/actor.js';
import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { Handlers } from '../../runtime/actor/protocol.js';
import type { EventsConfig } from '../../runtime/config/schema.js';
import {
  EventKind,
  consumeEvents,
  eventFilter,
  openEventsStream,
  parseFeedbackEvent,
} from '../../runtime/events/index.js';
import type { EventBatchEntry, EventConsumer, FeedbackEvent } from '../../runtime/events/index.js';
import { BadRequestError } from '../../runtime/errors.js';
import { USER_KIND } from './messages.js';
import type { UserProtocol } from './messages.js';

export const USER_FEED_KIND = 'user-feed';
/** The durable consumer the feed's readers share. */
export const USER_FEED_DURABLE = 'user-feed';

export interface UserFeedStats {
  /** Events forwarded to user actors (and acknowledged). */
  forwarded: number;
  /** Events older than the replay window, acknowledged without forwarding. */
  stale: number;
  /** Batches whose forwarding failed (their events come again). */
  failed_batches: number;
  /** Whether this replica's reader is running. */
  consuming: boolean;
}

export type UserFeedProtocol = {
  stats: { request: Record<string, never>; reply: UserFeedStats };
};

export interface UserFeedKindOptions {
  /** The `events` section: the stream's retention and `max_deliver`. */
  events: EventsConfig;
  /** Events older than this (by the time the stream stored them) are not forwarded. */
  replayMs: number;
  /** Time each forward may take, activation of the user's actor included. @default 10000 */
  forwardTimeoutMs?: number;
  /** The clock (epoch ms). @default Date.now */
  now?: () => number;
}

export class UserFeedActor extends Actor<UserFeedProtocol> {
  private consumer: EventConsumer | undefined;
  /** Rejects once the replica stops: forwards still waiting give up, and their batch comes again. */
  private stop: (err: Error) => void = () => undefined;
  private readonly stopping = new Promise<never>((_, reject) => {
    this.stop = reject;
  });
  private readonly tally = { forwarded: 0, stale: 0, failed_batches: 0 };

  constructor(
    ctx: ActorContext,
    private readonly options: UserFeedKindOptions,
  ) {
    super(ctx);
  }

  override async onActivate(): Promise<void> {
    const { events } = this.options;
    const stream = await openEventsStream(this.ctx.streams, this.ctx.prefix, events);
    this.consumer = await consumeEvents<FeedbackEvent>(stream, {
      durable: USER_FEED_DURABLE,
      filter: eventFilter(this.ctx.prefix, EventKind.Feedback),
      prefix: this.ctx.prefix,
      parse: (data) => parseFeedbackEvent(data),
      handle: (batch) => this.forward(batch),
      maxDeliver: events.maxDeliver,
      ...(this.ctx.features === undefined ? {} : { registry: this.ctx.features.metricsRegistry }),
      log: this.ctx.log,
      onError: (err) =>
        this.ctx.log.error({ err }, 'user feed stopped: sessions get no stream events'),
    });
  }

  override async onDeactivate(): Promise<void> {
    this.stopping.catch(() => undefined);
    this.stop(new Error('the user feed is stopping'));
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  readonly handlers: Handlers<UserFeedProtocol> = {
    stats: () => this.stats(),
  };

  override stats(): UserFeedStats {
    return { ...this.tally, consuming: this.consumer !== undefined };
  }

  private async forward(batch: readonly EventBatchEntry<FeedbackEvent>[]): Promise<void> {
    const now = (this.options.now ?? Date.now)();
    const oldest = now - this.options.replayMs;
    const byUser = new Map<string, FeedbackEvent[]>();
    let stale = 0;
    for (const { event, message } of batch) {
      if (message.timeMs < oldest) {
        stale++;
        continue;
      }
      const list = byUser.get(event.user_id);
      if (list === undefined) byUser.set(event.user_id, [event]);
      else list.push(event);
    }
    const users = this.ctx.client.keyed<UserProtocol>(USER_KIND);
    const timeoutMs = this.options.forwardTimeoutMs ?? 10_000;
    const outcomes = await Promise.allSettled(
      [...byUser].map(([user, events]) =>
        Promise.race([users.ask(user, 'observe', { events }, { timeoutMs }), this.stopping]),
      ),
    );
    const failed = outcomes.find(
      (o): o is PromiseRejectedResult =>
        o.status === 'rejected' && !(o.reason instanceof BadRequestError),
    );
    if (failed !== undefined) {
      this.tally.failed_batches++;
      throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    }
    this.tally.stale += stale;
    this.tally.forwarded += batch.length - stale;
  }
}

export function userFeedKind(options: UserFeedKindOptions): ActorKind<UserFeedProtocol> {
  return defineActorKind<UserFeedProtocol>({
    name: USER_FEED_KIND,
    placement: 'grouped',
    description: "Forwards the events stream's feedback to the users' sessions",
    version: '0.1.0',
    validators: {
      stats: (payload) => {
        if (
          payload !== undefined &&
          (typeof payload !== 'object' || payload === null || Object.keys(payload).length > 0)
        ) {
          throw new BadRequestError('request', 'must be an empty object');
        }
        return {};
      },
    },
    create: (ctx) => new UserFeedActor(ctx, options),
    concurrency: 4,
    passivateAfterMs: null,
    activateOnStart: true,
    defaultGroups: ['0'],
  });
}
