export type {
  ConsumeOptions,
  EventStream,
  PublishAck,
  ReadFrom,
  StreamHandler,
  StreamInfo,
  StreamMessage,
  StreamOptions,
  StreamReader,
  StreamStore,
} from './types.js';
export { MemoryStreamStore } from './memory.js';
export { NatsStreamStore } from './nats.js';
export { ScopedStreamStore } from './scoped.js';
export { isSubsetOf, subjectMatches, subjectsOverlap } from './validate.js';
