/**
 * A gradient-boosted tree ensemble in memory, laid out as LightGBM lays it out in its text model
 * format, so a model trained by LightGBM serves here and one trained here opens in LightGBM with
 * nothing lost in between: the trainer (`train.ts`) writes this, the format module
 * (`lightgbm-format.ts`) reads and writes it, the evaluators and the ONNX export read it.
 *
 * Each tree is arrays over its internal nodes (split_*, threshold, decision_type, children,
 * internal_*) and over its leaves (leaf_*). A child index >= 0 is an internal node; a negative one
 * is the leaf `~child`. A tree of one leaf has no internal node.
 */

/** Bits of {@link GbdtTree.decisionType}, as LightGBM packs them. */
export const DecisionBits = {
  /** The split tests category membership (a bitset), not `value <= threshold`. */
  Categorical: 1,
  /** A missing value goes left. */
  DefaultLeft: 2,
  /** Bits 2-3 hold the missing type: 0 none, 1 zero, 2 NaN. */
  MissingTypeShift: 2,
} as const;

/** How a split treats missing values: LightGBM's `MissingType`. */
export const MissingType = {
  /** No missing values seen in training: NaN is taken as 0. */
  None: 0,
  /** Zero (and NaN) is missing (`zero_as_missing`). */
  Zero: 1,
  /** NaN is missing. */
  NaN: 2,
} as const;
export type MissingType = (typeof MissingType)[keyof typeof MissingType];

export interface GbdtTree {
  readonly numLeaves: number;
  /** Per internal node (`numLeaves - 1` of them). */
  readonly splitFeature: Int32Array;
  readonly splitGain: Float64Array;
  /**
   * Numerical split: go left when `value <= threshold`. Categorical split: the index into
   * `catBoundaries` of the node's bitset.
   */
  readonly threshold: Float64Array;
  readonly decisionType: Uint8Array;
  readonly leftChild: Int32Array;
  readonly rightChild: Int32Array;
  readonly internalValue: Float64Array;
  readonly internalWeight: Float64Array;
  readonly internalCount: Int32Array;
  /** Per leaf. */
  readonly leafValue: Float64Array;
  readonly leafWeight: Float64Array;
  readonly leafCount: Int32Array;
  /**
   * Categorical splits: the bitset of categorical split `i` is the 32-bit words
   * `catThreshold[catBoundaries[i] .. catBoundaries[i + 1])`; category `c` goes left when bit
   * `c % 32` of word `c / 32` is set.
   */
  readonly catBoundaries: Int32Array;
  readonly catThreshold: Uint32Array;
  /** The learning rate this tree's leaf values were scaled by (informational). */
  readonly shrinkage: number;
}

export interface GbdtModel {
  /** LightGBM's objective line, e.g. `lambdarank`, `binary sigmoid:1`, `regression`. */
  readonly objective: string;
  /** Highest feature index the model reads; an input row has at least `maxFeatureIdx + 1` values. */
  readonly maxFeatureIdx: number;
  readonly featureNames: readonly string[];
  /** LightGBM's `feature_infos`: `[min:max]` of a numerical feature, `a:b:c` categories, `none`. */
  readonly featureInfos: readonly string[];
  readonly trees: readonly GbdtTree[];
  /**
   * Average the trees instead of summing them (random forest mode). Always false for models
   * trained here.
   */
  readonly averageOutput: boolean;
  /**
   * The `parameters:` block of a LightGBM file, kept verbatim so a round trip preserves it; a
   * model trained here writes its own training parameters there.
   */
  readonly parameters: readonly string[];
}
