/**
 * `recsys data generate`: plays sessions in a synthetic world (see world.ts) and writes the data
 * set, its manifest and its ground truth.
 *
 * Events are produced in global time order, one day at a time: every user's sessions starting
 * that day are simulated into a buffer, the buffer is sorted, and the events before midnight are
 * streamed to events.parquet. A session running past midnight leaves its tail in the buffer for
 * the next day; no later session can start before midnight, so what was written is final. Memory
 * holds the world (items, users) and about one day of events, whatever the total.
 *
 * One session of a user, at its start time s:
 * - taste = normalize(base + progress(s)·drift); per category c the proposal weight is
 *   exp(taste·μ_c / T) · (S_c + boost·F_c), with S_c the popularity mass of the items of c created
 *   by s and F_c that of the ones created in the last `freshnessDays`;
 * - one or two focus categories are drawn from those weights; each view draws its category from
 *   the focus (probability `sessionFocus`) or from the weights, then an item of it by popularity
 *   (from the fresh range with the boost's share of the mass), and accepts it with probability
 *   exp((taste·E_c z − bound_c) / T), bound_c = styleRadius·|E_cᵀ taste| (rejection sampling, so
 *   the accepted items follow the choice model of truth.ts exactly); draws are independent given
 *   the focus, so a session may come back to an item, as real logs do;
 * - a view may lead to a click (more likely the better the item fits), a click to a like or a
 *   purchase; views and clicks carry dwell seconds.
 */
import { DataOptionError } from './errors.js';
import {
  openEventWriter,
  prepareDatasetDir,
  writeItems,
  writeManifest,
  writeUsers,
} from './dataset-io.js';
import type { EventWriter } from './dataset-io.js';
import { Rng, pickWeighted, upperBound } from './rng.js';
import { writeTruth } from './truth.js';
import { EventType } from './types.js';
import type { DatasetManifest, EventTable } from './types.js';
import {
  DAY_MS,
  DEFAULT_WORLD_PARAMS,
  HOURLY_ACTIVITY,
  VIEWS_BY_DEVICE,
  buildWorld,
  createdBy,
} from './world.js';
import type { World, WorldParams } from './world.js';

/** Preset sizes of `recsys data generate --scale`. */
export const SCALES = {
  /** For tests: about 15,000 events, well under a second. */
  tiny: { users: 200, items: 500, days: 30, categories: 20 },
  /** The default: about a million events. */
  small: { users: 5_000, items: 20_000, days: 90, categories: 30 },
  /** For benchmarks: about 20 million events. */
  full: { users: 100_000, items: 1_000_000, days: 90, categories: 50 },
} as const;
export type Scale = keyof typeof SCALES;

export interface GenerateProgress {
  /** `world`: building items and users; `events`: simulating days; `finish`: writing the rest. */
  readonly phase: 'world' | 'events' | 'finish';
  /** Days simulated (events phase), else 0 or 1. */
  readonly done: number;
  readonly total: number;
  /** Events written so far. */
  readonly events: number;
}

export interface GenerateOptions {
  /** Output folder; created if missing. Existing data files are overwritten. */
  dir: string;
  users: number;
  items: number;
  /** Same seed and options: byte-identical data files. */
  seed: number;
  /** Length of the simulated period. @default 90 */
  days?: number;
  /** Number of item categories. @default 30 */
  categories?: number;
  /** The manifest's name. @default 'synthetic' */
  name?: string;
  /** Overrides of the world's knobs (see {@link WorldParams}). */
  params?: Partial<WorldParams>;
  /** Extra entries for the manifest's `details` (for example the scale preset's name). */
  details?: Record<string, unknown>;
  onProgress?: (progress: GenerateProgress) => void;
}

interface ResolvedGenerateOptions {
  dir: string;
  users: number;
  items: number;
  seed: number;
  days: number;
  categories: number;
  name: string;
  params: WorldParams;
  details: Record<string, unknown>;
  onProgress: (progress: GenerateProgress) => void;
}

function positiveInt(option: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new DataOptionError(option, `must be an integer in [1, ${max}], got ${String(value)}`);
  }
  return value;
}

export function resolveGenerateOptions(options: GenerateOptions): ResolvedGenerateOptions {
  if (typeof options.dir !== 'string' || options.dir === '') {
    throw new DataOptionError('dir', 'must be a non-empty path');
  }
  const seed = options.seed;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new DataOptionError('seed', `must be an integer in [0, 4294967295], got ${seed}`);
  }
  const params = { ...DEFAULT_WORLD_PARAMS, ...options.params };
  for (const [key, value] of Object.entries(params)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new DataOptionError(`params.${key}`, 'must be a finite number >= 0');
    }
  }
  positiveInt('params.dims', params.dims, 1024);
  if (params.temperature <= 0) throw new DataOptionError('params.temperature', 'must be > 0');
  if (params.activityShape <= 1) throw new DataOptionError('params.activityShape', 'must be > 1');
  for (const key of ['sessionFocus', 'backCatalogue', 'lateSignups'] as const) {
    if (params[key] > 1) throw new DataOptionError(`params.${key}`, 'must be in [0, 1]');
  }
  return {
    dir: options.dir,
    users: positiveInt('users', options.users, 100_000_000),
    items: positiveInt('items', options.items, 100_000_000),
    seed,
    days: positiveInt('days', options.days ?? 90, 3650),
    categories: positiveInt('categories', options.categories ?? 30, 10_000),
    name: options.name ?? 'synthetic',
    params,
    details: options.details ?? {},
    onProgress: options.onProgress ?? (() => {}),
  };
}

/** A growable columnar buffer of events. */
class EventBuffer implements EventTable {
  length = 0;
  user: Int32Array;
  item: Int32Array;
  ts: Float64Array;
  type: Uint8Array;
  value: Float32Array;

  constructor(capacity: number) {
    this.user = new Int32Array(capacity);
    this.item = new Int32Array(capacity);
    this.ts = new Float64Array(capacity);
    this.type = new Uint8Array(capacity);
    this.value = new Float32Array(capacity);
  }

  push(user: number, item: number, ts: number, type: number, value: number): void {
    if (this.length === this.ts.length) this.grow(this.length * 2);
    const i = this.length++;
    this.user[i] = user;
    this.item[i] = item;
    this.ts[i] = ts;
    this.type[i] = type;
    this.value[i] = value;
  }

  private grow(capacity: number): void {
    const grow = <T extends Int32Array | Float64Array | Uint8Array | Float32Array>(
      old: T,
      make: (n: number) => T,
    ): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.user = grow(this.user, (n) => new Int32Array(n));
    this.item = grow(this.item, (n) => new Int32Array(n));
    this.ts = grow(this.ts, (n) => new Float64Array(n));
    this.type = grow(this.type, (n) => new Uint8Array(n));
    this.value = grow(this.value, (n) => new Float32Array(n));
  }

  /**
   * Sorts the buffer by time (ties keep insertion order), hands the events before `until` to
   * `emit` as one table, and keeps the rest.
   */
  async drainBefore(until: number, emit: (batch: EventTable) => Promise<void>): Promise<void> {
    const n = this.length;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const ts = this.ts;
    order.sort((a, b) => (ts[a] ?? 0) - (ts[b] ?? 0) || a - b);
    const sorted = new EventBuffer(Math.max(16, n));
    for (let k = 0; k < n; k++) {
      const i = order[k] ?? 0;
      sorted.push(
        this.user[i] ?? 0,
        this.item[i] ?? 0,
        ts[i] ?? 0,
        this.type[i] ?? 0,
        this.value[i] ?? 0,
      );
    }
    const cut = upperBound(sorted.ts, until - 1, 0, n);
    if (cut > 0) {
      await emit({
        length: cut,
        user: sorted.user.subarray(0, cut),
        item: sorted.item.subarray(0, cut),
        ts: sorted.ts.subarray(0, cut),
        type: sorted.type.subarray(0, cut),
        value: sorted.value.subarray(0, cut),
      });
    }
    this.length = n - cut;
    this.user.set(sorted.user.subarray(cut, n));
    this.item.set(sorted.item.subarray(cut, n));
    this.ts.set(sorted.ts.subarray(cut, n));
    this.type.set(sorted.type.subarray(cut, n));
    this.value.set(sorted.value.subarray(cut, n));
  }
}

/** Longest session, in views. */
const MAX_VIEWS = 500;

/** Simulates sessions; holds the per-session scratch arrays so a session allocates nothing. */
class SessionSimulator {
  private readonly D: number;
  private readonly C: number;
  private readonly taste: Float64Array;
  /** taste·μ_c / T, then the proposal weights' running sum. */
  private readonly catLogit: Float64Array;
  private readonly catCum: Float64Array;
  /** E_cᵀ taste (two per category) and the acceptance bound per category. */
  private readonly proj: Float64Array;
  private readonly bound: Float64Array;
  /** Positions in the catalogue: end of the created range, start of the fresh range. */
  private readonly hi: Int32Array;
  private readonly freshLo: Int32Array;
  private readonly massAll: Float64Array;
  private readonly massFresh: Float64Array;
  private readonly hourCum: Float64Array;
  /** Total proposals and acceptances, for the manifest. */
  proposals = 0;
  accepted = 0;

  constructor(
    private readonly world: World,
    private readonly rng: Rng,
    private readonly out: EventBuffer,
  ) {
    this.D = world.dims;
    this.C = world.categories;
    this.taste = new Float64Array(this.D);
    this.catLogit = new Float64Array(this.C);
    this.catCum = new Float64Array(this.C);
    this.proj = new Float64Array(2 * this.C);
    this.bound = new Float64Array(this.C);
    this.hi = new Int32Array(this.C);
    this.freshLo = new Int32Array(this.C);
    this.massAll = new Float64Array(this.C);
    this.massFresh = new Float64Array(this.C);
    const hourCum = new Float64Array(24);
    let sum = 0;
    for (let h = 0; h < 24; h++) hourCum[h] = sum += HOURLY_ACTIVITY[h] ?? 1;
    this.hourCum = hourCum;
  }

  /** A session start within the day, following the hourly activity curve. */
  startTime(dayStart: number): number {
    const hour = pickWeighted(this.rng, this.hourCum);
    return dayStart + hour * 3_600_000 + Math.floor(this.rng.next() * 3_600_000);
  }

  /** Prepares the proposal for user `u` at time `s`; false when no item exists yet. */
  private prepare(u: number, s: number): boolean {
    const { world, D, C, taste } = this;
    const { params, catalogue } = world;
    const p = Math.min(1, Math.max(0, (s - world.start) / (world.end - world.start)));
    let norm = 0;
    for (let d = 0; d < D; d++) {
      const x = (world.userBase[u * D + d] ?? 0) + p * (world.userDrift[u * D + d] ?? 0);
      taste[d] = x;
      norm += x * x;
    }
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < D; d++) taste[d] = (taste[d] ?? 0) / norm;

    const invT = 1 / params.temperature;
    const freshSince = s - params.freshnessDays * DAY_MS;
    let max = -Infinity;
    for (let c = 0; c < C; c++) {
      let a = 0;
      let e0 = 0;
      let e1 = 0;
      const m = c * D;
      const e = c * 2 * D;
      for (let d = 0; d < D; d++) {
        const t = taste[d] ?? 0;
        a += t * (world.centroids[m + d] ?? 0);
        e0 += t * (world.styleAxes[e + d] ?? 0);
        e1 += t * (world.styleAxes[e + D + d] ?? 0);
      }
      this.proj[2 * c] = e0;
      this.proj[2 * c + 1] = e1;
      this.bound[c] = params.styleRadius * Math.sqrt(e0 * e0 + e1 * e1);
      const lo = catalogue.start[c] ?? 0;
      const hi = lo + createdBy(catalogue, c, s);
      // Items created after freshSince are fresh: 0 <= s - created < freshness.
      const freshLo = lo + createdBy(catalogue, c, freshSince);
      this.hi[c] = hi;
      this.freshLo[c] = freshLo;
      const sAll = hi > lo ? (catalogue.cumWeight[hi - 1] ?? 0) : 0;
      const sBefore = freshLo > lo ? (catalogue.cumWeight[freshLo - 1] ?? 0) : 0;
      this.massAll[c] = sAll;
      this.massFresh[c] = params.freshnessBoost * (sAll - sBefore);
      const logit = sAll > 0 ? a * invT + Math.log(sAll + (this.massFresh[c] ?? 0)) : -Infinity;
      this.catLogit[c] = logit;
      if (logit > max) max = logit;
    }
    if (max === -Infinity) return false;
    let sum = 0;
    for (let c = 0; c < C; c++) {
      sum += Math.exp((this.catLogit[c] ?? -Infinity) - max);
      this.catCum[c] = sum;
    }
    return true;
  }

  /** Draws one item for the prepared session; returns the item and its fit in (0, 1]. */
  private drawItem(focus0: number, focus1: number): [number, number] {
    const { world, rng, C } = this;
    const { catalogue, params, itemStyle } = world;
    const invT = 1 / params.temperature;
    let item = 0;
    let fit = 0;
    for (let attempt = 0; attempt < 1000; attempt++) {
      this.proposals++;
      let c: number;
      if (rng.next() < params.sessionFocus) c = rng.next() < 0.5 ? focus0 : focus1;
      else
        c = Math.min(C - 1, upperBound(this.catCum, rng.next() * (this.catCum[C - 1] ?? 0), 0, C));
      const all = this.massAll[c] ?? 0;
      const fresh = this.massFresh[c] ?? 0;
      const lo =
        rng.next() * (all + fresh) < all ? (catalogue.start[c] ?? 0) : (this.freshLo[c] ?? 0);
      const hi = this.hi[c] ?? 0;
      if (hi <= lo) continue;
      const base = lo > (catalogue.start[c] ?? 0) ? (catalogue.cumWeight[lo - 1] ?? 0) : 0;
      const top = catalogue.cumWeight[hi - 1] ?? 0;
      const k = Math.min(
        hi - 1,
        upperBound(catalogue.cumWeight, base + rng.next() * (top - base), lo, hi),
      );
      item = catalogue.order[k] ?? 0;
      const z0 = itemStyle[2 * item] ?? 0;
      const z1 = itemStyle[2 * item + 1] ?? 0;
      const affinity = (this.proj[2 * c] ?? 0) * z0 + (this.proj[2 * c + 1] ?? 0) * z1;
      fit = Math.exp((affinity - (this.bound[c] ?? 0)) * invT);
      if (rng.next() >= fit) continue;
      this.accepted++;
      return [item, fit];
    }
    return [item, fit];
  }

  /** Simulates one session of user `u` starting at `s`, appending its events. */
  session(u: number, s: number): void {
    if (!this.prepare(u, s)) return;
    const { rng, world, out, C } = this;
    const { params } = world;
    const total = this.catCum[C - 1] ?? 0;
    const focus0 = Math.min(C - 1, upperBound(this.catCum, rng.next() * total, 0, C));
    const focus1 =
      rng.next() < 0.4
        ? Math.min(C - 1, upperBound(this.catCum, rng.next() * total, 0, C))
        : focus0;
    const meanViews = VIEWS_BY_DEVICE[world.users.device[u] ?? 0] ?? 8;
    const views = Math.min(MAX_VIEWS, 1 + Math.floor(rng.exponential() * (meanViews - 1)));
    let t = s;
    for (let v = 0; v < views; v++) {
      const [item, fit] = this.drawItem(focus0, focus1);
      const viewDwell = Math.min(600, rng.logNormal(6 * (0.6 + 0.8 * fit), 0.8));
      out.push(u, item, t, EventType.View, Math.round(viewDwell * 10) / 10);
      t += Math.round(viewDwell * 1000);
      if (rng.next() < params.clickRate * (0.3 + 0.7 * fit)) {
        const clickDwell = Math.min(3600, rng.logNormal(40 * (0.5 + fit), 0.9));
        out.push(u, item, t, EventType.Click, Math.round(clickDwell * 10) / 10);
        t += Math.round(clickDwell * 1000);
        if (rng.next() < params.likeRate * fit) {
          out.push(u, item, t, EventType.Like, 0);
          t += 1000 + Math.floor(rng.next() * 4000);
        }
        if (rng.next() < params.purchaseRate * fit) {
          out.push(u, item, t, EventType.Purchase, 0);
          t += 5000 + Math.floor(rng.next() * 30_000);
        }
      }
      t += Math.round(rng.logNormal(4, 0.7) * 1000);
    }
  }
}

/**
 * Generates a synthetic data set into `options.dir`: items.parquet, users.parquet,
 * events.parquet, truth/ and manifest.json (written last).
 */
export async function generateDataset(options: GenerateOptions): Promise<DatasetManifest> {
  const o = resolveGenerateOptions(options);
  await prepareDatasetDir(o.dir);
  o.onProgress({ phase: 'world', done: 0, total: 1, events: 0 });
  const world = buildWorld({
    users: o.users,
    items: o.items,
    categories: o.categories,
    days: o.days,
    seed: o.seed,
    params: o.params,
  });
  await writeItems(o.dir, world.items);
  await writeUsers(o.dir, world.users);
  await writeTruth(o.dir, world);
  o.onProgress({ phase: 'world', done: 1, total: 1, events: 0 });

  const writer: EventWriter = await openEventWriter(o.dir, { users: o.users, items: o.items });
  const buffer = new EventBuffer(1 << 16);
  const rng = new Rng(o.seed, 4);
  const simulator = new SessionSimulator(world, rng, buffer);
  const expNeg = Float64Array.from(world.userRate, (rate) => Math.exp(-rate));
  const signupAt = world.users.signupAt;
  try {
    for (let day = 0; day < o.days; day++) {
      const dayStart = world.start + day * DAY_MS;
      const dayEnd = dayStart + DAY_MS;
      for (let u = 0; u < o.users; u++) {
        const signup = signupAt[u] ?? 0;
        if (signup >= dayEnd) continue;
        const sessions = rng.poisson(world.userRate[u] ?? 0, expNeg[u]);
        for (let k = 0; k < sessions; k++) {
          const s = simulator.startTime(dayStart);
          if (s >= signup) simulator.session(u, s);
        }
      }
      const last = day === o.days - 1;
      await buffer.drainBefore(last ? Infinity : dayEnd, (batch) => writer.append(batch));
      o.onProgress({ phase: 'events', done: day + 1, total: o.days, events: writer.length });
    }
  } catch (err) {
    await writer.abort();
    throw err;
  }
  const summary = await writer.close();
  o.onProgress({ phase: 'finish', done: 0, total: 1, events: summary.events });
  const manifest = await writeManifest(
    o.dir,
    {
      name: o.name,
      source: 'synthetic',
      details: {
        ...o.details,
        generator: 'recsys synthetic world, version 1',
        seed: o.seed,
        users: o.users,
        items: o.items,
        days: o.days,
        categories: o.categories,
        params: o.params,
        acceptanceRate: simulator.proposals === 0 ? 1 : simulator.accepted / simulator.proposals,
        truth: 'truth/truth.json',
      },
    },
    { users: o.users, items: o.items, events: summary },
  );
  o.onProgress({ phase: 'finish', done: 1, total: 1, events: summary.events });
  return manifest;
}
