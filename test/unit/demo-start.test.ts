import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { prepareDemoIndex } from '../../actors/cli.js';
import { openShard, searchShard } from '../../actors/item-shard/index.js';
import { buildDemoModel } from '../../models/cli/demo.js';
import { loadCommandConfig } from '../../runtime/config/index.js';
import { silentLogger } from '../../runtime/log.js';

describe('recsys start on a fresh data folder', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('builds a demo data set, models and item index once, then leaves them', async () => {
    dir = await mkdtemp(join(tmpdir(), 'recsys-demo-'));
    const configPath = join(dir, 'config.yaml');
    await writeFile(configPath, `data:\n  dir: ${join(dir, 'data')}\n`);
    const config = loadCommandConfig(configPath, {});
    const log = silentLogger();
    let models = 0;
    const source = (path: string | undefined) => {
      models++;
      return buildDemoModel(path, {}, log);
    };
    const built = await prepareDemoIndex({ config, log, configPath }, source, {});
    expect(built).toBeDefined();
    expect(await readdir(join(dir, 'data', 'datasets'))).toEqual(['demo']);
    // A GBDT ranker came along, so the demo serves both stages.
    expect(await readdir(join(dir, 'data', 'models'))).toEqual(['ranker-gbdt', 'retrieval']);
    expect(await readdir(join(dir, 'data', 'models', 'ranker-gbdt'))).toHaveLength(1);
    const shard = await openShard(built!, 0, 64);
    expect(shard.manifest.count).toBeGreaterThan(100);
    // The demo data set's categories came along, so category filters work.
    const category = shard.categories?.[0];
    expect(category).toEqual(expect.any(String));
    const vector = new Float32Array(shard.manifest.dims).fill(1 / Math.sqrt(shard.manifest.dims));
    const hits = searchShard(shard, { vector, k: 3, categories: [category!] });
    expect(hits.length).toBeGreaterThan(0);
    expect(
      hits.every((hit) => shard.categories?.[shard.ids.indexOf(hit.item_id)] === category),
    ).toBe(true);
    // An index exists now: a second start builds nothing.
    expect(await prepareDemoIndex({ config, log, configPath }, source, {})).toBeUndefined();
    expect(models).toBe(1);
  }, 60_000);
});
