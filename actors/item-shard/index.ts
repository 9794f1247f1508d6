/**
 * The item-shard actor kind and its index files: the public API of this folder.
 */
export {
  itemShardKind,
  resolveItemShardKindOptions,
  ItemShardActor,
  type ItemShardKindOptions,
  type ResolvedItemShardKindOptions,
} from './actor.js';
export {
  buildShards,
  hnswParamsOf,
  openShard,
  readShardManifest,
  shardFiles,
  shardOf,
  IndexFileError,
  SHARD_MANIFEST_FORMAT,
  type BuildShardsInput,
  type HnswParams,
  type OpenShard,
  type ShardFiles,
  type ShardItems,
  type ShardManifest,
} from './index-file.js';
export * from './messages.js';
export {
  ShardEventFeed,
  itemEventsStreamName,
  itemEventsSubject,
  itemEventsSubjects,
  validateItemEvent,
  type ItemEvent,
} from './events.js';
export { FeedbackFeed, type FeedbackFeedOptions, type FeedbackFeedStats } from './feedback-feed.js';
export { newestGeneration, type ShardGeneration } from './generations.js';
export {
  ItemCounters,
  resolveItemCountersOptions,
  counterFeatureNames,
  windowName,
  DEFAULT_COUNTER_WINDOWS,
  type CounterWindow,
  type ItemCountersOptions,
  type ResolvedItemCountersOptions,
} from './counters.js';
export { SearchPool, resolveWorkerFile, type SearchPoolOptions, type WorkerFile } from './pool.js';
export {
  exactScore,
  scoreOf,
  searchShard,
  searchShardRows,
  type ShardHits,
  type ShardQuery,
} from './shard-search.js';
export {
  ShardScatter,
  mergeTopK,
  type ScatterCallOptions,
  type ScatterResult,
  type ShardScatterOptions,
} from './scatter.js';
export {
  compactShardSync,
  runCompaction,
  type CompactionResult,
  type CompactionTask,
} from './compact.js';
