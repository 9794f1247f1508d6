import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  DATASET_SCHEMA,
  datasetFingerprint,
  openEventWriter,
  readDataset,
  readEvents,
  readManifest,
  writeDataset,
} from '../../models/data/dataset-io.js';
import { DatasetFormatError } from '../../models/data/errors.js';
import { generateDataset, SCALES } from '../../models/data/generate.js';
import { openParquetFile } from '../../models/data/parquet.js';
import type { EventTable, ItemTable, UserTable } from '../../models/data/types.js';
import { EventType } from '../../models/data/types.js';

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'recsys-dataset-io-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A hand-made data set with the awkward cases: unknowns, no tags, titles, unicode, ties. */
function handMade(): { items: ItemTable; users: UserTable; events: EventTable } {
  const items: ItemTable = {
    ids: ['a', 'b', 'ç-3', 'd'],
    category: Int32Array.from([0, 1, 1, 2]),
    categories: ['news', 'jazz', 'films', 'unused-but-kept'],
    tagOffsets: Int32Array.from([0, 2, 2, 3, 5]),
    tagIds: Int32Array.from([0, 1, 2, 2, 0]),
    tags: ['short', 'live', 'écrit à la main'],
    createdAt: Float64Array.from([1_600_000_000_000, NaN, 1_600_000_100_000, 0]),
    titles: ['Alpha', '', 'Gamma «3»', 'Delta'],
  };
  const users: UserTable = {
    ids: ['u1', 'u2', 'u3'],
    ageBand: Int32Array.from([0, -1, 1]),
    country: Int32Array.from([-1, 0, 0]),
    device: Int32Array.from([1, 1, -1]),
    ageBands: ['18-24', '25-34', '65+'],
    countries: ['FR'],
    devices: ['ios', 'web'],
    signupAt: Float64Array.from([NaN, 1_500_000_000_000, 1_650_000_000_123]),
  };
  const events: EventTable = {
    length: 6,
    user: Int32Array.from([0, 1, 2, 0, 1, 2]),
    item: Int32Array.from([0, 1, 2, 3, 0, 1]),
    ts: Float64Array.from([1000, 2000, 2000, 3000, 4000, 5000]),
    type: Uint8Array.from([
      EventType.View,
      EventType.Click,
      EventType.Rating,
      EventType.Like,
      EventType.Purchase,
      EventType.View,
    ]),
    value: Float32Array.from([12.5, 40, 4.5, 0, 0, 3.25]),
  };
  return { items, users, events };
}

const info = { name: 'hand-made', source: 'csv' as const, details: { note: 'test' } };

describe('writeDataset and readDataset', () => {
  it('round-trips a hand-made data set exactly, unknowns and unused vocabulary included', async () => {
    const dir = await tempDir();
    const tables = handMade();
    const manifest = await writeDataset(dir, tables, info);
    const back = await readDataset(dir);
    expect(back.items).toEqual(tables.items);
    expect(back.users).toEqual(tables.users);
    expect(back.events).toEqual(tables.events);
    expect(back.manifest).toEqual(manifest);
  });

  it('writes a manifest with counts, time range, schema, details and a fingerprint', async () => {
    const dir = await tempDir();
    const manifest = await writeDataset(dir, handMade(), info);
    expect(manifest).toMatchObject({
      format: 'recsys-dataset',
      version: 1,
      name: 'hand-made',
      source: 'csv',
      counts: { users: 3, items: 4, events: 6 },
      timeRange: { from: 1000, to: 5000 },
      details: { note: 'test' },
    });
    expect(manifest.schema).toEqual(DATASET_SCHEMA);
    expect(Object.keys(manifest.schema['events.parquet'] ?? {})).toEqual([
      'user_index',
      'item_index',
      'ts',
      'type',
      'value',
    ]);
    expect(manifest.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(await datasetFingerprint(dir)).toBe(manifest.fingerprint);
    expect(new Date(manifest.createdAt).toISOString()).toBe(manifest.createdAt);
    expect(await readManifest(dir)).toEqual(manifest);
  });

  it('gives the same fingerprint to the same data and a different one to different data', async () => {
    const [a, b, c] = [await tempDir(), await tempDir(), await tempDir()];
    const tables = handMade();
    const first = await writeDataset(a, tables, info);
    const second = await writeDataset(b, tables, { ...info, name: 'another name' });
    expect(second.fingerprint).toBe(first.fingerprint);
    const changed = handMade();
    changed.events.value[0] = 13;
    expect((await writeDataset(c, changed, info)).fingerprint).not.toBe(first.fingerprint);
  });

  it('sorts unsorted events by time, keeping the order of ties', async () => {
    const dir = await tempDir();
    const tables = handMade();
    const events: EventTable = {
      length: 4,
      user: Int32Array.from([0, 1, 2, 0]),
      item: Int32Array.from([0, 1, 2, 3]),
      ts: Float64Array.from([3000, 1000, 3000, 2000]),
      type: new Uint8Array(4),
      value: new Float32Array(4),
    };
    await writeDataset(dir, { ...tables, events }, info);
    const back = await readEvents(dir);
    expect(Array.from(back.ts)).toEqual([1000, 2000, 3000, 3000]);
    expect(Array.from(back.item)).toEqual([1, 3, 0, 2]);
  });

  it('rejects events that point outside the users or items', async () => {
    const dir = await tempDir();
    const tables = handMade();
    const bad = { ...tables.events, item: Int32Array.from([0, 1, 2, 3, 4, 1]) };
    await expect(writeDataset(dir, { ...tables, events: bad }, info)).rejects.toThrow(
      /out of range/,
    );
  });

  it('round-trips a generated data set byte for byte', async () => {
    const [a, b] = [await tempDir(), await tempDir()];
    const generated = await generateDataset({ dir: a, seed: 5, ...SCALES.tiny });
    const dataset = await readDataset(a);
    expect(dataset.events.length).toBe(generated.counts.events);
    expect(dataset.items.ids.length).toBe(SCALES.tiny.items);
    // Writing what was read gives the very same files: nothing was lost or changed on the way.
    const rewritten = await writeDataset(b, dataset, {
      name: 'copy',
      source: 'synthetic',
      details: {},
    });
    expect(rewritten.fingerprint).toBe(generated.fingerprint);
    expect(rewritten.counts).toEqual(generated.counts);
    expect(rewritten.timeRange).toEqual(generated.timeRange);
    const again = await readDataset(b);
    expect(again.items).toEqual(dataset.items);
    expect(again.users).toEqual(dataset.users);
    expect(again.events).toEqual(dataset.events);
    // The time range is the first and last event.
    expect(generated.timeRange.from).toBe(dataset.events.ts[0]);
    expect(generated.timeRange.to).toBe(dataset.events.ts[dataset.events.length - 1]);
  });

  it('replaces a data set in place, dropping the ground truth of an earlier synthetic one', async () => {
    const dir = await tempDir();
    await generateDataset({ dir, seed: 1, ...SCALES.tiny });
    expect(await readdir(dir)).toContain('truth');
    const manifest = await writeDataset(dir, handMade(), info);
    expect((await readdir(dir)).sort()).toEqual([
      'events.parquet',
      'items.parquet',
      'manifest.json',
      'users.parquet',
    ]);
    expect((await readDataset(dir)).manifest).toEqual(manifest);
  });

  it('rejects a folder without a data set, and a manifest that lies about the counts', async () => {
    const dir = await tempDir();
    await expect(readDataset(dir)).rejects.toBeInstanceOf(DatasetFormatError);
    await writeDataset(dir, handMade(), info);
    const path = join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(
      path,
      JSON.stringify({ ...manifest, counts: { users: 3, items: 4, events: 7 } }),
    );
    await expect(readDataset(dir)).rejects.toThrow(/do not match/);
  });
});

describe('openEventWriter', () => {
  function batch(from: number, n: number): EventTable {
    return {
      length: n,
      user: Int32Array.from({ length: n }, (_, i) => (from + i) % 13),
      item: Int32Array.from({ length: n }, (_, i) => (from + i) % 29),
      ts: Float64Array.from({ length: n }, (_, i) => 1_000_000 + Math.floor((from + i) / 3)),
      type: Uint8Array.from({ length: n }, (_, i) => (from + i) % 4),
      value: Float32Array.from({ length: n }, (_, i) => (from + i) / 4),
    };
  }

  it('streams batches of any size into fixed-size row groups and reads them back', async () => {
    const dir = await tempDir();
    const writer = await openEventWriter(dir, { rowGroupSize: 100 });
    let written = 0;
    for (const size of [1, 99, 250, 0, 37, 663]) {
      await writer.append(batch(written, size));
      written += size;
    }
    expect(writer.length).toBe(1050);
    const summary = await writer.close();
    expect(summary).toEqual({
      events: 1050,
      timeRange: { from: 1_000_000, to: 1_000_000 + Math.floor(1049 / 3) },
    });
    const file = await openParquetFile(join(dir, 'events.parquet'));
    expect(file.rowGroups).toEqual([...Array<number>(10).fill(100), 50]);
    const back = await readEvents(dir);
    expect(back).toEqual(batch(0, 1050));
  });

  it('rejects an append that goes back in time, and refuses to close after it', async () => {
    const dir = await tempDir();
    const writer = await openEventWriter(dir, { rowGroupSize: 10 });
    await writer.append(batch(0, 30));
    await expect(writer.append(batch(0, 5))).rejects.toThrow(/time order/);
    await expect(writer.close()).rejects.toThrow(/time order/);
    await writer.abort();
  });

  it('rejects a bad row group size', async () => {
    await expect(openEventWriter(await tempDir(), { rowGroupSize: 0 })).rejects.toThrow(
      /rowGroupSize/,
    );
  });
});
