import { describe, expect, it } from 'vitest';

import type { ItemBatch, UserBatch } from '../../models/retrieval/features.js';
import { inBatchSoftmax } from '../../models/retrieval/loss.js';
import { TwoTowerModel } from '../../models/retrieval/model.js';
import type { TwoTowerShape } from '../../models/retrieval/model.js';
import type { DenseParam, EmbeddingTable } from '../../models/retrieval/params.js';

/** A model small enough to perturb every parameter, in float64. */
const SHAPE: TwoTowerShape = {
  dims: 4,
  hiddenUnits: 6,
  historyLength: 3,
  idDims: 4,
  sideDims: 3,
  maxTags: 3,
  users: 4,
  items: 6,
  categories: 3,
  tags: 4,
  ageBands: 2,
  countries: 2,
  devices: 2,
  ageBuckets: 3,
  popularityBuckets: 3,
};

/** Four users: a known one, a cold one with an empty history, fractional and repeated history. */
const USERS: UserBatch = {
  size: 4,
  historyLength: 3,
  userIndex: Int32Array.from([0, -1, 2, 3]),
  profile: Int32Array.from([0, 1, 1, -1, -1, -1, 1, 0, 1, 0, 0, -1]),
  history: Int32Array.from([1, 2, -1, -1, -1, -1, 3, 3, 5, 0, 4, 2]),
  historyMask: Float32Array.from([1, 1, 0, 0, 0, 0, 1, 1, 0.5, 1, 1, 1]),
};

/** Three distinct items, one without an id embedding. */
const ITEMS: ItemBatch = {
  size: 3,
  maxTags: 3,
  itemIndex: Int32Array.from([1, -1, 4]),
  category: Int32Array.from([0, 2, -1]),
  tags: Int32Array.from([0, 1, -1, 3, -1, -1, 2, 2, 1]),
  tagsMask: Float32Array.from([1, 1, 0, 1, 0, 0, 1, 1, 1]),
  ageBucket: Int32Array.from([0, -1, 2]),
  popularityBucket: Int32Array.from([2, 0, 1]),
};

const TARGET = Int32Array.from([0, 1, 2, 0]);
const LOG_Q = Float64Array.from([-0.5, -2, -1.2]);
const TEMPERATURE = 0.5;

function loss(model: TwoTowerModel, backward: boolean): number {
  const userAct = model.user.forward(model.userInputs(USERS), USERS.size);
  const itemAct = model.item.forward(model.itemInputs(ITEMS), ITEMS.size);
  const result = inBatchSoftmax(userAct.out, itemAct.out, TARGET, SHAPE.dims, TEMPERATURE, LOG_Q);
  if (backward) {
    model.user.backward(userAct, result.dUsers);
    model.item.backward(itemAct, result.dItems);
  }
  return result.loss;
}

/** Central difference of the loss in one parameter. */
function numeric(model: TwoTowerModel, values: Float64Array | Float32Array, i: number): number {
  const h = 1e-5;
  const saved = values[i] as number;
  values[i] = saved + h;
  const up = loss(model, false);
  values[i] = saved - h;
  const down = loss(model, false);
  values[i] = saved;
  return (up - down) / (2 * h);
}

function relativeError(analytic: number, numerical: number): number {
  return Math.abs(analytic - numerical) / Math.max(Math.abs(analytic) + Math.abs(numerical), 1e-6);
}

describe('two-tower gradients', () => {
  const model = new TwoTowerModel(SHAPE, { seed: 3, precision: 'float64' });
  model.zeroGrad();
  loss(model, true);

  const dense: DenseParam[] = model.denseParams;
  it.each(dense.map((p) => [p.name, p] as const))(
    'dense parameter %s matches finite differences',
    (_name, param) => {
      let worst = 0;
      for (let i = 0; i < param.value.length; i++) {
        const err = relativeError(param.grad[i] as number, numeric(model, param.value, i));
        worst = Math.max(worst, err);
      }
      expect(worst).toBeLessThan(1e-3);
    },
  );

  const tables: EmbeddingTable[] = model.tables;
  it.each(tables.map((t) => [t.name, t] as const))(
    'embedding table %s matches finite differences on every row',
    (_name, table) => {
      let worst = 0;
      let touched = 0;
      for (let row = 0; row < table.rows; row++) {
        const grad = table.gradOf(row);
        if (grad.some((g) => g !== 0)) touched++;
        for (let j = 0; j < table.dims; j++) {
          const err = relativeError(
            grad[j] as number,
            numeric(model, table.weights, row * table.dims + j),
          );
          worst = Math.max(worst, err);
        }
      }
      expect(touched).toBeGreaterThan(0);
      expect(worst).toBeLessThan(1e-3);
    },
  );

  it('covers every parameter group of both towers', () => {
    expect(dense.length).toBe(8);
    expect(tables.map((t) => t.name)).toEqual([
      'user.user_id',
      'user.age_band',
      'user.country',
      'user.device',
      'user.history',
      'item.item_id',
      'item.category',
      'item.tags',
      'item.age_bucket',
      'item.popularity_bucket',
    ]);
  });
});
