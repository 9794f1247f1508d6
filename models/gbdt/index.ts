/**
 * Gradient-boosted trees: the in-memory ensemble, LightGBM's text model format, the TypeScript
 * evaluator, the ONNX export, the data readers and the learning-to-rank generator. Pure
 * TypeScript: safe to import in worker threads.
 *
 * onnxruntime-node lives behind another entry point, for the main thread only (the native addon
 * has crashed processes when loaded in several worker threads): `scorer.ts` (`GbdtScorer`).
 */
export { DecisionBits, MissingType, type GbdtModel, type GbdtTree } from './model.js';
export {
  LIGHTGBM_MODEL_VERSION,
  formatDouble,
  formatLightGbmModel,
  parseLightGbmModel,
  splitImportances,
} from './lightgbm-format.js';
export {
  K_ZERO_THRESHOLD,
  OutputTransform,
  checkGbdtModel,
  compileGbdt,
  effectiveThreshold,
  findTreeProblem,
  numCategorical,
  objectiveOutput,
  predict,
  predictRaw,
  transformScore,
  type CompiledGbdt,
  type ObjectiveOutput,
  type TreeProblem,
} from './predict.js';
export {
  GBDT_ONNX_INPUT,
  GBDT_ONNX_ML_OPSET,
  GBDT_ONNX_OUTPUT,
  exportGbdtOnnx,
  float32AtLeast,
  float32AtMost,
  type GbdtOnnxOptions,
} from './onnx-export.js';
export {
  parseLibSvm,
  parseLightGbmNumber,
  parseQueryFile,
  parseTsv,
  type LabeledRows,
  type LibSvmOptions,
  type TsvOptions,
} from './libsvm.js';
export {
  LTR_FEATURES,
  LtrVariant,
  generateLtr,
  generateLtrWithText,
  type LtrData,
  type LtrOptions,
  type LtrText,
} from './ltr-generator.js';
export {
  GbdtObjective,
  resolveGbdtOptions,
  trainGbdt,
  type GbdtDataset,
  type GbdtHistory,
  type GbdtIterationRecord,
  type GbdtTrainData,
  type GbdtTrainOptions,
  type GbdtTrainResult,
  type ResolvedGbdtOptions,
} from './train.js';
export { NdcgEvaluator, binaryLogLoss, l2Loss, ndcgAtK, queryBoundaries } from './metrics.js';
export { findBinMappers, valueToBin, type BinMapper } from './binning.js';
