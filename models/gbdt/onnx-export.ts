/**
 * Writes a tree ensemble as one ONNX `ai.onnx.ml` TreeEnsembleRegressor node (ml opset 3, which
 * onnxruntime-node runs on its CPU provider): input `features` float32 `[N, width]`, output `score`
 * float32 `[N, 1]`, the raw score (the sum of the trees, as `predictRaw` computes it).
 *
 * The graph decides every float32 input exactly as the float64 model decides its widened value
 * (what `predictRaw` does with a Float32Array), so the only difference from `predictRaw` is the
 * float32 sum of the leaf values:
 *
 * - Thresholds. onnxruntime compares in float32, and `x <= t` for a float32 x holds exactly when
 *   `x <= t32`, t32 the largest float32 not above t; so thresholds are rounded down, never to
 *   nearest (nearest would flip the inputs between t and a t32 above it). LightGBM's zeroing of
 *   inputs within ±kZeroThreshold is folded in first, as in `predict.ts`.
 * - Missing values. onnxruntime sends NaN down the true branch when the node's
 *   `nodes_missing_value_tracks_true` is 1: set for a NaN missing type whose default direction is
 *   left, and for missing type None when `0 <= threshold` (LightGBM takes NaN as 0 there).
 * - Zero as missing (`zero_as_missing`). NaN and values within ±kZeroThreshold take the default
 *   direction: one BRANCH_LEQ node when the zero band falls on the default side anyway, else a
 *   BRANCH_LT / BRANCH_LEQ pair around the band after the threshold test.
 * - Categorical splits. The categories of a bitset are cut into runs of consecutive values, and
 *   each run [a, b] becomes two nodes: `x < a` (right) then `x < b + 1` (left). That is LightGBM's
 *   `trunc(x) in bitset` for every float (2.5 is category 2; -0.5 is category 0; NaN, values <= -1
 *   and values past the last run go right), which equality tests (BRANCH_EQ chains, or
 *   TreeEnsemble's BRANCH_MEMBER in ml opset 5) are not for non-integer inputs. The subtrees the
 *   chain leads to are shared, not copied: onnxruntime accepts a node reached by several true
 *   branches (and by at most one false branch, visited first), which is how the chains are laid.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { ConfigError } from '../../runtime/errors.js';
import { DecisionBits, MissingType } from './model.js';
import type { GbdtModel, GbdtTree } from './model.js';
import { checkGbdtModel, effectiveThreshold, K_ZERO_THRESHOLD, numCategorical } from './predict.js';

const { onnx } = onnxProto;

/** The `ai.onnx.ml` opset of the graph: TreeEnsembleRegressor 3. */
export const GBDT_ONNX_ML_OPSET = 3;
/** The default-domain opset imported beside it (the graph has no default-domain node). */
const ONNX_OPSET = 15;
const IR_VERSION = 8;
/** Name of the graph's input: float32 `[N, width]`. */
export const GBDT_ONNX_INPUT = 'features';
/** Name of the graph's output: float32 `[N, 1]`, the raw score. */
export const GBDT_ONNX_OUTPUT = 'score';

export interface GbdtOnnxOptions {
  /**
   * Columns of the input. Columns past the model's features are ignored.
   * @default the model's `maxFeatureIdx + 1`
   */
  readonly width?: number;
  /** Key-value metadata stored in the model (model version, training run...). @default {} */
  readonly metadata?: Readonly<Record<string, string>>;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The next float32 towards -∞ from a float32 `f` (not NaN, not -∞). */
function float32Below(f: number): number {
  if (f === 0) return -1.401298464324817e-45;
  f32[0] = f;
  u32[0] = f > 0 ? (u32[0] as number) - 1 : (u32[0] as number) + 1;
  return f32[0];
}

/** The largest float32 not above `x` (−∞ when none; NaN stays NaN). */
export function float32AtMost(x: number): number {
  const f = Math.fround(x);
  return f > x ? float32Below(f) : f;
}

/** The smallest float32 not below `x` (+∞ when none; NaN stays NaN). */
export function float32AtLeast(x: number): number {
  return -float32AtMost(-x);
}

/** ONNX node modes used here. */
const Mode = {
  Leq: 'BRANCH_LEQ',
  Lt: 'BRANCH_LT',
  Leaf: 'LEAF',
} as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/** The node arrays of TreeEnsembleRegressor, filled tree by tree. */
class Ensemble {
  readonly treeIds: number[] = [];
  readonly nodeIds: number[] = [];
  readonly featureIds: number[] = [];
  readonly modes: Mode[] = [];
  readonly values: number[] = [];
  readonly trueIds: number[] = [];
  readonly falseIds: number[] = [];
  readonly missingTrue: number[] = [];
  readonly targetTreeIds: number[] = [];
  readonly targetNodeIds: number[] = [];
  readonly targetWeights: number[] = [];
  private treeId = 0;
  private nextId = 0;

  startTree(treeId: number): void {
    this.treeId = treeId;
    this.nextId = 0;
  }

  /** Reserves a node; its fields are set by `branch` or `leaf`. */
  reserve(): number {
    const id = this.nextId++;
    this.treeIds.push(this.treeId);
    this.nodeIds.push(id);
    this.featureIds.push(0);
    this.modes.push(Mode.Leaf);
    this.values.push(0);
    this.trueIds.push(0);
    this.falseIds.push(0);
    this.missingTrue.push(0);
    return this.modes.length - 1;
  }

  idOf(slot: number): number {
    return this.nodeIds[slot] as number;
  }

  branch(
    slot: number,
    feature: number,
    mode: Mode,
    value: number,
    onTrue: number,
    onFalse: number,
    nanTrue: boolean,
  ): void {
    this.featureIds[slot] = feature;
    this.modes[slot] = mode;
    this.values[slot] = value;
    this.trueIds[slot] = this.idOf(onTrue);
    this.falseIds[slot] = this.idOf(onFalse);
    this.missingTrue[slot] = nanTrue ? 1 : 0;
  }

  leaf(value: number): number {
    const slot = this.reserve();
    this.targetTreeIds.push(this.treeId);
    this.targetNodeIds.push(this.idOf(slot));
    this.targetWeights.push(value);
    return slot;
  }
}

/** Runs `[a, b]` of consecutive categories set in a bitset. */
function categoryRuns(words: Uint32Array): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  let start = -1;
  const total = words.length * 32;
  for (let c = 0; c <= total; c++) {
    const set = c < total && (((words[c >>> 5] as number) >>> (c & 31)) & 1) === 1;
    if (set && start < 0) start = c;
    if (!set && start >= 0) {
      runs.push([start, c - 1]);
      start = -1;
    }
  }
  return runs;
}

/**
 * Emits the subtree under LightGBM child `child` (a node index, or `~leaf`) and returns its slot.
 * Children are emitted in the order onnxruntime lays nodes out (false branch first), so that the
 * one false-branch reference to a shared subtree is its first visit.
 */
function emit(e: Ensemble, tree: GbdtTree, child: number): number {
  if (child < 0) return e.leaf(tree.leafValue[~child] as number);
  const n = child;
  const feature = tree.splitFeature[n] as number;
  const bits = tree.decisionType[n] as number;
  const left = tree.leftChild[n] as number;
  const right = tree.rightChild[n] as number;
  const defaultLeft = (bits & DecisionBits.DefaultLeft) !== 0;
  const missingType = (bits >> DecisionBits.MissingTypeShift) & 3;
  const threshold = tree.threshold[n] as number;
  const kZ = K_ZERO_THRESHOLD;

  if (numCategorical(tree) > 0 && (bits & DecisionBits.Categorical) !== 0) {
    const from = tree.catBoundaries[threshold] as number;
    const to = tree.catBoundaries[threshold + 1] as number;
    const runs = categoryRuns(tree.catThreshold.subarray(from, to));
    // No category goes left: the node is the right subtree.
    if (runs.length === 0) return emit(e, tree, right);
    const slots = runs.map(() => [e.reserve(), e.reserve()] as const);
    const rightSlot = emit(e, tree, right);
    const leftSlot = emit(e, tree, left);
    runs.forEach(([a, b], k) => {
      const [below, within] = slots[k] as readonly [number, number];
      const next = k + 1 < runs.length ? (slots[k + 1] as readonly [number, number])[0] : rightSlot;
      // trunc(x) >= a: x > -1 for a = 0 (x in (-1, 0) is category 0), else x >= a.
      if (a === 0) e.branch(below, feature, Mode.Leq, -1, rightSlot, within, false);
      else e.branch(below, feature, Mode.Lt, float32AtLeast(a), rightSlot, within, false);
      e.branch(within, feature, Mode.Lt, float32AtLeast(b + 1), leftSlot, next, false);
    });
    return (slots[0] as readonly [number, number])[0];
  }

  if (missingType !== MissingType.Zero) {
    const t32 = float32AtMost(effectiveThreshold(threshold));
    const slot = e.reserve();
    const rightSlot = emit(e, tree, right);
    const leftSlot = emit(e, tree, left);
    const nanLeft = missingType === MissingType.NaN ? defaultLeft : 0 <= t32;
    e.branch(slot, feature, Mode.Leq, t32, leftSlot, rightSlot, nanLeft);
    return slot;
  }

  // Zero as missing: NaN and |x| <= kZ take the default direction, others `x <= t32`.
  const t32 = float32AtMost(threshold);
  if (defaultLeft && t32 >= -kZ) {
    // The band is left of the threshold, or touches it: left iff x <= max(t32, kZ).
    const slot = e.reserve();
    const rightSlot = emit(e, tree, right);
    const leftSlot = emit(e, tree, left);
    e.branch(slot, feature, Mode.Leq, Math.max(t32, kZ), leftSlot, rightSlot, true);
    return slot;
  }
  if (!defaultLeft && t32 < kZ) {
    // Left iff x <= t32 outside the band: x <= t32 below it, or x < -kZ when t32 is inside it.
    const slot = e.reserve();
    const rightSlot = emit(e, tree, right);
    const leftSlot = emit(e, tree, left);
    if (t32 < -kZ) e.branch(slot, feature, Mode.Leq, t32, leftSlot, rightSlot, false);
    else e.branch(slot, feature, Mode.Lt, -kZ, leftSlot, rightSlot, false);
    return slot;
  }
  if (defaultLeft) {
    // t32 < -kZ: x <= t32 left; else x < -kZ right; else x <= kZ (the band) left; else right.
    const test = e.reserve();
    const below = e.reserve();
    const band = e.reserve();
    const rightSlot = emit(e, tree, right);
    const leftSlot = emit(e, tree, left);
    e.branch(test, feature, Mode.Leq, t32, leftSlot, below, true);
    e.branch(below, feature, Mode.Lt, -kZ, rightSlot, band, false);
    e.branch(band, feature, Mode.Leq, kZ, leftSlot, rightSlot, false);
    return test;
  }
  // Default right, t32 >= kZ: above t32 right; x < -kZ left; the band right; (kZ, t32] left.
  const test = e.reserve();
  const rightSlot = emit(e, tree, right);
  const below = e.reserve();
  const band = e.reserve();
  const leftSlot = emit(e, tree, left);
  e.branch(test, feature, Mode.Leq, t32, below, rightSlot, false);
  e.branch(below, feature, Mode.Lt, -kZ, leftSlot, band, false);
  e.branch(band, feature, Mode.Leq, kZ, rightSlot, leftSlot, false);
  return test;
}

function intsAttr(name: string, ints: readonly number[]): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...ints] };
}

function floatsAttr(name: string, floats: readonly number[]): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOATS, floats: [...floats] };
}

function stringAttr(name: string, s: string): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(s) };
}

function stringsAttr(name: string, strings: readonly string[]): OnnxTypes.IAttributeProto {
  const encoder = new TextEncoder();
  return {
    name,
    type: onnx.AttributeProto.AttributeType.STRINGS,
    strings: strings.map((s) => encoder.encode(s)),
  };
}

function tensorInfo(name: string, dims: Array<number | string>): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

/** Serialises `model` to ONNX (checked first: a bad model throws, naming the field). */
export function exportGbdtOnnx(model: GbdtModel, options: GbdtOnnxOptions = {}): Uint8Array {
  checkGbdtModel(model);
  const width = options.width ?? model.maxFeatureIdx + 1;
  if (!Number.isInteger(width) || width < model.maxFeatureIdx + 1) {
    throw new ConfigError('width', `must be an integer of at least ${model.maxFeatureIdx + 1}`);
  }
  const e = new Ensemble();
  model.trees.forEach((tree, t) => {
    e.startTree(t);
    emit(e, tree, tree.numLeaves > 1 ? 0 : ~0);
  });
  const attributes: OnnxTypes.IAttributeProto[] = [
    intAttr('n_targets', 1),
    stringAttr('aggregate_function', 'SUM'),
    stringAttr('post_transform', 'NONE'),
    floatsAttr('base_values', [0]),
    intsAttr('nodes_treeids', e.treeIds),
    intsAttr('nodes_nodeids', e.nodeIds),
    intsAttr('nodes_featureids', e.featureIds),
    stringsAttr('nodes_modes', e.modes),
    floatsAttr('nodes_values', e.values),
    intsAttr('nodes_truenodeids', e.trueIds),
    intsAttr('nodes_falsenodeids', e.falseIds),
    intsAttr('nodes_missing_value_tracks_true', e.missingTrue),
    intsAttr('target_treeids', e.targetTreeIds),
    intsAttr('target_nodeids', e.targetNodeIds),
    intsAttr(
      'target_ids',
      e.targetNodeIds.map(() => 0),
    ),
    floatsAttr('target_weights', e.targetWeights),
  ];
  const proto: OnnxTypes.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [
      { domain: '', version: ONNX_OPSET },
      { domain: 'ai.onnx.ml', version: GBDT_ONNX_ML_OPSET },
    ],
    producerName: 'recsys',
    producerVersion: '1',
    docString: `Gradient-boosted trees (${model.objective || 'no objective'}): raw scores.`,
    graph: {
      name: 'gbdt',
      node: [
        {
          opType: 'TreeEnsembleRegressor',
          domain: 'ai.onnx.ml',
          name: 'trees',
          input: [GBDT_ONNX_INPUT],
          output: [GBDT_ONNX_OUTPUT],
          attribute: attributes,
        },
      ],
      input: [tensorInfo(GBDT_ONNX_INPUT, ['N', width])],
      output: [tensorInfo(GBDT_ONNX_OUTPUT, ['N', 1])],
    },
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(proto).finish();
}

function intAttr(name: string, i: number): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}
