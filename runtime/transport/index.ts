export type {
  Headers,
  InboundMessage,
  MessageHandler,
  Reply,
  RequestManyOptions,
  RequestOptions,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportStatus,
} from './types.js';
export { InProcessBus, InProcessTransport } from './inproc.js';
export { NatsTransport, type NatsTransportOptions } from './nats.js';
