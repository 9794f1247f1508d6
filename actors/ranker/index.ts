/**
 * The `rank` actor kind: candidates scored by the ranker a model slot serves.
 */
export {
  RANK_KIND,
  RankerActor,
  localRankerSlots,
  newestArtifact,
  rankerKind,
  rankerSlot,
  type RankerKindOptions,
} from './actor.js';
export * from './messages.js';
