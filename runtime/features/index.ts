export type {
  EntityDefinition,
  FeatureDefinitions,
  FeatureRow,
  FeatureValue,
  FeatureWrite,
  FieldDefinition,
  OnlineStore,
  ProcessedMarks,
  StoredRow,
  ViewDefinition,
  WriteBatch,
  WriteResult,
} from './types.js';
export { FeatureType, ViewSource } from './types.js';
export type { FeatureChangeListener, FeatureChangeNotice } from './changes.js';
export { FeatureChanges, featureChangeSubject } from './changes.js';
export {
  checkEntityId,
  FEATURE_NAME_PATTERN,
  FeatureRegistry,
  isFeatureValue,
  loadFeatureDefinitions,
  MAX_ENTITY_ID_LENGTH,
  parseFeatureDefinitions,
  parseTtl,
} from './definitions.js';
export { MAX_BATCH_ROWS } from './validate.js';
export type { MemoryOnlineStoreOptions } from './memory-store.js';
export { MemoryOnlineStore } from './memory-store.js';
export type { RedisOnlineStoreConnectOptions, RedisOnlineStoreOptions } from './redis-store.js';
export { RedisOnlineStore } from './redis-store.js';
export type { OpenOnlineStoreOptions } from './open.js';
export { openOnlineStore } from './open.js';
export { definitionsPath, loadConfiguredDefinitions } from './definitions.js';
export type { FeatureCacheCounts, FeatureCacheOptions, FeatureCacheStats } from './cache.js';
export { FeatureCache, ViewCache, resolveFeatureCacheOptions } from './cache.js';
export type { FeatureMetricsSource, ViewInstruments } from './feature-metrics.js';
export { FeatureMetrics, StoreReadOutcome, StoreWriteOutcome } from './feature-metrics.js';
export type {
  FeatureReadResult,
  FeatureWriteResult,
  OnlineFeaturesOptions,
  OnlineFeaturesStats,
  ResolvedOnlineFeaturesOptions,
  ServedRow,
} from './online-features.js';
export {
  FeatureViewReader,
  OnlineFeatures,
  resolveOnlineFeaturesOptions,
} from './online-features.js';
export type { WriteBufferOptions, WriteBufferStats } from './write-buffer.js';
export { DropReason, WriteBuffer, isRefusal } from './write-buffer.js';
export type {
  CounterWindow,
  ResolvedWindowCountersOptions,
  WindowCountersOptions,
  WindowCountersStats,
} from './windows.js';
export {
  checkWindows,
  DEFAULT_WINDOWS_MINUTES,
  RecordOutcome,
  resolveWindowCountersOptions,
  smoothedCtr,
  velocityScore,
  WindowCounters,
  windowName,
  windowsFromMinutes,
} from './windows.js';
export type {
  FeatureChangePublisher,
  ResolvedStreamFeatureWriterOptions,
  StreamBatchResult,
  StreamFeatureConsumerOptions,
  StreamFeatureWriterOptions,
  StreamFeatureWriterStats,
  StreamFeedbackEvent,
  StreamWriterMetricsSource,
} from './stream-writer.js';
export {
  resolveStreamFeatureWriterOptions,
  StreamEventOutcome,
  StreamFeatureWriter,
  StreamWriterMetrics,
} from './stream-writer.js';
export type { CreateFeatureServicesOptions, FeatureServices } from './services.js';
export { closeFeatureServices, createFeatureServices } from './services.js';
