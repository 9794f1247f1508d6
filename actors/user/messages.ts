/**
 * The protocol of the `user` actor: one instance per user id, placed by the runtime (users hash
 * into `runtime.partitions` partitions, each owned by one host). Any service reaches it over NATS:
 *
 *   nats req recsys.user.<partition>.<user id>.recommend '{"count":10}'
 *   nats req recsys.user.<partition>.<user id>.state '{}'
 *
 * where `<partition>` is `fnv1a32(user id) % runtime.partitions` (the client computes it) and the
 * user id is encoded into one subject token (`runtime/subjects.ts`). Wire fields are snake_case.
 *
 * | op          | request                                          | reply                 |
 * | ----------- | ------------------------------------------------ | --------------------- |
 * | `recommend` | `{count?, exclude?, categories?, now_ms?}`       | {@link RecommendReply} |
 * | `observe`   | `{events: [stored feedback events]}`             | {@link ObserveReply}   |
 * | `state`     | `{}`                                             | {@link SessionState}   |
 *
 * Feedback is stored on the events stream first (by the gateway, or by any service with
 * `publishFeedback`); `observe` tells the user's actor about events already stored, so the next
 * recommendation reflects them at once. Events reach the actor from the stream as well, so a lost
 * `observe` only delays them; the session drops an event it has already applied (by event id).
 */
import { BadRequestError } from '../../runtime/errors.js';
import { onlyKeys, plainObject } from '../message-fields.js';
import { MAX_ID_LENGTH, parseFeedbackEvent } from '../../runtime/events/index.js';
import type { FeedbackEvent } from '../../runtime/events/index.js';

export const USER_KIND = 'user';

export interface RecommendRequest {
  /** Items to return, 1..`recommend.max_count`. @default recommend.default_count */
  count?: number;
  /** Item ids never to return in this reply (besides the items the user saw or was served). */
  exclude?: string[];
  /** When given, only items of these categories. */
  categories?: string[];
  /** The time the recommendation is for (epoch ms); the actor's clock when absent. */
  now_ms?: number;
}

export interface RecommendedItem {
  item_id: string;
  /** The score the final order is by: the ranker's, or retrieval's when ranking degraded. */
  score: number;
  /** The two-tower similarity of the item to the user; absent for a popular-items fallback. */
  retrieval_score?: number;
  /** The item's primary category ('' when unknown). */
  category: string;
}

/**
 * Why a reply is not what the full pipeline would have given. A const object plus a same-named
 * type; a reply lists every reason that applied.
 */
export const Degraded = {
  /** Some item shards did not answer in time: candidates come from the others. */
  ShardsMissing: 'shards_missing',
  /** Retrieval failed or was late: the items are the most popular ones. */
  PopularFallback: 'popular_fallback',
  /** The ranker failed or was late: the items keep the retrieval order. */
  RankerFallback: 'ranker_fallback',
  /** Some feature views could not be read in time: the ranker saw their defaults. */
  FeaturesMissing: 'features_missing',
} as const;
export type Degraded = (typeof Degraded)[keyof typeof Degraded];

export interface RecommendReply {
  /** Attribute feedback to this recommendation by sending it back as `request_id`. */
  request_id: string;
  user_id: string;
  /** Best first; fewer than asked when fewer items qualify. */
  items: RecommendedItem[];
  /** The experiment variant that served it. */
  variant: string;
  /** Model versions that served it (absent when the stage did not run). */
  models: { retrieval?: string; ranker?: string };
  /** Empty when nothing degraded. */
  degraded: Degraded[];
  /** Time spent per stage, milliseconds. */
  timings_ms: { retrieval: number; ranking: number; total: number };
  /** True when the user has no id embedding and no history: served from profile and session. */
  cold_start: boolean;
}

export interface ObserveRequest {
  /** Feedback events of this user, already stored on the events stream. */
  events: FeedbackEvent[];
}

export interface ObserveReply {
  /** Events applied to the session. */
  applied: number;
  /** Events the session had applied before (same event id), skipped. */
  duplicates: number;
}

/** The live session, as `state` shows it. */
export interface SessionState {
  user_id: string;
  /** Whether the retrieval model knows the user (has an id embedding for them). */
  known_user: boolean;
  /** Feedback events applied since the actor started (replayed ones included). */
  events: number;
  /** Events replayed from the stream when the actor started. */
  replayed: number;
  /** Counts per feedback type in each session window (`events.windows_minutes`), e.g. `5m`. */
  windows: Record<string, Record<string, number>>;
  /** Categories of the items the user interacted with in the longest window, most first. */
  categories: { category: string; count: number }[];
  /** The items the user tower pools, oldest first (the batch history, then the session). */
  history: string[];
  /** Items the user interacted with, and items served and not yet expired, remembered. */
  seen: number;
  served: number;
  /** When the actor started (epoch ms). */
  active_since_ms: number;
}

export type UserProtocol = {
  recommend: { request: RecommendRequest; reply: RecommendReply };
  observe: { request: ObserveRequest; reply: ObserveReply };
  state: { request: Record<string, never>; reply: SessionState };
};

/** Most item ids one `recommend` may exclude. */
export const MAX_EXCLUDE = 1000;
/** Most categories one `recommend` may filter by. */
export const MAX_CATEGORIES = 100;
/** Most events one `observe` may carry. */
export const MAX_OBSERVE_EVENTS = 1000;

/** What the validators need from the configuration. */
export interface RecommendLimits {
  /** `recommend.max_count`. */
  maxCount: number;
}

function idList(value: unknown, field: string, max: number, what: string): string[] {
  if (!Array.isArray(value) || value.length > max) {
    throw new BadRequestError(field, `must be an array of at most ${max} ${what}`);
  }
  return value.map((id: unknown, i) => {
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
      throw new BadRequestError(
        `${field}[${i}]`,
        `must be a string of 1..${MAX_ID_LENGTH} characters`,
      );
    }
    return id;
  });
}

/** Checks a `recommend` request; throws `BadRequestError` naming the field. */
export function validateRecommend(payload: unknown, limits: RecommendLimits): RecommendRequest {
  const request = plainObject(payload ?? {}, 'request');
  onlyKeys(request, ['count', 'exclude', 'categories', 'now_ms']);
  const { count, exclude, categories, now_ms } = request;
  const out: RecommendRequest = {};
  if (count !== undefined) {
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
      throw new BadRequestError('count', `must be an integer in 1..${limits.maxCount}`);
    }
    if (count > limits.maxCount) {
      throw new BadRequestError('count', `must be at most ${limits.maxCount}, got ${count}`);
    }
    out.count = count;
  }
  if (exclude !== undefined) out.exclude = idList(exclude, 'exclude', MAX_EXCLUDE, 'item ids');
  if (categories !== undefined) {
    const list = idList(categories, 'categories', MAX_CATEGORIES, 'categories');
    if (list.length === 0) throw new BadRequestError('categories', 'must not be empty when given');
    out.categories = list;
  }
  if (now_ms !== undefined) {
    if (typeof now_ms !== 'number' || !Number.isFinite(now_ms) || now_ms < 0) {
      throw new BadRequestError('now_ms', 'must be a non-negative epoch-ms number');
    }
    out.now_ms = now_ms;
  }
  return out;
}

/**
 * Checks an `observe` request: every event as the events stream would store it, its fields named
 * `events[i].<field>`. That the events are this actor's user's is checked by the actor.
 */
export function validateObserve(payload: unknown): ObserveRequest {
  const request = plainObject(payload, 'request');
  onlyKeys(request, ['events']);
  const { events } = request;
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_OBSERVE_EVENTS) {
    throw new BadRequestError('events', `must be an array of 1..${MAX_OBSERVE_EVENTS} events`);
  }
  return {
    events: events.map((event: unknown, i) => {
      try {
        return parseFeedbackEvent(event);
      } catch (err) {
        if (!(err instanceof BadRequestError)) throw err;
        const field = err.field === 'payload' ? `events[${i}]` : `events[${i}].${err.field}`;
        throw new BadRequestError(field, err.message.slice(err.field.length + 2));
      }
    }),
  };
}

/** Checks a `state` request: an empty object (or nothing). */
export function validateState(payload: unknown): Record<string, never> {
  if (payload !== undefined) onlyKeys(plainObject(payload, 'request'), []);
  return {};
}

/** The user kind's figures on one host, in `$SRV.STATS` (`kind_stats`). */
export interface UserKindStats {
  /** Recommendations answered since the host started. */
  recommends: number;
  /** Recommendations with each degradation reason. */
  degraded: Record<Degraded, number>;
  /** Recommendations served to users without an id embedding or history. */
  cold_starts: number;
  /** Feedback events applied by `observe` (duplicates not counted), and duplicates skipped. */
  observed: number;
  duplicates: number;
  /** Impression events that could not be stored. */
  impression_failures: number;
  /** Whole-recommendation latency in the actor, ms: median and 99th percentile of recent ones. */
  latency_p50_ms: number | null;
  latency_p99_ms: number | null;
  /** The retrieval model the user tower comes from, and whether it loaded. */
  model_version: string;
  tower_loaded: boolean;
  popular_items: number;
}
