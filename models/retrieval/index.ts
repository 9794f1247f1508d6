/**
 * Two-tower retrieval: the model, its training, ONNX export, the artifact folder, and the scorer
 * offline evaluation uses. Pure TypeScript: safe to import in worker threads.
 *
 * onnxruntime-node lives behind two other entry points, for the main thread only (the native
 * addon has crashed processes when loaded in several worker threads): `onnx-runtime.ts` (the
 * towers on onnxruntime, the export check) and `pipeline.ts` (`recsys train retrieval`).
 */
export type { RetrievalScorer, UserProfile, UserQuery } from './scorer.js';
export {
  AGE_BUCKETS,
  MAX_TAGS,
  POPULARITY_BUCKETS,
  PROFILE_FIELDS,
  ageBucket,
  buildItemFeatures,
  emptyUserBatch,
  itemBatch,
  popularityBucket,
  tagWidth,
  userBatch,
  userProfiles,
  type ItemBatch,
  type ItemFeatures,
  type UserBatch,
} from './features.js';
export {
  TwoTowerModel,
  itemFeatures,
  shapeFor,
  userFeatures,
  type TwoTowerModelOptions,
  type TwoTowerShape,
} from './model.js';
export { PositiveEvents, buildExamples, type TrainingExamples } from './examples.js';
export {
  encodeCatalogue,
  resolveTwoTowerTrainOptions,
  trainTwoTower,
  type EpochProgress,
  type ResolvedTwoTowerTrainOptions,
  type TrainedTwoTower,
  type TwoTowerTrainData,
  type TwoTowerTrainOptions,
  type TwoTowerTrainReport,
} from './train.js';
export {
  ITEM_TOWER_FILE,
  USER_TOWER_FILE,
  itemTowerSignature,
  userTowerSignature,
  type TensorDtype,
  type TensorSignature,
  type TowerSignature,
} from './signatures.js';
export { ONNX_OPSET, exportTowers, readInitializers, type ExportedTowers } from './onnx-export.js';
export type { ExportCheck } from './onnx-runtime.js';
export {
  DEFAULT_POPULAR_ITEMS,
  ITEM_EMBEDDINGS_FILE,
  ITEM_IDS_FILE,
  POPULAR_ITEMS_FILE,
  RETRIEVAL_MANIFEST_FILE,
  RetrievalArtifactError,
  USER_IDS_FILE,
  VOCAB_FILE,
  artifactVersion,
  loadRetrievalArtifact,
  popularItemIds,
  readPopularItems,
  readRetrievalManifest,
  writeRetrievalArtifact,
  type LoadedRetrievalModel,
  type RetrievalArtifactInput,
  type RetrievalManifest,
  type SplitInfo,
  type WrittenArtifact,
} from './artifact.js';
export { TwoTowerScorer, type TwoTowerScorerOptions } from './two-tower-scorer.js';
