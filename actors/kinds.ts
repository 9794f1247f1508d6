/**
 * The actor kinds every `recsys` process knows, built from the resolved configuration. A kind
 * whose artefacts do not exist yet (no item index built) is left out unless the host was asked
 * for it by name, in which case start-up fails with what is missing.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ActorKind } from '../runtime/actor/actor.js';
import type { Protocol } from '../runtime/actor/protocol.js';
import type { KindModuleContext } from '../runtime/cli/kinds.js';
import type { ResolvedConfig } from '../runtime/config/index.js';
import { ConfigError } from '../runtime/errors.js';
import { loadConfiguredDefinitions } from '../runtime/features/definitions.js';
import { featuresKind } from './features/index.js';
import { itemShardKind } from './item-shard/index.js';
import { loadRanker } from '../models/ranking/ranker.js';
import { RANK_KIND, localRankerSlots, rankerKind } from './ranker/index.js';
import { shardFiles } from './item-shard/index-file.js';
import type { ShardManifest } from './item-shard/index-file.js';
import { USER_FEED_KIND, USER_KIND, userFeedKind, userKind } from './user/index.js';

/**
 * The retrieval model an item index was built from, `<data.dir>/models/retrieval/<model
 * version>` (the version its shard manifests name), and its shard count; `undefined` when the
 * index cannot say or the folder is not there.
 */
export function resolveIndexModel(
  config: ResolvedConfig,
  indexDir: string,
): { modelDir: string; shards: number } | undefined {
  let manifest: ShardManifest;
  try {
    manifest = JSON.parse(readFileSync(shardFiles(indexDir, 0).manifest, 'utf8')) as ShardManifest;
  } catch {
    return undefined;
  }
  const modelDir = resolve(config.data.dir, 'models', 'retrieval', manifest.modelVersion);
  return existsSync(modelDir) ? { modelDir, shards: manifest.shards } : undefined;
}

/** The index folder the item shards serve: `items.index_version`, else the newest one built. */
export function resolveIndexDir(config: ResolvedConfig): string | undefined {
  const root = resolve(config.data.dir, 'indexes');
  if (config.items.indexVersion !== '') {
    const dir = join(root, config.items.indexVersion);
    if (!existsSync(dir)) {
      throw new ConfigError(
        'items.index_version',
        `no index at ${dir} (build one with recsys index)`,
      );
    }
    return dir;
  }
  if (!existsSync(root)) return undefined;
  // Versions start with their build time, so the last in name order is the newest.
  const versions = readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  const newest = versions.at(-1);
  return newest === undefined ? undefined : join(root, newest);
}

export function createBuiltinKinds({ config, log }: KindModuleContext): ActorKind<Protocol>[] {
  const kinds: ActorKind<Protocol>[] = [
    featuresKind({
      definitions: loadConfiguredDefinitions(config.features),
      events: config.events,
    }),
  ];
  const wanted = new Set(config.host.actors);
  const indexDir = resolveIndexDir(config);
  if (indexDir !== undefined) {
    kinds.push(
      itemShardKind({
        indexDir,
        maxK: config.items.maxK,
        workers: config.items.workers,
        expansionSearch: config.items.expansionSearch,
        shards: config.items.shards,
        compactionThreshold: config.items.compactionThreshold,
        counters: { maxItems: config.items.counterMaxItems },
        eventsMaxAgeMs: config.items.eventsMaxAgeDays * 24 * 60 * 60 * 1000,
        events: config.events,
      }),
    );
  } else if (wanted.has('items')) {
    throw new ConfigError(
      'host.actors',
      `items needs an item index under ${resolve(config.data.dir, 'indexes')} (build one with recsys index)`,
    );
  } else {
    log.info('no item index built yet: item shards are not started');
  }
  const model = indexDir === undefined ? undefined : resolveIndexModel(config, indexDir);
  if (model !== undefined) {
    kinds.push(
      userKind({
        modelDir: model.modelDir,
        shards: model.shards,
        recommend: config.recommend,
        events: config.events,
        historyLength: config.retrieval.historyLength,
        log: log.child({ module: 'user-model' }),
      }),
      userFeedKind({ events: config.events, replayMs: config.recommend.replayHours * 3_600_000 }),
    );
  } else if (wanted.has(USER_KIND) || wanted.has(USER_FEED_KIND)) {
    throw new ConfigError(
      'host.actors',
      indexDir === undefined
        ? `user needs an item index under ${resolve(config.data.dir, 'indexes')} (build one with recsys index)`
        : `user needs the retrieval model the item index ${indexDir} was built from, under ${resolve(config.data.dir, 'models', 'retrieval')}`,
    );
  } else {
    log.info('no item index and retrieval model: user actors are not started');
  }
  const modelsDir = resolve(config.data.dir, 'models');
  if (wanted.has(RANK_KIND) || localRankerSlots(modelsDir).length > 0) {
    kinds.push(rankerKind({ modelsDir, load: (dir) => loadRanker(dir) }));
  }
  return kinds;
}
