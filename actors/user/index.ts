/**
 * The `user` actor kind (sessions and recommendations) and the `user-feed` kind that brings the
 * events stream's feedback to the sessions.
 */
export { UserActor, userKind, type UserKindOptions } from './actor.js';
export {
  USER_FEED_DURABLE,
  USER_FEED_KIND,
  UserFeedActor,
  userFeedKind,
  type UserFeedKindOptions,
  type UserFeedProtocol,
  type UserFeedStats,
} from './feed.js';
export { Stage, UserTally, userMetrics, type UserMetrics } from './metrics.js';
export { UserModel, type ProfileValues } from './model.js';
export { Session, checkSessionOptions, type SessionEvent, type SessionOptions } from './session.js';
export { DEFAULT_VARIANT, chooseVariant, type Variant } from './variant.js';
export * from './messages.js';
