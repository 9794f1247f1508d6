/**
 * `recsys train ranker` and `recsys eval ranking` on a tiny generated world with a tiny retrieval
 * model: the training command writes a GBDT and a DeepFM folder that `loadRanker` opens, trained
 * only on events before the test part; the evaluation prints the retrieval order, both rankers and
 * popularity over the same queries; bad arguments and models that do not fit are refused by name.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { registerEvalCommand } from '../../models/cli/eval.js';
import { registerEvalRankingCommand, runEvalRanking } from '../../models/cli/eval-ranking.js';
import { registerTrainCommands, runTrainRetrieval } from '../../models/cli/train.js';
import {
  registerTrainRankerCommand,
  resolveModelDir,
  runTrainRanker,
} from '../../models/cli/train-ranker.js';
import type { TrainRankerFlags, TrainRankerResult } from '../../models/cli/train-ranker.js';
import { DataOptionError } from '../../models/data/errors.js';
import { SCALES, generateDataset } from '../../models/data/generate.js';
import { readGbdtRankerArtifact, RankerArtifactError } from '../../models/ranking/gbdt-artifact.js';
import type { RankingExamples } from '../../models/ranking/examples.js';
import { rankingSchema } from '../../models/ranking/features.js';
import { loadRanker } from '../../models/ranking/ranker.js';
import {
  DEFAULT_RANKER_FEATURES,
  userBalancedQueryPoints,
} from '../../models/ranking/train-rankers.js';
import { DAY_MS, tinyDataset } from '../helpers/eval-data.js';
import {
  evaluateRanking,
  popularityScores,
  projectRows,
  retrievalOrderScores,
} from '../../models/ranking/ranking-eval.js';
import { RetrievalArtifactError } from '../../models/retrieval/artifact.js';

const quiet = (): void => undefined;

describe('recsys train ranker and eval ranking', () => {
  let root: string;
  let config: string;
  let data: string;
  let other: string;
  let retrieval: string;
  let trained: TrainRankerResult;

  const flags = (over: Partial<TrainRankerFlags> = {}): TrainRankerFlags => ({
    data,
    retrieval,
    kind: 'both',
    queries: 160,
    sampling: 'users',
    candidates: 20,
    horizonHours: 24,
    split: 'temporal',
    testFraction: 0.3,
    validFraction: 0.25,
    trees: 20,
    epochs: 2,
    seed: 1,
    config,
    progress: false,
    ...over,
  });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'recsys-train-ranker-'));
    config = join(root, 'config.yaml');
    await writeFile(config, `data:\n  dir: ${join(root, 'data')}\n`);
    data = join(root, 'world');
    other = join(root, 'other');
    await generateDataset({ dir: data, ...SCALES.tiny, days: 8, seed: 9 });
    await generateDataset({ dir: other, ...SCALES.tiny, days: 4, seed: 10 });
    const model = await runTrainRetrieval(
      {
        data,
        config,
        epochs: 1,
        dims: 8,
        hiddenUnits: 16,
        historyLength: 8,
        batchSize: 128,
        split: 'temporal',
        testFraction: 0.3,
        coldHalfLifeDays: 1,
        eval: false,
      },
      {},
      quiet,
    );
    retrieval = model.artifact.dir;
    trained = await runTrainRanker(flags(), {}, quiet);
  }, 60_000);

  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('writes a GBDT and a DeepFM folder under <data.dir>/models that loadRanker opens', async () => {
    expect(trained.rankers.map((r) => r.kind)).toEqual(['gbdt', 'deepfm']);
    const [gbdt, deepfm] = trained.rankers;
    expect(gbdt?.dir).toBe(join(root, 'data', 'models', 'ranker-gbdt', gbdt?.version ?? ''));
    expect(deepfm?.dir).toBe(join(root, 'data', 'models', 'ranker-deepfm', deepfm?.version ?? ''));
    for (const r of trained.rankers) {
      const ranker = await loadRanker(r.dir);
      try {
        expect(ranker.kind).toBe(r.kind);
        expect(ranker.version).toBe(r.version);
        // The rankers learn from the default columns: the examples' without the drifting counts.
        expect(ranker.schema.names).toEqual(DEFAULT_RANKER_FEATURES);
        expect(ranker.schema.names).not.toContain('item_log_interactions');
        const scores = await ranker.score(new Float32Array(3 * ranker.schema.size).fill(1), 3);
        expect(scores).toHaveLength(3);
        expect(Number.isFinite(scores[0])).toBe(true);
      } finally {
        await ranker.close();
      }
      expect(r.validNdcg).toBeGreaterThan(0);
    }
    // The folder of versions resolves to the newest.
    expect(await resolveModelDir(join(root, 'data', 'models', 'ranker-gbdt'), '--ranker')).toBe(
      gbdt?.dir,
    );
  });

  it('reads nothing at or after the cutoff: validation, then the test part, come last', async () => {
    const { examples, cutoff } = trained;
    expect(cutoff).not.toBeNull();
    expect(examples.from).toBeLessThan(examples.validStart);
    expect(examples.validStart).toBeLessThan(examples.to);
    expect(examples.to).toBe(cutoff);
    const { manifest } = await readGbdtRankerArtifact(trained.rankers[0]?.dir ?? '');
    expect(manifest.data?.split).toEqual({ kind: 'temporal', cutoff });
    expect(manifest.data?.retrieval.cutoff).toBe(cutoff);
    expect(manifest.training.history?.bestIteration).toBe(trained.rankers[0]?.rounds);
  });

  it('prints the four rows of `eval ranking` through the command line', async () => {
    const program = new Command('recsys').exitOverride();
    registerEvalCommand(program);
    registerEvalRankingCommand(program);
    const out: string[] = [];
    const write = vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk: string | Uint8Array) => {
        out.push(String(chunk));
        return true;
      });
    const error = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await program.parseAsync(
        [
          'eval',
          'ranking',
          '--data',
          data,
          '--retrieval',
          retrieval,
          '--ranker',
          ...trained.rankers.map((r) => r.dir),
          '--queries',
          '60',
          '--candidates',
          '20',
          '--test-fraction',
          '0.3',
          '-c',
          config,
          '--no-progress',
        ],
        { from: 'user' },
      );
    } finally {
      write.mockRestore();
      error.mockRestore();
    }
    expect(process.exitCode ?? 0).toBe(0);
    const text = out.join('');
    const table = text.slice(text.indexOf('ranking  '));
    const rows = table.trim().split('\n').slice(1, 5);
    expect(rows.map((row) => row.split(/\s{2,}/)[0])).toEqual([
      'retrieval order',
      `gbdt ${trained.rankers[0]?.version}`,
      `deepfm ${trained.rankers[1]?.version}`,
      'popularity',
    ]);
    expect(rows[0]).toMatch(/\s1\.000$/);
    expect(table.split('\n')[0]).toMatch(/NDCG@10\s+× retrieval$/);
  });

  it('names the argument that is wrong', async () => {
    const program = new Command('recsys').exitOverride().configureOutput({
      writeErr: quiet,
      writeOut: quiet,
    });
    registerTrainCommands(program);
    registerTrainRankerCommand(program);
    const parse = (args: string[]): Promise<unknown> =>
      program.parseAsync(['train', 'ranker', ...args], { from: 'user' }).catch((e: unknown) => e);
    const base = ['--data', data, '--retrieval', retrieval];
    const cases: Array<[string[], RegExp]> = [
      [['--data', data], /required option '--retrieval <dir>'/],
      [[...base, '--kind', 'xgboost'], /'--kind <kind>' argument 'xgboost' is invalid/],
      [[...base, '--queries', '1'], /'--queries <n>' argument '1' is invalid/],
      [[...base, '--horizon-hours', '0'], /'--horizon-hours <h>' argument '0' is invalid/],
      [[...base, '--valid-fraction', '1'], /'--valid-fraction <f>' argument '1' is invalid/],
    ];
    for (const [args, message] of cases) {
      const err = await parse(args);
      expect(err, args.join(' ')).toBeInstanceOf(CommanderError);
      expect((err as Error).message).toMatch(message);
    }

    await expect(runTrainRanker(flags({ retrieval: root }), {}, quiet)).rejects.toThrow(
      DataOptionError,
    );
    await expect(runTrainRanker(flags({ retrieval: root }), {}, quiet)).rejects.toThrow(
      /^--retrieval names no model: /,
    );
    // A retrieval model of another data set, and one that has seen the test part.
    await expect(runTrainRanker(flags({ data: other }), {}, quiet)).rejects.toThrow(
      RetrievalArtifactError,
    );
    await expect(
      runTrainRanker(flags({ testFraction: 0.5, kind: 'gbdt' }), {}, quiet),
    ).rejects.toThrow(/includes events of the test part/);
  });

  it('refuses to evaluate a ranker that trained on the test part', async () => {
    const leaky = await runTrainRanker(flags({ split: 'none', kind: 'gbdt' }), {}, quiet);
    const dir = leaky.rankers[0]?.dir ?? '';
    const run = runEvalRanking(
      {
        data,
        retrieval,
        ranker: [dir],
        queries: 20,
        candidates: 20,
        horizonHours: 24,
        testFraction: 0.3,
        k: [10],
        seed: 0,
        config,
        progress: false,
      },
      {},
      quiet,
    );
    await expect(run).rejects.toThrow(RankerArtifactError);
    await expect(run).rejects.toThrow(
      /trained on every event, which includes events of the test part/,
    );
  });
});

describe('ranking evaluation by hand', () => {
  // Two queries in retrieval order: q0's only relevant item comes last and is the most popular;
  // q1's is first and the least popular (NaN: unknown to the batch view).
  const schema = rankingSchema(['retrieval_score', 'item_log_interactions']);
  const examples = {
    schema,
    rows: 5,
    features: Float32Array.from([0.9, 1, 0.8, 2, 0.7, 3, 0.6, Number.NaN, 0.5, 4]),
    labels: Float32Array.from([0, 0, 1, 2, 0]),
    groups: Int32Array.from([3, 2]),
  } as unknown as RankingExamples;

  it('orders by retrieval (row order) and by popularity at the query time', async () => {
    expect(retrievalOrderScores(examples.groups)).toEqual(Float64Array.from([-0, -1, -2, -0, -1]));
    expect(popularityScores(examples)).toEqual(Float64Array.from([1, 2, 3, 0, 4]));
    const evaluation = await evaluateRanking({ examples, rankers: [], ks: [1, 10] });
    expect(evaluation).toMatchObject({ queries: 2, rows: 5, positives: 2 });
    const [retrieval, popularity] = evaluation.contenders;
    // q0: the relevant item at position 3 (DCG 1 / log2 4 = 0.5); q1: at position 1 (1).
    expect(retrieval?.ndcg[1]).toBeCloseTo((0.5 + 1) / 2, 12);
    expect(retrieval?.ndcg[0]).toBeCloseTo(0.5, 12);
    // Popularity: q0's item first (1); q1's last of two (1 / log2 3).
    expect(popularity?.name).toBe('popularity');
    expect(popularity?.ndcg[1]).toBeCloseTo((1 + 1 / Math.log2(3)) / 2, 12);
    expect(popularity?.lift[1]).toBeCloseTo(
      (popularity?.ndcg[1] ?? 0) / (retrieval?.ndcg[1] ?? 1),
      12,
    );
  });

  it("picks a ranker's columns from the examples by name", () => {
    const picked = projectRows(examples, rankingSchema(['item_log_interactions']));
    expect(Array.from(picked)).toEqual([1, 2, 3, Number.NaN, 4]);
    expect(projectRows(examples, schema)).toBe(examples.features);
    expect(() => projectRows(examples, rankingSchema(['item_ctr']))).toThrow(/no item_ctr column/);
  });
});

describe('user-balanced query points', () => {
  // User 0 has 40 events on days 0..39, user 1 has 4 (days 0.5..3.5), user 2 has 2 (days 50, 51).
  const events = [
    ...Array.from({ length: 40 }, (_, d) => ({ user: 0, item: d % 5, day: d })),
    ...Array.from({ length: 4 }, (_, d) => ({ user: 1, item: d, day: d + 0.5 })),
    { user: 2, item: 1, day: 50 },
    { user: 2, item: 2, day: 51 },
  ];
  const dataset = tinyDataset(5, 3, events);

  it('gives every user of the window a turn before anyone gets a second', () => {
    const points = userBalancedQueryPoints(dataset, 6, 0, 100 * DAY_MS, 1);
    const perUser = [0, 1, 2].map((u) => points.filter((p) => p.user === u).length);
    expect(perUser).toEqual([2, 2, 2]);
    // Sorted by time, each one of the user's own event times.
    expect(points.map((p) => p.timeMs)).toEqual(
      [...points.map((p) => p.timeMs)].sort((a, b) => a - b),
    );
    for (const p of points) {
      expect(events.some((e) => e.user === p.user && e.day * DAY_MS === p.timeMs)).toBe(true);
    }
  });

  it('keeps to the window, runs out of users gracefully, and repeats for a seed', () => {
    const window = userBalancedQueryPoints(dataset, 100, 10 * DAY_MS, 45 * DAY_MS, 1);
    expect(window).toHaveLength(30);
    expect(window.every((p) => p.user === 0 && p.timeMs >= 10 * DAY_MS)).toBe(true);
    expect(userBalancedQueryPoints(dataset, 100, 0, 100 * DAY_MS, 1)).toHaveLength(46);
    expect(userBalancedQueryPoints(dataset, 9, 0, 100 * DAY_MS, 3)).toEqual(
      userBalancedQueryPoints(dataset, 9, 0, 100 * DAY_MS, 3),
    );
    expect(userBalancedQueryPoints(dataset, 9, 0, 100 * DAY_MS, 3)).not.toEqual(
      userBalancedQueryPoints(dataset, 9, 0, 100 * DAY_MS, 4),
    );
  });
});
