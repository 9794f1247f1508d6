/**
 * The item-shard protocol. Shard `s` of the item index answers on `<prefix>.items.<s>.<op>`; every
 * replica of a shard joins the queue group `<prefix>.items.<s>`.
 *
 * | op         | request                                                         | reply                                        |
 * | ---------- | --------------------------------------------------------------- | -------------------------------------------- |
 * | `search`   | `{vector: f32[dims], k, exclude?: item ids, categories?: [..]}` | `{item_ids: [..], scores: f32[n], shard, index_version}` best first |
 * | `upsert`   | `{items: [{item_id, vector: f32[dims], category?}]}`            | `{upserted, delta, seq}`                     |
 * | `delete`   | `{item_ids: [..]}`                                              | `{deleted, tombstones, seq}`                 |
 * | `stats`    | `{}`                                                            | {@link ShardStats}                           |
 * | `record`   | `{events: [{item_id, type, ts_ms?}]}`                           | `{recorded, ignored, rejected}`              |
 * | `counters` | `{item_ids: [..], now_ms?}`                                     | `{features: [..], values: f32[n·f], now_ms}` |
 *
 * Vectors travel as raw float32 bytes (the codec's frame), never as JSON numbers. A `search` reply is
 * packed: `scores[i]` (float32, raw bytes too) is the score of `item_ids[i]`, the two of the same
 * length, best first; no object per item. A score is larger for a better match: the inner product
 * or cosine similarity, or the negated squared distance.
 * `upsert` and `delete` go through the item-events stream (`events.ts`): the replica that takes the
 * call publishes it, every replica of the shard applies it, and the reply comes once this replica
 * has, so the caller's next query sees it; `seq` is its place in the stream.
 * `record` and `counters` are the shard's real-time item counters (`counters.ts`): they do not touch
 * the index, and a shard counts whatever ids it is sent, so callers route an item's events to
 * `shardOf(item_id, S)` as they route its upserts. `record` needs no reply and may be a tell. A
 * `counters` reply is packed too: row `i` of `values` (float32, raw bytes), `f` numbers long, holds
 * the features of `item_ids[i]` in the order of `features`.
 * Every malformed request is answered with `bad_request` naming the field (`vector`, `k`,
 * `exclude[3]`, `items[0].vector`, `events[2].type`, ...).
 */
import { FEEDBACK_TYPES, FeedbackType } from '../../runtime/events/feedback.js';
import type { FeedbackFeedStats } from './feedback-feed.js';
import { BadRequestError } from '../../runtime/errors.js';

/** The actor kind's name: its subject token and its service name (`<prefix>-items`). */
export const ITEMS_KIND = 'items';

export interface SearchRequest {
  /** The query embedding, exactly the index's dimensions, every component finite. */
  vector: Float32Array;
  /** How many items to return, 1..`items.max_k`. */
  k: number;
  /** Item ids never to return (items the user has seen). */
  exclude?: string[];
  /** When given, only items whose category is listed. */
  categories?: string[];
}

export interface ScoredItem {
  item_id: string;
  score: number;
}

/**
 * Scored items in packed form, best first: `scores[i]` is the score of `item_ids[i]`, the two
 * always of the same length.
 */
export interface PackedItems {
  item_ids: string[];
  scores: Float32Array;
}

/** The items of a packed list as objects (for callers that want them one by one). */
export function unpackItems(packed: PackedItems): ScoredItem[] {
  return packed.item_ids.map((item_id, i) => ({ item_id, score: packed.scores[i]! }));
}

export interface SearchReply {
  /** Best first; fewer than `k` when the filters leave fewer. */
  item_ids: string[];
  /** `scores[i]` is the score of `item_ids[i]`: float32, raw bytes in the frame. */
  scores: Float32Array;
  shard: number;
  index_version: string;
}

export interface UpsertItem {
  item_id: string;
  vector: Float32Array;
  category?: string;
}

export interface UpsertRequest {
  items: UpsertItem[];
}

export interface UpsertReply {
  upserted: number;
  /** Items now held in the mutable delta. */
  delta: number;
  /** The update's sequence in the item-events stream. */
  seq: number;
}

export interface DeleteRequest {
  item_ids: string[];
}

export interface DeleteReply {
  /** Ids that named a live item. */
  deleted: number;
  tombstones: number;
  /** The update's sequence in the item-events stream. */
  seq: number;
}

/**
 * Interactions the counters count: the feedback types of the events stream (the event types of the
 * project's data sets, `models/data/types.ts`, in the order of their codes there).
 */
export const CounterEventType = FeedbackType;
export type CounterEventType = FeedbackType;
export const COUNTER_EVENT_TYPES: readonly CounterEventType[] = FEEDBACK_TYPES;

export interface CounterEvent {
  item_id: string;
  type: CounterEventType;
  /** When it happened, epoch ms. @default the time the shard receives it */
  ts_ms?: number;
}

export interface RecordRequest {
  events: CounterEvent[];
}

export interface RecordReply {
  /** Events counted. */
  recorded: number;
  /** Events older than the longest window: nothing left to count them in. */
  ignored: number;
  /** Events further in the future than the allowed clock skew. */
  rejected: number;
}

export interface CountersRequest {
  item_ids: string[];
  /** The time the windows end at, epoch ms. @default the time the shard receives the request */
  now_ms?: number;
}

/**
 * Features of the items asked, packed: `values[i * features.length + j]` is feature `features[j]`
 * of `item_ids[i]`, float32 (raw bytes in the frame). Names are `<type>s_<window>` (interactions in
 * the window, e.g. `views_5m`), `ctr_<window>` (smoothed click-through rate) and `velocity`; an
 * item never seen (or not seen within the longest window) reads as zero counts, with the CTR
 * prior's mean and a velocity of 0.
 */
export interface CountersReply {
  features: string[];
  values: Float32Array;
  now_ms: number;
}

/** The rows of a `counters` reply as objects, feature name to value (for callers that want them). */
export function unpackCounters(reply: CountersReply): Array<Record<string, number>> {
  const { features, values } = reply;
  const rows: Array<Record<string, number>> = [];
  if (features.length === 0) return rows;
  for (let at = 0; at < values.length; at += features.length) {
    rows.push(Object.fromEntries(features.map((name, j) => [name, values[at + j]!])));
  }
  return rows;
}

/** The counters' share of {@link ShardStats}; the tallies count since the activation began. */
export interface CounterStats {
  /** Items whose counters are held, at most the `maxItems` option. */
  items: number;
  /** Events counted. */
  recorded: number;
  /** Events older than the longest window. */
  ignored: number;
  /** Events too far in the future. */
  rejected: number;
  /** Items dropped for room while their windows still held counts: `maxItems` is too small. */
  evicted: number;
}

export interface ShardStats {
  shard: number;
  /** Live items: base minus tombstones, plus the delta's new items. */
  vectors: number;
  base_vectors: number;
  delta: number;
  tombstones: number;
  dims: number;
  metric: string;
  index_version: string;
  model_version: string;
  workers: number;
  counters: CounterStats;
  /** The last item-events sequence this replica applied. */
  stream_seq: number;
  /** Item events passed over: malformed, or vectors of another model. */
  events_skipped: number;
  /** How far this replica has counted the feedback stream; null before it started reading. */
  feedback: FeedbackFeedStats | null;
}

export type ItemShardProtocol = {
  search: { request: SearchRequest; reply: SearchReply };
  upsert: { request: UpsertRequest; reply: UpsertReply };
  delete: { request: DeleteRequest; reply: DeleteReply };
  stats: { request: Record<string, never>; reply: ShardStats };
  record: { request: RecordRequest; reply: RecordReply };
  counters: { request: CountersRequest; reply: CountersReply };
};

/** Longest item id accepted, in UTF-16 code units. */
export const MAX_ITEM_ID_LENGTH = 256;
/** Most ids one `search` may exclude, or one `upsert`/`delete`/`record`/`counters` may carry. */
export const MAX_LIST_LENGTH = 10_000;

/**
 * What the validators need to know about the shard they guard. `dims` is known only once the index
 * is open; before that the validators check everything else and the actor checks the dimensions.
 */
export interface ShardLimits {
  dims: number | undefined;
  maxK: number;
}

function object(payload: unknown, field = 'payload'): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new BadRequestError(field, 'must be a JSON object');
  }
  return payload as Record<string, unknown>;
}

function onlyKeys(record: Record<string, unknown>, allowed: readonly string[], at = ''): void {
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) {
      throw new BadRequestError(
        `${at}${key}`,
        `unknown field (expected one of: ${allowed.join(', ')})`,
      );
    }
  }
}

// Control characters would make an id unprintable in logs and ambiguous in tools.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws unless `value` is a well-formed item id. */
export function itemId(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new BadRequestError(field, 'must be a string item id');
  if (value.length === 0 || value.length > MAX_ITEM_ID_LENGTH) {
    throw new BadRequestError(field, `must be 1..${MAX_ITEM_ID_LENGTH} characters`);
  }
  if (CONTROL.test(value)) throw new BadRequestError(field, 'must not contain control characters');
  return value;
}

function stringList(
  value: unknown,
  field: string,
  element: (v: unknown, f: string) => string,
): string[] {
  if (!Array.isArray(value)) throw new BadRequestError(field, 'must be an array of strings');
  if (value.length > MAX_LIST_LENGTH) {
    throw new BadRequestError(field, `must hold at most ${MAX_LIST_LENGTH} entries`);
  }
  return value.map((v, i) => element(v, `${field}[${i}]`));
}

function category(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ITEM_ID_LENGTH) {
    throw new BadRequestError(field, `must be a string of 1..${MAX_ITEM_ID_LENGTH} characters`);
  }
  return value;
}

/** Throws unless `value` is a Float32Array of `dims` (when known) finite components. */
export function vector(value: unknown, field: string, dims: number | undefined): Float32Array {
  if (!(value instanceof Float32Array)) {
    throw new BadRequestError(field, 'must be a float32 vector (sent as raw bytes)');
  }
  if (dims === undefined ? value.length === 0 : value.length !== dims) {
    if (dims === undefined) throw new BadRequestError(field, 'must not be empty');
    throw new BadRequestError(field, `must have ${dims} dimensions, got ${value.length}`);
  }
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i])) {
      throw new BadRequestError(
        field,
        `component ${i} is ${String(value[i])}, not a finite number`,
      );
    }
  }
  return value;
}

export function validateSearch(payload: unknown, limits: ShardLimits): SearchRequest {
  const p = object(payload);
  onlyKeys(p, ['vector', 'k', 'exclude', 'categories']);
  const k = p['k'];
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > limits.maxK) {
    throw new BadRequestError('k', `must be an integer in 1..${limits.maxK}`);
  }
  const request: SearchRequest = { vector: vector(p['vector'], 'vector', limits.dims), k };
  if (p['exclude'] !== undefined) request.exclude = stringList(p['exclude'], 'exclude', itemId);
  if (p['categories'] !== undefined) {
    request.categories = stringList(p['categories'], 'categories', category);
  }
  return request;
}

export function validateUpsert(payload: unknown, limits: ShardLimits): UpsertRequest {
  const p = object(payload);
  onlyKeys(p, ['items']);
  const items = p['items'];
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_LIST_LENGTH) {
    throw new BadRequestError('items', `must be an array of 1..${MAX_LIST_LENGTH} items`);
  }
  return {
    items: items.map((raw, i) => {
      const at = `items[${i}]`;
      const item = object(raw, at);
      onlyKeys(item, ['item_id', 'vector', 'category'], `${at}.`);
      const out: UpsertItem = {
        item_id: itemId(item['item_id'], `${at}.item_id`),
        vector: vector(item['vector'], `${at}.vector`, limits.dims),
      };
      if (item['category'] !== undefined)
        out.category = category(item['category'], `${at}.category`);
      return out;
    }),
  };
}

export function validateDelete(payload: unknown): DeleteRequest {
  const p = object(payload);
  onlyKeys(p, ['item_ids']);
  return { item_ids: stringList(p['item_ids'], 'item_ids', itemId) };
}

/** Throws unless `vector` has the index's dimensions (checked once the index is open). */
export function checkDims(value: Float32Array, field: string, dims: number): void {
  if (value.length !== dims) {
    throw new BadRequestError(field, `must have ${dims} dimensions, got ${value.length}`);
  }
}

export function validateStats(payload: unknown): Record<string, never> {
  if (payload !== undefined) onlyKeys(object(payload), []);
  return {};
}

const EVENT_TYPES: ReadonlySet<string> = new Set(COUNTER_EVENT_TYPES);

function eventType(value: unknown, field: string): CounterEventType {
  if (typeof value !== 'string' || !EVENT_TYPES.has(value)) {
    throw new BadRequestError(field, `must be one of: ${COUNTER_EVENT_TYPES.join(', ')}`);
  }
  return value as CounterEventType;
}

function epochMs(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new BadRequestError(field, 'must be a finite number of epoch milliseconds');
  }
  return value;
}

export function validateRecord(payload: unknown): RecordRequest {
  const p = object(payload);
  onlyKeys(p, ['events']);
  const events = p['events'];
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_LIST_LENGTH) {
    throw new BadRequestError('events', `must be an array of 1..${MAX_LIST_LENGTH} events`);
  }
  return {
    events: events.map((raw, i) => {
      const at = `events[${i}]`;
      const event = object(raw, at);
      onlyKeys(event, ['item_id', 'type', 'ts_ms'], `${at}.`);
      const out: CounterEvent = {
        item_id: itemId(event['item_id'], `${at}.item_id`),
        type: eventType(event['type'], `${at}.type`),
      };
      if (event['ts_ms'] !== undefined) out.ts_ms = epochMs(event['ts_ms'], `${at}.ts_ms`);
      return out;
    }),
  };
}

export function validateCounters(payload: unknown): CountersRequest {
  const p = object(payload);
  onlyKeys(p, ['item_ids', 'now_ms']);
  const request: CountersRequest = { item_ids: stringList(p['item_ids'], 'item_ids', itemId) };
  if (p['now_ms'] !== undefined) request.now_ms = epochMs(p['now_ms'], 'now_ms');
  return request;
}
