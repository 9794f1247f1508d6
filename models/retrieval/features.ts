/**
 * The inputs of both towers, built from a data set: what each tower sees of an item or a user,
 * as the flat typed arrays the TypeScript model and the ONNX graphs take (see README.md for the
 * ONNX signatures). Unknown values are -1 everywhere; lists are padded with -1 and a zero mask.
 */
import type { ItemTable, UserTable } from '../data/types.js';
import type { UserQuery } from './scorer.js';

const DAY_MS = 86_400_000;

/** Item-age buckets: ⌊log2(1 + age in days)⌋, capped (bucket 15 is about 90 years and more). */
export const AGE_BUCKETS = 16;
/** Popularity buckets: ⌊log2(1 + training interactions)⌋, capped. */
export const POPULARITY_BUCKETS = 20;
/** Tags kept per item (the first ones), at most. */
export const MAX_TAGS = 16;
/** Profile fields of the user tower, in the order of the `profile` input's columns. */
export const PROFILE_FIELDS = ['age_band', 'country', 'device'] as const;

/** Age bucket of an item created at `createdAt` as of `referenceTime` (epoch ms); -1 if unknown. */
export function ageBucket(createdAt: number, referenceTime: number): number {
  if (!Number.isFinite(createdAt) || !Number.isFinite(referenceTime)) return -1;
  const days = Math.max(0, (referenceTime - createdAt) / DAY_MS);
  return Math.min(AGE_BUCKETS - 1, Math.floor(Math.log2(1 + days)));
}

/** Popularity bucket of an item with `count` training interactions. */
export function popularityBucket(count: number): number {
  return Math.min(POPULARITY_BUCKETS - 1, Math.floor(Math.log2(1 + Math.max(0, count))));
}

/** Item-tower inputs of every catalogue item, by item index. */
export interface ItemFeatures {
  readonly count: number;
  /** Width of `tags` rows. */
  readonly maxTags: number;
  readonly category: Int32Array;
  /** `[count × maxTags]`, padded with -1. */
  readonly tags: Int32Array;
  /** `[count × maxTags]`, 1 for a tag, 0 for padding. */
  readonly tagsMask: Float32Array;
  readonly ageBucket: Int32Array;
  readonly popularityBucket: Int32Array;
}

/** Tags per item the tower reads: the longest tag list, capped at {@link MAX_TAGS}, at least 1. */
export function tagWidth(items: ItemTable): number {
  let widest = 0;
  for (let i = 0; i < items.ids.length; i++) {
    widest = Math.max(
      widest,
      (items.tagOffsets[i + 1] as number) - (items.tagOffsets[i] as number),
    );
  }
  return Math.max(1, Math.min(MAX_TAGS, widest));
}

/**
 * @param counts training interactions per item (for the popularity bucket)
 * @param referenceTime "now" for the item-age bucket: the end of the training data
 */
export function buildItemFeatures(
  items: ItemTable,
  counts: ArrayLike<number>,
  referenceTime: number,
  maxTags: number,
): ItemFeatures {
  const n = items.ids.length;
  const tags = new Int32Array(n * maxTags).fill(-1);
  const tagsMask = new Float32Array(n * maxTags);
  const age = new Int32Array(n);
  const popularity = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const from = items.tagOffsets[i] as number;
    const to = Math.min(items.tagOffsets[i + 1] as number, from + maxTags);
    for (let t = from; t < to; t++) {
      tags[i * maxTags + t - from] = items.tagIds[t] as number;
      tagsMask[i * maxTags + t - from] = 1;
    }
    age[i] = ageBucket(items.createdAt[i] as number, referenceTime);
    popularity[i] = popularityBucket(counts[i] ?? 0);
  }
  return {
    count: n,
    maxTags,
    category: Int32Array.from(items.category),
    tags,
    tagsMask,
    ageBucket: age,
    popularityBucket: popularity,
  };
}

/** Item-tower inputs of a batch of items (the ONNX item tower's inputs). */
export interface ItemBatch {
  readonly size: number;
  readonly maxTags: number;
  /** `[B]`; -1 for an item the model has no id embedding for. */
  readonly itemIndex: Int32Array;
  readonly category: Int32Array;
  readonly tags: Int32Array;
  readonly tagsMask: Float32Array;
  readonly ageBucket: Int32Array;
  readonly popularityBucket: Int32Array;
}

/** The inputs of the items `indices` of a catalogue. */
export function itemBatch(features: ItemFeatures, indices: ArrayLike<number>): ItemBatch {
  const size = indices.length;
  const t = features.maxTags;
  const batch = {
    size,
    maxTags: t,
    itemIndex: new Int32Array(size),
    category: new Int32Array(size),
    tags: new Int32Array(size * t),
    tagsMask: new Float32Array(size * t),
    ageBucket: new Int32Array(size),
    popularityBucket: new Int32Array(size),
  };
  for (let r = 0; r < size; r++) {
    const i = indices[r] as number;
    batch.itemIndex[r] = i;
    batch.category[r] = features.category[i] as number;
    batch.tags.set(features.tags.subarray(i * t, i * t + t), r * t);
    batch.tagsMask.set(features.tagsMask.subarray(i * t, i * t + t), r * t);
    batch.ageBucket[r] = features.ageBucket[i] as number;
    batch.popularityBucket[r] = features.popularityBucket[i] as number;
  }
  return batch;
}

/** Profile of every user `[users × 3]` (age band, country, device), -1 when unknown. */
export function userProfiles(users: UserTable): Int32Array {
  const n = users.ids.length;
  const out = new Int32Array(n * 3);
  for (let u = 0; u < n; u++) {
    out[u * 3] = users.ageBand[u] ?? -1;
    out[u * 3 + 1] = users.country[u] ?? -1;
    out[u * 3 + 2] = users.device[u] ?? -1;
  }
  return out;
}

/** User-tower inputs of a batch of users (the ONNX user tower's inputs). */
export interface UserBatch {
  readonly size: number;
  readonly historyLength: number;
  /** `[B]`; -1 for a user without an id embedding (cold start). */
  readonly userIndex: Int32Array;
  /** `[B × 3]`: age band, country, device; -1 when unknown. */
  readonly profile: Int32Array;
  /** `[B × N]`: the last N items, oldest first, padded at the end with -1. */
  readonly history: Int32Array;
  /** `[B × N]`: 1 for an item, 0 for padding. */
  readonly historyMask: Float32Array;
}

/** An empty batch of `size` users (unknown everything, empty histories). */
export function emptyUserBatch(size: number, historyLength: number): UserBatch {
  return {
    size,
    historyLength,
    userIndex: new Int32Array(size).fill(-1),
    profile: new Int32Array(size * 3).fill(-1),
    history: new Int32Array(size * historyLength).fill(-1),
    historyMask: new Float32Array(size * historyLength),
  };
}

/**
 * The inputs of `queries`. A query's profile is its own `profile` when given, else the data set
 * profile of its user (`profiles`, from {@link userProfiles}), else unknown. Only the last
 * `historyLength` items of each history are kept.
 */
export function userBatch(
  queries: readonly UserQuery[],
  historyLength: number,
  profiles?: Int32Array,
): UserBatch {
  const batch = emptyUserBatch(queries.length, historyLength);
  queries.forEach((query, r) => {
    const u = query.userIndex;
    batch.userIndex[r] = u >= 0 ? u : -1;
    if (query.profile !== undefined) {
      batch.profile[r * 3] = query.profile.ageBand;
      batch.profile[r * 3 + 1] = query.profile.country;
      batch.profile[r * 3 + 2] = query.profile.device;
    } else if (profiles !== undefined && u >= 0 && u * 3 < profiles.length) {
      batch.profile.set(profiles.subarray(u * 3, u * 3 + 3), r * 3);
    }
    const h = query.history;
    const from = Math.max(0, h.length - historyLength);
    for (let i = from; i < h.length; i++) {
      batch.history[r * historyLength + i - from] = h[i] as number;
      batch.historyMask[r * historyLength + i - from] = 1;
    }
  });
  return batch;
}
