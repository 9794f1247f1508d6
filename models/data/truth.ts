/**
 * The generator's ground truth, stored beside a synthetic data set in `truth/`, and the oracle that
 * scores items exactly as the generator chooses them.
 *
 *   truth/truth.json          the model, its parameters, and the layout of the files below
 *   truth/item_vectors.f32    items × dims   latent vector v of each item
 *   truth/item_log_pop.f32    items          log popularity weight (0 for the most popular)
 *   truth/item_created.f64    items          creation time, epoch ms
 *   truth/user_base.f32       users × dims   base taste
 *   truth/user_drift.f32      users × dims   drift, reached in full at the end of the period
 *   truth/centroids.f32       categories × dims
 *
 * Binary files are raw little-endian arrays, row-major, no header.
 *
 * The oracle's score of item i for user u at time t is the log of the generator's unnormalised
 * choice probability:
 *
 *   score = logPop[i] + taste(u, t)·v[i] / temperature + (0 ≤ t − created[i] < freshness ? log(1 + boost) : 0)
 *   taste(u, t) = normalize(base[u] + progress(t)·drift[u]),  progress(t) = clamp((t − start) / (end − start), 0, 1)
 *
 * and −Infinity for items created after t. It is the user's choice model marginalised over session
 * context: within a session the generator leans toward one or two focus categories, which a model
 * reading the recent history can exploit and the oracle does not know. The generator fixes the
 * catalogue and taste at each session's start, so within a session the oracle differs from the
 * generator by the minutes the session lasts.
 */
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { TRUTH_DIR } from './dataset-io.js';
import { DatasetFormatError } from './errors.js';
import type { World, WorldParams } from './world.js';
import { DAY_MS } from './world.js';

export { TRUTH_DIR };

/** What `truth/truth.json` holds. */
export interface TruthManifest {
  readonly format: 'recsys-truth';
  readonly version: 1;
  readonly model: string;
  readonly dims: number;
  readonly users: number;
  readonly items: number;
  readonly categories: number;
  readonly temperature: number;
  readonly freshnessBoost: number;
  /** Items younger than this (ms) get the freshness boost. */
  readonly freshnessMs: number;
  /** The period: progress runs from 0 at `start` to 1 at `end` (epoch ms). */
  readonly start: number;
  readonly end: number;
  readonly seed: number;
  readonly params: WorldParams;
  /** File name → shape and element type. */
  readonly files: Record<string, string>;
}

/** The ground truth in memory. */
export interface Truth extends TruthManifest {
  readonly itemVectors: Float32Array;
  readonly itemLogPop: Float32Array;
  readonly itemCreated: Float64Array;
  readonly userBase: Float32Array;
  readonly userDrift: Float32Array;
  readonly centroids: Float32Array;
}

const MODEL =
  'score(u,i,t) = logPop[i] + dot(taste(u,t), v[i]) / temperature + (0 <= t - created[i] < freshnessMs ? log(1 + freshnessBoost) : 0), ' +
  '-Infinity if created[i] > t; taste(u,t) = normalize(base[u] + progress(t) * drift[u]); ' +
  'progress(t) = clamp((t - start) / (end - start), 0, 1)';

const FILES = {
  itemVectors: 'item_vectors.f32',
  itemLogPop: 'item_log_pop.f32',
  itemCreated: 'item_created.f64',
  userBase: 'user_base.f32',
  userDrift: 'user_drift.f32',
  centroids: 'centroids.f32',
} as const;

function requireLittleEndian(): void {
  if (endianness() !== 'LE') {
    throw new Error('truth files are little-endian; this machine is big-endian');
  }
}

function bytes(view: Float32Array | Float64Array): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Writes `truth/` for a world. Item vectors are computed and written in chunks. */
export async function writeTruth(dir: string, world: World): Promise<TruthManifest> {
  requireLittleEndian();
  const out = join(dir, TRUTH_DIR);
  await mkdir(out, { recursive: true });
  const D = world.dims;
  const n = world.items.ids.length;
  const u = world.users.ids.length;
  const manifest: TruthManifest = {
    format: 'recsys-truth',
    version: 1,
    model: MODEL,
    dims: D,
    users: u,
    items: n,
    categories: world.categories,
    temperature: world.params.temperature,
    freshnessBoost: world.params.freshnessBoost,
    freshnessMs: world.params.freshnessDays * DAY_MS,
    start: world.start,
    end: world.end,
    seed: world.seed,
    params: world.params,
    files: {
      [FILES.itemVectors]: `float32[${n}][${D}]`,
      [FILES.itemLogPop]: `float32[${n}]`,
      [FILES.itemCreated]: `float64[${n}]`,
      [FILES.userBase]: `float32[${u}][${D}]`,
      [FILES.userDrift]: `float32[${u}][${D}]`,
      [FILES.centroids]: `float32[${world.categories}][${D}]`,
    },
  };
  const handle = await open(join(out, FILES.itemVectors), 'w');
  try {
    const chunk = 65_536;
    const buffer = new Float32Array(chunk * D);
    for (let first = 0; first < n; first += chunk) {
      const rows = Math.min(chunk, n - first);
      for (let r = 0; r < rows; r++) {
        const i = first + r;
        const c = world.items.category[i] ?? 0;
        const z0 = world.itemStyle[2 * i] ?? 0;
        const z1 = world.itemStyle[2 * i + 1] ?? 0;
        for (let d = 0; d < D; d++) {
          buffer[r * D + d] =
            (world.centroids[c * D + d] ?? 0) +
            z0 * (world.styleAxes[c * 2 * D + d] ?? 0) +
            z1 * (world.styleAxes[c * 2 * D + D + d] ?? 0);
        }
      }
      await handle.write(bytes(buffer.subarray(0, rows * D)));
    }
  } finally {
    await handle.close();
  }
  await writeFile(join(out, FILES.itemLogPop), bytes(world.itemLogPop));
  await writeFile(join(out, FILES.itemCreated), bytes(world.items.createdAt));
  await writeFile(join(out, FILES.userBase), bytes(world.userBase));
  await writeFile(join(out, FILES.userDrift), bytes(world.userDrift));
  await writeFile(join(out, FILES.centroids), bytes(world.centroids));
  await writeFile(join(out, 'truth.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

async function readArray<T extends Float32Array | Float64Array>(
  path: string,
  make: (buffer: ArrayBuffer, length: number) => T,
  bytesPer: number,
  expected: number,
): Promise<T> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new DatasetFormatError(path, 'cannot read', { cause: err });
  }
  if (data.byteLength !== expected * bytesPer) {
    throw new DatasetFormatError(
      path,
      `holds ${data.byteLength} bytes, expected ${expected * bytesPer}`,
    );
  }
  // Copy into a fresh, aligned buffer (a Buffer may sit at any offset of a shared pool).
  const copy = new ArrayBuffer(data.byteLength);
  new Uint8Array(copy).set(data);
  return make(copy, expected);
}

/** Loads `truth/` of a synthetic data set folder. */
export async function loadTruth(dir: string): Promise<Truth> {
  requireLittleEndian();
  const base = join(dir, TRUTH_DIR);
  const path = join(base, 'truth.json');
  let manifest: TruthManifest;
  try {
    manifest = JSON.parse(await readFile(path, 'utf8')) as TruthManifest;
  } catch (err) {
    throw new DatasetFormatError(path, 'no ground truth here (only synthetic data sets have one)', {
      cause: err,
    });
  }
  if (manifest.format !== 'recsys-truth' || manifest.version !== 1) {
    throw new DatasetFormatError(path, 'is not a recsys-truth version 1 file');
  }
  const { dims: D, items: n, users: u, categories: C } = manifest;
  const f32 = (b: ArrayBuffer, len: number) => new Float32Array(b, 0, len);
  const f64 = (b: ArrayBuffer, len: number) => new Float64Array(b, 0, len);
  return {
    ...manifest,
    itemVectors: await readArray(join(base, FILES.itemVectors), f32, 4, n * D),
    itemLogPop: await readArray(join(base, FILES.itemLogPop), f32, 4, n),
    itemCreated: await readArray(join(base, FILES.itemCreated), f64, 8, n),
    userBase: await readArray(join(base, FILES.userBase), f32, 4, u * D),
    userDrift: await readArray(join(base, FILES.userDrift), f32, 4, u * D),
    centroids: await readArray(join(base, FILES.centroids), f32, 4, C * D),
  };
}

/** Fraction of the period elapsed at `time`, clamped to [0, 1]. */
export function progressAt(start: number, end: number, time: number): number {
  if (end <= start) return 1;
  return Math.min(1, Math.max(0, (time - start) / (end - start)));
}

/** The user's unit taste vector at `time`, written to `out` (length `dims`). */
export function tasteAt(
  truth: Pick<Truth, 'dims' | 'start' | 'end' | 'userBase' | 'userDrift'>,
  user: number,
  time: number,
  out: Float64Array = new Float64Array(truth.dims),
): Float64Array {
  const D = truth.dims;
  const p = progressAt(truth.start, truth.end, time);
  let norm = 0;
  for (let d = 0; d < D; d++) {
    const x = (truth.userBase[user * D + d] ?? 0) + p * (truth.userDrift[user * D + d] ?? 0);
    out[d] = x;
    norm += x * x;
  }
  norm = Math.sqrt(norm) || 1;
  for (let d = 0; d < D; d++) out[d] = (out[d] ?? 0) / norm;
  return out;
}

/**
 * The oracle: for every item, the log of the generator's unnormalised probability that `user`
 * picks it at `time` (−Infinity for items not yet created). Softmax over the scores gives the
 * choice distribution; ranking by them gives the oracle's recommendations.
 */
export function oracleScores(
  truth: Truth,
  userIndex: number,
  time: number,
  out: Float32Array = new Float32Array(truth.items),
): Float32Array {
  if (!Number.isInteger(userIndex) || userIndex < 0 || userIndex >= truth.users) {
    throw new RangeError(`userIndex must be an integer in [0, ${truth.users}), got ${userIndex}`);
  }
  if (out.length < truth.items) throw new RangeError(`out must hold ${truth.items} scores`);
  const D = truth.dims;
  const taste = tasteAt(truth, userIndex, time);
  const invT = 1 / truth.temperature;
  const fresh = Math.log1p(truth.freshnessBoost);
  const vectors = truth.itemVectors;
  for (let i = 0; i < truth.items; i++) {
    const created = truth.itemCreated[i] ?? Infinity;
    if (created > time) {
      out[i] = -Infinity;
      continue;
    }
    let dot = 0;
    const o = i * D;
    for (let d = 0; d < D; d++) dot += (taste[d] ?? 0) * (vectors[o + d] ?? 0);
    out[i] =
      (truth.itemLogPop[i] ?? 0) + dot * invT + (time - created < truth.freshnessMs ? fresh : 0);
  }
  return out;
}
