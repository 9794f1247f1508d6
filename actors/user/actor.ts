/**
 * The `user` actor: one instance per user id, keeping the user's live session and answering
 * `recommend` with the whole flow, under the request's deadline:
 *
 *   variant → user embedding (user tower: id, profile, batch history + session) → search of every
 *   item shard at once (seen, served and excluded items left out) → the variant's ranker → the top
 *   `count`, with categories → served items remembered, an impression published.
 *
 * Each stage has a budget within the deadline, and a fallback: retrieval failed or late (tower, or
 * every shard) → the popular items; some shards missing → candidates of the others; ranker failed
 * or late → the retrieval order. The reply says what degraded, so the caller always gets an answer
 * in time.
 *
 * On activation (first message, or after a restart or a partition move) the session is rebuilt by
 * replaying the user's feedback and impressions of the last `recommend.replay_hours` from the
 * events stream, up to the last event stored at that moment. Later events arrive by `observe`
 * (from the gateway, and from the `user-feed` consumer for events other services publish).
 */
import type { Logger } from 'pino';
import type { ActorContext, ActorKind } from '../../runtime/actor/actor.js';
import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { Handlers, RequestMeta } from '../../runtime/actor/protocol.js';
import type { ActorClient } from '../../runtime/client/client.js';
import { Unreachable } from '../../runtime/client/unreachable.js';
import type { EventsConfig, RecommendConfig } from '../../runtime/config/schema.js';
import { BadRequestError, TimeoutError } from '../../runtime/errors.js';
import {
  feedbackSubject,
  impressionSubject,
  openEventsStream,
  parseFeedbackEvent,
  parseImpressionEvent,
  publishImpression,
} from '../../runtime/events/index.js';
import type { FeedbackEvent, ImpressionEvent } from '../../runtime/events/index.js';
import type { FeatureViewReader, OnlineFeatures } from '../../runtime/features/index.js';
import type { EventStream, StreamMessage, StreamStore } from '../../runtime/stream/index.js';
import { silentLogger } from '../../runtime/log.js';
import { within } from '../../runtime/timeouts.js';
import { ShardScatter } from '../item-shard/scatter.js';
import { MAX_CANDIDATES } from '../ranker/messages.js';
import type { RankerProtocol } from '../ranker/messages.js';
import { RANK_KIND } from '../ranker/actor.js';
import {
  Degraded,
  USER_KIND,
  validateObserve,
  validateRecommend,
  validateState,
} from './messages.js';
import type {
  ObserveReply,
  ObserveRequest,
  RecommendReply,
  RecommendRequest,
  RecommendedItem,
  SessionState,
  UserProtocol,
} from './messages.js';
import { Stage, UserTally, userMetrics } from './metrics.js';
import type { UserMetrics } from './metrics.js';
import { UserModel } from './model.js';
import { Session } from './session.js';
import { chooseVariant } from './variant.js';

export interface UserKindOptions {
  /** The retrieval model folder whose user tower serves: the one the item index was built from. */
  modelDir: string;
  /** Shards of the item index. */
  shards: number;
  /** The `recommend` section of the configuration. */
  recommend: RecommendConfig;
  /** The `events` section: the stream's retention and the session windows. */
  events: EventsConfig;
  /** Items the tower pools when the model's manifest cannot say (`retrieval.history_length`). */
  historyLength: number;
  /** Where the model's loading is logged. @default silent */
  log?: Logger;
  /** The clock (epoch ms). @default Date.now */
  now?: () => number;
}

/** Most time a replay at activation may take before the actor serves with what it read. */
const REPLAY_TIMEOUT_MS = 5000;
/** Most time kept back from the deadline for the reply to travel. */
const REPLY_MARGIN_MS = 10;
/** A ranker given less time than this is not asked: it could not answer anyway. */
const MIN_RANKING_MS = 2;
/**
 * The view the stream writer keeps of a user's session (counts, session categories), which the
 * ranker reads. `observe` waits up to {@link SESSION_VIEW_WAIT_MS} for it to hold the events it
 * applied, so the next recommendation's ranking sees them too, not only its retrieval.
 */
const SESSION_VIEW = 'user_realtime';
const SESSION_VIEW_WAIT_MS = 50;
const SESSION_VIEW_POLL_MS = 2;
/** After a ranker slot had no responders, it is not asked again for this long. */
const RANKER_PROBE_MS = 1000;
const HOUR_MS = 3_600_000;

/** What every user actor of one kind instance (one host) shares. */
interface Shared {
  readonly options: UserKindOptions;
  readonly now: () => number;
  readonly tally: UserTally;
  model(): Promise<UserModel>;
  loaded(): UserModel | undefined;
  stream(streams: StreamStore, prefix: string): Promise<EventStream>;
  readers(online: OnlineFeatures): Readers;
  /** Ranker slots that had no responders lately: not asked for a while. */
  readonly rankersDown: Unreachable<string>;
  /** The shard scatter of a client: one per host, so a shard found down is left out by all. */
  scatter(client: ActorClient): ShardScatter;
}

interface Readers {
  readonly profile: FeatureViewReader;
  readonly category: FeatureViewReader;
  /** The user's stream-written session view, when the definitions have one. */
  readonly realtime: FeatureViewReader | undefined;
}

/** Rejects with `TimeoutError` at `deadline` (epoch ms) unless `promise` settles first. */
function before<T>(promise: Promise<T>, deadline: number, now: () => number): Promise<T> {
  return within(promise, deadline - now(), () => new TimeoutError('late'));
}

export class UserActor extends Actor<UserProtocol> {
  private model!: UserModel;
  private session!: Session;
  private stream: EventStream | undefined;
  private replayed = 0;
  private activeSince = 0;
  private readonly scatter: ShardScatter;
  private readonly metrics: UserMetrics | undefined;

  constructor(
    ctx: ActorContext,
    private readonly shared: Shared,
  ) {
    super(ctx);
    this.scatter = shared.scatter(ctx.client);
    const registry = ctx.features?.metricsRegistry;
    this.metrics = registry === undefined ? undefined : userMetrics(registry);
  }

  private get config(): RecommendConfig {
    return this.shared.options.recommend;
  }

  override async onActivate(): Promise<void> {
    const now = this.shared.now;
    this.activeSince = now();
    this.model = await this.shared.model();
    const { recommend, events } = this.shared.options;
    this.session = new Session({
      windowsMinutes: events.windowsMinutes,
      servedTtlMs: recommend.servedTtlMinutes * 60_000,
      maxItems: recommend.maxSessionItems,
      historyLength: this.model.historyLength,
    });
    this.stream = await this.shared.stream(this.ctx.streams, this.ctx.prefix);
    await this.replay(this.stream);
  }

  readonly handlers: Handlers<UserProtocol> = {
    recommend: (request, meta) => this.recommend(request, meta),
    observe: (request, meta) => this.observe(request, meta),
    state: () => this.state(),
  };

  // ---------------------------------------------------------------------------------------------
  // Replay
  // ---------------------------------------------------------------------------------------------

  /** Rebuilds the session from the user's events of the replay window. */
  private async replay(stream: EventStream): Promise<void> {
    const spanMs = this.config.replayHours * HOUR_MS;
    if (spanMs === 0) return;
    const { prefix, key } = this.ctx;
    const partitions = this.ctx.client.partitions;
    const feedback = feedbackSubject(prefix, partitions, key);
    const impressions = impressionSubject(prefix, partitions, key);
    const [lastFeedback, lastImpression] = await Promise.all([
      stream.lastSeqOf(feedback),
      stream.lastSeqOf(impressions),
    ]);
    if (lastFeedback === 0 && lastImpression === 0) return;
    const from = await stream.seqAtTime(Math.max(0, this.shared.now() - spanMs));
    const events: FeedbackEvent[] = [];
    const shown: ImpressionEvent[] = [];
    await Promise.all([
      lastFeedback >= from
        ? this.readUntil(stream, feedback, from, lastFeedback, (m) =>
            events.push(parseFeedbackEvent(m.data)),
          )
        : undefined,
      lastImpression >= from
        ? this.readUntil(stream, impressions, from, lastImpression, (m) =>
            shown.push(parseImpressionEvent(m.data)),
          )
        : undefined,
    ]);
    const now = this.shared.now();
    for (const impression of shown) this.session.markServed(impression.items, impression.ts_ms);
    const categories = await this.categoriesOf(
      events.map((e) => e.item_id),
      now + REPLAY_TIMEOUT_MS,
    );
    for (const event of events) {
      if (this.session.apply({ ...event, category: categories.get(event.item_id) ?? '' }, now)) {
        this.replayed++;
      }
    }
    this.ctx.log.debug({ events: this.replayed, impressions: shown.length }, 'session replayed');
  }

  /** Reads `subject` from `from` until sequence `last` has been read, then stops the reader. */
  private async readUntil(
    stream: EventStream,
    subject: string,
    from: number,
    last: number,
    take: (message: StreamMessage) => void,
  ): Promise<void> {
    let done: () => void = () => undefined;
    const caughtUp = new Promise<void>((resolve) => (done = resolve));
    let malformed = 0;
    let reached = false;
    const reader = await stream.read(
      subject,
      from,
      (message) => {
        try {
          take(message);
        } catch {
          // Malformed events are the consumers' to dead-letter; a replay passes them over.
          malformed++;
        }
        if (message.seq >= last) {
          reached = true;
          done();
        }
      },
      {
        onError: (err) => {
          this.ctx.log.error({ err, subject }, 'session replay stopped early');
          done();
        },
      },
    );
    const timer = setTimeout(done, REPLAY_TIMEOUT_MS);
    await caughtUp;
    clearTimeout(timer);
    await reader.stop();
    if (!reached) this.ctx.log.warn({ subject, last }, 'session replay incomplete (timed out)');
    if (malformed > 0) this.ctx.log.warn({ subject, malformed }, 'malformed events not replayed');
  }

  // ---------------------------------------------------------------------------------------------
  // observe and state
  // ---------------------------------------------------------------------------------------------

  private async observe(request: ObserveRequest, meta: RequestMeta): Promise<ObserveReply> {
    const { events } = request;
    events.forEach((event, i) => {
      if (event.user_id !== this.ctx.key) {
        throw new BadRequestError(
          `events[${i}].user_id`,
          `must be this actor's user ${JSON.stringify(this.ctx.key)}`,
        );
      }
    });
    const fresh = events.filter((e) => !this.session.has(e.event_id));
    const categories = await this.categoriesOf(
      fresh.map((e) => e.item_id),
      meta.deadline - REPLY_MARGIN_MS,
    );
    const now = this.shared.now();
    let applied = 0;
    for (const event of events) {
      const category = categories.get(event.item_id) ?? '';
      if (this.session.apply({ ...event, category }, now)) applied++;
    }
    const duplicates = events.length - applied;
    if (applied > 0) {
      const newest = Math.max(...events.map((e) => e.ts_ms));
      const wait = Math.min(
        meta.deadline - REPLY_MARGIN_MS,
        this.shared.now() + SESSION_VIEW_WAIT_MS,
      );
      const waitStarted = performance.now();
      const held = await this.sessionViewHolds(newest, wait);
      this.metrics?.sessionViewWait.observe((performance.now() - waitStarted) / 1000);
      if (!held) this.metrics?.sessionViewLate.inc();
    }
    this.shared.tally.observed += applied;
    this.shared.tally.duplicates += duplicates;
    this.metrics?.feedback.inc({ outcome: 'applied' }, applied);
    this.metrics?.feedback.inc({ outcome: 'duplicate' }, duplicates);
    return { applied, duplicates };
  }

  /**
   * Waits until the session view the ranker reads holds the user's events up to `eventTimeMs`
   * (the stream writer applies them a moment after they are stored), or until `until`: read-your-
   * writes for the ranking stage as well as for retrieval, which reads the in-memory session.
   * Returns whether it does; late is not an error (the view catches up, the stream has the events).
   */
  private async sessionViewHolds(eventTimeMs: number, until: number): Promise<boolean> {
    const online = this.ctx.features?.online;
    const reader = online === undefined ? undefined : this.shared.readers(online).realtime;
    if (reader === undefined) return true;
    for (;;) {
      try {
        const read = await before(reader.read([this.ctx.key]), until, this.shared.now);
        const held = read.rows[0]?.eventTimeMs ?? Number.NaN;
        if (held >= eventTimeMs) return true;
      } catch {
        return false;
      }
      if (this.shared.now() + SESSION_VIEW_POLL_MS >= until) return false;
      await new Promise((resolve) => setTimeout(resolve, SESSION_VIEW_POLL_MS));
    }
  }

  private async state(): Promise<SessionState> {
    const now = this.shared.now();
    await this.loadBatchHistory(now + 1000);
    const { seen, served } = this.session.counts(now);
    return {
      user_id: this.ctx.key,
      known_user: this.model.userIndex(this.ctx.key) >= 0,
      events: this.session.events,
      replayed: this.replayed,
      windows: this.session.windows(now),
      categories: this.session.categories(now),
      history: this.session.history(),
      seen,
      served,
      active_since_ms: this.activeSince,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // recommend
  // ---------------------------------------------------------------------------------------------

  private async recommend(request: RecommendRequest, meta: RequestMeta): Promise<RecommendReply> {
    const started = performance.now();
    const clock = this.shared.now;
    const startMs = clock();
    const now = request.now_ms ?? startMs;
    const budget = meta.deadline - startMs;
    // The reply must reach the caller before its deadline: keep some back for the way home and
    // for timers that fire late on a busy event loop.
    const end = meta.deadline - Math.min(REPLY_MARGIN_MS, Math.max(1, budget * 0.2));
    const count = request.count ?? this.config.defaultCount;
    const variant = chooseVariant(this.ctx.key, this.config);
    const degraded = new Set<Degraded>();
    const models: RecommendReply['models'] = {};
    const retrievalEnd = Math.min(startMs + this.config.retrievalTimeoutMs, end);

    const profileRead = await this.loadBatchHistory(retrievalEnd);
    if (profileRead.degraded) degraded.add(Degraded.FeaturesMissing);
    const excluded = this.session.excluded(startMs);
    for (const item of request.exclude ?? []) excluded.add(item);
    const userIndex = this.model.userIndex(this.ctx.key);
    const coldStart = userIndex < 0 && !this.session.hasBatchHistory;

    // Retrieval: the user embedding, then every shard at once.
    let candidates: { item_id: string; score: number }[] | undefined;
    const k = Math.max(this.config.candidates, count);
    try {
      const vector = await before(
        this.model.encode({
          userIndex,
          profile: profileRead.profile,
          history: this.model.historyIndices(this.session.history()),
        }),
        retrievalEnd,
        clock,
      );
      models.retrieval = this.model.version;
      const found = await this.scatter.search(
        {
          vector,
          k,
          ...(excluded.size === 0 ? {} : { exclude: [...excluded] }),
          ...(request.categories === undefined ? {} : { categories: request.categories }),
        },
        { deadline: retrievalEnd, requestId: meta.requestId },
      );
      if (found.missing_shards.length > 0) degraded.add(Degraded.ShardsMissing);
      if (found.missing_shards.length < this.shared.options.shards) {
        candidates = found.item_ids
          .map((item_id, i) => ({ item_id, score: found.scores[i]! }))
          .filter((c) => !excluded.has(c.item_id));
      }
    } catch (err) {
      meta.log.debug({ err }, 'retrieval failed: popular items serve');
    }
    const retrievalMs = performance.now() - started;

    let items: RecommendedItem[];
    let rankingMs = 0;
    if (candidates === undefined) {
      degraded.add(Degraded.PopularFallback);
      delete models.retrieval;
      items = await this.popular(excluded, request.categories, count, end);
    } else {
      const rankingStarted = performance.now();
      const ranked =
        candidates.length === 0
          ? undefined
          : await this.rank(variant.rankerSlot, candidates, count, now, end, meta, degraded);
      rankingMs = performance.now() - rankingStarted;
      if (ranked !== undefined) models.ranker = ranked.version;
      const retrievalScores = new Map(candidates.map((c) => [c.item_id, c.score]));
      const top = (ranked?.items ?? candidates).slice(0, count);
      const categories = await this.categoriesOf(
        top.map((c) => c.item_id),
        end,
      );
      items = top.map((c) => ({
        item_id: c.item_id,
        score: c.score,
        retrieval_score: retrievalScores.get(c.item_id)!,
        category: categories.get(c.item_id) ?? '',
      }));
    }

    const reasons = [...degraded];
    const totalMs = performance.now() - started;
    const reply: RecommendReply = {
      request_id: meta.requestId,
      user_id: this.ctx.key,
      items,
      variant: variant.name,
      models,
      degraded: reasons,
      timings_ms: { retrieval: retrievalMs, ranking: rankingMs, total: totalMs },
      cold_start: coldStart,
    };
    this.served(reply, startMs, meta);
    this.shared.tally.recommended(totalMs, reasons, coldStart);
    if (this.metrics !== undefined) {
      const m = this.metrics;
      m.stageSeconds.observe({ stage: Stage.Retrieval }, retrievalMs / 1000);
      if (candidates !== undefined)
        m.stageSeconds.observe({ stage: Stage.Ranking }, rankingMs / 1000);
      m.stageSeconds.observe({ stage: Stage.Total }, totalMs / 1000);
      m.recommendations.inc({ outcome: reasons.length === 0 ? 'full' : 'degraded' });
      for (const reason of reasons) m.degraded.inc({ reason });
    }
    return reply;
  }

  /** Scores the candidates with the variant's ranker; undefined (and why, in `degraded`) if not. */
  private async rank(
    slot: string,
    candidates: readonly { item_id: string; score: number }[],
    count: number,
    now: number,
    end: number,
    meta: RequestMeta,
    degraded: Set<Degraded>,
  ): Promise<{ items: { item_id: string; score: number }[]; version: string } | undefined> {
    const clock = this.shared.now;
    const deadline = Math.min(clock() + this.config.rankingTimeoutMs, end);
    if (deadline - clock() < MIN_RANKING_MS || this.shared.rankersDown.has(slot)) {
      degraded.add(Degraded.RankerFallback);
      return undefined;
    }
    try {
      const rankers = this.ctx.client.grouped<RankerProtocol>(RANK_KIND);
      const reply = await this.shared.rankersDown.track(slot, () =>
        rankers.ask(
          slot,
          'rank',
          {
            user_id: this.ctx.key,
            candidates: candidates.slice(0, MAX_CANDIDATES).map((c) => ({ ...c })),
            now_ms: now,
            // Only the reply's items come back: 200 scored candidates would cost more to encode
            // and decode than to score.
            top_k: Math.min(count, MAX_CANDIDATES),
          },
          { deadline, requestId: meta.requestId },
        ),
      );
      if (reply.degraded.length > 0) degraded.add(Degraded.FeaturesMissing);
      return { items: reply.items, version: reply.model_version };
    } catch (err) {
      meta.log.debug({ err, slot }, 'ranker failed: retrieval order serves');
      degraded.add(Degraded.RankerFallback);
      return undefined;
    }
  }

  /** The most popular items not excluded (of the categories asked), best first. */
  private async popular(
    excluded: ReadonlySet<string>,
    categories: readonly string[] | undefined,
    count: number,
    end: number,
  ): Promise<RecommendedItem[]> {
    const ranked: { item_id: string; score: number }[] = [];
    this.model.popular.forEach((item_id, rank) => {
      if (!excluded.has(item_id)) ranked.push({ item_id, score: 1 / (1 + rank) });
    });
    // Without a filter only the first `count` need a category; with one, every candidate may.
    const pool = categories === undefined ? ranked.slice(0, count) : ranked;
    const known = await this.categoriesOf(
      pool.map((c) => c.item_id),
      end,
    );
    const wanted = categories === undefined ? undefined : new Set(categories);
    const out: RecommendedItem[] = [];
    for (const c of pool) {
      const category = known.get(c.item_id) ?? '';
      if (wanted !== undefined && !wanted.has(category)) continue;
      out.push({ item_id: c.item_id, score: c.score, category });
      if (out.length === count) break;
    }
    return out;
  }

  /** Remembers the items as served and publishes the impression, without waiting for it. */
  private served(reply: RecommendReply, atMs: number, meta: RequestMeta): void {
    const ids = reply.items.map((item) => item.item_id);
    if (ids.length === 0) return;
    this.session.markServed(ids, atMs);
    const stream = this.stream;
    if (stream === undefined) return;
    const impression: ImpressionEvent = {
      event_id: impressionId(reply.request_id),
      user_id: this.ctx.key,
      request_id: reply.request_id,
      items: ids,
      variant: reply.variant,
      ts_ms: atMs,
    };
    publishImpression(stream, this.ctx.prefix, this.ctx.client.partitions, impression).catch(
      (err: unknown) => {
        this.shared.tally.impressionFailures++;
        this.metrics?.impressionFailures.inc();
        meta.log.warn({ err }, 'impression not stored');
      },
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Features
  // ---------------------------------------------------------------------------------------------

  /**
   * Reads the user's profile and batch history (through the process's cache) and hands the
   * history to the session. Defaults when the read is late or the node has no feature store.
   */
  private async loadBatchHistory(
    deadline: number,
  ): Promise<{ profile: ReturnType<UserModel['profile']>; degraded: boolean }> {
    const online = this.ctx.features?.online;
    const unknown = { age_band: '', country: '', device: '' };
    if (online === undefined) return { profile: this.model.profile(unknown), degraded: false };
    try {
      const read = await before(
        this.shared.readers(online).profile.read([this.ctx.key]),
        deadline,
        this.shared.now,
      );
      const row = read.rows[0]!;
      const values = row.values;
      const recent = values['recent_items'];
      this.session.setBatchHistory(
        Array.isArray(recent) ? (recent as string[]) : [],
        row.eventTimeMs,
      );
      return {
        profile: this.model.profile({
          age_band: String(values['age_band'] ?? ''),
          country: String(values['country'] ?? ''),
          device: String(values['device'] ?? ''),
        }),
        degraded: read.degraded,
      };
    } catch {
      return { profile: this.model.profile(unknown), degraded: true };
    }
  }

  /** Categories of `items` from the `item_profile` view; empty where unknown or too late. */
  private async categoriesOf(
    items: readonly string[],
    deadline: number,
  ): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const online = this.ctx.features?.online;
    const unique = [...new Set(items)];
    if (online === undefined || unique.length === 0) return out;
    try {
      const read = await before(
        this.shared.readers(online).category.read(unique),
        deadline,
        this.shared.now,
      );
      unique.forEach((item, i) => {
        const category = read.rows[i]?.values['category'];
        if (typeof category === 'string' && category !== '') out.set(item, category);
      });
    } catch {
      // Late or failed: the items go without categories rather than the reply being late.
    }
    return out;
  }
}

const EVENT_ID = /^[A-Za-z0-9_.:-]{1,120}$/;

/** The impression's event id: derived from the request id, so a repeated publish is stored once. */
function impressionId(requestId: string): string {
  if (EVENT_ID.test(requestId)) return `imp:${requestId}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < requestId.length; i++) {
    hash = Math.imul(hash ^ requestId.charCodeAt(i), 0x01000193) >>> 0;
  }
  return `imp:${hash.toString(16)}:${requestId.length}:${Date.now().toString(36)}`;
}

/**
 * The `user` kind. The retrieval model is loaded once per kind instance (one per process in
 * practice), by the first activation, and shared by every user actor.
 */
export function userKind(options: UserKindOptions): ActorKind<UserProtocol> {
  const now = options.now ?? Date.now;
  const log = options.log ?? silentLogger();
  let model: Promise<UserModel> | undefined;
  let loadedModel: UserModel | undefined;
  const streams = new WeakMap<StreamStore, Promise<EventStream>>();
  const readers = new WeakMap<OnlineFeatures, Readers>();
  const scatters = new WeakMap<ActorClient, ShardScatter>();
  const shared: Shared = {
    options,
    now,
    tally: new UserTally(),
    rankersDown: new Unreachable(RANKER_PROBE_MS, now),
    scatter: (client) => {
      let scatter = scatters.get(client);
      if (scatter === undefined) {
        scatter = new ShardScatter({ client, shards: options.shards, now });
        scatters.set(client, scatter);
      }
      return scatter;
    },
    model: () =>
      (model ??= UserModel.load(options.modelDir, {
        popularItems: options.recommend.popularItems,
        historyLength: options.historyLength,
        log,
      }).then((loaded) => (loadedModel = loaded))),
    loaded: () => loadedModel,
    stream: (store, prefix) => {
      let opened = streams.get(store);
      if (opened === undefined) {
        opened = openEventsStream(store, prefix, options.events);
        // A failed open is tried again by the next activation.
        opened.catch(() => streams.delete(store));
        streams.set(store, opened);
      }
      return opened;
    },
    readers: (online) => {
      let found = readers.get(online);
      if (found === undefined) {
        found = {
          profile: online.prepare('user_profile', [
            'age_band',
            'country',
            'device',
            'recent_items',
          ]),
          category: online.prepare('item_profile', ['category']),
          realtime: online.registry.definitions.views.some((v) => v.name === SESSION_VIEW)
            ? online.prepare(SESSION_VIEW, ['last_event_ms'])
            : undefined,
        };
        readers.set(online, found);
      }
      return found;
    },
  };
  const limits = { maxCount: options.recommend.maxCount };
  return defineActorKind<UserProtocol>({
    name: USER_KIND,
    placement: 'keyed',
    description: "A user's live session, and recommendations for them (retrieval, ranking)",
    version: '0.1.0',
    validators: {
      recommend: (payload) => validateRecommend(payload, limits),
      observe: validateObserve,
      state: validateState,
    },
    create: (ctx) => new UserActor(ctx, shared),
    // The tower, the id maps (a million items at full scale) and the popular items load before
    // the first user is served, not by the first user's activation while requests queue behind it.
    prepare: async () => {
      await shared.model();
    },
    stats: () => {
      const loaded = shared.loaded();
      return shared.tally.stats({
        version: loaded?.version ?? '',
        ready: loaded?.ready ?? false,
        popular: loaded?.popular.length ?? 0,
      });
    },
  });
}
