/**
 * The two-tower model as a {@link RetrievalScorer}: user embeddings from the user tower, scores
 * = dot products with the precomputed item embeddings (cosine similarity, both are normalised).
 *
 * Item embeddings are computed once, as of the model's reference time (the item-age feature does
 * not move with the query's `at`); this is what the ANN index serves as well.
 */
import { userBatch } from './features.js';
import { gemmBt } from './linalg.js';
import type { Vec } from './linalg.js';
import type { TwoTowerModel } from './model.js';
import type { RetrievalScorer, UserQuery } from './scorer.js';
import { encodeCatalogue } from './train.js';
import type { TrainedTwoTower } from './train.js';

export interface TwoTowerScorerOptions {
  /** @default 'two-tower' */
  readonly name?: string;
  /** `[users × 3]` profiles to look a query's profile up by user index. */
  readonly profiles?: Int32Array;
  /** Users encoded per tower call. @default 256 */
  readonly chunk?: number;
}

export class TwoTowerScorer implements RetrievalScorer {
  readonly name: string;
  readonly itemCount: number;
  private readonly profiles: Int32Array | undefined;
  private readonly chunk: number;

  /**
   * @param model the trained model (its user tower encodes the queries)
   * @param itemEmbeddings `[items × dims]`, in item-index order
   */
  constructor(
    readonly model: TwoTowerModel,
    readonly itemEmbeddings: Float32Array,
    options: TwoTowerScorerOptions = {},
  ) {
    const dims = model.shape.dims;
    if (itemEmbeddings.length % dims !== 0) {
      throw new RangeError(`itemEmbeddings must hold items × ${dims} values`);
    }
    this.name = options.name ?? 'two-tower';
    this.itemCount = itemEmbeddings.length / dims;
    this.profiles = options.profiles;
    this.chunk = options.chunk ?? 256;
  }

  /** A scorer of a freshly trained model (encodes the catalogue once). */
  static fromTrained(
    trained: TrainedTwoTower,
    options: TwoTowerScorerOptions = {},
  ): TwoTowerScorer {
    return new TwoTowerScorer(trained.model, encodeCatalogue(trained.model, trained.itemFeatures), {
      profiles: trained.profiles,
      ...options,
    });
  }

  /** User embeddings `[queries × dims]`. */
  encodeUsers(queries: readonly UserQuery[]): Vec {
    return this.model.encodeUsers(
      userBatch(queries, this.model.shape.historyLength, this.profiles),
    );
  }

  scoreBatch(queries: readonly UserQuery[]): Float32Array {
    const dims = this.model.shape.dims;
    const n = this.itemCount;
    const out = new Float32Array(queries.length * n);
    for (let start = 0; start < queries.length; start += this.chunk) {
      const part = queries.slice(start, start + this.chunk);
      const users = Float32Array.from(this.encodeUsers(part));
      gemmBt(users, this.itemEmbeddings, out.subarray(start * n), part.length, dims, n);
    }
    return out;
  }
}
