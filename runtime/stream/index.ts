export type {
  ConsumeOptions,
  EventStream,
  PublishAck,
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
