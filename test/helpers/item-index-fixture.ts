/**
 * The hooks every suite of item-shard tests repeats: one small index for the suite, one cluster
 * per test.
 */
import { rm } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { TestCluster } from './cluster.js';
import { buildTestIndex } from './item-vectors.js';
import type { ItemVectors } from './item-vectors.js';

/** A test index built once for a `describe`, and the cluster each of its tests starts. */
export interface ItemIndexFixture {
  /** The index folder (set once `beforeAll` has run). */
  readonly dir: string;
  /** Keeps `cluster` to be closed after the test; returns it. */
  use(cluster: TestCluster): TestCluster;
}

/**
 * Registers the hooks of a suite of item-shard tests: the index of `items` is built before the
 * first test and removed after the last; the cluster a test starts is closed after it.
 */
export function itemIndexFixture(
  items: ItemVectors,
  options: { dims: number; shards: number; expansionSearch: number; modelVersion: string },
): ItemIndexFixture {
  let dir: string | undefined;
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    dir = await buildTestIndex(items, options);
  });
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });
  return {
    get dir(): string {
      if (dir === undefined) throw new Error('the test index is built in beforeAll');
      return dir;
    },
    use(started: TestCluster): TestCluster {
      cluster = started;
      return started;
    },
  };
}
