/**
 * The events the system publishes about what users did and what they were shown, as they travel on
 * the events stream: their wire shape (snake_case, JSON so `nats stream view` prints them), their
 * validation, and the subjects they are stored on.
 *
 * | event      | fields                                                                                   |
 * | ---------- | ---------------------------------------------------------------------------------------- |
 * | feedback   | `{event_id, user_id, item_id, type, ts_ms, value?, request_id?, variant?}`               |
 * | impression | `{event_id, user_id, request_id, items: [item ids], variant?, ts_ms}`                    |
 *
 * Subjects: `<prefix>.events.feedback.<partition>.<user>` and
 * `<prefix>.events.impression.<partition>.<user>`, where `partition` is the user's partition
 * (`partitionOf(user_id, runtime.partitions)`, as for the user actor's own subjects) and `<user>`
 * the user id encoded into one token; so the owner of a partition reads only its partitions'
 * events (`<prefix>.events.feedback.<partition>.*`). A consumer's dead letters go to
 * `<prefix>.events.dead.<consumer>`.
 *
 * The event id is the stream's message id: a publish repeated within the stream's duplicate window
 * (a client retrying after a lost answer) is stored once.
 */
import { decode, encode } from '../codec.js';
import { BadRequestError } from '../errors.js';
import { partitionOf } from '../placement/hash.js';
import { assertPrefix, assertToken, encodeKey } from '../subjects.js';

/** What a user did with an item. A const object plus a same-named type. */
export const FeedbackType = {
  View: 'view',
  Click: 'click',
  Like: 'like',
  Purchase: 'purchase',
  Rating: 'rating',
} as const;
export type FeedbackType = (typeof FeedbackType)[keyof typeof FeedbackType];
export const FEEDBACK_TYPES: readonly FeedbackType[] = Object.values(FeedbackType);

/** A user's interaction with an item, as stored on the events stream. */
export interface FeedbackEvent {
  /**
   * Unique per event, chosen by the publisher (1..128 characters of `[A-Za-z0-9_.:-]`): the
   * stream's message id, and what consumers drop repeats by.
   */
  event_id: string;
  user_id: string;
  item_id: string;
  type: FeedbackType;
  /** When it happened, epoch milliseconds. */
  ts_ms: number;
  /** The rating (required for `rating`), or the dwell time in seconds (>= 0) for other types. */
  value?: number;
  /** The recommendation that showed the item (its reply's request id), for attribution. */
  request_id?: string;
  /** The experiment variant that served that recommendation. */
  variant?: string;
}

/** What a recommendation showed a user, as stored on the events stream. */
export interface ImpressionEvent {
  event_id: string;
  user_id: string;
  /** The recommendation's request id: feedback carrying it is attributed to this impression. */
  request_id: string;
  /** The items shown, in the order shown. */
  items: string[];
  /** The experiment variant that served it. */
  variant?: string;
  /** When it was shown, epoch milliseconds. */
  ts_ms: number;
}

/** Longest id (user, item, request, variant) accepted, in UTF-16 code units. */
export const MAX_ID_LENGTH = 256;
/** Most items one impression may list. */
export const MAX_IMPRESSION_ITEMS = 1000;

const EVENT_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
// Control characters would make an id unprintable in logs and ambiguous in tools.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const TYPES: ReadonlySet<string> = new Set(FEEDBACK_TYPES);

const FEEDBACK_FIELDS = [
  'event_id',
  'user_id',
  'item_id',
  'type',
  'ts_ms',
  'value',
  'request_id',
  'variant',
] as const;
const IMPRESSION_FIELDS = [
  'event_id',
  'user_id',
  'request_id',
  'items',
  'variant',
  'ts_ms',
] as const;

/** The event as a plain object: decoded JSON bytes, or an object as it is. */
function record(input: unknown): Record<string, unknown> {
  const value = input instanceof Uint8Array ? decode(input) : input;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError('payload', 'must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function onlyKeys(p: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(p)) {
    if (!allowed.includes(key)) {
      throw new BadRequestError(key, `unknown field (expected one of: ${allowed.join(', ')})`);
    }
  }
}

function eventId(value: unknown): string {
  if (typeof value !== 'string' || !EVENT_ID.test(value)) {
    throw new BadRequestError('event_id', 'must be 1..128 chars of [A-Za-z0-9_.:-]');
  }
  return value;
}

/** A non-empty id of at most {@link MAX_ID_LENGTH} characters, without control characters. */
function id(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw new BadRequestError(field, `must be a string of 1..${MAX_ID_LENGTH} characters`);
  }
  if (CONTROL.test(value)) throw new BadRequestError(field, 'must not contain control characters');
  return value;
}

function timestamp(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new BadRequestError('ts_ms', 'must be a finite epoch-ms number');
  }
  return value;
}

/**
 * Checks a feedback event, from its JSON bytes or as an object; throws `BadRequestError` naming the
 * field (`event_id`, `ts_ms`, `type`, an unknown field's name). Returns a fresh object holding only
 * the event's fields.
 */
export function parseFeedbackEvent(input: unknown): FeedbackEvent {
  const p = record(input);
  onlyKeys(p, FEEDBACK_FIELDS);
  const event_id = eventId(p['event_id']);
  const user_id = id(p['user_id'], 'user_id');
  const item_id = id(p['item_id'], 'item_id');
  const type = p['type'];
  if (typeof type !== 'string' || !TYPES.has(type)) {
    throw new BadRequestError('type', `must be one of ${FEEDBACK_TYPES.join(', ')}`);
  }
  const event: FeedbackEvent = {
    event_id,
    user_id,
    item_id,
    type: type as FeedbackType,
    ts_ms: timestamp(p['ts_ms']),
  };
  const value = p['value'];
  if (value !== undefined) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new BadRequestError('value', 'must be a finite number');
    }
    if (type !== FeedbackType.Rating && value < 0) {
      throw new BadRequestError('value', `must be a dwell time >= 0 seconds for a ${type}`);
    }
    event.value = value;
  } else if (type === FeedbackType.Rating) {
    throw new BadRequestError('value', 'a rating must carry its value');
  }
  if (p['request_id'] !== undefined) event.request_id = id(p['request_id'], 'request_id');
  if (p['variant'] !== undefined) event.variant = id(p['variant'], 'variant');
  return event;
}

/** Checks an impression event, as {@link parseFeedbackEvent} does a feedback event. */
export function parseImpressionEvent(input: unknown): ImpressionEvent {
  const p = record(input);
  onlyKeys(p, IMPRESSION_FIELDS);
  const items = p['items'];
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_IMPRESSION_ITEMS) {
    throw new BadRequestError('items', `must be an array of 1..${MAX_IMPRESSION_ITEMS} item ids`);
  }
  const event: ImpressionEvent = {
    event_id: eventId(p['event_id']),
    user_id: id(p['user_id'], 'user_id'),
    request_id: id(p['request_id'], 'request_id'),
    items: items.map((item, i) => id(item, `items[${i}]`)),
    ts_ms: timestamp(p['ts_ms']),
  };
  if (p['variant'] !== undefined) event.variant = id(p['variant'], 'variant');
  return event;
}

/** The JSON bytes of an event (no headers needed to read them back). */
export function encodeEvent(event: FeedbackEvent | ImpressionEvent): Uint8Array {
  return encode(event).data;
}

/** The event kinds stored on the events stream, each its own subject token. */
export const EventKind = {
  Feedback: 'feedback',
  Impression: 'impression',
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];

function checkPartitions(partitions: number): number {
  if (!Number.isSafeInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
  }
  return partitions;
}

/** `<prefix>.events.<kind>.<partition>.<user>`: where a user's event of `kind` is stored. */
export function eventSubject(
  prefix: string,
  kind: EventKind,
  partitions: number,
  userId: string,
): string {
  const partition = partitionOf(userId, checkPartitions(partitions));
  return `${assertPrefix(prefix)}.events.${kind}.${partition}.${encodeKey(userId)}`;
}

/** Where `userId`'s feedback is stored. */
export function feedbackSubject(prefix: string, partitions: number, userId: string): string {
  return eventSubject(prefix, EventKind.Feedback, partitions, userId);
}

/** Where `userId`'s impressions are stored. */
export function impressionSubject(prefix: string, partitions: number, userId: string): string {
  return eventSubject(prefix, EventKind.Impression, partitions, userId);
}

/**
 * The filter of `kind`'s events: every user's (`<prefix>.events.<kind>.>`), or with `partition`
 * the users of that partition only (`<prefix>.events.<kind>.<partition>.*`).
 */
export function eventFilter(prefix: string, kind: EventKind, partition?: number): string {
  const base = `${assertPrefix(prefix)}.events.${kind}`;
  if (partition === undefined) return `${base}.>`;
  if (!Number.isSafeInteger(partition) || partition < 0) {
    throw new RangeError(`partition must be a non-negative integer, got ${partition}`);
  }
  return `${base}.${partition}.*`;
}

/** `<prefix>.events.dead.<consumer>`: where `consumer` puts the events it could not process. */
export function deadLetterSubject(prefix: string, consumer: string): string {
  return `${assertPrefix(prefix)}.events.dead.${assertToken('consumer', consumer)}`;
}

/** Every consumer's dead letters: `<prefix>.events.dead.>`. */
export function deadLetterFilter(prefix: string): string {
  return `${assertPrefix(prefix)}.events.dead.>`;
}
