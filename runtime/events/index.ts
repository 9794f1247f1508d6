/**
 * The feedback event stream: the events' wire types and validation, their subjects, the stream
 * that holds them, and the batching consumer with dead letters that effects are built on.
 */
export {
  EventKind,
  FEEDBACK_TYPES,
  FeedbackType,
  MAX_ID_LENGTH,
  MAX_IMPRESSION_ITEMS,
  deadLetterFilter,
  deadLetterSubject,
  encodeEvent,
  eventFilter,
  eventSubject,
  feedbackSubject,
  impressionSubject,
  parseFeedbackEvent,
  parseImpressionEvent,
  type FeedbackEvent,
  type ImpressionEvent,
} from './feedback.js';
export {
  DEFAULT_EVENTS_STREAM_CONFIG,
  eventsStreamName,
  eventsStreamSubjects,
  openEventsStream,
  publishFeedback,
  publishImpression,
  type EventsStreamConfig,
} from './events-stream.js';
export {
  DeadLetterHeader,
  MAX_BATCH_SIZE,
  consumeEvents,
  dropProcessed,
  eventConsumerMetrics,
  resolveEventConsumerOptions,
  type EventBatchEntry,
  type EventConsumer,
  type EventConsumerMetrics,
  type EventConsumerOptions,
  type ResolvedEventConsumerOptions,
} from './consumer.js';
