/**
 * The `rank` actor on the in-process cluster: a GBDT ranker trained here on rows of the ranking
 * schema, served from its artefact folder; candidates come back sorted by its scores; bad requests
 * are refused naming the field; a promotion in the registry swaps the model without a restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rankerKind } from '../../actors/ranker/index.js';
import type { RankRequest, RankerProtocol } from '../../actors/ranker/index.js';
import { trainGbdt } from '../../models/gbdt/index.js';
import { rankingSchema } from '../../models/ranking/features.js';
import { writeGbdtRankerArtifact } from '../../models/ranking/gbdt-artifact.js';
import { loadRanker } from '../../models/ranking/ranker.js';
import { ModelRegistry } from '../../models/registry/index.js';
import { BadRequestError } from '../../runtime/errors.js';
import type { RunningNode } from '../../runtime/node.js';
import { testCluster, uniquePrefix } from '../helpers/cluster.js';
import type { TestCluster } from '../helpers/cluster.js';
import { eventually } from '../helpers/eventually.js';

const schema = rankingSchema();
const RETRIEVAL = schema.names.indexOf('retrieval_score');

/**
 * Query groups whose graded label follows the retrieval score (`sign` 1) or its opposite (-1):
 * two rankers trained on the two sets order the same candidates in opposite ways.
 */
function trainingRows(sign: 1 | -1) {
  const groups = 60;
  const perGroup = 10;
  const n = groups * perGroup;
  const features = new Float64Array(n * schema.size).fill(Number.NaN);
  const labels = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const score = ((i * 7919) % 1000) / 1000;
    features[i * schema.size + RETRIEVAL] = score;
    labels[i] = Math.floor(sign === 1 ? score * 4.99 : (1 - score) * 4.99);
  }
  return { features, labels, groups: new Int32Array(groups).fill(perGroup) };
}

async function trainArtifact(root: string, sign: 1 | -1, at: Date): Promise<string> {
  const rows = trainingRows(sign);
  const { model } = trainGbdt(
    {
      train: {
        features: rows.features,
        numFeatures: schema.size,
        labels: rows.labels,
        groups: rows.groups,
        featureNames: schema.names,
      },
    },
    { objective: 'lambdarank', numIterations: 20, numLeaves: 7, minDataInLeaf: 5 },
  );
  return (await writeGbdtRankerArtifact(root, { model, schema, now: at })).dir;
}

describe('the rank actor, in process', () => {
  let modelsDir = '';
  let ascending = '';
  let descending = '';
  let cluster: TestCluster | undefined;

  beforeAll(async () => {
    modelsDir = await mkdtemp(join(tmpdir(), 'recsys-ranker-'));
    const root = join(modelsDir, 'ranker-gbdt');
    descending = await trainArtifact(root, -1, new Date(Date.UTC(2026, 0, 1)));
    // The newest folder: what a slot with no promotion serves.
    ascending = await trainArtifact(root, 1, new Date(Date.UTC(2026, 0, 2)));
  });
  afterAll(async () => {
    await rm(modelsDir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  const start = async (): Promise<RunningNode> => {
    cluster = testCluster(undefined, { prefix: uniquePrefix('r') });
    return cluster.node([rankerKind({ modelsDir, load: (dir) => loadRanker(dir) })]);
  };
  // Requests are sent as given, malformed ones included: the actor's validator judges them.
  const rank = (node: RunningNode, request: unknown) =>
    node.client.grouped<RankerProtocol>('rank').ask('gbdt', 'rank', request as RankRequest);
  const candidates = [
    { item_id: 'low', score: 0.1 },
    { item_id: 'high', score: 0.9 },
    { item_id: 'mid', score: 0.5 },
  ];

  it('scores the candidates with the newest model and returns them best first', async () => {
    const node = await start();
    const reply = await rank(node, { user_id: 'u1', candidates });
    expect(reply.items.map((item) => item.item_id)).toEqual(['high', 'mid', 'low']);
    expect(reply.items[0]!.score).toBeGreaterThan(reply.items[2]!.score);
    expect(reply.model_version).toBe(ascending.split('/').at(-1));
    expect(reply.degraded).toEqual([]);
    // top_k: every candidate is scored, only the best come back.
    const top = await rank(node, { user_id: 'u1', candidates, top_k: 2 });
    expect(top.items.map((item) => item.item_id)).toEqual(['high', 'mid']);
    const stats = await node.client.grouped<RankerProtocol>('rank').ask('gbdt', 'stats', {});
    expect(stats).toMatchObject({
      slot: 'ranker.gbdt',
      requests: 2,
      batch_max: 3,
      model_kind: 'gbdt',
    });
  });

  it('switches to a promoted model without a restart', async () => {
    const node = await start();
    const registry = await ModelRegistry.open(node.kv, node.host.subjects.prefix);
    await registry.promote('ranker.gbdt', 'descending', descending);
    await eventually(async () => {
      const reply = await rank(node, { user_id: 'u1', candidates });
      expect(reply.items.map((item) => item.item_id)).toEqual(['low', 'mid', 'high']);
      expect(reply.model_version).toBe(descending.split('/').at(-1));
    });
  });

  it('refuses a malformed request, naming the field, and goes on serving', async () => {
    const node = await start();
    const field = async (request: unknown): Promise<string> => {
      const err = await rank(node, request).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      return (err as BadRequestError).field;
    };
    expect(await field({ user_id: 'u1', candidates: [] })).toBe('candidates');
    expect(await field({ user_id: '', candidates })).toBe('user_id');
    expect(await field({ user_id: 'u1', candidates: [{ item_id: 'a', score: 'x' }] })).toBe(
      'candidates[0].score',
    );
    expect(
      await field({ user_id: 'u1', candidates: [...candidates, { item_id: 'low', score: 1 }] }),
    ).toBe('candidates[3].item_id');
    expect(await field({ user_id: 'u1', candidates, features: [] })).toBe('features');
    expect(await field({ user_id: 'u1', candidates, top_k: 0 })).toBe('top_k');
    expect(await field({ user_id: 'u1', candidates, top_k: 1.5 })).toBe('top_k');
    const reply = await rank(node, { user_id: 'u1', candidates: candidates.slice(0, 1) });
    expect(reply.items).toHaveLength(1);
  });
});
