import { describe, expect, it } from 'vitest';

import { PopularityScorer } from '../../models/eval/baselines.js';
import { evaluateRetrieval } from '../../models/eval/evaluate.js';
import { encodeCatalogue, trainTwoTower } from '../../models/retrieval/train.js';
import type { TwoTowerTrainOptions } from '../../models/retrieval/train.js';
import { TwoTowerScorer } from '../../models/retrieval/two-tower-scorer.js';
import { plantedWorld } from '../helpers/retrieval-world.js';

const OPTIONS: TwoTowerTrainOptions = {
  dims: 16,
  hiddenUnits: 32,
  historyLength: 8,
  batchSize: 64,
  epochs: 8,
  seed: 11,
};

const world = plantedWorld();
const { dataset, split } = world;
const trained = trainTwoTower(
  { dataset, events: split.train, referenceTime: split.cutoff },
  OPTIONS,
);
const scorer = TwoTowerScorer.fromTrained(trained);
const itemCount = dataset.items.ids.length;

function topItems(scores: Float32Array, k: number): number[] {
  return Array.from(scores.keys())
    .sort((a, b) => (scores[b] as number) - (scores[a] as number))
    .slice(0, k);
}

function norm(values: ArrayLike<number>): number {
  let sq = 0;
  for (let i = 0; i < values.length; i++) sq += (values[i] as number) ** 2;
  return Math.sqrt(sq);
}

describe('two-tower model', () => {
  it('beats popularity by a wide margin on a world of planted category tastes', () => {
    const evaluation = evaluateRetrieval({
      dataset,
      split,
      historyLength: 8,
      ks: [10],
      scorers: [scorer, new PopularityScorer(split.train, itemCount)],
    });
    const [model, popularity] = evaluation.scorers.map((s) => s.all.metrics[0]?.recall ?? 0);
    expect(popularity).toBeGreaterThan(0);
    expect(model).toBeGreaterThan(2 * (popularity as number));
    expect(trained.report.epochs.at(-1)?.loss).toBeLessThan(trained.report.epochs[0]?.loss ?? 0);
  });

  it('serves a cold-start user (no id, no history) with finite scores', () => {
    const scores = scorer.scoreBatch([{ userIndex: -1, history: new Int32Array(0) }]);
    expect(scores.length).toBe(itemCount);
    expect(scores.every(Number.isFinite)).toBe(true);
    const embedding = scorer.encodeUsers([{ userIndex: -1, history: new Int32Array(0) }]);
    expect(norm(embedding)).toBeCloseTo(1, 5);
  });

  it('moves a cold-start user towards the category they click, at once', () => {
    const category = dataset.items.category;
    const categories = dataset.items.categories.length;
    const inCategory = (history: Int32Array, c: number): number => {
      const scores = scorer.scoreBatch([{ userIndex: -1, history }]);
      return topItems(scores, 10).filter((i) => category[i] === c).length;
    };
    let before = 0;
    let after = 0;
    for (let c = 0; c < categories; c++) {
      // The three most popular items of category c.
      const clicked = Int32Array.from([c, c + categories, c + 2 * categories]);
      expect([...clicked].every((i) => category[i] === c)).toBe(true);
      before += inCategory(new Int32Array(0), c) / categories;
      after += inCategory(clicked, c) / categories;
    }
    // A sixth of the catalogue is in each category: without clicks about 10 / 6 of the top 10.
    expect(before).toBeLessThan(3);
    expect(after).toBeGreaterThanOrEqual(5);
  });

  it('changes a known user embedding with one new click', () => {
    const user = 3;
    const history = Int32Array.from([0, 6, 12]);
    const [a, b] = [history, Int32Array.from([...history, 5])].map((h) =>
      Array.from(scorer.encodeUsers([{ userIndex: user, history: h }])),
    ) as [number[], number[]];
    const diff = a.map((v, i) => v - (b[i] as number));
    expect(norm(diff)).toBeGreaterThan(1e-3);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const small: TwoTowerTrainOptions = { ...OPTIONS, epochs: 2 };
    const data = { dataset, events: split.train, referenceTime: split.cutoff };
    const run = (seed: number): Float32Array => {
      const t = trainTwoTower(data, { ...small, seed });
      return encodeCatalogue(t.model, t.itemFeatures);
    };
    const first = run(1);
    expect(run(1)).toEqual(first);
    expect(run(2)).not.toEqual(first);
  });
});
