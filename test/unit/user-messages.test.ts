/**
 * The user actor's validators: every malformed request is refused with `BadRequestError` naming
 * the field, and a good one comes back with only its known fields.
 */
import { describe, expect, it } from 'vitest';
import {
  MAX_EXCLUDE,
  validateObserve,
  validateRecommend,
  validateState,
} from '../../actors/user/index.js';
import { BadRequestError } from '../../runtime/errors.js';

const limits = { maxCount: 100 };

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequestError);
    return (err as BadRequestError).field;
  }
  throw new Error('expected a BadRequestError');
}

const click = {
  event_id: 'e1',
  user_id: 'u1',
  item_id: 'i1',
  type: 'click',
  ts_ms: 1_700_000_000_000,
};

describe('validateRecommend', () => {
  it('accepts an empty request and every field', () => {
    expect(validateRecommend({}, limits)).toEqual({});
    expect(validateRecommend(undefined, limits)).toEqual({});
    expect(
      validateRecommend(
        { count: 5, exclude: ['a'], categories: ['c'], now_ms: 1_700_000_000_000 },
        limits,
      ),
    ).toEqual({ count: 5, exclude: ['a'], categories: ['c'], now_ms: 1_700_000_000_000 });
  });

  it('refuses a bad count', () => {
    expect(fieldOf(() => validateRecommend({ count: 0 }, limits))).toBe('count');
    expect(fieldOf(() => validateRecommend({ count: 2.5 }, limits))).toBe('count');
    expect(fieldOf(() => validateRecommend({ count: '3' }, limits))).toBe('count');
    expect(fieldOf(() => validateRecommend({ count: 101 }, limits))).toBe('count');
  });

  it('refuses a bad exclude or categories list, naming the entry', () => {
    expect(fieldOf(() => validateRecommend({ exclude: 'a' }, limits))).toBe('exclude');
    expect(fieldOf(() => validateRecommend({ exclude: ['a', ''] }, limits))).toBe('exclude[1]');
    expect(fieldOf(() => validateRecommend({ exclude: ['a', 7] }, limits))).toBe('exclude[1]');
    const tooMany = Array.from({ length: MAX_EXCLUDE + 1 }, (_, i) => `i${i}`);
    expect(fieldOf(() => validateRecommend({ exclude: tooMany }, limits))).toBe('exclude');
    expect(fieldOf(() => validateRecommend({ categories: [] }, limits))).toBe('categories');
    expect(fieldOf(() => validateRecommend({ categories: [null] }, limits))).toBe('categories[0]');
  });

  it('refuses a bad now_ms, an unknown field and a non-object', () => {
    expect(fieldOf(() => validateRecommend({ now_ms: -1 }, limits))).toBe('now_ms');
    expect(fieldOf(() => validateRecommend({ now_ms: Number.NaN }, limits))).toBe('now_ms');
    expect(fieldOf(() => validateRecommend({ count: 3, limit: 3 }, limits))).toBe('limit');
    expect(fieldOf(() => validateRecommend([], limits))).toBe('request');
  });
});

describe('validateObserve', () => {
  it('accepts feedback events', () => {
    expect(
      validateObserve({ events: [click, { ...click, event_id: 'e2', type: 'view' }] }),
    ).toMatchObject({ events: [{ event_id: 'e1' }, { event_id: 'e2', type: 'view' }] });
  });

  it('names the event and its field', () => {
    expect(fieldOf(() => validateObserve({ events: [] }))).toBe('events');
    expect(fieldOf(() => validateObserve({}))).toBe('events');
    expect(fieldOf(() => validateObserve({ events: [click, { ...click, type: 'poke' }] }))).toBe(
      'events[1].type',
    );
    expect(fieldOf(() => validateObserve({ events: [{ ...click, extra: 1 }] }))).toBe(
      'events[0].extra',
    );
    expect(fieldOf(() => validateObserve({ events: [7] }))).toBe('events[0]');
    expect(fieldOf(() => validateObserve({ events: [click], user_id: 'u1' }))).toBe('user_id');
  });
});

describe('validateState', () => {
  it('takes nothing', () => {
    expect(validateState({})).toEqual({});
    expect(validateState(undefined)).toEqual({});
    expect(fieldOf(() => validateState({ verbose: true }))).toBe('verbose');
  });
});
