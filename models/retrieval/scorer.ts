/**
 * What offline evaluation asks of a retrieval model or baseline: scores for every catalogue item
 * for a batch of users at a point in time. The two-tower model, the popularity baselines and the
 * synthetic world's oracle all implement it, so they are judged by the same code.
 */

/** Profile fields of a user as indices into the data set's vocabularies; -1 when unknown. */
export interface UserProfile {
  readonly ageBand: number;
  readonly country: number;
  readonly device: number;
}

/** One user as the retrieval stage sees them at request time. */
export interface UserQuery {
  /** Dense user index of the data set, or -1 for a user the model has never seen (cold start). */
  readonly userIndex: number;
  /** Recent item indices the user interacted with, oldest first (the model keeps the last N). */
  readonly history: Int32Array;
  /**
   * The user's profile, when the caller knows it (a cold-start user has no index to look it up
   * by). Without it a model looks the profile up by `userIndex`, or treats it as unknown.
   */
  readonly profile?: UserProfile;
}

export interface RetrievalScorer {
  readonly name: string;
  /**
   * Scores of every item (row-major: `queries.length × itemCount`; higher is better) for each
   * query, as of time `at` (epoch ms). Items that must not be recommended may score `-Infinity`.
   */
  scoreBatch(queries: readonly UserQuery[], at: number): Float32Array;
}
