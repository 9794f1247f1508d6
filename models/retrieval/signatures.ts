/**
 * The ONNX contract of the towers: input and output names, element types and shapes. The exporter
 * writes graphs with exactly these signatures, the manifest records them, and the serving side
 * feeds them; towers exported from another framework (PyTorch, TensorFlow) can be dropped in if
 * they match. Shapes use `batch` for the dynamic batch dimension; N and T are fixed per model
 * (`historyLength`, `maxTags` in the manifest).
 */
import type { TwoTowerShape } from './model.js';

/** Element types used by the towers. */
export type TensorDtype = 'int64' | 'float32';

export interface TensorSignature {
  readonly name: string;
  readonly dtype: TensorDtype;
  /** Dimensions: a number is fixed, a string is symbolic (dynamic). */
  readonly shape: readonly (number | string)[];
  readonly description: string;
}

export interface TowerSignature {
  readonly file: string;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
}

export const USER_TOWER_FILE = 'user_tower.onnx';
export const ITEM_TOWER_FILE = 'item_tower.onnx';

export function userTowerSignature(shape: TwoTowerShape): TowerSignature {
  return {
    file: USER_TOWER_FILE,
    inputs: [
      {
        name: 'user_index',
        dtype: 'int64',
        shape: ['batch'],
        description: `Row of the user in user_ids.json (0..${shape.users - 1}); -1 for a user without an id embedding (cold start).`,
      },
      {
        name: 'profile',
        dtype: 'int64',
        shape: ['batch', 3],
        description:
          'Age band, country and device as indices into vocab.json (ageBands, countries, devices); -1 when unknown.',
      },
      {
        name: 'history',
        dtype: 'int64',
        shape: ['batch', shape.historyLength],
        description: `The user's last ${shape.historyLength} item indices (rows of item_ids.json), oldest first, padded at the end with -1.`,
      },
      {
        name: 'history_mask',
        dtype: 'float32',
        shape: ['batch', shape.historyLength],
        description:
          '1 for a history item, 0 for padding. The history is pooled as Σ mask·e / max(Σ mask, 1), so an empty history pools to zeros.',
      },
    ],
    outputs: [
      {
        name: 'user_embedding',
        dtype: 'float32',
        shape: ['batch', shape.dims],
        description: 'L2-normalised user embedding; score = dot product with item_embedding.',
      },
    ],
  };
}

export function itemTowerSignature(shape: TwoTowerShape): TowerSignature {
  return {
    file: ITEM_TOWER_FILE,
    inputs: [
      {
        name: 'item_index',
        dtype: 'int64',
        shape: ['batch'],
        description: `Row of the item in item_ids.json (0..${shape.items - 1}); -1 for an item without an id embedding (a fresh item).`,
      },
      {
        name: 'category',
        dtype: 'int64',
        shape: ['batch'],
        description: 'Primary category index into vocab.json categories; -1 when unknown.',
      },
      {
        name: 'tags',
        dtype: 'int64',
        shape: ['batch', shape.maxTags],
        description: `Up to ${shape.maxTags} tag indices into vocab.json tags, padded with -1.`,
      },
      {
        name: 'tags_mask',
        dtype: 'float32',
        shape: ['batch', shape.maxTags],
        description: '1 for a tag, 0 for padding (masked mean, like history_mask).',
      },
      {
        name: 'age_bucket',
        dtype: 'int64',
        shape: ['batch'],
        description: `floor(log2(1 + item age in days)) capped at ${shape.ageBuckets - 1}, age as of the manifest's features.referenceTime; -1 when the creation time is unknown.`,
      },
      {
        name: 'popularity_bucket',
        dtype: 'int64',
        shape: ['batch'],
        description: `floor(log2(1 + recency-weighted training interactions)) capped at ${shape.popularityBuckets - 1} (the rule is in the manifest: features.popularityBucket).`,
      },
    ],
    outputs: [
      {
        name: 'item_embedding',
        dtype: 'float32',
        shape: ['batch', shape.dims],
        description: 'L2-normalised item embedding (the rows of item_embeddings.f32).',
      },
    ],
  };
}
