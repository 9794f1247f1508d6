/**
 * The offline side of the feature store: the batch views computed from a data set, written as
 * Parquet tables beside it, and loaded into the online store by materialisation.
 */
export {
  BatchView,
  CTR_PRIOR_MEAN,
  CTR_PRIOR_VIEWS,
  RECENT_DAYS,
  TOP_CATEGORIES,
  batchViewsOf,
  checkBatchDefinitions,
  computeBatchViews,
  smoothedCtr,
  type FeatureTable,
} from './batch-views.js';
export { featureDefinitionsOf } from './definitions.js';
export {
  EVENT_TIME_COLUMN,
  FEATURES_DIR,
  FEATURES_MANIFEST_FILE,
  FEATURE_TYPE_STORAGE,
  buildFeatureTables,
  describeFeatureTables,
  entityIdColumn,
  featuresDir,
  readFeatureRows,
  readFeatureTable,
  readFeatureTablesManifest,
  staleFeatureTables,
  writeFeatureTables,
  type BuildFeatureTablesResult,
  type FeatureTableInfo,
  type FeatureTableRow,
  type FeatureTablesManifest,
} from './feature-tables.js';
export {
  DEFAULT_MATERIALIZE_BATCH,
  loadBatchFeatures,
  materializeDataset,
  selectBatchViews,
  watermarkKey,
  type LoadBatchFeaturesResult,
  type MaterializeOptions,
  type MaterializeProgress,
  type MaterializeResult,
  type ViewMaterializeResult,
} from './materialize.js';
