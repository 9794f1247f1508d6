/**
 * The `features` actor kind: the feature store as a NATS service, and the stream feature writer.
 */
export { FEATURES_KIND, FeaturesActor, featuresKind, type FeaturesKindOptions } from './actor.js';
export * from './messages.js';
