/**
 * Training of the two-tower model in TypeScript: in-batch sampled softmax over the L2-normalised
 * towers with a temperature and the logQ correction, Adagrad on the dense layers and row-wise
 * Adagrad on sparse embedding rows. Deterministic for a given seed.
 */
import type { Dataset, EventTable } from '../data/types.js';
import { buildExamples, PositiveEvents } from './examples.js';
import type { TrainingExamples } from './examples.js';
import {
  buildItemFeatures,
  emptyUserBatch,
  itemBatch,
  tagWidth,
  userProfiles,
} from './features.js';
import type { ItemFeatures } from './features.js';
import { inBatchSoftmax } from './loss.js';
import { shapeFor, TwoTowerModel } from './model.js';
import type { AdagradOptions } from './params.js';
import { Rng } from './rng.js';

/** The recipe; the first nine options are the `retrieval` section of the configuration. */
export interface TwoTowerTrainOptions {
  /** @default 64 */
  dims?: number;
  /** @default 20 */
  historyLength?: number;
  /** @default 128 */
  hiddenUnits?: number;
  /** Examples per step; the other positives of a batch are each example's negatives. @default 512 */
  batchSize?: number;
  /** @default 5 */
  epochs?: number;
  /** Adagrad learning rate. @default 0.1 */
  learningRate?: number;
  /** @default 0.1 */
  temperature?: number;
  /** @default true */
  logqCorrection?: boolean;
  /** @default 42 */
  seed?: number;
  /**
   * Share of examples whose user id is replaced by "unknown", so the unknown row learns and the
   * profile and history carry the user on their own (cold start). @default 0.1
   */
  userIdDropout?: number;
  /**
   * Share of each batch shown as brand-new users: no id and an empty history (the profile stays),
   * so the cold-start query learns what users want before the model knows anything of them.
   * These examples are drawn with `coldHalfLifeDays`. @default 0.25
   */
  coldStartShare?: number;
  /**
   * Recency half-life of the simulated new users' examples and of the popularity bucket: how fast
   * popularity goes stale (`choosePopularityHalfLife` measures it on the data). 0 weighs every
   * example the same. @default recencyHalfLifeDays
   */
  coldHalfLifeDays?: number;
  /** Share of positives whose item id is replaced by "unknown" (fresh items). @default 0.05 */
  itemIdDropout?: number;
  /**
   * Share of examples in which each profile field is replaced by "unknown", so a request without
   * a profile reads trained rows rather than their initial values. @default 0.1
   */
  profileDropout?: number;
  /**
   * Recency weighting: an example `d` days before the reference time is drawn with weight
   * `0.5 ** (d / recencyHalfLifeDays)` (epochs then draw as many examples, with replacement), and
   * the logQ frequencies and popularity buckets use the same weights. Tastes and catalogues drift,
   * so the recent past says more about the next days than the distant one. 0 weighs every example
   * the same. @default 0
   */
  recencyHalfLifeDays?: number;
  /** Which events are positives. @default 'all' */
  positives?: PositiveEvents;
  /** Parameter storage. @default 'float32' */
  precision?: 'float32' | 'float64';
  /** Called after each epoch (for progress on stderr). */
  onEpoch?: (progress: EpochProgress) => void;
}

export interface ResolvedTwoTowerTrainOptions extends Required<
  Omit<TwoTowerTrainOptions, 'onEpoch'>
> {
  onEpoch: ((progress: EpochProgress) => void) | undefined;
}

export interface EpochProgress {
  readonly epoch: number;
  readonly epochs: number;
  /** Mean in-batch softmax loss of the epoch. */
  readonly loss: number;
  readonly examples: number;
  readonly seconds: number;
  readonly examplesPerSecond: number;
}

/** The training events and the time the model is trained "as of". */
export interface TwoTowerTrainData {
  readonly dataset: Dataset;
  /** The events to learn from: the training part of a split (never its test part). */
  readonly events: EventTable;
  /**
   * "Now" for the item-age feature: the split's cutoff, or the last training event.
   * @default the time of the last event of `events`
   */
  readonly referenceTime?: number;
}

export interface TwoTowerTrainReport {
  readonly examples: number;
  readonly positives: PositiveEvents;
  readonly epochs: readonly EpochProgress[];
  readonly seconds: number;
  /** Users, items and history items the model learned an id row for. */
  readonly trainedUsers: number;
  readonly trainedItems: number;
}

/** A trained model with what it takes to encode the catalogue and the data set's users. */
export interface TrainedTwoTower {
  readonly model: TwoTowerModel;
  readonly itemFeatures: ItemFeatures;
  /** `[users × 3]` profiles of the data set's users. */
  readonly profiles: Int32Array;
  /**
   * Training interactions per item (item-index order), weighted by recency as the popularity
   * bucket counts them: what the popular-items fallback ranks by.
   */
  readonly itemPopularity: Float64Array;
  readonly referenceTime: number;
  readonly options: ResolvedTwoTowerTrainOptions;
  readonly report: TwoTowerTrainReport;
}

export function resolveTwoTowerTrainOptions(
  options: TwoTowerTrainOptions = {},
): ResolvedTwoTowerTrainOptions {
  const int = (name: string, value: number, min: number): number => {
    if (!Number.isInteger(value) || value < min) {
      throw new RangeError(`${name} must be an integer ≥ ${min}, got ${value}`);
    }
    return value;
  };
  const positive = (name: string, value: number): number => {
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new RangeError(`${name} must be a positive number, got ${value}`);
    }
    return value;
  };
  const nonNegative = (name: string, value: number): number => {
    if (!(value >= 0) || !Number.isFinite(value)) {
      throw new RangeError(`${name} must be a non-negative number, got ${value}`);
    }
    return value;
  };
  const share = (name: string, value: number): number => {
    if (!(value >= 0 && value < 1)) throw new RangeError(`${name} must be in [0, 1), got ${value}`);
    return value;
  };
  const positives = options.positives ?? PositiveEvents.All;
  if (!Object.values(PositiveEvents).includes(positives)) {
    throw new RangeError(`positives must be one of ${Object.values(PositiveEvents).join(', ')}`);
  }
  return {
    dims: int('dims', options.dims ?? 64, 1),
    historyLength: int('historyLength', options.historyLength ?? 20, 1),
    hiddenUnits: int('hiddenUnits', options.hiddenUnits ?? 128, 1),
    batchSize: int('batchSize', options.batchSize ?? 512, 2),
    epochs: int('epochs', options.epochs ?? 5, 1),
    learningRate: positive('learningRate', options.learningRate ?? 0.1),
    temperature: positive('temperature', options.temperature ?? 0.1),
    logqCorrection: options.logqCorrection ?? true,
    seed: int('seed', options.seed ?? 42, 0),
    userIdDropout: share('userIdDropout', options.userIdDropout ?? 0.1),
    coldStartShare: share('coldStartShare', options.coldStartShare ?? 0.25),
    itemIdDropout: share('itemIdDropout', options.itemIdDropout ?? 0.05),
    profileDropout: share('profileDropout', options.profileDropout ?? 0.1),
    recencyHalfLifeDays: nonNegative('recencyHalfLifeDays', options.recencyHalfLifeDays ?? 0),
    coldHalfLifeDays: nonNegative(
      'coldHalfLifeDays',
      options.coldHalfLifeDays ?? options.recencyHalfLifeDays ?? 0,
    ),
    positives,
    precision: options.precision ?? 'float32',
    onEpoch: options.onEpoch,
  };
}

/** Trains a two-tower model on `data.events`. */
export function trainTwoTower(
  data: TwoTowerTrainData,
  options: TwoTowerTrainOptions = {},
): TrainedTwoTower {
  const opts = resolveTwoTowerTrainOptions(options);
  const { dataset, events } = data;
  const { items, users } = dataset;
  const itemCount = items.ids.length;
  const userCount = users.ids.length;
  const started = performance.now();

  const ex = buildExamples(events, userCount, itemCount, opts.positives);
  if (ex.examples.length < 2) throw new RangeError('training needs at least two positive events');
  const referenceTime: number = data.referenceTime ?? events.ts[events.length - 1] ?? NaN;
  const weights = recencyWeights(ex, referenceTime, opts.recencyHalfLifeDays);
  const coldWeights = recencyWeights(ex, referenceTime, opts.coldHalfLifeDays);
  const mainShare = weightedItemCounts(ex, weights, itemCount);
  const coldShare = weightedItemCounts(ex, coldWeights, itemCount);
  const itemFeatures = buildItemFeatures(items, mainShare, referenceTime, tagWidth(items));
  const profiles = userProfiles(users);
  const shape = shapeFor(
    {
      users: userCount,
      items: itemCount,
      categories: items.categories.length,
      tags: items.tags.length,
      ageBands: users.ageBands.length,
      countries: users.countries.length,
      devices: users.devices.length,
      maxTags: itemFeatures.maxTags,
    },
    opts,
  );
  const model = new TwoTowerModel(shape, { seed: opts.seed, precision: opts.precision });
  const adagrad: AdagradOptions = {
    learningRate: opts.learningRate,
    initialAccumulator: 0.1,
    epsilon: 1e-10,
  };
  const total = ex.examples.length;
  const batchSize = Math.min(opts.batchSize, total);
  const coldPerBatch = Math.round(opts.coldStartShare * batchSize);
  const mainPerBatch = batchSize - coldPerBatch;
  // The items of a batch come from a mixture of the two draws: that mixture is what logQ corrects.
  const logFreq = logSamplingFrequency(mainShare, coldShare, coldPerBatch / batchSize);
  const cumulative = weights === undefined ? undefined : cumulativeSum(weights);
  const coldCumulative = cumulativeSum(coldWeights ?? new Float64Array(total).fill(1));
  const steps = Math.floor(total / batchSize);

  const rng = new Rng(opts.seed + 1);
  const order = Int32Array.from(ex.examples);
  const coldOrder = new Int32Array(steps * coldPerBatch);
  const batch = new Int32Array(batchSize);
  const trained = {
    users: new Uint8Array(userCount),
    items: new Uint8Array(itemCount),
    historyItems: new Uint8Array(itemCount),
  };
  const column = new Int32Array(itemCount).fill(-1);
  const epochs: EpochProgress[] = [];

  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    const epochStart = performance.now();
    if (cumulative === undefined) rng.shuffle(order);
    else drawWeighted(ex.examples, cumulative, order, rng);
    drawWeighted(ex.examples, coldCumulative, coldOrder, rng);
    let lossSum = 0;
    // The last partial batch is dropped: fewer in-batch negatives would make a noisier step.
    for (let step = 0; step < steps; step++) {
      batch.set(order.subarray(step * mainPerBatch, (step + 1) * mainPerBatch));
      batch.set(coldOrder.subarray(step * coldPerBatch, (step + 1) * coldPerBatch), mainPerBatch);
      lossSum += trainStep(model, ex, batch, mainPerBatch, {
        itemFeatures,
        profiles,
        logFreq: opts.logqCorrection ? logFreq : undefined,
        column,
        rng,
        opts,
        adagrad,
        trained,
      });
    }
    const seconds = (performance.now() - epochStart) / 1000;
    const progress: EpochProgress = {
      epoch,
      epochs: opts.epochs,
      loss: lossSum / Math.max(steps, 1),
      examples: steps * batchSize,
      seconds,
      examplesPerSecond: (steps * batchSize) / seconds,
    };
    epochs.push(progress);
    opts.onEpoch?.(progress);
  }
  model.foldUntrained(trained);
  const sum = (a: Uint8Array): number => a.reduce((s, v) => s + v, 0);
  return {
    model,
    itemFeatures,
    profiles,
    itemPopularity: mainShare,
    referenceTime,
    options: opts,
    report: {
      examples: total,
      positives: opts.positives,
      epochs,
      seconds: (performance.now() - started) / 1000,
      trainedUsers: sum(trained.users),
      trainedItems: sum(trained.items),
    },
  };
}

interface StepContext {
  itemFeatures: ItemFeatures;
  profiles: Int32Array;
  logFreq: Float64Array | undefined;
  /** Scratch: column of each item in the current batch, -1 elsewhere. */
  column: Int32Array;
  rng: Rng;
  opts: ResolvedTwoTowerTrainOptions;
  adagrad: AdagradOptions;
  trained: { users: Uint8Array; items: Uint8Array; historyItems: Uint8Array };
}

/**
 * One Adagrad step on the examples at positions `batch`, those from `coldFrom` on shown as
 * brand-new users; returns the batch's loss.
 */
function trainStep(
  model: TwoTowerModel,
  ex: TrainingExamples,
  batch: Int32Array,
  coldFrom: number,
  ctx: StepContext,
): number {
  const { opts, rng, column, trained } = ctx;
  const n = opts.historyLength;
  const size = batch.length;
  const users = emptyUserBatch(size, n);
  const distinct: number[] = [];
  const target = new Int32Array(size);
  for (let r = 0; r < size; r++) {
    const p = batch[r] as number;
    const u = ex.userOf[p] as number;
    const item = ex.items[p] as number;
    trained.users[u] = 1;
    const cold = r >= coldFrom;
    users.userIndex[r] = cold || rng.next() < opts.userIdDropout ? -1 : u;
    for (let c = 0; c < 3; c++) {
      users.profile[r * 3 + c] =
        rng.next() < opts.profileDropout ? -1 : (ctx.profiles[u * 3 + c] as number);
    }
    // The user's last n items strictly before this event (none for a simulated new user).
    const from = cold ? p : Math.max(ex.offsets[u] as number, p - n);
    for (let q = from; q < p; q++) {
      const h = ex.items[q] as number;
      users.history[r * n + q - from] = h;
      users.historyMask[r * n + q - from] = 1;
      trained.historyItems[h] = 1;
    }
    let c = column[item] as number;
    if (c < 0) {
      c = distinct.length;
      column[item] = c;
      distinct.push(item);
    }
    target[r] = c;
  }
  const itemInputs = itemBatch(ctx.itemFeatures, distinct);
  const logQ = ctx.logFreq === undefined ? undefined : new Float64Array(distinct.length);
  distinct.forEach((item, c) => {
    column[item] = -1;
    trained.items[item] = 1;
    if (logQ !== undefined) logQ[c] = ctx.logFreq?.[item] as number;
    if (rng.next() < opts.itemIdDropout) itemInputs.itemIndex[c] = -1;
  });

  model.zeroGrad();
  const userAct = model.user.forward(model.userInputs(users), size);
  const itemAct = model.item.forward(model.itemInputs(itemInputs), distinct.length);
  const { loss, dUsers, dItems } = inBatchSoftmax(
    userAct.out,
    itemAct.out,
    target,
    model.shape.dims,
    opts.temperature,
    logQ,
  );
  model.user.backward(userAct, dUsers);
  model.item.backward(itemAct, dItems);
  model.step(ctx.adagrad);
  return loss;
}

/** Weight of each example (parallel to `ex.examples`), or undefined when all weigh 1. */
function recencyWeights(
  ex: TrainingExamples,
  referenceTime: number,
  halfLifeDays: number,
): Float64Array | undefined {
  if (halfLifeDays === 0 || !Number.isFinite(referenceTime)) return undefined;
  const halfLifeMs = halfLifeDays * 86_400_000;
  return Float64Array.from(ex.examples, (p) => {
    const age = Math.max(0, referenceTime - (ex.ts[p] as number));
    return 0.5 ** (age / halfLifeMs);
  });
}

/** Sum of example weights per positive item (plain counts without weights). */
function weightedItemCounts(
  ex: TrainingExamples,
  weights: Float64Array | undefined,
  itemCount: number,
): Float64Array {
  if (weights === undefined) return ex.itemCounts;
  const out = new Float64Array(itemCount);
  ex.examples.forEach((p, k) => {
    const item = ex.items[p] as number;
    out[item] = (out[item] as number) + (weights[k] as number);
  });
  return out;
}

/**
 * Log of each item's probability of being a batch's positive when a share `coldShare` of the
 * batch is drawn by `coldCounts` and the rest by `mainCounts` (weighted counts per item).
 */
function logSamplingFrequency(
  mainCounts: Float64Array,
  coldCounts: Float64Array,
  coldShare: number,
): Float64Array {
  const sum = (a: Float64Array): number => a.reduce((s, v) => s + v, 0);
  const main = sum(mainCounts);
  const cold = sum(coldCounts);
  const q = new Float64Array(mainCounts.length);
  let floor = Infinity;
  for (let i = 0; i < q.length; i++) {
    const p =
      ((1 - coldShare) * (mainCounts[i] as number)) / main +
      (coldShare * (coldCounts[i] as number)) / cold;
    q[i] = p;
    if (p > 0 && p < floor) floor = p;
  }
  // Items never drawn never reach a batch; the floor only keeps their log finite.
  for (let i = 0; i < q.length; i++) q[i] = Math.log(Math.max(q[i] as number, floor));
  return q;
}

function cumulativeSum(values: Float64Array): Float64Array {
  const out = new Float64Array(values.length);
  let sum = 0;
  values.forEach((v, i) => {
    sum += v;
    out[i] = sum;
  });
  return out;
}

/** Fills `out` with examples drawn with replacement, each with probability ∝ its weight. */
function drawWeighted(
  examples: Int32Array,
  cumulative: Float64Array,
  out: Int32Array,
  rng: Rng,
): void {
  const total = cumulative[cumulative.length - 1] as number;
  for (let i = 0; i < out.length; i++) {
    const target = rng.next() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cumulative[mid] as number) <= target) lo = mid + 1;
      else hi = mid;
    }
    out[i] = examples[lo] as number;
  }
}

/** Embeddings of every catalogue item `[items × dims]`, in item-index order. */
export function encodeCatalogue(
  model: TwoTowerModel,
  features: ItemFeatures,
  chunk = 4096,
): Float32Array {
  const dims = model.shape.dims;
  const out = new Float32Array(features.count * dims);
  for (let start = 0; start < features.count; start += chunk) {
    const end = Math.min(features.count, start + chunk);
    const indices = new Int32Array(end - start);
    for (let i = start; i < end; i++) indices[i - start] = i;
    out.set(model.encodeItems(itemBatch(features, indices)), start * dims);
  }
  return out;
}
