/**
 * A real small world for the user actor's tests: the demo's seeded tiny synthetic data set, the
 * two-tower model and GBDT ranker trained on it, and a 2-shard item index, built once per test
 * file under a temporary folder (about 10 s). Nodes run the built-in kinds on it, with the data
 * set's batch features loaded into their online store.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runIndex } from '../../actors/cli.js';
import { createBuiltinKinds } from '../../actors/kinds.js';
import type { RecommendReply, UserProtocol } from '../../actors/user/index.js';
import { buildDemoModel } from '../../models/cli/demo.js';
import { readItems } from '../../models/data/dataset-io.js';
import { loadBatchFeatures } from '../../models/features/materialize.js';
import type { ActorKind } from '../../runtime/actor/actor.js';
import type { Protocol } from '../../runtime/actor/protocol.js';
import { openEventsStream, publishFeedback } from '../../runtime/events/index.js';
import type { FeedbackEvent, FeedbackType } from '../../runtime/events/index.js';
import { resolveConfig } from '../../runtime/config/index.js';
import { silentLogger } from '../../runtime/log.js';
import type { RunningNode } from '../../runtime/node.js';
import { testConfig } from './cluster.js';
import type { RawConfig, TestCluster } from './cluster.js';

export const WORLD_SHARDS = 2;

export interface UserWorld {
  readonly root: string;
  readonly dataDir: string;
  readonly datasetDir: string;
  readonly modelDir: string;
  /** Item ids by category name. */
  readonly itemsByCategory: ReadonlyMap<string, readonly string[]>;
  /** Category of each item id. */
  readonly categoryOf: ReadonlyMap<string, string>;
  /** User ids the model knows. */
  readonly users: readonly string[];
  /** The model's popular items, most first. */
  readonly popular: readonly string[];
  /** The raw config every node of this world starts with. */
  readonly raw: RawConfig;
  close(): Promise<void>;
}

export async function buildUserWorld(): Promise<UserWorld> {
  const root = await mkdtemp(join(tmpdir(), 'recsys-user-world-'));
  const dataDir = join(root, 'data');
  const configPath = join(root, 'config.yaml');
  await writeFile(configPath, `data:\n  dir: ${dataDir}\n`);
  const demo = await buildDemoModel(configPath, {}, silentLogger());
  await runIndex(
    {
      model: demo.modelDir,
      data: demo.datasetDir,
      config: configPath,
      shards: WORLD_SHARDS,
      progress: false,
    },
    {},
  );
  const items = await readItems(demo.datasetDir);
  const itemsByCategory = new Map<string, string[]>();
  const categoryOf = new Map<string, string>();
  items.ids.forEach((id, i) => {
    const category = items.categories[items.category[i]!]!;
    categoryOf.set(id, category);
    const list = itemsByCategory.get(category);
    if (list === undefined) itemsByCategory.set(category, [id]);
    else list.push(id);
  });
  const users = JSON.parse(
    await readFile(join(demo.modelDir, 'user_ids.json'), 'utf8'),
  ) as string[];
  return {
    root,
    dataDir,
    datasetDir: demo.datasetDir,
    modelDir: demo.modelDir,
    itemsByCategory,
    categoryOf,
    users,
    popular: JSON.parse(
      await readFile(join(demo.modelDir, 'popular_items.json'), 'utf8'),
    ) as string[],
    raw: {
      data: { dir: dataDir },
      items: { shards: WORLD_SHARDS, workers: 1 },
      features: { embedded_dataset: '' },
    },
    close: () => rm(root, { recursive: true, force: true }),
  };
}

/** Merges raw config sections, section by section. */
export function mergeRaw(base: RawConfig, over: RawConfig): RawConfig {
  const out: RawConfig = { ...base };
  for (const [section, values] of Object.entries(over)) {
    out[section] = { ...out[section], ...values };
  }
  return out;
}

/**
 * Starts a node of `cluster` with the built-in kinds of `world` (plus `extra`), as `over` changes
 * the config, and loads the data set's batch features into its online store.
 */
export async function startWorldNode(
  cluster: TestCluster,
  world: UserWorld,
  options: { over?: RawConfig; extra?: ActorKind<Protocol>[]; natsUrl?: string } = {},
): Promise<RunningNode> {
  const raw = mergeRaw(world.raw, options.over ?? {});
  const config = testConfig(cluster.transport, options.natsUrl, raw);
  const builtin = createBuiltinKinds({ config, log: silentLogger() });
  const extraNames = new Set((options.extra ?? []).map((kind) => kind.name));
  const kinds = [...builtin.filter((kind) => !extraNames.has(kind.name)), ...(options.extra ?? [])];
  const node = await cluster.node(kinds, raw);
  await loadBatchFeatures(
    node.features.store,
    node.features.registry.definitions,
    world.datasetDir,
  );
  return node;
}

export function recommend(
  node: RunningNode,
  user: string,
  request: Record<string, unknown> = {},
  timeoutMs = 2000,
): Promise<RecommendReply> {
  return node.client.keyed<UserProtocol>('user').ask(user, 'recommend', request, { timeoutMs });
}

let eventCounter = 0;

export function feedbackEvent(
  user: string,
  item: string,
  type: FeedbackType = 'click',
  tsMs = Date.now(),
): FeedbackEvent {
  return {
    event_id: `ev-${process.pid}-${++eventCounter}`,
    user_id: user,
    item_id: item,
    type,
    ts_ms: tsMs,
  };
}

/** As the gateway does: stored on the stream first, then told to the user's actor. */
export async function sendFeedback(node: RunningNode, events: FeedbackEvent[]): Promise<void> {
  const prefix = node.host.subjects.prefix;
  const stream = await openEventsStream(node.streams, prefix, resolveConfig({}).events);
  for (const event of events) await publishFeedback(stream, prefix, node.client.partitions, event);
  const byUser = new Map<string, FeedbackEvent[]>();
  for (const event of events)
    byUser.set(event.user_id, [...(byUser.get(event.user_id) ?? []), event]);
  for (const [user, list] of byUser) {
    await node.client
      .keyed<UserProtocol>('user')
      .ask(user, 'observe', { events: list }, { timeoutMs: 5000 });
  }
}

/** Share of `items` whose category is `category`. */
export function shareOf(reply: RecommendReply, category: string): number {
  if (reply.items.length === 0) return 0;
  return reply.items.filter((item) => item.category === category).length / reply.items.length;
}
