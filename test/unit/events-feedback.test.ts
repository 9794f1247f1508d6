import { describe, expect, it } from 'vitest';

import { badRequest } from '../helpers/assertions.js';
import { itemEventsSubjects } from '../../actors/item-shard/index.js';
import { BadRequestError } from '../../runtime/errors.js';
import {
  EventKind,
  deadLetterSubject,
  encodeEvent,
  eventFilter,
  eventsStreamName,
  eventsStreamSubjects,
  feedbackSubject,
  impressionSubject,
  openEventsStream,
  parseFeedbackEvent,
  parseImpressionEvent,
  publishFeedback,
  publishImpression,
} from '../../runtime/events/index.js';
import type { FeedbackEvent, ImpressionEvent } from '../../runtime/events/index.js';
import { partitionOf } from '../../runtime/placement/hash.js';
import { MemoryStreamStore, subjectMatches, subjectsOverlap } from '../../runtime/stream/index.js';
import type { StreamMessage } from '../../runtime/stream/index.js';
import { decodeKey } from '../../runtime/subjects.js';
import { eventually } from '../helpers/eventually.js';

const feedback = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  event_id: 'e-1',
  user_id: 'u1',
  item_id: 'i1',
  type: 'click',
  ts_ms: 1_700_000_000_000,
  ...over,
});

const impression = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  event_id: 'imp-1',
  user_id: 'u1',
  request_id: 'req-1',
  items: ['i1', 'i2'],
  ts_ms: 1_700_000_000_000,
  ...over,
});

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

describe('feedback events', () => {
  it('parses an event from JSON bytes or an object, keeping only its fields', () => {
    const full = feedback({ type: 'rating', value: 4.5, request_id: 'req-9', variant: 'b' });
    expect(parseFeedbackEvent(json(full))).toEqual(full);
    expect(parseFeedbackEvent(feedback())).toEqual(feedback());
    // A view may carry its dwell time; ids take any printable characters.
    const dwell = parseFeedbackEvent(feedback({ type: 'view', value: 12, user_id: 'ü ser.*' }));
    expect(dwell).toMatchObject({ value: 12, user_id: 'ü ser.*' });
    // Event ids take the characters of the brief's pattern, up to 128.
    expect(parseFeedbackEvent(feedback({ event_id: 'A-z_0.9:x' })).event_id).toBe('A-z_0.9:x');
    expect(parseFeedbackEvent(feedback({ event_id: 'x'.repeat(128) })).event_id).toHaveLength(128);
  });

  it('names the field of a malformed event', () => {
    const cases: Array<[string, unknown, string]> = [
      ['empty event id', feedback({ event_id: '' }), 'event_id'],
      ['event id too long', feedback({ event_id: 'x'.repeat(129) }), 'event_id'],
      ['event id with a space', feedback({ event_id: 'a b' }), 'event_id'],
      ['event id with a slash', feedback({ event_id: 'a/b' }), 'event_id'],
      ['numeric event id', feedback({ event_id: 7 }), 'event_id'],
      ['missing event id', feedback({ event_id: undefined }), 'event_id'],
      ['empty user id', feedback({ user_id: '' }), 'user_id'],
      ['user id too long', feedback({ user_id: 'u'.repeat(257) }), 'user_id'],
      ['user id with a newline', feedback({ user_id: 'u\n1' }), 'user_id'],
      ['missing item id', feedback({ item_id: undefined }), 'item_id'],
      ['unknown type', feedback({ type: 'impression' }), 'type'],
      ['missing type', feedback({ type: undefined }), 'type'],
      ['string time', feedback({ ts_ms: '2025-01-01' }), 'ts_ms'],
      ['NaN time', feedback({ ts_ms: Number.NaN }), 'ts_ms'],
      ['negative time', feedback({ ts_ms: -1 }), 'ts_ms'],
      ['rating without a value', feedback({ type: 'rating' }), 'value'],
      ['infinite value', feedback({ type: 'rating', value: Infinity }), 'value'],
      ['negative dwell', feedback({ type: 'view', value: -3 }), 'value'],
      ['empty request id', feedback({ request_id: '' }), 'request_id'],
      ['numeric variant', feedback({ variant: 2 }), 'variant'],
      ['unknown field', feedback({ score: 1 }), 'score'],
      ['an array', [feedback()], 'payload'],
      ['null', null, 'payload'],
    ];
    for (const [what, input, field] of cases) {
      expect(badRequest(() => parseFeedbackEvent(input)).field, what).toBe(field);
    }
  });

  it('says what a field must be', () => {
    expect(badRequest(() => parseFeedbackEvent(feedback({ event_id: '' }))).message).toBe(
      'event_id: must be 1..128 chars of [A-Za-z0-9_.:-]',
    );
    expect(badRequest(() => parseFeedbackEvent(feedback({ ts_ms: 'x' }))).message).toBe(
      'ts_ms: must be a finite epoch-ms number',
    );
    expect(badRequest(() => parseFeedbackEvent(feedback({ type: 'x' }))).message).toBe(
      'type: must be one of view, click, like, purchase, rating',
    );
    expect(badRequest(() => parseFeedbackEvent(feedback({ extra: 1 }))).message).toMatch(
      /^extra: unknown field/,
    );
  });

  it('refuses bytes that are not JSON', () => {
    expect(badRequest(() => parseFeedbackEvent(new TextEncoder().encode('{nope'))).field).toBe(
      'payload',
    );
    expect(badRequest(() => parseFeedbackEvent(new Uint8Array([0xff, 0xfe]))).field).toBe(
      'payload',
    );
  });
});

describe('impression events', () => {
  it('parses an impression and names the field of a malformed one', () => {
    expect(parseImpressionEvent(json(impression({ variant: 'a' })))).toEqual(
      impression({ variant: 'a' }),
    );
    const cases: Array<[unknown, string]> = [
      [impression({ items: [] }), 'items'],
      [impression({ items: 'i1' }), 'items'],
      [impression({ items: Array.from({ length: 1001 }, (_, i) => `i${i}`) }), 'items'],
      [impression({ items: ['i1', ''] }), 'items[1]'],
      [impression({ request_id: undefined }), 'request_id'],
      [impression({ event_id: 'no spaces' }), 'event_id'],
      [impression({ ts_ms: null }), 'ts_ms'],
      [impression({ item_id: 'i1' }), 'item_id'],
    ];
    for (const [input, field] of cases) {
      expect(badRequest(() => parseImpressionEvent(input)).field).toBe(field);
    }
  });
});

describe('event subjects', () => {
  it('puts an event under its user partition and encoded user id', () => {
    const partition = partitionOf('u1', 64);
    expect(feedbackSubject('recsys', 64, 'u1')).toBe(`recsys.events.feedback.${partition}.u1`);
    expect(impressionSubject('prod.recsys', 8, 'u1')).toBe(
      `prod.recsys.events.impression.${partitionOf('u1', 8)}.u1`,
    );
    // An id that is not a plain token is encoded into one: it can neither split nor widen a subject.
    const odd = 'a.b *>';
    const subject = feedbackSubject('recsys', 64, odd);
    const tokens = subject.split('.');
    expect(tokens).toHaveLength(5);
    expect(decodeKey(tokens[4]!)).toBe(odd);
    expect(tokens[3]).toBe(String(partitionOf(odd, 64)));
  });

  it('lets the owner of a partition filter its users, and names dead-letter subjects', () => {
    const users = Array.from({ length: 50 }, (_, i) => `user-${i}`);
    for (const user of users) {
      const subject = feedbackSubject('recsys', 4, user);
      const mine = eventFilter('recsys', EventKind.Feedback, partitionOf(user, 4));
      const other = eventFilter('recsys', EventKind.Feedback, (partitionOf(user, 4) + 1) % 4);
      expect(subjectMatches(subject, mine)).toBe(true);
      expect(subjectMatches(subject, other)).toBe(false);
      expect(subjectMatches(subject, eventFilter('recsys', EventKind.Feedback))).toBe(true);
      expect(subjectMatches(subject, eventFilter('recsys', EventKind.Impression))).toBe(false);
    }
    expect(deadLetterSubject('recsys', 'sessions')).toBe('recsys.events.dead.sessions');
    expect(() => deadLetterSubject('recsys', 'a.b')).toThrow(BadRequestError);
    expect(() => feedbackSubject('re cs', 4, 'u')).toThrow(BadRequestError);
    expect(() => feedbackSubject('recsys', 0, 'u')).toThrow(RangeError);
    expect(() => feedbackSubject('recsys', 4, '')).toThrow(BadRequestError);
  });

  it('names the stream after the prefix and captures nothing of the item-events stream', () => {
    expect(eventsStreamName('recsys')).toBe('recsys_events');
    expect(eventsStreamName('prod.recsys')).toBe('prod_recsys_events');
    const subjects = eventsStreamSubjects('prod.recsys');
    expect(subjects).toEqual([
      'prod.recsys.events.feedback.>',
      'prod.recsys.events.impression.>',
      'prod.recsys.events.dead.>',
    ]);
    for (const mine of subjects) {
      for (const theirs of itemEventsSubjects('prod.recsys')) {
        expect(subjectsOverlap(mine, theirs)).toBe(false);
      }
    }
  });
});

describe('publishing events', () => {
  const store = (): MemoryStreamStore => new MemoryStreamStore();

  it('opens the stream beside the item-events stream, idempotently, with the configured limits', async () => {
    const streams = store();
    await streams.stream('recsys_items', { subjects: itemEventsSubjects('recsys') });
    const config = { maxAgeDays: 1, maxBytes: 1 << 20, duplicateWindowMs: 60_000 };
    const first = await openEventsStream(streams, 'recsys', config);
    await publishFeedback(first, 'recsys', 4, feedback() as unknown as FeedbackEvent);
    const again = await openEventsStream(streams, 'recsys', config);
    expect(again.name).toBe('recsys_events');
    expect((await again.info()).messages).toBe(1);
    await expect(
      openEventsStream(streams, 'recsys', { ...config, maxAgeDays: -1 }),
    ).rejects.toBeInstanceOf(BadRequestError);
  });

  it('stores an event id once, on its user subject, as readable JSON', async () => {
    const stream = await openEventsStream(store(), 'recsys');
    const event = feedback({ event_id: 'dup-1' }) as unknown as FeedbackEvent;
    const first = await publishFeedback(stream, 'recsys', 8, event);
    const retry = await publishFeedback(stream, 'recsys', 8, event);
    expect(first).toEqual({ seq: 1, duplicate: false });
    expect(retry).toEqual({ seq: 1, duplicate: true });
    const shown = impression() as unknown as ImpressionEvent;
    expect((await publishImpression(stream, 'recsys', 8, shown)).seq).toBe(2);

    const seen: StreamMessage[] = [];
    const reader = await stream.read('recsys.events.>', 1, (m) => void seen.push(m));
    await eventually(() => seen.length === 2);
    await reader.stop();
    expect(seen[0]!.subject).toBe(feedbackSubject('recsys', 8, 'u1'));
    expect(seen[1]!.subject).toBe(impressionSubject('recsys', 8, 'u1'));
    expect(JSON.parse(new TextDecoder().decode(seen[0]!.data))).toEqual(event);
    expect(seen[0]!.data).toEqual(encodeEvent(event));
    expect(seen[0]!.headers).toEqual({});
  });

  it('refuses a malformed event before anything is stored', async () => {
    const stream = await openEventsStream(store(), 'recsys');
    const bad = feedback({ type: 'hover' }) as unknown as FeedbackEvent;
    const err: unknown = await publishFeedback(stream, 'recsys', 8, bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as BadRequestError).field).toBe('type');
    const noItems = impression({ items: [] }) as unknown as ImpressionEvent;
    await expect(publishImpression(stream, 'recsys', 8, noItems)).rejects.toBeInstanceOf(
      BadRequestError,
    );
    expect((await stream.info()).messages).toBe(0);
  });
});
