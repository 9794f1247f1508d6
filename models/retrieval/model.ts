/**
 * The two-tower model: a user tower and an item tower whose L2-normalised outputs are compared by
 * dot product (cosine similarity).
 *
 * Item tower: item id + category + mean of tags + item-age bucket + popularity bucket.
 * User tower: user id + age band + country + device + masked mean of the last N items.
 * Every lookup has a reserved unknown row (index -1), so a user or item without an id embedding
 * (cold start) is still encoded from its other features.
 */
import { AGE_BUCKETS, POPULARITY_BUCKETS } from './features.js';
import type { ItemBatch, UserBatch } from './features.js';
import type { Vec, VecConstructor } from './linalg.js';
import type { AdagradOptions, DenseParam, EmbeddingTable } from './params.js';
import { Rng } from './rng.js';
import { Tower } from './tower.js';
import type { FeatureSpec, FeatureValues } from './tower.js';

/** Everything that fixes the parameter shapes: vocabulary sizes and layer widths. */
export interface TwoTowerShape {
  /** Output embedding dimensions of both towers. */
  readonly dims: number;
  readonly hiddenUnits: number;
  /** Items of the history input (N). */
  readonly historyLength: number;
  /** Dimensions of the id embeddings (user id, item id, history items). */
  readonly idDims: number;
  /** Dimensions of the other embeddings (profile fields, category, tags, buckets). */
  readonly sideDims: number;
  /** Width of the tags input (T). */
  readonly maxTags: number;
  readonly users: number;
  readonly items: number;
  readonly categories: number;
  readonly tags: number;
  readonly ageBands: number;
  readonly countries: number;
  readonly devices: number;
  readonly ageBuckets: number;
  readonly popularityBuckets: number;
}

/** Shape of a model for a data set, with id and side embedding sizes derived from `dims`. */
export function shapeFor(
  sizes: Pick<
    TwoTowerShape,
    'users' | 'items' | 'categories' | 'tags' | 'ageBands' | 'countries' | 'devices' | 'maxTags'
  >,
  layers: { dims: number; hiddenUnits: number; historyLength: number },
): TwoTowerShape {
  return {
    dims: layers.dims,
    hiddenUnits: layers.hiddenUnits,
    historyLength: layers.historyLength,
    users: sizes.users,
    items: sizes.items,
    categories: sizes.categories,
    tags: sizes.tags,
    ageBands: sizes.ageBands,
    countries: sizes.countries,
    devices: sizes.devices,
    maxTags: sizes.maxTags,
    idDims: layers.dims,
    sideDims: Math.max(4, Math.round(layers.dims / 4)),
    ageBuckets: AGE_BUCKETS,
    popularityBuckets: POPULARITY_BUCKETS,
  };
}

export function userFeatures(shape: TwoTowerShape): FeatureSpec[] {
  return [
    { name: 'user_id', vocab: shape.users, dims: shape.idDims, width: 0 },
    { name: 'age_band', vocab: shape.ageBands, dims: shape.sideDims, width: 0 },
    { name: 'country', vocab: shape.countries, dims: shape.sideDims, width: 0 },
    { name: 'device', vocab: shape.devices, dims: shape.sideDims, width: 0 },
    { name: 'history', vocab: shape.items, dims: shape.idDims, width: shape.historyLength },
  ];
}

export function itemFeatures(shape: TwoTowerShape): FeatureSpec[] {
  return [
    { name: 'item_id', vocab: shape.items, dims: shape.idDims, width: 0 },
    { name: 'category', vocab: shape.categories, dims: shape.sideDims, width: 0 },
    { name: 'tags', vocab: shape.tags, dims: shape.sideDims, width: shape.maxTags },
    { name: 'age_bucket', vocab: shape.ageBuckets, dims: shape.sideDims, width: 0 },
    { name: 'popularity_bucket', vocab: shape.popularityBuckets, dims: shape.sideDims, width: 0 },
  ];
}

export interface TwoTowerModelOptions {
  /** Seed of the initialisation. @default 42 */
  seed?: number;
  /** Storage of every parameter: float32 to train and serve, float64 for gradient checks. @default 'float32' */
  precision?: 'float32' | 'float64';
}

export class TwoTowerModel {
  readonly user: Tower;
  readonly item: Tower;

  constructor(
    readonly shape: TwoTowerShape,
    options: TwoTowerModelOptions = {},
  ) {
    const Ctor: VecConstructor = options.precision === 'float64' ? Float64Array : Float32Array;
    this.user = new Tower('user', userFeatures(shape), shape.hiddenUnits, shape.dims, Ctor);
    this.item = new Tower('item', itemFeatures(shape), shape.hiddenUnits, shape.dims, Ctor);
    const rng = new Rng(options.seed ?? 42);
    this.user.init(rng);
    this.item.init(rng);
  }

  /** The user tower's inputs, one entry per feature of {@link userFeatures}. */
  userInputs(batch: UserBatch): FeatureValues[] {
    const { size } = batch;
    const column = (c: number): Int32Array => {
      const out = new Int32Array(size);
      for (let r = 0; r < size; r++) out[r] = batch.profile[r * 3 + c] as number;
      return out;
    };
    checkWidth('history', batch.history.length, size, this.shape.historyLength);
    return [
      { index: batch.userIndex },
      { index: column(0) },
      { index: column(1) },
      { index: column(2) },
      { index: batch.history, mask: batch.historyMask },
    ];
  }

  /** The item tower's inputs, one entry per feature of {@link itemFeatures}. */
  itemInputs(batch: ItemBatch): FeatureValues[] {
    checkWidth('tags', batch.tags.length, batch.size, this.shape.maxTags);
    return [
      { index: batch.itemIndex },
      { index: batch.category },
      { index: batch.tags, mask: batch.tagsMask },
      { index: batch.ageBucket },
      { index: batch.popularityBucket },
    ];
  }

  /** L2-normalised user embeddings `[B × dims]`. */
  encodeUsers(batch: UserBatch): Vec {
    return this.user.forward(this.userInputs(batch), batch.size).out;
  }

  /** L2-normalised item embeddings `[B × dims]`. */
  encodeItems(batch: ItemBatch): Vec {
    return this.item.forward(this.itemInputs(batch), batch.size).out;
  }

  get denseParams(): DenseParam[] {
    return [...this.user.denseParams, ...this.item.denseParams];
  }

  get tables(): EmbeddingTable[] {
    return [...this.user.tables, ...this.item.tables];
  }

  zeroGrad(): void {
    this.user.zeroGrad();
    this.item.zeroGrad();
  }

  step(opt: AdagradOptions): void {
    this.user.step(opt);
    this.item.step(opt);
  }

  /**
   * Makes every id row that training never updated read like the unknown row, so a user or item
   * the model never learned is encoded like a cold-start one rather than from random values; and
   * zeroes the history rows training never read (and the history's unknown row), so such an item
   * in a history adds nothing rather than noise.
   */
  foldUntrained(trained: { users: Uint8Array; items: Uint8Array; historyItems: Uint8Array }): void {
    const fold = (table: EmbeddingTable, seen: Uint8Array): void => {
      for (let r = 0; r < table.vocab; r++) if (seen[r] !== 1) table.copyRow(table.vocab, r);
    };
    const [userId, , , , history] = this.user.tables;
    const [itemId] = this.item.tables;
    if (userId !== undefined) fold(userId, trained.users);
    if (history !== undefined) {
      const d = history.dims;
      for (let r = 0; r <= history.vocab; r++) {
        if (r === history.vocab || trained.historyItems[r] !== 1)
          history.weights.fill(0, r * d, r * d + d);
      }
    }
    if (itemId !== undefined) fold(itemId, trained.items);
  }
}

function checkWidth(name: string, length: number, size: number, width: number): void {
  if (length !== size * width) {
    throw new RangeError(`${name} must hold ${size} × ${width} values, got ${length}`);
  }
}
