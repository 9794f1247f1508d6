/**
 * Search over one opened shard, with the filters applied: the same code runs in the piscina
 * workers and, for benchmarks and tests, on the main thread.
 *
 * HNSW cannot filter inside its walk here (usearch's JavaScript binding has no predicate search),
 * so a filtered query oversamples: it asks for `k` plus the number of ids it may have to drop, and
 * with a category allow-list it widens the search (×4 each round) until `k` items pass or the whole
 * shard was considered.
 */
import type { IndexMetric } from '../../runtime/config/index.js';
import type { OpenShard } from './index-file.js';
import type { ScoredItem } from './messages.js';

export interface ShardQuery {
  vector: Float32Array;
  k: number;
  exclude?: readonly string[] | undefined;
  categories?: readonly string[] | undefined;
  /**
   * Extra candidates to fetch because the caller will drop up to this many results itself (base
   * items the delta deleted or replaced).
   */
  extra?: number | undefined;
}

/** Larger is better: similarity for `ip` and `cos`, negated squared distance for `l2sq`. */
export function scoreOf(metric: IndexMetric, distance: number): number {
  // `0 - distance`, not `-distance`: an exact match scores 0, not -0.
  return metric === 'l2sq' ? 0 - distance : 1 - distance;
}

/** The exact score of two vectors under `metric`, the same scale as {@link scoreOf}. */
export function exactScore(metric: IndexMetric, a: Float32Array, b: Float32Array): number {
  let dot = 0;
  if (metric === 'l2sq') {
    for (let i = 0; i < a.length; i++) {
      const d = a[i]! - b[i]!;
      dot += d * d;
    }
    return -dot;
  }
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  if (metric === 'ip') return dot;
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/**
 * A shard's answer in packed form: `rows[i]` is a row of the shard file (its id is `ids[rows[i]]`)
 * and `scores[i]` its score, best first. Two typed arrays instead of an object per item, so a
 * worker hands them back by transfer, not by structured clone.
 */
export interface ShardHits {
  rows: Int32Array;
  scores: Float32Array;
}

export function searchShardRows(shard: OpenShard, query: ShardQuery): ShardHits {
  // Live vectors: rows a compaction removed are never returned.
  const size = shard.manifest.count;
  if (size === 0) return { rows: new Int32Array(0), scores: new Float32Array(0) };
  const exclude =
    query.exclude === undefined || query.exclude.length === 0 ? undefined : new Set(query.exclude);
  const allowed =
    query.categories === undefined || shard.categories === null
      ? query.categories === undefined
        ? undefined
        : new Set<string>()
      : new Set(query.categories);
  const want = query.k + (query.extra ?? 0);
  const drop = (exclude?.size ?? 0) + (query.extra ?? 0);
  let fetch = Math.min(size, query.k + drop);
  if (allowed !== undefined) fetch = Math.min(size, Math.max(fetch, 4 * query.k));
  const metric = shard.manifest.metric;
  for (;;) {
    // One thread: the caller is already a worker thread, one query per worker at a time.
    const matches = shard.index.search(query.vector, fetch, 1);
    const keys = matches.keys;
    const cap = Math.min(want, keys.length);
    // One buffer for both arrays: a single allocation, and a single transfer out of a worker.
    const buffer = new ArrayBuffer(cap * 8);
    const rows = new Int32Array(buffer, 0, cap);
    const scores = new Float32Array(buffer, cap * 4, cap);
    let n = 0;
    for (let i = 0; i < keys.length && n < want; i++) {
      const row = Number(keys[i]);
      const id = shard.ids[row];
      if (id === undefined || id === null || exclude?.has(id) === true) continue;
      if (allowed !== undefined) {
        const category = shard.categories?.[row];
        if (category === null || category === undefined || !allowed.has(category)) continue;
      }
      rows[n] = row;
      scores[n] = scoreOf(metric, matches.distances[i]!);
      n++;
    }
    if (n >= want || fetch >= size || allowed?.size === 0) {
      return n === cap
        ? { rows, scores }
        : { rows: rows.subarray(0, n), scores: scores.subarray(0, n) };
    }
    fetch = Math.min(size, fetch * 4);
  }
}

/** {@link searchShardRows} with the rows mapped to ids, one object per item: tests and benchmarks. */
export function searchShard(shard: OpenShard, query: ShardQuery): ScoredItem[] {
  const { rows, scores } = searchShardRows(shard, query);
  const items: ScoredItem[] = [];
  for (let i = 0; i < rows.length; i++) {
    items.push({ item_id: shard.ids[rows[i]!]!, score: scores[i]! });
  }
  return items;
}
