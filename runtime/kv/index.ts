export type { KvBucket, KvBucketOptions, KvEntry, KvOperation, KvStore, KvWatch } from './types.js';
export { MemoryKvStore } from './memory.js';
export { NatsKvStore } from './nats.js';
