/**
 * The data layer: the data set contract, its Parquet storage, the synthetic generator with its
 * ground truth, and train/test splits.
 */
export * from './types.js';
export { DataErrorCode, DataOptionError, DatasetFormatError } from './errors.js';
export {
  DATA_FILES,
  DATASET_SCHEMA,
  EVENTS_FILE,
  ITEMS_FILE,
  MANIFEST_FILE,
  TAG_SEPARATOR,
  USERS_FILE,
  datasetFingerprint,
  openEventWriter,
  prepareDatasetDir,
  readDataset,
  readEvents,
  readItems,
  readManifest,
  writeDataset,
  writeItems,
  writeManifest,
  writeUsers,
  type DatasetInfo,
  type EventFileSummary,
  type EventWriter,
  type EventWriterOptions,
} from './dataset-io.js';
export {
  SCALES,
  generateDataset,
  resolveGenerateOptions,
  type GenerateOptions,
  type GenerateProgress,
  type Scale,
} from './generate.js';
export {
  TRUTH_DIR,
  loadTruth,
  oracleScores,
  progressAt,
  tasteAt,
  type Truth,
  type TruthManifest,
} from './truth.js';
export { DEFAULT_WORLD_PARAMS, type WorldParams } from './world.js';
export {
  randomSplit,
  selectEvents,
  sliceEvents,
  temporalSplit,
  type RandomSplitOptions,
  type Split,
  type TemporalSplitOptions,
} from './split.js';
export { ProgressBar, type ProgressBarOptions } from './progress.js';
export { Rng } from './rng.js';
