import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { readDataset } from '../../models/data/dataset-io.js';
import { DataOptionError } from '../../models/data/errors.js';
import { generateDataset, SCALES } from '../../models/data/generate.js';
import type { GenerateProgress } from '../../models/data/generate.js';
import { Rng } from '../../models/data/rng.js';
import { loadTruth, oracleScores, tasteAt } from '../../models/data/truth.js';
import type { Truth } from '../../models/data/truth.js';
import type { Dataset, DatasetManifest } from '../../models/data/types.js';
import { EventType } from '../../models/data/types.js';

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'recsys-generate-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Every file under `dir` (relative path → bytes), manifest.json aside (it records the time). */
async function dataFiles(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name === 'manifest.json') continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path.slice(dir.length), await readFile(path));
  }
  return files;
}

describe('generateDataset: determinism', () => {
  it('gives byte-identical files (data and truth) for the same seed, different ones for another', async () => {
    const [a, b, c] = [await tempDir(), await tempDir(), await tempDir()];
    const first = await generateDataset({ dir: a, seed: 11, ...SCALES.tiny });
    const second = await generateDataset({ dir: b, seed: 11, ...SCALES.tiny });
    const other = await generateDataset({ dir: c, seed: 12, ...SCALES.tiny });
    expect(second.fingerprint).toBe(first.fingerprint);
    expect(other.fingerprint).not.toBe(first.fingerprint);
    const filesA = await dataFiles(a);
    const filesB = await dataFiles(b);
    expect([...filesA.keys()].sort()).toEqual([...filesB.keys()].sort());
    for (const [path, bytes] of filesA) expect(filesB.get(path)?.equals(bytes), path).toBe(true);
    expect(first.details).toMatchObject({ seed: 11, users: 200, items: 500, days: 30 });
  });

  it('rejects bad options before writing anything', async () => {
    const dir = await tempDir();
    const base = { dir, seed: 1, users: 10, items: 10 };
    await expect(generateDataset({ ...base, users: 0 })).rejects.toBeInstanceOf(DataOptionError);
    await expect(generateDataset({ ...base, items: 2.5 })).rejects.toThrow(/items/);
    await expect(generateDataset({ ...base, seed: -1 })).rejects.toThrow(/seed/);
    await expect(generateDataset({ ...base, days: 0 })).rejects.toThrow(/days/);
    await expect(generateDataset({ ...base, params: { temperature: 0 } })).rejects.toThrow(
      /temperature/,
    );
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('generateDataset: the world has real structure', () => {
  let dir: string;
  let manifest: DatasetManifest;
  let data: Dataset;
  let truth: Truth;
  const progress: GenerateProgress[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'recsys-generate-world-'));
    manifest = await generateDataset({
      dir,
      seed: 3,
      ...SCALES.tiny,
      onProgress: (p) => progress.push(p),
    });
    data = await readDataset(dir);
    truth = await loadTruth(dir);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes sorted events of every kind, each after its item was created and its user signed up', () => {
    const { events, items, users } = data;
    expect(events.length).toBe(manifest.counts.events);
    expect(events.length).toBeGreaterThan(5000);
    const kinds = [0, 0, 0, 0, 0];
    let unsorted = 0;
    let beforeItem = 0;
    let beforeSignup = 0;
    for (let i = 0; i < events.length; i++) {
      const ts = events.ts[i] ?? 0;
      if (i > 0 && ts < (events.ts[i - 1] ?? 0)) unsorted++;
      if (ts < (items.createdAt[events.item[i] ?? 0] ?? 0)) beforeItem++;
      if (ts < (users.signupAt[events.user[i] ?? 0] ?? 0)) beforeSignup++;
      const type = events.type[i] ?? 0;
      kinds[type] = (kinds[type] ?? 0) + 1;
    }
    expect({ unsorted, beforeItem, beforeSignup }).toEqual({
      unsorted: 0,
      beforeItem: 0,
      beforeSignup: 0,
    });
    const [views = 0, clicks = 0, likes = 0, purchases = 0] = kinds;
    // Clicks are a fraction of views; likes and purchases are rarer still; dwell on views.
    expect(clicks).toBeGreaterThan(0.05 * views);
    expect(clicks).toBeLessThan(0.5 * views);
    expect(likes + purchases).toBeGreaterThan(0);
    expect(likes + purchases).toBeLessThan(0.3 * clicks);
    expect(kinds[EventType.Rating]).toBe(0);
    let viewsWithoutDwell = 0;
    for (let i = 0; i < events.length; i++) {
      if (events.type[i] === EventType.View && !((events.value[i] ?? 0) > 0)) viewsWithoutDwell++;
    }
    expect(viewsWithoutDwell).toBe(0);
    // New items keep arriving during the period.
    const arriving = items.createdAt.filter((t) => t >= manifest.timeRange.from).length;
    expect(arriving / items.ids.length).toBeGreaterThan(0.4);
    // Progress went through the world, every day, and the finish.
    expect(progress.filter((p) => p.phase === 'events')).toHaveLength(SCALES.tiny.days);
    expect(progress.at(-1)).toMatchObject({ phase: 'finish', done: 1, events: events.length });
  });

  it('has heavy-tailed popularity: the top 1% of items get more than 10% of events', () => {
    const { events, items } = data;
    const counts = new Float64Array(items.ids.length);
    for (let i = 0; i < events.length; i++) {
      const item = events.item[i] ?? 0;
      counts[item] = (counts[item] ?? 0) + 1;
    }
    const sorted = Array.from(counts).sort((a, b) => b - a);
    const top = sorted.slice(0, Math.ceil(items.ids.length / 100)).reduce((a, b) => a + b, 0);
    expect(top / events.length).toBeGreaterThan(0.1);
  });

  /** Per user, views per category. */
  function categoryViews(): { perUser: Float64Array[]; C: number } {
    const { events, items, users } = data;
    const C = items.categories.length;
    const perUser = users.ids.map(() => new Float64Array(C));
    for (let i = 0; i < events.length; i++) {
      if (events.type[i] !== EventType.View) continue;
      const row = perUser[events.user[i] ?? 0];
      const c = items.category[events.item[i] ?? 0] ?? 0;
      if (row !== undefined) row[c] = (row[c] ?? 0) + 1;
    }
    return { perUser, C };
  }

  it("concentrates each user's views on a few categories, far above chance", () => {
    const { perUser, C } = categoryViews();
    let top3 = 0;
    let total = 0;
    for (const row of perUser) {
      const views = row.reduce((a, b) => a + b, 0);
      if (views < 20) continue;
      const sorted = Array.from(row).sort((a, b) => b - a);
      top3 += (sorted[0] ?? 0) + (sorted[1] ?? 0) + (sorted[2] ?? 0);
      total += views;
    }
    expect(total).toBeGreaterThan(0);
    // Chance would be 3 / C = 15%.
    expect(top3 / total).toBeGreaterThan(Math.min(0.9, (3 / C) * 3.5));
  });

  it('makes sessions category-coherent beyond what each user mix explains', () => {
    const { events, items, users } = data;
    const { perUser, C } = categoryViews();
    const last = new Int32Array(users.ids.length).fill(-1);
    let pairs = 0;
    let same = 0;
    let expected = 0;
    for (let i = 0; i < events.length; i++) {
      if (events.type[i] !== EventType.View) continue;
      const u = events.user[i] ?? 0;
      const j = last[u] ?? -1;
      last[u] = i;
      // Consecutive views of one user within 30 minutes: the same session.
      if (j < 0 || (events.ts[i] ?? 0) - (events.ts[j] ?? 0) > 30 * 60_000) continue;
      pairs++;
      if (items.category[events.item[i] ?? 0] === items.category[events.item[j] ?? 0]) same++;
      const row = perUser[u] ?? new Float64Array(C);
      const views = row.reduce((a, b) => a + b, 0);
      // Two independent draws from the user's overall mix match with probability sum p_c^2.
      expected += row.reduce((a, n) => a + (n / views) ** 2, 0);
    }
    expect(pairs).toBeGreaterThan(1000);
    expect(same / pairs).toBeGreaterThan(expected / pairs + 0.05);
  });

  it("lets tastes drift: most users' taste moves between the start and the end", () => {
    let moved = 0;
    for (let u = 0; u < truth.users; u++) {
      const start = tasteAt(truth, u, truth.start);
      const end = tasteAt(truth, u, truth.end);
      let cos = 0;
      for (let d = 0; d < truth.dims; d++) cos += (start[d] ?? 0) * (end[d] ?? 0);
      if (cos < 0.99) moved++;
    }
    expect(moved / truth.users).toBeGreaterThan(0.5);
  });

  it("ranks the items users pick later far above random with the oracle's scores", () => {
    const { events } = data;
    const scores = new Float32Array(truth.items);
    const rng = new Rng(9);
    let oracleRank = 0;
    let randomRank = 0;
    let sampled = 0;
    // Views in the last fifth of the period.
    for (let i = Math.floor(events.length * 0.8); i < events.length; i += 7) {
      if (events.type[i] !== EventType.View) continue;
      const time = events.ts[i] ?? 0;
      oracleScores(truth, events.user[i] ?? 0, time, scores);
      const chosen = scores[events.item[i] ?? 0] ?? -Infinity;
      expect(chosen).toBeGreaterThan(-Infinity);
      let available = 0;
      let better = 0;
      for (const s of scores) {
        if (s === -Infinity) continue;
        available++;
        if (s > chosen) better++;
      }
      oracleRank += better / available;
      randomRank += rng.next();
      sampled++;
    }
    expect(sampled).toBeGreaterThan(100);
    // Random ranking puts the chosen item in the middle (0.5) on average.
    expect(oracleRank / sampled).toBeLessThan(0.15);
    expect(randomRank / sampled).toBeGreaterThan(0.4);
  });

  it('scores items not yet created at -Infinity and rejects a bad user index', () => {
    const scores = oracleScores(truth, 0, truth.start);
    let future = 0;
    for (let i = 0; i < truth.items; i++) {
      if ((truth.itemCreated[i] ?? 0) > truth.start) {
        expect(scores[i]).toBe(-Infinity);
        future++;
      } else {
        expect(Number.isFinite(scores[i])).toBe(true);
      }
    }
    expect(future).toBeGreaterThan(0);
    expect(() => oracleScores(truth, truth.users, truth.start)).toThrow(RangeError);
  });
});
