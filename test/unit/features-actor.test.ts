/**
 * The `features` actor on the in-process transport with the in-memory online store.
 */
import { featuresActorSuite } from '../helpers/features-actor-suite.js';

featuresActorSuite('the features actor, in process', () => ({ natsUrl: undefined, raw: {} }));
