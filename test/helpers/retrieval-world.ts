/**
 * A tiny in-memory world with planted structure for the two-tower tests: every user prefers one
 * category, so a model that learns anything beats a popularity ranking by a wide margin.
 */
import type { Dataset, DatasetManifest, EventTable } from '../../models/data/types.js';
import { EventType } from '../../models/data/types.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

export interface PlantedWorldOptions {
  users?: number;
  items?: number;
  categories?: number;
  eventsPerUser?: number;
  /** Share of a user's events in their favourite category. */
  taste?: number;
  seed?: number;
  /** Share of the events (the earliest) in the training part. */
  trainShare?: number;
}

export interface PlantedWorld {
  readonly dataset: Dataset;
  readonly split: { cutoff: number; train: EventTable; test: EventTable };
  /** Favourite category of each user. */
  readonly favourite: Int32Array;
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function slice(table: EventTable, from: number, to: number): EventTable {
  return {
    length: to - from,
    user: table.user.slice(from, to),
    item: table.item.slice(from, to),
    ts: table.ts.slice(from, to),
    type: table.type.slice(from, to),
    value: table.value.slice(from, to),
  };
}

export function plantedWorld(options: PlantedWorldOptions = {}): PlantedWorld {
  const users = options.users ?? 80;
  const items = options.items ?? 120;
  const categories = options.categories ?? 6;
  const perUser = options.eventsPerUser ?? 40;
  const taste = options.taste ?? 0.85;
  const random = rng(options.seed ?? 7);
  const category = Int32Array.from({ length: items }, (_, i) => i % categories);
  // Zipf-like weights: item i is the (i / categories)-th most popular of its category.
  const weight = Float64Array.from(
    { length: items },
    (_, i) => 1 / (1 + Math.floor(i / categories)),
  );
  const byCategory = Array.from({ length: categories }, (_, c) =>
    Array.from({ length: items }, (_, i) => i).filter((i) => category[i] === c),
  );
  const pick = (pool: readonly number[]): number => {
    let total = 0;
    for (const i of pool) total += weight[i] as number;
    let r = random() * total;
    for (const i of pool) {
      r -= weight[i] as number;
      if (r <= 0) return i;
    }
    return pool[pool.length - 1] as number;
  };
  const all = Array.from({ length: items }, (_, i) => i);
  const favourite = Int32Array.from({ length: users }, (_, u) => u % categories);
  const total = users * perUser;
  const table = {
    length: total,
    user: new Int32Array(total),
    item: new Int32Array(total),
    ts: new Float64Array(total),
    type: new Uint8Array(total).fill(EventType.Click),
    value: new Float32Array(total),
  };
  const start = Date.UTC(2024, 0, 1);
  for (let e = 0; e < total; e++) {
    const u = Math.floor(random() * users);
    const pool = random() < taste ? (byCategory[favourite[u] as number] as number[]) : all;
    table.user[e] = u;
    table.item[e] = pick(pool);
    table.ts[e] = start + e * MINUTE_MS;
  }
  const tagOffsets = Int32Array.from({ length: items + 1 }, (_, i) => 2 * i);
  const tagIds = new Int32Array(2 * items);
  for (let i = 0; i < items; i++) {
    tagIds[2 * i] = category[i] as number;
    tagIds[2 * i + 1] = categories + (i % 3);
  }
  const manifest: DatasetManifest = {
    format: 'recsys-dataset',
    version: 1,
    name: 'planted',
    source: 'synthetic',
    createdAt: new Date(0).toISOString(),
    counts: { users, items, events: total },
    timeRange: { from: start, to: start + (total - 1) * MINUTE_MS },
    fingerprint: 'planted',
    schema: {},
    details: {},
  };
  const dataset: Dataset = {
    manifest,
    items: {
      ids: all.map((i) => `item-${i}`),
      category,
      categories: Array.from({ length: categories }, (_, c) => `c${c}`),
      tagOffsets,
      tagIds,
      tags: [
        ...Array.from({ length: categories }, (_, c) => `tag-c${c}`),
        'tag-a',
        'tag-b',
        'tag-c',
      ],
      createdAt: Float64Array.from({ length: items }, (_, i) => start - (i + 1) * 30 * DAY_MS),
    },
    users: {
      ids: Array.from({ length: users }, (_, u) => `user-${u}`),
      ageBand: Int32Array.from({ length: users }, (_, u) => u % 3),
      country: Int32Array.from({ length: users }, (_, u) => (u % 5 === 0 ? -1 : u % 2)),
      device: Int32Array.from({ length: users }, (_, u) => u % 2),
      ageBands: ['18-24', '25-34', '35+'],
      countries: ['de', 'fr'],
      devices: ['ios', 'android'],
      signupAt: new Float64Array(users).fill(start),
    },
    events: table,
  };
  const cut = Math.floor(total * (options.trainShare ?? 0.8));
  return {
    dataset,
    split: {
      cutoff: table.ts[cut] as number,
      train: slice(table, 0, cut),
      test: slice(table, cut, total),
    },
    favourite,
  };
}
