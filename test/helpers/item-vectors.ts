/**
 * Clustered synthetic item embeddings, shaped like a trained tower's: unit vectors scattered around
 * a few hundred centres, with a category per centre, plus exact top-k for checking recall.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildShards } from '../../actors/item-shard/index-file.js';
import { exactScore } from '../../actors/item-shard/shard-search.js';
import type { IndexMetric } from '../../runtime/config/index.js';
import { prng } from './assertions.js';

export interface ItemVectors {
  ids: string[];
  categories: string[];
  vectors: Float32Array;
  dims: number;
}

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

function normalise(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  const s = 1 / Math.sqrt(n || 1);
  for (let i = 0; i < v.length; i++) v[i]! *= s;
  return v;
}

export function randomUnitVector(dims: number, rand: () => number): Float32Array {
  return normalise(Float32Array.from({ length: dims }, () => gaussian(rand)));
}

export function clusteredItems(
  count: number,
  dims: number,
  options: { seed?: number; clusters?: number; spread?: number; categories?: number } = {},
): ItemVectors {
  const rand = prng(options.seed ?? 1);
  const clusters = options.clusters ?? Math.max(4, Math.round(Math.sqrt(count)));
  const spread = options.spread ?? 0.35;
  const centres = Array.from({ length: clusters }, () => randomUnitVector(dims, rand));
  const vectors = new Float32Array(count * dims);
  const ids: string[] = [];
  const categories: string[] = [];
  const categoryCount = options.categories ?? 8;
  for (let i = 0; i < count; i++) {
    const c = Math.floor(rand() * clusters);
    const centre = centres[c]!;
    const v = new Float32Array(dims);
    for (let d = 0; d < dims; d++) v[d] = centre[d]! + (spread * gaussian(rand)) / Math.sqrt(dims);
    vectors.set(normalise(v), i * dims);
    ids.push(`item_${i}`);
    categories.push(`cat_${c % categoryCount}`);
  }
  return { ids, categories, vectors, dims };
}

/** A query near a random item, as a user embedding near their tastes would be. */
export function queryNear(items: ItemVectors, rand: () => number): Float32Array {
  const row = Math.floor(rand() * items.ids.length);
  const q = items.vectors.slice(row * items.dims, (row + 1) * items.dims);
  for (let d = 0; d < items.dims; d++) q[d]! += (0.3 * gaussian(rand)) / Math.sqrt(items.dims);
  return normalise(q);
}

/** Exact top-k ids by brute force, with optional filters. */
export function exactTopK(
  items: ItemVectors,
  query: Float32Array,
  k: number,
  metric: IndexMetric,
  keep: (row: number) => boolean = () => true,
): string[] {
  const scored: Array<[number, number]> = [];
  for (let row = 0; row < items.ids.length; row++) {
    if (!keep(row)) continue;
    const v = items.vectors.subarray(row * items.dims, (row + 1) * items.dims);
    scored.push([row, exactScore(metric, query, v)]);
  }
  scored.sort((a, b) => b[1] - a[1]);
  return scored.slice(0, k).map(([row]) => items.ids[row]!);
}

export function recall(found: readonly string[], truth: readonly string[]): number {
  const set = new Set(found);
  return truth.length === 0 ? 1 : truth.filter((id) => set.has(id)).length / truth.length;
}

/** Builds a small inner-product index of `items` in a fresh temporary folder; returns the folder. */
export async function buildTestIndex(
  items: ItemVectors,
  options: { dims: number; shards: number; expansionSearch: number; modelVersion: string },
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'recsys-items-'));
  await buildShards({
    vectors: items.vectors,
    dims: options.dims,
    ids: items.ids,
    categories: items.categories,
    shards: options.shards,
    params: {
      metric: 'ip',
      connectivity: 16,
      expansionAdd: 128,
      expansionSearch: options.expansionSearch,
    },
    modelVersion: options.modelVersion,
    dir,
  });
  return dir;
}
