/**
 * Tiny in-memory data sets for evaluation tests, built from a list of events.
 */
import type { Dataset, DatasetManifest, EventTable } from '../../models/data/types.js';

export const DAY_MS = 86_400_000;

/** One event: user and item indices, and the time in days from the epoch. */
export interface TinyEvent {
  readonly user: number;
  readonly item: number;
  readonly day: number;
}

/** An event table of the given events, sorted by time (stable, as a real data set is). */
export function eventTable(events: readonly TinyEvent[]): EventTable {
  const sorted = [...events].sort((a, b) => a.day - b.day);
  return {
    length: sorted.length,
    user: Int32Array.from(sorted, (e) => e.user),
    item: Int32Array.from(sorted, (e) => e.item),
    ts: Float64Array.from(sorted, (e) => e.day * DAY_MS),
    type: new Uint8Array(sorted.length),
    value: new Float32Array(sorted.length),
  };
}

/**
 * A data set of `items` items and `users` users with no content, holding `events`. Items are of
 * unknown creation time unless `createdDays` gives it (in days, NaN for unknown).
 */
export function tinyDataset(
  items: number,
  users: number,
  events: readonly TinyEvent[],
  createdDays?: readonly number[],
): Dataset {
  const table = eventTable(events);
  const manifest: DatasetManifest = {
    format: 'recsys-dataset',
    version: 1,
    name: 'tiny',
    source: 'synthetic',
    createdAt: new Date(0).toISOString(),
    counts: { users, items, events: table.length },
    timeRange: {
      from: table.length > 0 ? (table.ts[0] as number) : 0,
      to: table.length > 0 ? (table.ts[table.length - 1] as number) : 0,
    },
    fingerprint: 'tiny',
    schema: {},
    details: {},
  };
  return {
    manifest,
    items: {
      ids: Array.from({ length: items }, (_, i) => `i${i}`),
      category: new Int32Array(items),
      categories: ['all'],
      tagOffsets: new Int32Array(items + 1),
      tagIds: new Int32Array(0),
      tags: [],
      createdAt: Float64Array.from({ length: items }, (_, i) => (createdDays?.[i] ?? NaN) * DAY_MS),
    },
    users: {
      ids: Array.from({ length: users }, (_, u) => `u${u}`),
      ageBand: new Int32Array(users).fill(-1),
      country: new Int32Array(users).fill(-1),
      device: new Int32Array(users).fill(-1),
      ageBands: [],
      countries: [],
      devices: [],
      signupAt: new Float64Array(users).fill(Number.NaN),
    },
    events: table,
  };
}

/** Training events before `cutoffDay`, test events from it on. */
export function splitAtDay(
  events: readonly TinyEvent[],
  cutoffDay: number,
): { cutoff: number; train: EventTable; test: EventTable } {
  return {
    cutoff: cutoffDay * DAY_MS,
    train: eventTable(events.filter((e) => e.day < cutoffDay)),
    test: eventTable(events.filter((e) => e.day >= cutoffDay)),
  };
}
