/**
 * The actor kinds every `recsys` process knows, built from the resolved configuration. A kind
 * whose artefacts do not exist yet (no item index built) is left out unless the host was asked
 * for it by name, in which case start-up fails with what is missing.
 */
import { existsSync, readdirSync } from 'node:fs';
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
  const modelsDir = resolve(config.data.dir, 'models');
  if (wanted.has(RANK_KIND) || localRankerSlots(modelsDir).length > 0) {
    kinds.push(rankerKind({ modelsDir, load: (dir) => loadRanker(dir) }));
  }
  return kinds;
}
