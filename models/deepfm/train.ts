/**
 * The DeepFM trainer: mini-batch Adam on the pointwise or listwise loss, the backward passes
 * written out in `model.ts` (and checked against finite differences in the tests), early stopping
 * on validation NDCG@10 with the best epoch's parameters kept. Deterministic for a given seed:
 * random sources seeded from it draw the initial weights, the order of rows (or query groups) in
 * each epoch and the dropout masks, and the kernels sum in a fixed order.
 *
 * Everything a step touches is a typed array allocated once: the rows are encoded (standardised,
 * category ids mapped to table rows) before the first epoch, and each batch is copied out of them.
 * Adam is lazy on the categorical tables: only the rows a batch read are updated, so a large id
 * vocabulary costs nothing on steps that do not see it (LazyAdam in TensorFlow Addons).
 */
import { BadRequestError } from '../../runtime/errors.js';
import type { Vec, VecConstructor } from '../retrieval/linalg.js';
import { Rng } from '../retrieval/rng.js';
import { listwiseLoss, pointwiseLoss } from './loss.js';
import { auc, ndcgAt } from './metrics.js';
import { DeepFmLoss, DeepFmModel, resolveDeepFmOptions } from './model.js';
import type {
  DeepFmOptions,
  DeepFmParam,
  DeepFmWorkspace,
  ResolvedDeepFmOptions,
} from './model.js';
import {
  allocateEncoded,
  fitStandardisation,
  gatherEncoded,
  rowCount,
  schemaLayout,
} from './schema.js';
import type { EncodedRows, FeatureSchema, SchemaLayout } from './schema.js';

/** Labelled feature rows. */
export interface DeepFmRows {
  /** `n × F` values in schema order. */
  readonly features: Float32Array;
  /** n graded labels (0 = not relevant); the pointwise loss reads `label > 0` as positive. */
  readonly labels: ArrayLike<number>;
  /**
   * Sizes of the query groups of consecutive rows, summing to n (LightGBM's `.query` file).
   * Needed by the listwise loss and by validation data (NDCG is per group).
   */
  readonly groups?: ArrayLike<number>;
}

export interface DeepFmTrainInput {
  readonly schema: FeatureSchema;
  readonly train: DeepFmRows;
  /** For early stopping and the report; never trained on. */
  readonly validation?: DeepFmRows;
}

export interface DeepFmEpoch {
  readonly epoch: number;
  /** Mean training loss of the epoch (per row, or per query group for the listwise loss). */
  readonly loss: number;
  /** Validation NDCG@`ndcgAt`, when there is validation data. */
  readonly validNdcg: number | null;
  /** Validation AUC of "label > 0", when there is validation data. */
  readonly validAuc: number | null;
  readonly seconds: number;
  /** Training rows per second of the epoch (validation excluded). */
  readonly rowsPerSecond: number;
}

export interface DeepFmTrainReport {
  readonly rows: number;
  readonly groups: number | null;
  readonly epochs: readonly DeepFmEpoch[];
  /** The epoch whose parameters the model holds (the last one without validation data). */
  readonly bestEpoch: number;
  readonly bestValidNdcg: number | null;
  readonly stoppedEarly: boolean;
  readonly seconds: number;
}

export interface TrainedDeepFm {
  readonly model: DeepFmModel;
  readonly options: ResolvedDeepFmOptions;
  readonly report: DeepFmTrainReport;
}

export interface DeepFmTrainHooks {
  /** Called after each epoch (for progress on stderr). */
  readonly onEpoch?: (epoch: DeepFmEpoch) => void;
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;

/** Checks labels and groups against `n` rows; a bad one throws a `BadRequestError` naming it. */
function checkRows(
  layout: SchemaLayout,
  rows: DeepFmRows,
  path: string,
  needGroups: boolean,
): { n: number; groups: Int32Array | null } {
  const n = rowCount(rows.features, layout.fields, `${path}.features`);
  if (n === 0) throw new BadRequestError(`${path}.features`, 'has no rows');
  const labels = rows.labels;
  if (labels?.length !== n) {
    throw new BadRequestError(`${path}.labels`, `must have one label per row (${n})`);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(labels[i])) {
      throw new BadRequestError(`${path}.labels`, `label ${i} is not a finite number`);
    }
  }
  if (rows.groups === undefined) {
    if (needGroups) throw new BadRequestError(`${path}.groups`, 'query group sizes are required');
    return { n, groups: null };
  }
  const groups = Int32Array.from(rows.groups);
  let total = 0;
  for (let q = 0; q < rows.groups.length; q++) {
    const size = rows.groups[q] as number;
    if (!Number.isInteger(size) || size < 1) {
      throw new BadRequestError(`${path}.groups`, `group ${q} has size ${size}`);
    }
    total += size;
  }
  if (total !== n) {
    throw new BadRequestError(`${path}.groups`, `group sizes sum to ${total}, not ${n} rows`);
  }
  return { n, groups };
}

/** Adam moments of the trainable parameters, updated in place. */
class Adam {
  private readonly m: Vec[];
  private readonly v: Vec[];
  private t = 0;

  constructor(
    private readonly params: readonly DeepFmParam[],
    private readonly options: ResolvedDeepFmOptions,
    Ctor: VecConstructor,
  ) {
    this.m = params.map((p) => new Ctor(p.value.length));
    this.v = params.map((p) => new Ctor(p.value.length));
  }

  /**
   * One step on every parameter, reading and then clearing the gradients; the categorical
   * tables only at `touched` rows.
   */
  step(touched: Int32Array, touchedCount: number): void {
    this.t++;
    const { learningRate, l2 } = this.options;
    const rate = (learningRate * Math.sqrt(1 - BETA2 ** this.t)) / (1 - BETA1 ** this.t);
    this.params.forEach((p, i) => {
      const m = this.m[i] as Vec;
      const v = this.v[i] as Vec;
      const decay = p.isBias ? 0 : l2;
      if (!p.sparseRows) {
        update(p, m, v, 0, p.value.length, rate, decay);
        return;
      }
      const width = p.shape[1] ?? 1;
      for (let r = 0; r < touchedCount; r++) {
        const row = touched[r] as number;
        update(p, m, v, row * width, row * width + width, rate, decay);
      }
    });
  }
}

function update(
  p: DeepFmParam,
  m: Vec,
  v: Vec,
  from: number,
  to: number,
  rate: number,
  decay: number,
): void {
  const { value, grad } = p;
  for (let i = from; i < to; i++) {
    const w = value[i] as number;
    const g = (grad[i] as number) + decay * w;
    grad[i] = 0;
    const mi = BETA1 * (m[i] as number) + (1 - BETA1) * g;
    const vi = BETA2 * (v[i] as number) + (1 - BETA2) * g * g;
    m[i] = mi;
    v[i] = vi;
    value[i] = w - (rate * mi) / (Math.sqrt(vi) + ADAM_EPSILON);
  }
}

/** Logits of all encoded rows, in chunks of the workspace's size. */
function scoreEncoded(
  model: DeepFmModel,
  rows: EncodedRows,
  ws: DeepFmWorkspace,
  chunk: EncodedRows,
): Float64Array {
  const out = new Float64Array(rows.size);
  const index = Int32Array.from({ length: rows.size }, (_, i) => i);
  for (let from = 0; from < rows.size; from += chunk.size) {
    const size = Math.min(chunk.size, rows.size - from);
    gatherEncoded(model.layout, rows, index, from, size, chunk);
    const logits = model.forward(chunk, size, ws);
    for (let b = 0; b < size; b++) out[from + b] = logits[b] as number;
  }
  return out;
}

/** One epoch's batches: row order, and where each batch starts (in rows and in groups). */
interface EpochPlan {
  readonly order: Int32Array;
  /** Group sizes in epoch order (listwise only). */
  readonly groupSizes: Int32Array;
  /** Batch b covers `order[rowStart[b] .. rowStart[b+1])` and groups `groupStart[b] ..`. */
  readonly rowStart: number[];
  readonly groupStart: number[];
}

function planEpoch(
  n: number,
  groups: Int32Array | null,
  groupOffsets: Int32Array | null,
  listwise: boolean,
  batchSize: number,
  rng: Rng,
): EpochPlan {
  const order = new Int32Array(n);
  const rowStart: number[] = [0];
  const groupStart: number[] = [0];
  if (!listwise || groups === null || groupOffsets === null) {
    for (let i = 0; i < n; i++) order[i] = i;
    rng.shuffle(order);
    for (let s = batchSize; s < n; s += batchSize) rowStart.push(s);
    rowStart.push(n);
    return { order, groupSizes: new Int32Array(0), rowStart, groupStart };
  }
  const perm = Int32Array.from({ length: groups.length }, (_, q) => q);
  rng.shuffle(perm);
  const groupSizes = new Int32Array(groups.length);
  let at = 0;
  let inBatch = 0;
  for (let i = 0; i < perm.length; i++) {
    const q = perm[i] as number;
    const size = groups[q] as number;
    const start = groupOffsets[q] as number;
    for (let r = 0; r < size; r++) order[at + r] = start + r;
    groupSizes[i] = size;
    at += size;
    inBatch += size;
    if (inBatch >= batchSize || i === perm.length - 1) {
      rowStart.push(at);
      groupStart.push(i + 1);
      inBatch = 0;
    }
  }
  return { order, groupSizes, rowStart, groupStart };
}

/** Trains a DeepFM ranker on `input.train`, early-stopping on `input.validation`. */
export function trainDeepFm(
  input: DeepFmTrainInput,
  options: DeepFmOptions = {},
  hooks: DeepFmTrainHooks = {},
): TrainedDeepFm {
  const opts = resolveDeepFmOptions(options);
  const layout = schemaLayout(input.schema);
  const listwise = opts.loss === DeepFmLoss.Listwise;
  const train = checkRows(layout, input.train, 'train', listwise);
  const valid =
    input.validation === undefined
      ? undefined
      : checkRows(layout, input.validation, 'validation', true);
  const started = performance.now();

  const model = new DeepFmModel(input.schema, opts, { precision: opts.precision, seed: opts.seed });
  const stats = fitStandardisation(layout, input.train.features);
  model.mean.value.set(stats.mean);
  model.std.value.set(stats.std);

  const encoded = allocateEncoded(layout, train.n);
  model.encode(input.train.features, 0, train.n, encoded);
  const validEncoded =
    valid === undefined || input.validation === undefined
      ? undefined
      : allocateEncoded(layout, valid.n);
  if (validEncoded !== undefined && input.validation !== undefined) {
    model.encode(input.validation.features, 0, validEncoded.size, validEncoded);
  }
  let groupOffsets: Int32Array | null = null;
  if (train.groups !== null) {
    groupOffsets = new Int32Array(train.groups.length);
    let start = 0;
    train.groups.forEach((size, q) => {
      (groupOffsets as Int32Array)[q] = start;
      start += size;
    });
  }

  // A listwise batch holds whole groups, so it can pass batchSize by up to one group.
  let capacity = opts.batchSize;
  if (listwise && train.groups !== null) capacity += Math.max(...train.groups);
  const Ctor: VecConstructor = opts.precision === 'float64' ? Float64Array : Float32Array;
  const batch = allocateEncoded(layout, capacity);
  const batchLabels = new Float64Array(capacity);
  const dLogits = new Ctor(capacity);
  const ws = model.workspace();
  const scoreChunk = allocateEncoded(layout, 1024);
  const adam = new Adam(model.trainable, opts, Ctor);
  const fc = layout.categorical.length;
  const seen = new Uint8Array(layout.categoricalRows);
  const touched = new Int32Array(Math.min(layout.categoricalRows, capacity * fc));
  const rng = new Rng(opts.seed ^ 0x5bd1e995);
  const dropout = opts.dropout > 0 ? { rate: opts.dropout, rng } : undefined;

  const epochs: DeepFmEpoch[] = [];
  let best = -Infinity;
  let bestEpoch = 0;
  let snapshot: Map<string, Vec> | undefined;
  let stale = 0;
  let stoppedEarly = false;
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    const epochStarted = performance.now();
    const plan = planEpoch(train.n, train.groups, groupOffsets, listwise, opts.batchSize, rng);
    let lossSum = 0;
    let lossCount = 0;
    for (let b = 0; b + 1 < plan.rowStart.length; b++) {
      const from = plan.rowStart[b] as number;
      const size = (plan.rowStart[b + 1] as number) - from;
      gatherEncoded(layout, encoded, plan.order, from, size, batch);
      for (let r = 0; r < size; r++) {
        batchLabels[r] = input.train.labels[plan.order[from + r] as number] as number;
      }
      const logits = model.forward(batch, size, ws, dropout);
      if (listwise) {
        const g0 = plan.groupStart[b] as number;
        const g1 = plan.groupStart[b + 1] as number;
        const result = listwiseLoss(
          logits,
          batchLabels,
          plan.groupSizes.subarray(g0, g1),
          g1 - g0,
          dLogits,
        );
        lossSum += result.loss * result.groups;
        lossCount += result.groups;
        if (result.groups === 0) continue;
      } else {
        lossSum += pointwiseLoss(logits, batchLabels, size, dLogits) * size;
        lossCount += size;
      }
      model.backward(ws, dLogits);
      let touchedCount = 0;
      for (let i = 0; i < size * fc; i++) {
        const row = batch.rows[i] as number;
        if (seen[row] === 1) continue;
        seen[row] = 1;
        touched[touchedCount++] = row;
      }
      adam.step(touched, touchedCount);
      for (let i = 0; i < touchedCount; i++) seen[touched[i] as number] = 0;
    }
    const trainSeconds = (performance.now() - epochStarted) / 1000;
    let validNdcg: number | null = null;
    let validAuc: number | null = null;
    if (valid !== undefined && validEncoded !== undefined && input.validation !== undefined) {
      const scores = scoreEncoded(model, validEncoded, ws, scoreChunk);
      validNdcg = ndcgAt(scores, input.validation.labels, valid.groups as Int32Array, opts.ndcgAt);
      validAuc = auc(scores, input.validation.labels);
    }
    const record: DeepFmEpoch = {
      epoch,
      loss: lossCount > 0 ? lossSum / lossCount : 0,
      validNdcg,
      validAuc,
      seconds: (performance.now() - epochStarted) / 1000,
      rowsPerSecond: train.n / Math.max(trainSeconds, 1e-9),
    };
    epochs.push(record);
    hooks.onEpoch?.(record);
    if (validNdcg === null) {
      bestEpoch = epoch;
      continue;
    }
    if (validNdcg > best) {
      best = validNdcg;
      bestEpoch = epoch;
      snapshot = model.snapshot();
      stale = 0;
    } else if (opts.earlyStoppingRounds > 0 && ++stale >= opts.earlyStoppingRounds) {
      stoppedEarly = epoch < opts.epochs;
      break;
    }
  }
  if (snapshot !== undefined && bestEpoch !== epochs.length) model.restore(snapshot);
  return {
    model,
    options: opts,
    report: {
      rows: train.n,
      groups: train.groups?.length ?? null,
      epochs,
      bestEpoch,
      bestValidNdcg: valid === undefined ? null : best,
      stoppedEarly,
      seconds: (performance.now() - started) / 1000,
    },
  };
}
