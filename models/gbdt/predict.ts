/**
 * The TypeScript evaluator of a tree ensemble, for small batches (a few rows: onnxruntime's call
 * overhead outweighs its speed there). It follows LightGBM's `Tree::NumericalDecision` and
 * `Tree::CategoricalDecision` rule for rule, so a LightGBM model scores here as in LightGBM:
 *
 * - numerical, missing type None: NaN is taken as 0, then `value <= threshold` goes left;
 * - missing type Zero: NaN and every value within ±kZeroThreshold (1e-35 as a float) take the
 *   default direction, others `value <= threshold`;
 * - missing type NaN: NaN takes the default direction, others `value <= threshold`;
 * - categorical: NaN, values <= -1 and values >= 2^31 go right (LightGBM casts to int: x86 turns
 *   NaN and out-of-range values into INT_MIN); otherwise `trunc(value)` in the node's bitset goes
 *   left.
 *
 * LightGBM also zeroes every input within ±kZeroThreshold before the trees see it (its parsers and
 * dense-matrix readers skip such values); the compiled form folds that into the thresholds.
 *
 * The model is flattened once into typed arrays (cached per model object), so scoring a batch into
 * a caller's buffer allocates nothing.
 */
import { BadRequestError } from '../../runtime/errors.js';
import { DecisionBits, MissingType } from './model.js';
import type { GbdtModel, GbdtTree } from './model.js';

/** LightGBM's `kZeroThreshold`: the float `1e-35f` widened to double. */
export const K_ZERO_THRESHOLD = Math.fround(1e-35);

/** How raw scores become predictions: LightGBM's `ObjectiveFunction::ConvertOutput`. */
export const OutputTransform = {
  /** Regression (L2, L1, Huber, Fair, quantile, MAPE), lambdarank, rank_xendcg, no objective. */
  Identity: 'identity',
  /** `binary sigmoid:k`: `1 / (1 + exp(-k · raw))`; cross_entropy: the same with k = 1. */
  Sigmoid: 'sigmoid',
  /** Poisson, gamma, Tweedie: `exp(raw)`. */
  Exp: 'exp',
  /** A regression objective trained with `reg_sqrt` (`regression sqrt`): `sign(raw) · raw²`. */
  SignedSquare: 'signed_square',
  /** cross_entropy_lambda: `log(1 + exp(raw))`. */
  Log1pExp: 'log1p_exp',
} as const;
export type OutputTransform = (typeof OutputTransform)[keyof typeof OutputTransform];

/** The output transform of an objective, with the sigmoid's scale. */
export interface ObjectiveOutput {
  readonly transform: OutputTransform;
  /** k of `binary sigmoid:k`; 1 for other transforms. */
  readonly sigmoid: number;
}

const REGRESSION = new Set(['regression', 'regression_l1', 'huber', 'fair', 'quantile', 'mape']);
const LOG_LINK = new Set(['poisson', 'gamma', 'tweedie']);
const RANKING = new Set(['lambdarank', 'rank_xendcg']);

/**
 * The output transform of a LightGBM objective line (`binary sigmoid:1`, `regression`,
 * `lambdarank`, ...; empty for a model saved without an objective). Multiclass objectives and
 * objectives this module does not know are refused.
 */
export function objectiveOutput(objective: string): ObjectiveOutput {
  const tokens = objective
    .trim()
    .split(/\s+/)
    .filter((t) => t !== '');
  const name = tokens[0] ?? '';
  const params = tokens.slice(1);
  const refuse = (why: string): BadRequestError =>
    new BadRequestError('objective', `${JSON.stringify(objective)}: ${why}`);
  if (name === '' || RANKING.has(name)) {
    return { transform: OutputTransform.Identity, sigmoid: 1 };
  }
  if (REGRESSION.has(name)) {
    const sqrt = params.includes('sqrt');
    if (params.some((p) => p !== 'sqrt')) throw refuse('unknown objective parameters');
    return {
      transform: sqrt ? OutputTransform.SignedSquare : OutputTransform.Identity,
      sigmoid: 1,
    };
  }
  if (LOG_LINK.has(name)) return { transform: OutputTransform.Exp, sigmoid: 1 };
  if (name === 'binary') {
    let sigmoid = 1;
    for (const p of params) {
      const m = /^sigmoid:(.+)$/.exec(p);
      const k = m === null ? NaN : Number(m[1]);
      if (!(Number.isFinite(k) && k > 0)) throw refuse(`bad parameter ${JSON.stringify(p)}`);
      sigmoid = k;
    }
    return { transform: OutputTransform.Sigmoid, sigmoid };
  }
  if (name === 'cross_entropy' || name === 'xentropy') {
    return { transform: OutputTransform.Sigmoid, sigmoid: 1 };
  }
  if (name === 'cross_entropy_lambda' || name === 'xentlambda') {
    return { transform: OutputTransform.Log1pExp, sigmoid: 1 };
  }
  if (name === 'multiclass' || name === 'multiclassova' || name === 'softmax') {
    throw refuse('multiclass models are not supported (one output per row only)');
  }
  throw refuse('unknown objective');
}

/** Applies an objective's output transform to one raw score, as LightGBM does. */
export function transformScore(output: ObjectiveOutput, raw: number): number {
  switch (output.transform) {
    case OutputTransform.Sigmoid:
      return 1 / (1 + Math.exp(-output.sigmoid * raw));
    case OutputTransform.Exp:
      return Math.exp(raw);
    case OutputTransform.SignedSquare:
      return Math.sign(raw) * raw * raw;
    case OutputTransform.Log1pExp:
      return Math.log1p(Math.exp(raw));
    default:
      return raw;
  }
}

/** What is wrong with a tree, and under which LightGBM key. */
export interface TreeProblem {
  readonly key: string;
  readonly message: string;
}

/** Number of categorical bitsets of a tree (LightGBM's `num_cat`). */
export function numCategorical(tree: GbdtTree): number {
  return Math.max(0, tree.catBoundaries.length - 1);
}

/**
 * Checks a tree's structure: array lengths, a proper binary tree over its nodes and leaves,
 * feature indices, decision bits and categorical bitsets. Returns the first problem found.
 */
export function findTreeProblem(tree: GbdtTree, maxFeatureIdx: number): TreeProblem | undefined {
  const leaves = tree.numLeaves;
  if (!Number.isInteger(leaves) || leaves < 1) {
    return { key: 'num_leaves', message: `must be a positive integer, got ${leaves}` };
  }
  const inner = leaves - 1;
  const lengths: Array<[string, number, number]> = [
    ['split_feature', tree.splitFeature.length, inner],
    ['split_gain', tree.splitGain.length, inner],
    ['threshold', tree.threshold.length, inner],
    ['decision_type', tree.decisionType.length, inner],
    ['left_child', tree.leftChild.length, inner],
    ['right_child', tree.rightChild.length, inner],
    ['internal_value', tree.internalValue.length, inner],
    ['internal_weight', tree.internalWeight.length, inner],
    ['internal_count', tree.internalCount.length, inner],
    ['leaf_value', tree.leafValue.length, leaves],
    ['leaf_weight', tree.leafWeight.length, leaves],
    ['leaf_count', tree.leafCount.length, leaves],
  ];
  for (const [key, actual, expected] of lengths) {
    if (actual !== expected) {
      return { key, message: `has ${actual} values, expected ${expected}` };
    }
  }
  const numCat = numCategorical(tree);
  const bounds = tree.catBoundaries;
  if (numCat > 0) {
    if (bounds[0] !== 0) return { key: 'cat_boundaries', message: 'must start at 0' };
    for (let i = 1; i < bounds.length; i++) {
      if ((bounds[i] as number) < (bounds[i - 1] as number)) {
        return { key: 'cat_boundaries', message: 'must not decrease' };
      }
    }
    if (bounds[numCat] !== tree.catThreshold.length) {
      return {
        key: 'cat_threshold',
        message: `has ${tree.catThreshold.length} words, cat_boundaries ends at ${bounds[numCat]}`,
      };
    }
  }
  for (let n = 0; n < inner; n++) {
    const feature = tree.splitFeature[n] as number;
    if (feature < 0 || feature > maxFeatureIdx) {
      return {
        key: 'split_feature',
        message: `node ${n} splits on feature ${feature}, past max_feature_idx ${maxFeatureIdx}`,
      };
    }
    const bits = tree.decisionType[n] as number;
    const missing = (bits >> DecisionBits.MissingTypeShift) & 3;
    if (bits > 15 || missing === 3) {
      return { key: 'decision_type', message: `node ${n} has unknown decision bits ${bits}` };
    }
    if (Number.isNaN(tree.threshold[n])) {
      return { key: 'threshold', message: `node ${n} has a NaN threshold` };
    }
    if ((bits & DecisionBits.Categorical) !== 0) {
      const index = tree.threshold[n] as number;
      if (!Number.isInteger(index) || index < 0 || index >= numCat) {
        return {
          key: 'threshold',
          message: `categorical node ${n} refers to bitset ${index}; the tree has ${numCat} (num_cat)`,
        };
      }
    }
  }
  // Every node but the root and every leaf has exactly one parent, all reachable from the root.
  if (inner > 0) {
    const seenNode = new Uint8Array(inner);
    const seenLeaf = new Uint8Array(leaves);
    const stack = [0];
    seenNode[0] = 1;
    let visited = 0;
    while (stack.length > 0) {
      const n = stack.pop() as number;
      visited++;
      for (const [key, child] of [
        ['left_child', tree.leftChild[n] as number],
        ['right_child', tree.rightChild[n] as number],
      ] as const) {
        if (child >= 0) {
          if (child >= inner || seenNode[child] === 1) {
            return { key, message: `node ${n} points to node ${child} (out of range or shared)` };
          }
          seenNode[child] = 1;
          stack.push(child);
        } else {
          const leaf = ~child;
          if (leaf >= leaves || seenLeaf[leaf] === 1) {
            return { key, message: `node ${n} points to leaf ${leaf} (out of range or shared)` };
          }
          seenLeaf[leaf] = 1;
        }
      }
    }
    if (visited !== inner) {
      return { key: 'left_child', message: `${inner - visited} nodes are not under the root` };
    }
  }
  return undefined;
}

/** Throws when the model cannot be evaluated: a bad tree, or an objective without a transform. */
export function checkGbdtModel(model: GbdtModel): ObjectiveOutput {
  if (!Number.isInteger(model.maxFeatureIdx) || model.maxFeatureIdx < 0) {
    throw new BadRequestError('max_feature_idx', 'must be a non-negative integer');
  }
  model.trees.forEach((tree, t) => {
    const problem = findTreeProblem(tree, model.maxFeatureIdx);
    if (problem !== undefined) {
      throw new BadRequestError(`trees[${t}].${problem.key}`, problem.message, {
        data: { tree: t },
      });
    }
  });
  return objectiveOutput(model.objective);
}

/** How a compiled node decides (the low two bits of its first word). */
const NodeKind = {
  /** Numerical, NaN goes left: right iff `v > threshold`. */
  NumericalNaNLeft: 0,
  /** NaN and |v| <= kZeroThreshold to the third child (default side), else `v <= threshold`. */
  ZeroMissing: 1,
  /** `trunc(v)` in the bitset `catWords[third word, threshold)` left; NaN, out of range right. */
  Categorical: 2,
  /** Numerical, NaN goes right: left iff `v <= threshold`. */
  NumericalNaNRight: 3,
} as const;

/** Rows scored tree by tree together (a block of 40-feature float64 rows is 80 KB). */
const ROW_BLOCK = 256;

/** Int32 words per compiled node. */
const NODE_WORDS = 4;

/**
 * A model flattened into typed arrays, every tree's nodes in one block. Node `i` is the words
 * `nodes[4i .. 4i+3]`: `feature << 2 | kind`, left child, right child, and the NaN child
 * (numerical), the default child (zero-missing) or the first bitset word (categorical);
 * `threshold[i]` is the threshold with LightGBM's input zeroing folded in, or the end of the
 * bitset. A child >= 0 is a node; `~child` is a leaf index into `leafValue`. A node's fields side
 * by side (rather than an array per field) make the walk about 1.5× faster.
 */
export interface CompiledGbdt {
  /** Columns a row must have: the model's `maxFeatureIdx + 1`. */
  readonly numFeatures: number;
  readonly numTrees: number;
  /** Per tree: its first node, or `~leaf` for a tree of one leaf. */
  readonly roots: Int32Array;
  readonly nodes: Int32Array;
  readonly threshold: Float64Array;
  readonly catWords: Uint32Array;
  readonly leafValue: Float64Array;
  /** Predictions (not raw scores) divide the sum by the number of trees (random forest mode). */
  readonly averageOutput: boolean;
  readonly output: ObjectiveOutput;
}

/** The largest double below `x` (x finite, not zero). */
function nextDown(x: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  view.setBigUint64(0, x > 0 ? bits - 1n : bits + 1n);
  return view.getFloat64(0);
}

/**
 * The threshold that decides raw inputs as LightGBM decides them after zeroing every input within
 * ±kZeroThreshold: only a threshold inside that band needs moving (to the band's edge, on the
 * side that keeps "0 <= threshold" as it was).
 */
export function effectiveThreshold(threshold: number): number {
  if (threshold >= -K_ZERO_THRESHOLD && threshold < K_ZERO_THRESHOLD) {
    return threshold >= 0 ? K_ZERO_THRESHOLD : nextDown(-K_ZERO_THRESHOLD);
  }
  return threshold;
}

const compiledCache = new WeakMap<GbdtModel, CompiledGbdt>();

/** Flattens a model (checked first). Cached per model object: call it as often as convenient. */
export function compileGbdt(model: GbdtModel): CompiledGbdt {
  const cached = compiledCache.get(model);
  if (cached !== undefined) return cached;
  const output = checkGbdtModel(model);
  let inner = 0;
  let leaves = 0;
  let words = 0;
  for (const tree of model.trees) {
    inner += tree.numLeaves - 1;
    leaves += tree.numLeaves;
    words += tree.catThreshold.length;
  }
  if (model.maxFeatureIdx >= 2 ** 29) {
    throw new BadRequestError('max_feature_idx', 'must be below 2^29');
  }
  const c = {
    numFeatures: model.maxFeatureIdx + 1,
    numTrees: model.trees.length,
    roots: new Int32Array(model.trees.length),
    nodes: new Int32Array(inner * NODE_WORDS),
    threshold: new Float64Array(inner),
    catWords: new Uint32Array(words),
    leafValue: new Float64Array(leaves),
    averageOutput: model.averageOutput,
    output,
  } satisfies CompiledGbdt;
  let nodeBase = 0;
  let leafBase = 0;
  let wordBase = 0;
  model.trees.forEach((tree, t) => {
    const count = tree.numLeaves - 1;
    const child = (x: number): number => (x >= 0 ? nodeBase + x : ~(leafBase + ~x));
    c.roots[t] = count > 0 ? nodeBase : ~leafBase;
    c.leafValue.set(tree.leafValue, leafBase);
    c.catWords.set(tree.catThreshold, wordBase);
    // LightGBM reads the categorical bit only in trees that have bitsets (num_cat > 0).
    const hasCategorical = numCategorical(tree) > 0;
    for (let n = 0; n < count; n++) {
      const g = nodeBase + n;
      const p = g * NODE_WORDS;
      const bits = tree.decisionType[n] as number;
      const threshold = tree.threshold[n] as number;
      const left = child(tree.leftChild[n] as number);
      const right = child(tree.rightChild[n] as number);
      const defaultChild = (bits & DecisionBits.DefaultLeft) !== 0 ? left : right;
      const missingType = (bits >> DecisionBits.MissingTypeShift) & 3;
      const feature = (tree.splitFeature[n] as number) << 2;
      c.nodes[p + 1] = left;
      c.nodes[p + 2] = right;
      if (hasCategorical && (bits & DecisionBits.Categorical) !== 0) {
        c.nodes[p] = feature | NodeKind.Categorical;
        c.nodes[p + 3] = wordBase + (tree.catBoundaries[threshold] as number);
        c.threshold[g] = wordBase + (tree.catBoundaries[threshold + 1] as number);
      } else if (missingType === MissingType.Zero) {
        c.nodes[p] = feature | NodeKind.ZeroMissing;
        c.nodes[p + 3] = defaultChild;
        c.threshold[g] = threshold;
      } else {
        const effective = effectiveThreshold(threshold);
        // Missing type None: NaN is taken as 0. NaN: NaN takes the default direction.
        const nanChild =
          missingType === MissingType.NaN ? defaultChild : 0 <= effective ? left : right;
        c.nodes[p] =
          feature | (nanChild === left ? NodeKind.NumericalNaNLeft : NodeKind.NumericalNaNRight);
        c.nodes[p + 3] = nanChild;
        c.threshold[g] = effective;
      }
    }
    nodeBase += count;
    leafBase += tree.numLeaves;
    wordBase += tree.catThreshold.length;
  });
  compiledCache.set(model, c);
  return c;
}

function checkBatch(
  c: CompiledGbdt,
  rows: Float64Array | Float32Array,
  width: number,
  out: Float64Array | undefined,
): number {
  if (!Number.isInteger(width) || width < c.numFeatures) {
    throw new BadRequestError(
      'width',
      `a row needs at least ${c.numFeatures} values (max_feature_idx + 1), got ${width}`,
    );
  }
  if (rows.length % width !== 0) {
    throw new BadRequestError('rows', `length ${rows.length} is not a multiple of width ${width}`);
  }
  const n = rows.length / width;
  if (out !== undefined && out.length < n) {
    throw new BadRequestError('out', `has room for ${out.length} scores, the batch has ${n} rows`);
  }
  return n;
}

/**
 * Raw scores (the sum of the trees' outputs) of the rows `rows` (row-major, `n × width`), as
 * LightGBM's `PredictRaw` computes them: trees added in order, in double precision, and never
 * averaged (LightGBM averages a random forest's sum in `Predict` only).
 *
 * @param out where the scores go (at least `n` long); allocated when omitted
 */
export function predictRaw(
  model: GbdtModel | CompiledGbdt,
  rows: Float64Array | Float32Array,
  width: number,
  out?: Float64Array,
): Float64Array {
  const c = 'roots' in model ? model : compileGbdt(model);
  const n = checkBatch(c, rows, width, out);
  const result = out ?? new Float64Array(n);
  result.fill(0, 0, n);
  const { roots, nodes, threshold, catWords, leafValue, numTrees } = c;
  // Tree by tree over a block of rows: one tree's nodes and the block's rows stay in cache. Each
  // row still adds its trees' outputs in tree order, so the sums are LightGBM's to the last bit.
  for (let from = 0; from < n; from += ROW_BLOCK) {
    const to = Math.min(n, from + ROW_BLOCK);
    for (let t = 0; t < numTrees; t++) {
      const root = roots[t] as number;
      for (let r = from; r < to; r++) {
        const base = r * width;
        let node = root;
        while (node >= 0) {
          const p = node * NODE_WORDS;
          const head = nodes[p] as number;
          const v = rows[base + (head >> 2)] as number;
          const kind = head & 3;
          // The numerical kinds pick the child by index, without a branch on the comparison: the
          // comparison that is false for NaN decides, so NaN lands on its side.
          if (kind === NodeKind.NumericalNaNLeft) {
            node = nodes[p + 1 + +(v > (threshold[node] as number))] as number;
          } else if (kind === NodeKind.NumericalNaNRight) {
            node = nodes[p + 2 - +(v <= (threshold[node] as number))] as number;
          } else if (kind === NodeKind.ZeroMissing) {
            node = nodes[
              v !== v || (v >= -K_ZERO_THRESHOLD && v <= K_ZERO_THRESHOLD)
                ? p + 3
                : v <= (threshold[node] as number)
                  ? p + 1
                  : p + 2
            ] as number;
          } else if (v > -1 && v < 2147483648) {
            // LightGBM casts to int: NaN, values <= -1 and values past int32 go right (above).
            const category = v | 0;
            const word = (nodes[p + 3] as number) + (category >>> 5);
            const inSet =
              word < (threshold[node] as number) &&
              (((catWords[word] as number) >>> (category & 31)) & 1) === 1;
            node = nodes[inSet ? p + 1 : p + 2] as number;
          } else {
            node = nodes[p + 2] as number;
          }
        }
        result[r] = (result[r] as number) + (leafValue[~node] as number);
      }
    }
  }
  return result;
}

/**
 * Predictions as LightGBM's `Predict` makes them: the raw score, divided by the number of trees in
 * random forest mode, through the objective's output transform (probabilities for `binary`, `exp`
 * for Poisson, identity for regression and ranking).
 */
export function predict(
  model: GbdtModel | CompiledGbdt,
  rows: Float64Array | Float32Array,
  width: number,
  out?: Float64Array,
): Float64Array {
  const c = 'roots' in model ? model : compileGbdt(model);
  const result = predictRaw(c, rows, width, out);
  const n = rows.length / width;
  const divisor = c.averageOutput ? c.numTrees : 1;
  if (divisor !== 1 || c.output.transform !== OutputTransform.Identity) {
    for (let i = 0; i < n; i++) {
      result[i] = transformScore(c.output, (result[i] as number) / divisor);
    }
  }
  return result;
}
