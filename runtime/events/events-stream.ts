/**
 * The events stream: one JetStream stream (or the memory one in embedded mode) holding every
 * feedback and impression event and the consumers' dead letters, kept for `events.max_age_days`.
 * Item events live in a stream of their own (`<prefix>.events.items.>`), so this one captures the
 * three kinds by name rather than `<prefix>.events.>`: JetStream refuses two streams whose subjects
 * overlap.
 *
 * Publishing validates first, so nothing malformed is stored by our own publishers, and uses the
 * event id as the message id, so a publish retried within the duplicate window is stored once and
 * answered with the first one's sequence.
 */
import { BadRequestError } from '../errors.js';
import type { EventStream, PublishAck, StreamStore } from '../stream/index.js';
import { assertPrefix } from '../subjects.js';
import {
  EventKind,
  deadLetterFilter,
  encodeEvent,
  eventFilter,
  feedbackSubject,
  impressionSubject,
  parseFeedbackEvent,
  parseImpressionEvent,
} from './feedback.js';
import type { FeedbackEvent, ImpressionEvent } from './feedback.js';

/** The stream's retention: the `events` section of the configuration has these fields. */
export interface EventsStreamConfig {
  /** Days an event is kept; 0: no age limit. @default 7 */
  maxAgeDays: number;
  /** Bytes kept at most, oldest dropped first; -1: no limit. @default -1 */
  maxBytes: number;
  /** A publish repeating an event id within this window is stored once. @default 120000 */
  duplicateWindowMs: number;
}

export const DEFAULT_EVENTS_STREAM_CONFIG: Readonly<EventsStreamConfig> = Object.freeze({
  maxAgeDays: 7,
  maxBytes: -1,
  duplicateWindowMs: 120_000,
});

const DAY_MS = 24 * 60 * 60 * 1000;

/** `<prefix with . → _>_events`: `prod.recsys` → `prod_recsys_events`. */
export function eventsStreamName(prefix: string): string {
  return `${assertPrefix(prefix).replaceAll('.', '_')}_events`;
}

/** Subjects the events stream captures: feedback, impressions and dead letters. */
export function eventsStreamSubjects(prefix: string): string[] {
  return [
    eventFilter(prefix, EventKind.Feedback),
    eventFilter(prefix, EventKind.Impression),
    deadLetterFilter(prefix),
  ];
}

/**
 * Opens the events stream, creating it or bringing its limits to `config`; any number of
 * processes may call it with the same configuration.
 */
export async function openEventsStream(
  streams: StreamStore,
  prefix: string,
  config: EventsStreamConfig = DEFAULT_EVENTS_STREAM_CONFIG,
): Promise<EventStream> {
  const { maxAgeDays, maxBytes, duplicateWindowMs } = config;
  if (!Number.isSafeInteger(maxAgeDays) || maxAgeDays < 0) {
    throw new BadRequestError('events.max_age_days', 'must be a non-negative integer');
  }
  return streams.stream(eventsStreamName(prefix), {
    subjects: eventsStreamSubjects(prefix),
    maxAgeMs: maxAgeDays * DAY_MS,
    maxBytes,
    duplicateWindowMs,
    storage: 'file',
  });
}

/**
 * Validates `event` and stores it on its user's feedback subject, with its event id as message id;
 * resolves with the stream's acknowledgement (`duplicate` when the id was stored already within the
 * duplicate window). Rejects with `BadRequestError` naming the field of a malformed event.
 */
export async function publishFeedback(
  stream: EventStream,
  prefix: string,
  partitions: number,
  event: FeedbackEvent,
): Promise<PublishAck> {
  const valid = parseFeedbackEvent(event);
  return stream.publish(feedbackSubject(prefix, partitions, valid.user_id), encodeEvent(valid), {
    msgId: valid.event_id,
  });
}

/** As {@link publishFeedback}, for an impression. */
export async function publishImpression(
  stream: EventStream,
  prefix: string,
  partitions: number,
  event: ImpressionEvent,
): Promise<PublishAck> {
  const valid = parseImpressionEvent(event);
  return stream.publish(impressionSubject(prefix, partitions, valid.user_id), encodeEvent(valid), {
    msgId: valid.event_id,
  });
}
