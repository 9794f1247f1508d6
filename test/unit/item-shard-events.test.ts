import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  itemEventsStreamName,
  itemEventsSubject,
  itemEventsSubjects,
  newestGeneration,
  validateItemEvent,
} from '../../actors/item-shard/index.js';
import type { ShardManifest } from '../../actors/item-shard/index.js';
import { badRequest } from '../helpers/assertions.js';

describe('item events', () => {
  it('names the stream and subjects under the prefix', () => {
    expect(itemEventsStreamName('prod.recsys')).toBe('prod_recsys_items');
    expect(itemEventsSubjects('recsys')).toEqual(['recsys.events.items.>']);
    expect(itemEventsSubject('recsys', 3)).toBe('recsys.events.items.3');
    expect(() => itemEventsSubject('recsys', -1)).toThrow(RangeError);
    expect(() => itemEventsStreamName('bad prefix')).toThrow(/prefix/);
  });

  it('checks an event as a call is checked, naming the field', () => {
    const vector = new Float32Array([0.6, 0.8]);
    expect(
      validateItemEvent(
        { op: 'upsert', model_version: 'm1', items: [{ item_id: 'a', vector }] },
        2,
      ),
    ).toEqual({ op: 'upsert', model_version: 'm1', items: [{ item_id: 'a', vector }] });
    expect(validateItemEvent({ op: 'delete', item_ids: ['a', 'b'] }, 2)).toEqual({
      op: 'delete',
      item_ids: ['a', 'b'],
    });
    expect(badRequest(() => validateItemEvent('x', 2)).field).toBe('payload');
    expect(badRequest(() => validateItemEvent({ op: 'rename' }, 2)).field).toBe('op');
    expect(
      badRequest(() => validateItemEvent({ op: 'upsert', items: [{ item_id: 'a', vector }] }, 2))
        .field,
    ).toBe('model_version');
    expect(
      badRequest(() =>
        validateItemEvent(
          { op: 'upsert', model_version: 'm1', items: [{ item_id: 'a', vector }] },
          3,
        ),
      ).field,
    ).toBe('items[0].vector');
    expect(badRequest(() => validateItemEvent({ op: 'delete', item_ids: [''] }, 2)).field).toBe(
      'item_ids[0]',
    );
  });
});

describe('compacted generations on disk', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const base: ShardManifest = {
    format: 'recsys-item-shard',
    formatVersion: 1,
    shard: 2,
    shards: 4,
    count: 10,
    dims: 2,
    metric: 'ip',
    connectivity: 16,
    expansionAdd: 128,
    modelVersion: 'm1',
    builtAt: '2026-01-01T00:00:00.000Z',
    buildSeconds: 1,
  };
  const write = async (name: string, manifest: Partial<ShardManifest> | undefined) => {
    const folder = join(dir!, name);
    await mkdir(folder, { recursive: true });
    if (manifest !== undefined) {
      await writeFile(join(folder, 'shard-2.json'), JSON.stringify({ ...base, ...manifest }));
    }
  };

  it('picks the one holding the most events, of this shard and this index only', async () => {
    dir = await mkdtemp(join(tmpdir(), 'recsys-generations-'));
    const ours = { baseVersion: 'm1@2026-01-01T00:00:00.000Z' };
    await write('shard-2-g1-aaaa', { ...ours, generation: 1, streamSeq: 40 });
    await write('shard-2-g2-bbbb', { ...ours, generation: 2, streamSeq: 90 });
    // Cut short: no manifest. Another index: other base. Another shard's folder name.
    await write('shard-2-g3-cccc', undefined);
    await write('shard-2-g5-dddd', { baseVersion: 'm0@2025-01-01', generation: 5, streamSeq: 500 });
    await write('shard-1-g9-eeee', { ...ours, generation: 9, streamSeq: 900 });
    const newest = await newestGeneration(dir, 2, base);
    expect(newest?.dir).toBe(join(dir, 'shard-2-g2-bbbb'));
    expect(newest?.manifest.streamSeq).toBe(90);
    expect(await newestGeneration(join(dir, 'missing'), 2, base)).toBeUndefined();
  });
});
