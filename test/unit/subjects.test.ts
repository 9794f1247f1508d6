import { describe, expect, it } from 'vitest';

import { BadRequestError } from '../../runtime/errors.js';
import {
  assertPrefix,
  assertToken,
  decodeKey,
  encodeKey,
  Subjects,
} from '../../runtime/subjects.js';
import { badRequest, prng } from '../helpers/assertions.js';

/** Characters that stress the encoding: subject syntax, the escape itself, whitespace, multi-byte. */
const TRICKY = [
  '.',
  '*',
  '>',
  ' ',
  '%',
  '%2E',
  '\t',
  '\n',
  '\0',
  '/',
  '$',
  'é',
  '中',
  '😀',
  '\u200b',
];

/** A random well-formed string mixing plain, tricky and arbitrary code points. */
function randomKey(random: () => number): string {
  const length = 1 + Math.floor(random() * 12);
  let key = '';
  for (let i = 0; i < length; i++) {
    const pick = random();
    if (pick < 0.4) {
      key += 'abcXYZ019_-'.charAt(Math.floor(random() * 11));
    } else if (pick < 0.7) {
      key += TRICKY[Math.floor(random() * TRICKY.length)] ?? '';
    } else {
      let cp = Math.floor(random() * 0x110000);
      // Lone surrogates are not text: they cannot be UTF-8 encoded.
      if (cp >= 0xd800 && cp <= 0xdfff) cp -= 0x800;
      key += String.fromCodePoint(cp);
    }
  }
  return key;
}

describe('assertToken', () => {
  it('accepts plain tokens and returns them', () => {
    for (const token of ['user', 'item-shard', 'v2_1', 'A', '0', '-', '_']) {
      expect(assertToken('kind', token)).toBe(token);
    }
  });

  it.each([
    ['empty', ''],
    ['space', 'a b'],
    ['leading space', ' a'],
    ['dot', 'a.b'],
    ['star', '*'],
    ['star inside', 'a*'],
    ['gt', '>'],
    ['tab', 'a\tb'],
    ['newline', 'a\n'],
    ['non-ASCII letter', 'é'],
    ['emoji', 'a😀'],
    ['percent', 'a%2E'],
  ])('rejects %s', (_what, token) => {
    const err = badRequest(() => assertToken('op', token));
    expect(err.field).toBe('op');
    expect(err.message).toContain(JSON.stringify(token));
  });

  it('checks every token of a dotted prefix', () => {
    expect(assertPrefix('recsys')).toBe('recsys');
    expect(assertPrefix('prod.recsys')).toBe('prod.recsys');
    for (const prefix of ['', '.recsys', 'recsys.', 'prod..recsys', 'prod.*', 'recsys.>', 'a b']) {
      expect(badRequest(() => assertPrefix(prefix)).field, prefix).toBe('prefix');
    }
  });
});

describe('encodeKey / decodeKey', () => {
  it('refuses a % not followed by two hex digits, naming the subject', () => {
    for (const token of ['a%ZZ', 'a%4', '%', 'ab%g1']) {
      expect(() => decodeKey(token), token).toThrow(/subject: .*two hex digits/);
    }
    expect(new Subjects('recsys').parseKeyed('recsys.user.3.a%ZZ.state')).toBeUndefined();
  });

  it('leaves readable keys alone', () => {
    for (const key of ['user_123', 'u1', 'ABC-def_09', '-', '_']) {
      expect(encodeKey(key)).toBe(key);
      expect(decodeKey(key)).toBe(key);
    }
  });

  it('escapes subject syntax, the escape character, spaces and non-ASCII as UTF-8 bytes', () => {
    expect(encodeKey('a.b')).toBe('a%2Eb');
    expect(encodeKey('*')).toBe('%2A');
    expect(encodeKey('>')).toBe('%3E');
    expect(encodeKey('a b')).toBe('a%20b');
    expect(encodeKey('100%')).toBe('100%25');
    expect(encodeKey('%2E')).toBe('%252E');
    expect(encodeKey('é')).toBe('%C3%A9');
    expect(encodeKey('中')).toBe('%E4%B8%AD');
    expect(encodeKey('😀')).toBe('%F0%9F%98%80');
    expect(encodeKey('user.é 1')).toBe('user%2E%C3%A9%201');
  });

  it('decodes what it encoded', () => {
    for (const key of [
      'a.b',
      '*',
      '>',
      'a b',
      '100%',
      '%2E',
      'é',
      '中文',
      '😀👍🏽',
      'x.*.>',
      '\t\n',
    ]) {
      expect(decodeKey(encodeKey(key)), JSON.stringify(key)).toBe(key);
    }
  });

  it('refuses an empty key', () => {
    expect(badRequest(() => encodeKey('')).field).toBe('key');
  });

  it('round-trips many random keys into one safe token each', () => {
    const random = prng(20240601);
    const seen = new Map<string, string>();
    for (let i = 0; i < 5_000; i++) {
      const key = randomKey(random);
      const token = encodeKey(key);
      expect(token, JSON.stringify(key)).toMatch(/^[A-Za-z0-9_%-]+$/);
      expect(token).not.toMatch(/[.*> \t]/);
      expect(decodeKey(token), JSON.stringify(key)).toBe(key);
      // Distinct keys never share a token (so never share an actor).
      const previous = seen.get(token);
      if (previous !== undefined) expect(previous).toBe(key);
      seen.set(token, key);
    }
    expect(seen.size).toBeGreaterThan(4_000);
  });
});

describe('Subjects', () => {
  const subjects = new Subjects('recsys');

  it('refuses a bad prefix at construction', () => {
    expect(() => new Subjects('recsys.*')).toThrow(BadRequestError);
    expect(() => new Subjects('')).toThrow(BadRequestError);
    expect(new Subjects('prod.recsys').prefix).toBe('prod.recsys');
  });

  it('builds keyed subjects with the key in one token', () => {
    expect(subjects.keyed('user', 3, 'u1', 'recommend')).toBe('recsys.user.3.u1.recommend');
    expect(subjects.keyed('user', 0, 'a.b', 'state')).toBe('recsys.user.0.a%2Eb.state');
    expect(subjects.keyed('user', 63, '>', 'state')).toBe('recsys.user.63.%3E.state');
    expect(subjects.keyedPartition('user', 5)).toBe('recsys.user.5.>');
  });

  it('refuses bad kinds, ops and keys in keyed subjects', () => {
    expect(badRequest(() => subjects.keyed('us.er', 1, 'u1', 'state')).field).toBe('kind');
    expect(badRequest(() => subjects.keyed('user', 1, 'u1', 'st*te')).field).toBe('op');
    expect(badRequest(() => subjects.keyed('user', 1, 'u1', '')).field).toBe('op');
    expect(badRequest(() => subjects.keyed('user', 1, '', 'state')).field).toBe('key');
    expect(badRequest(() => subjects.keyedPartition('*', 1)).field).toBe('kind');
  });

  it('parses the keyed subjects it builds', () => {
    const random = prng(99);
    for (const prefix of ['recsys', 'prod.recsys']) {
      const s = new Subjects(prefix);
      for (let i = 0; i < 500; i++) {
        const key = randomKey(random);
        const partition = Math.floor(random() * 4096);
        const subject = s.keyed('user', partition, key, 'recommend');
        expect(subject.split('.')).toHaveLength(prefix.split('.').length + 4);
        expect(s.parseKeyed(subject), JSON.stringify(key)).toEqual({
          kind: 'user',
          partition,
          key,
          op: 'recommend',
        });
      }
    }
  });

  it('does not parse subjects that are not keyed subjects of its prefix', () => {
    for (const subject of [
      'other.user.3.u1.state',
      'recsysx.user.3.u1.state',
      'recsys_user.3.u1.state',
      'recsys.user.3.u1',
      'recsys.user.3.u1.state.extra',
      'recsys.user.-1.u1.state',
      'recsys.user.1.5.u1.state',
      'recsys.user.x.u1.state',
      'recsys',
    ]) {
      expect(subjects.parseKeyed(subject), subject).toBeUndefined();
    }
    expect(new Subjects('prod.recsys').parseKeyed('recsys.user.3.u1.state')).toBeUndefined();
  });

  it('builds and parses grouped subjects', () => {
    expect(subjects.grouped('items', '3', 'search')).toBe('recsys.items.3.search');
    expect(subjects.groupedAll('items', '3')).toBe('recsys.items.3.*');
    expect(subjects.queueGroup('items', '3')).toBe('recsys.items.3');
    expect(subjects.parseGrouped('recsys.items.3.search')).toEqual({
      kind: 'items',
      group: '3',
      op: 'search',
    });
    const prod = new Subjects('prod.recsys');
    const subject = prod.grouped('rank', 'gbdt-v7', 'rank');
    expect(subject).toBe('prod.recsys.rank.gbdt-v7.rank');
    expect(prod.parseGrouped(subject)).toEqual({ kind: 'rank', group: 'gbdt-v7', op: 'rank' });

    expect(subjects.parseGrouped('recsys.items.3')).toBeUndefined();
    expect(subjects.parseGrouped('recsys.items.3.search.x')).toBeUndefined();
    expect(subjects.parseGrouped('other.items.3.search')).toBeUndefined();
    expect(subjects.parseGrouped('recsys_items.3.search')).toBeUndefined();
    expect(badRequest(() => subjects.grouped('items', '3.1', 'search')).field).toBe('group');
    expect(badRequest(() => subjects.groupedAll('items', '>')).field).toBe('group');
    expect(badRequest(() => subjects.queueGroup('items', '')).field).toBe('group');
  });

  it('names KV buckets without dots', () => {
    expect(subjects.bucket('members')).toBe('recsys-members');
    expect(new Subjects('prod.recsys').bucket('leases')).toBe('prod_recsys-leases');
    expect(new Subjects('a.b.c').bucket('models')).toBe('a_b_c-models');
    expect(badRequest(() => subjects.bucket('lea.ses')).field).toBe('bucket');
    expect(badRequest(() => subjects.bucket('')).field).toBe('bucket');
  });
});
