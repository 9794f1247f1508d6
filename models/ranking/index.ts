/**
 * The ranking stage's data: the ranking features, defined once for training and serving, and the
 * point-in-time correct training examples the rankers (GBDT, DeepFM) learn from.
 */
export {
  CATEGORY_BUCKETS,
  RANKING_FEATURES,
  RANKING_FEATURES_VERSION,
  RankingFeatureKind,
  RankingInputsReader,
  RankingView,
  assembleFeatures,
  checkRankingDefinitions,
  onlineRankingInputs,
  rankingSchema,
  rankingSchemaFromJson,
  rankingSchemaJson,
  retrievalRanks,
  type RankingCandidate,
  type RankingContext,
  type RankingFeature,
  type RankingFeatureSchema,
  type RankingInputs,
  type RankingSchemaJson,
} from './features.js';
export {
  PointInTimeStore,
  batchSnapshotTime,
  datasetBefore,
  eventsBefore,
  feedbackEventOf,
  type PlannedRead,
  type PointInTimeStoreOptions,
  type PointInTimeStoreStats,
} from './point-in-time.js';
export {
  buildRankingExamples,
  labelGrade,
  resolveRankingExamplesOptions,
  sampleQueryPoints,
  type RankingExamples,
  type RankingExamplesOptions,
  type RankingExamplesStats,
  type RankingQueryPoint,
  type ResolvedRankingExamplesOptions,
} from './examples.js';
