import { describe, expect, it } from 'vitest';
import { ShardDelta } from '../../actors/item-shard/delta.js';
import {
  MAX_ITEM_ID_LENGTH,
  validateDelete,
  validateSearch,
  validateStats,
  validateUpsert,
  unpackItems,
} from '../../actors/item-shard/messages.js';
import type { SearchReply } from '../../actors/item-shard/messages.js';
import { shardOf } from '../../actors/item-shard/index-file.js';
import { mergeTopK, shardRequests } from '../../actors/item-shard/scatter.js';
import { decode, encode } from '../../runtime/codec.js';
import { badRequest } from '../helpers/assertions.js';

const limits = { dims: 4, maxK: 100 };
const v = (...xs: number[]): Float32Array => Float32Array.from(xs);
const ok = v(1, 0, 0, 0);

describe('item-shard validators', () => {
  it('accept a well-formed search', () => {
    expect(
      validateSearch({ vector: ok, k: 10, exclude: ['a'], categories: ['c'] }, limits),
    ).toEqual({ vector: ok, k: 10, exclude: ['a'], categories: ['c'] });
    expect(validateSearch({ vector: ok, k: 1 }, { dims: undefined, maxK: 1 })).toEqual({
      vector: ok,
      k: 1,
    });
  });

  it.each([
    ['payload', 'not an object', 'payload'],
    ['vector missing', { k: 1 }, 'vector'],
    ['vector as JSON numbers', { vector: [1, 0, 0, 0], k: 1 }, 'vector'],
    ['wrong dimension', { vector: v(1, 0, 0), k: 1 }, 'vector'],
    ['NaN component', { vector: v(1, Number.NaN, 0, 0), k: 1 }, 'vector'],
    ['infinite component', { vector: v(1, 0, Number.POSITIVE_INFINITY, 0), k: 1 }, 'vector'],
    ['k zero', { vector: ok, k: 0 }, 'k'],
    ['k too large', { vector: ok, k: 101 }, 'k'],
    ['k fractional', { vector: ok, k: 2.5 }, 'k'],
    ['k a string', { vector: ok, k: '10' }, 'k'],
    ['unknown filter', { vector: ok, k: 1, category: ['x'] }, 'category'],
    ['exclude not a list', { vector: ok, k: 1, exclude: 'a' }, 'exclude'],
    ['empty id', { vector: ok, k: 1, exclude: ['a', ''] }, 'exclude[1]'],
    ['id not a string', { vector: ok, k: 1, exclude: [3] }, 'exclude[0]'],
    [
      'id too long',
      { vector: ok, k: 1, exclude: ['x'.repeat(MAX_ITEM_ID_LENGTH + 1)] },
      'exclude[0]',
    ],
    ['id with a control character', { vector: ok, k: 1, exclude: ['a\nb'] }, 'exclude[0]'],
    ['category empty', { vector: ok, k: 1, categories: [''] }, 'categories[0]'],
  ])('name the field of a bad search: %s', (_, payload, field) => {
    expect(badRequest(() => validateSearch(payload, limits)).field).toBe(field);
  });

  it('name the field of a bad upsert, delete or stats', () => {
    const upsert = (p: unknown): string => badRequest(() => validateUpsert(p, limits)).field;
    expect(upsert({ items: [] })).toBe('items');
    expect(upsert({ items: [{ item_id: 'a', vector: v(1) }] })).toBe('items[0].vector');
    expect(upsert({ items: [{ item_id: 'a', vector: ok }, { vector: ok }] })).toBe(
      'items[1].item_id',
    );
    expect(upsert({ items: [{ item_id: 'a', vector: ok, colour: 'red' }] })).toBe(
      'items[0].colour',
    );
    expect(upsert({ items: [{ item_id: 'a', vector: ok, category: 5 }] })).toBe(
      'items[0].category',
    );
    expect(upsert({ items: ['a'] })).toBe('items[0]');
    expect(badRequest(() => validateDelete({ item_ids: ['ok', ''] })).field).toBe('item_ids[1]');
    expect(badRequest(() => validateDelete({ ids: ['a'] })).field).toBe('ids');
    expect(badRequest(() => validateStats({ verbose: true })).field).toBe('verbose');
    expect(validateStats(undefined)).toEqual({});
  });
});

describe('shard delta', () => {
  it('hides replaced and deleted base items and searches its own exactly', () => {
    const delta = new ShardDelta(new Set(['a', 'b', 'c']), 'ip');
    delta.upsert({ item_id: 'b', vector: v(0, 1, 0, 0), category: 'x' });
    delta.upsert({ item_id: 'n', vector: v(1, 0, 0, 0) });
    expect(delta.isHidden('b')).toBe(true);
    expect(delta.isHidden('n')).toBe(false);
    expect(delta.live).toBe(4);
    const top = delta.search(ok, 10, undefined, undefined);
    expect(top.map((i) => i.item_id)).toEqual(['n', 'b']);
    expect(top[0]!.score).toBe(1);
    expect(delta.search(ok, 10, new Set(['n']), undefined).map((i) => i.item_id)).toEqual(['b']);
    expect(delta.search(ok, 10, undefined, new Set(['x'])).map((i) => i.item_id)).toEqual(['b']);

    expect(delta.delete('a')).toBe(true);
    expect(delta.delete('a')).toBe(false);
    expect(delta.delete('b')).toBe(true);
    expect(delta.delete('n')).toBe(true);
    expect(delta.delete('zzz')).toBe(false);
    expect(delta.size).toBe(0);
    expect(delta.tombstones).toBe(2);
    expect(delta.live).toBe(1);
    delta.upsert({ item_id: 'a', vector: ok });
    expect(delta.tombstones).toBe(1);
    expect(delta.live).toBe(2);
  });
});

describe('packed search replies', () => {
  const packed = (ids: string[], scores: number[]) => ({
    item_ids: ids,
    scores: Float32Array.from(scores),
  });

  it('travel as ids plus raw float32 scores, a subarray included', () => {
    const scores = Float32Array.from([0.9, 0.5, 0.25, 0.1]).subarray(1, 3);
    const reply: SearchReply = { item_ids: ['b', 'c'], scores, shard: 2, index_version: 'v1' };
    const encoded = encode(reply);
    const back = decode(encoded.data, encoded.headers) as SearchReply;
    expect(back.item_ids).toEqual(['b', 'c']);
    expect(back.scores).toBeInstanceOf(Float32Array);
    expect([...back.scores]).toEqual([...scores]);
    expect(back).toMatchObject({ shard: 2, index_version: 'v1' });
    expect(unpackItems(back)).toEqual([
      { item_id: 'b', score: scores[0] },
      { item_id: 'c', score: scores[1] },
    ]);
  });

  it('merge into the best k over every list, best first', () => {
    const merged = mergeTopK(
      [packed(['a', 'b', 'c'], [0.9, 0.5, 0.1]), packed([], []), packed(['x', 'y'], [0.7, 0.6])],
      4,
    );
    expect(merged.item_ids).toEqual(['a', 'x', 'y', 'b']);
    expect(merged.scores).toBeInstanceOf(Float32Array);
    expect([...merged.scores]).toEqual([...Float32Array.from([0.9, 0.7, 0.6, 0.5])]);
    const short = mergeTopK([packed(['a'], [1]), packed(['x'], [2])], 10);
    expect(short.item_ids).toEqual(['x', 'a']);
    expect(short.scores).toHaveLength(2);
    expect(mergeTopK([], 5)).toEqual({ item_ids: [], scores: new Float32Array(0) });
  });
});

describe('scatter requests', () => {
  const vector = Float32Array.from([0.5, -1, 2]);

  it('sends each shard only the exclusions of the items it holds', () => {
    const exclude = Array.from({ length: 40 }, (_, i) => `item-${i}`);
    const requests = shardRequests({ vector, k: 10, exclude, categories: ['a'] }, 3);
    expect(requests).toHaveLength(3);
    const union: string[] = [];
    requests.forEach((request, shard) => {
      const sent = decode(request.data, request.headers) as {
        vector: Float32Array;
        k: number;
        exclude?: string[];
        categories: string[];
      };
      expect(sent.vector).toEqual(vector);
      expect(sent.k).toBe(10);
      expect(sent.categories).toEqual(['a']);
      const own = sent.exclude ?? [];
      for (const item of own) expect(shardOf(item, 3)).toBe(shard);
      union.push(...own);
    });
    expect(union.sort()).toEqual([...exclude].sort());
  });

  it('leaves the exclusions out for a shard holding none, and encodes once without any', () => {
    const onlyShardOf = (shard: number): string[] =>
      Array.from({ length: 200 }, (_, i) => `x${i}`).filter((id) => shardOf(id, 2) === shard);
    const [first, second] = shardRequests({ vector, k: 5, exclude: onlyShardOf(1) }, 2);
    expect(decode(first!.data, first!.headers)).not.toHaveProperty('exclude');
    expect((decode(second!.data, second!.headers) as { exclude: string[] }).exclude).toEqual(
      onlyShardOf(1),
    );
    const plain = shardRequests({ vector, k: 5 }, 4);
    expect(new Set(plain).size).toBe(1);
  });
});
