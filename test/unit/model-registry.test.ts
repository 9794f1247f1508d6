/**
 * The model registry on the in-memory KV store (the NATS KV store passes the same KV contract
 * suite): promotions, reads, the watch that serving replicas follow, bad slot names.
 */
import { describe, expect, it } from 'vitest';
import { ModelRegistry, registryBucketName } from '../../models/registry/index.js';
import type { RegistryEntry } from '../../models/registry/index.js';
import { BadRequestError } from '../../runtime/errors.js';
import { MemoryKvStore } from '../../runtime/kv/memory.js';
import { eventually } from '../helpers/eventually.js';

describe('the model registry', () => {
  it('names its bucket after the prefix', () => {
    expect(registryBucketName('prod.recsys')).toBe('prod_recsys-models');
  });

  it('keeps the promoted version of each slot, the newest promotion winning', async () => {
    const registry = await ModelRegistry.open(new MemoryKvStore(), 'recsys');
    expect(await registry.current('ranker.gbdt')).toBeNull();
    await registry.promote('ranker.gbdt', 'v1', 'models/gbdt/v1');
    await registry.promote('ranker.deepfm', 'd1', 'models/deepfm/d1');
    const second = await registry.promote('ranker.gbdt', 'v2', 'models/gbdt/v2');
    expect(await registry.current('ranker.gbdt')).toEqual(second);
    expect((await registry.list()).map((entry) => `${entry.slot}=${entry.version}`)).toEqual([
      'ranker.deepfm=d1',
      'ranker.gbdt=v2',
    ]);
  });

  it('tells a watcher the current entry and every later promotion of its slot only', async () => {
    const kv = new MemoryKvStore();
    const registry = await ModelRegistry.open(kv, 'recsys');
    await registry.promote('ranker.gbdt', 'v1', 'a');
    const seen: RegistryEntry[] = [];
    const watch = await registry.watch('ranker.gbdt', (entry) => seen.push(entry));
    try {
      await registry.promote('ranker.deepfm', 'd1', 'b');
      await registry.promote('ranker.gbdt', 'v2', 'c');
      await eventually(() => expect(seen.map((entry) => entry.version)).toEqual(['v1', 'v2']));
    } finally {
      watch.stop();
    }
  });

  it('refuses a slot that is not dot-separated tokens', async () => {
    const registry = await ModelRegistry.open(new MemoryKvStore(), 'recsys');
    for (const slot of ['', 'ranker gbdt', 'ranker..gbdt', 'ranker.*']) {
      const err = await registry.promote(slot, 'v', 'd').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).field).toBe('slot');
    }
  });
});
