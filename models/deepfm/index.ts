/**
 * The DeepFM ranker: the feature-row contract, the model, its trainer, ONNX export and the
 * artifact folder. Pure TypeScript: safe to import in worker threads.
 *
 * onnxruntime-node lives behind `onnx-runtime.ts` (the graph on onnxruntime, the export check),
 * for the main thread only: the native addon has crashed processes when loaded in several worker
 * threads.
 */
export {
  FieldKind,
  MAX_CATEGORICAL_ROWS,
  categoricalRow,
  fitStandardisation,
  rowCount,
  schemaLayout,
  type EncodedRows,
  type FeatureField,
  type FeatureSchema,
  type SchemaLayout,
} from './schema.js';
export {
  DeepFmLoss,
  DeepFmModel,
  DeepFmWorkspace,
  resolveDeepFmOptions,
  type DeepFmArchitecture,
  type DeepFmLayer,
  type DeepFmModelOptions,
  type DeepFmOptions,
  type DeepFmParam,
  type ResolvedDeepFmOptions,
} from './model.js';
export { labelGain, listwiseLoss, pointwiseLoss } from './loss.js';
export { auc, ndcgAt } from './metrics.js';
export {
  trainDeepFm,
  type DeepFmEpoch,
  type DeepFmRows,
  type DeepFmTrainHooks,
  type DeepFmTrainInput,
  type DeepFmTrainReport,
  type TrainedDeepFm,
} from './train.js';
export {
  DEEPFM_INPUT,
  DEEPFM_ONNX_FILE,
  DEEPFM_ONNX_OPSET,
  DEEPFM_OUTPUT,
  deepFmSignature,
  exportDeepFm,
  type DeepFmSignature,
} from './onnx-export.js';
export type { DeepFmExportCheck } from './onnx-runtime.js';
export {
  DEEPFM_MANIFEST_FILE,
  DEEPFM_PARAMETERS_DIR,
  DeepFmArtifactError,
  loadDeepFmArtifact,
  buildDeepFmArtifact,
  readDeepFmArtifact,
  writeDeepFmArtifact,
  type ArtifactFileReader,
  type BuiltDeepFmArtifact,
  type DeepFmArtifactInput,
  type DeepFmManifest,
  type DeepFmParameterFile,
  type LoadedDeepFm,
  type WrittenDeepFmArtifact,
} from './artifact.js';
export {
  syntheticRanking,
  type SyntheticRanking,
  type SyntheticRankingOptions,
} from './synthetic.js';
