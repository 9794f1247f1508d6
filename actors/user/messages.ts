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
