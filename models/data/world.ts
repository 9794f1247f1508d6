/**
 * The synthetic world behind `recsys data generate`: a catalogue of items and a population of
 * users with latent structure, built from a seed. `generate.ts` plays sessions in it; `truth.ts`
 * stores what an oracle needs to score items exactly as the generator chooses them.
 *
 * The latent space has `dims` dimensions. Each category has a unit centroid μ_c and two style
 * axes E_c (orthonormal, orthogonal to μ_c); an item of category c sits at v = μ_c + E_c·z with
 * z in a disc of radius `styleRadius`. A user's taste at time t is
 * taste(t) = normalize(base + progress(t)·drift), where base leans toward a few favourite
 * categories (drawn from a prior shifted by age band and country) and drift toward another
 * category. The choice model (see truth.ts) is
 *   P(item | user, t) ∝ pop^1 · exp(taste(t)·v / temperature) · (1 + freshnessBoost·[new])
 * among items already created at t.
 */
import { Rng, pickWeighted, upperBound } from './rng.js';
import type { ItemTable, UserTable } from './types.js';

export const DAY_MS = 86_400_000;

/** Start of the simulated period, 2025-01-01T00:00:00Z: fixed, so output never depends on now. */
export const WORLD_START_MS = Date.UTC(2025, 0, 1);

/** The knobs of the world. Recorded in the manifest and in truth/truth.json. */
export interface WorldParams {
  /** Dimensions of the latent space. @default 16 */
  dims: number;
  /** Temperature of the affinity term of the choice model. @default 0.15 */
  temperature: number;
  /** Zipf exponent of popularity: the item of popularity rank r weighs r^-s. @default 0.75 */
  zipfExponent: number;
  /** Zipf exponent of category sizes. @default 0.7 */
  categoryZipf: number;
  /** Radius of the disc of style offsets around a category centroid. @default 0.8 */
  styleRadius: number;
  /** Expected norm of the random part of a user's base taste. @default 0.6 */
  tasteNoise: number;
  /** Largest drift strength; each user draws one uniformly in [0, drift]. @default 1 */
  drift: number;
  /** New items (younger than `freshnessDays`) weigh (1 + freshnessBoost) times more. @default 3 */
  freshnessBoost: number;
  /** @default 7 */
  freshnessDays: number;
  /** Chance that an event of a session comes from the session's focus categories. @default 0.7 */
  sessionFocus: number;
  /** Mean sessions per user per day (power-law across users). @default 0.3 */
  sessionsPerDay: number;
  /** Pareto shape of user activity (smaller: heavier tail). @default 1.5 */
  activityShape: number;
  /** Cap of a user's sessions per day. @default 4 */
  maxSessionsPerDay: number;
  /** Share of items created before the period starts (the back catalogue). @default 0.4 */
  backCatalogue: number;
  /** The back catalogue is spread over this many days before the start. @default 365 */
  backCatalogueDays: number;
  /** Share of users who sign up during the period. @default 0.3 */
  lateSignups: number;
  /** Click probability of a perfectly fitting item; scaled down by fit. @default 0.3 */
  clickRate: number;
  /** Like probability after a click, for a perfect fit. @default 0.15 */
  likeRate: number;
  /** Purchase probability after a click, for a perfect fit. @default 0.05 */
  purchaseRate: number;
}

export const DEFAULT_WORLD_PARAMS: Readonly<WorldParams> = {
  dims: 16,
  temperature: 0.15,
  zipfExponent: 0.75,
  categoryZipf: 0.7,
  styleRadius: 0.8,
  tasteNoise: 0.6,
  drift: 1,
  freshnessBoost: 3,
  freshnessDays: 7,
  sessionFocus: 0.7,
  sessionsPerDay: 0.3,
  activityShape: 1.5,
  maxSessionsPerDay: 4,
  backCatalogue: 0.4,
  backCatalogueDays: 365,
  lateSignups: 0.3,
  clickRate: 0.3,
  likeRate: 0.15,
  purchaseRate: 0.05,
};

const CATEGORY_NAMES = [
  'news', 'sports', 'music', 'movies', 'tv', 'gaming', 'tech', 'science', 'travel', 'food',
  'fashion', 'beauty', 'fitness', 'health', 'finance', 'business', 'education', 'books', 'art',
  'photography', 'design', 'diy', 'home', 'garden', 'pets', 'parenting', 'cars', 'outdoors',
  'comedy', 'history', 'politics', 'nature', 'space', 'anime', 'podcasts', 'dance', 'theatre',
  'crafts', 'cooking', 'wine', 'coffee', 'cycling', 'running', 'yoga', 'football', 'basketball',
  'tennis', 'chess', 'jazz', 'classical',
]; // prettier-ignore

/** One tag per quadrant of the style disc: tags carry an item's style, not only its category. */
const STYLE_WORDS = ['bold', 'calm', 'quirky', 'classic'];
const LEVEL_WORDS = ['beginner', 'expert'];
const GLOBAL_TAGS = [
  'trending', 'award-winning', 'indie', 'short', 'long-form', 'hd', 'live', 'series', 'exclusive',
  'remastered',
]; // prettier-ignore

const AGE_BANDS = ['18-24', '25-34', '35-44', '45-54', '55-64', '65+'];
const AGE_WEIGHTS = [0.14, 0.26, 0.22, 0.17, 0.12, 0.09];
const COUNTRIES = ['US', 'IN', 'BR', 'GB', 'DE', 'FR', 'JP', 'MX', 'ES', 'IT', 'CA', 'KR', 'AU', 'NL', 'SE', 'PL']; // prettier-ignore
const DEVICES = ['ios', 'android', 'web', 'tv'];
/** Device shares per age band: the young on phones, the old on the web and TV. */
const DEVICE_BY_AGE = [
  [0.45, 0.45, 0.08, 0.02],
  [0.4, 0.4, 0.15, 0.05],
  [0.32, 0.36, 0.24, 0.08],
  [0.25, 0.3, 0.33, 0.12],
  [0.18, 0.25, 0.4, 0.17],
  [0.12, 0.18, 0.45, 0.25],
];
/** Mean views per session, by device. */
export const VIEWS_BY_DEVICE = [8, 7, 11, 5];
/** Relative session starts per hour of the day (UTC). */
export const HOURLY_ACTIVITY = [
  1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.4, 1.8, 1.8, 1.7, 1.8, 2, 1.9, 1.8, 1.8, 2, 2.4, 2.9, 3.3,
  3.4, 3, 2.3, 1.5,
]; // prettier-ignore

export interface WorldOptions {
  users: number;
  items: number;
  categories: number;
  days: number;
  seed: number;
  params: WorldParams;
}

/** The catalogue, arranged for sampling: by category, then by creation time. */
export interface Catalogue {
  /** Item indices, grouped by category and sorted by creation time within each. */
  readonly order: Int32Array;
  /** Category c owns positions [start[c], start[c+1]) of `order`. */
  readonly start: Int32Array;
  /** Creation time of `order[k]`. */
  readonly created: Float64Array;
  /** Running sum of popularity weights within each category, ending at position k. */
  readonly cumWeight: Float64Array;
}

export interface World {
  readonly params: WorldParams;
  readonly seed: number;
  readonly dims: number;
  readonly categories: number;
  readonly start: number;
  readonly end: number;
  readonly days: number;
  /** Category centroids, categories × dims. */
  readonly centroids: Float32Array;
  /** Style axes, categories × 2 × dims. */
  readonly styleAxes: Float32Array;
  readonly items: ItemTable;
  /** Style offset z of each item, items × 2. */
  readonly itemStyle: Float32Array;
  /** zipfExponent · log(popularity) of each item (0 for the most popular). */
  readonly itemLogPop: Float32Array;
  readonly users: UserTable;
  /** Base taste and drift, users × dims. */
  readonly userBase: Float32Array;
  readonly userDrift: Float32Array;
  /** Expected sessions per day of each user. */
  readonly userRate: Float64Array;
  readonly catalogue: Catalogue;
}

function cumulative(weights: ArrayLike<number>): Float64Array {
  const out = new Float64Array(weights.length);
  let sum = 0;
  for (let i = 0; i < weights.length; i++) {
    sum += weights[i] ?? 0;
    out[i] = sum;
  }
  return out;
}

function normalize(v: Float64Array): Float64Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n) || 1;
  for (let i = 0; i < v.length; i++) v[i] = (v[i] ?? 0) / n;
  return v;
}

function gaussianVector(rng: Rng, dims: number, norm: number): Float64Array {
  const v = new Float64Array(dims);
  const scale = norm / Math.sqrt(dims);
  for (let d = 0; d < dims; d++) v[d] = rng.normal() * scale;
  return v;
}

/** Removes from `v` its components along the unit rows of `basis` (Gram-Schmidt). */
function orthogonalize(v: Float64Array, basis: readonly Float64Array[]): Float64Array {
  for (const b of basis) {
    let dot = 0;
    for (let d = 0; d < v.length; d++) dot += (v[d] ?? 0) * (b[d] ?? 0);
    for (let d = 0; d < v.length; d++) v[d] = (v[d] ?? 0) - dot * (b[d] ?? 0);
  }
  return v;
}

export function categoryNames(count: number): string[] {
  return Array.from({ length: count }, (_, c) =>
    count <= CATEGORY_NAMES.length ? (CATEGORY_NAMES[c] ?? `category-${c}`) : `category-${c}`,
  );
}

/** Builds the world: catalogue, users and their latent parameters. Deterministic by seed. */
export function buildWorld(options: WorldOptions): World {
  const { params, seed } = options;
  const D = params.dims;
  const C = options.categories;
  const start = WORLD_START_MS;
  const end = start + options.days * DAY_MS;

  // Separate streams per purpose: changing how users are drawn never shifts the catalogue.
  const latentRng = new Rng(seed, 1);
  const itemRng = new Rng(seed, 2);
  const userRng = new Rng(seed, 3);

  // Category centroids and style axes.
  const centroids = new Float32Array(C * D);
  const styleAxes = new Float32Array(C * 2 * D);
  for (let c = 0; c < C; c++) {
    const mu = normalize(gaussianVector(latentRng, D, 1));
    const e1 = normalize(orthogonalize(gaussianVector(latentRng, D, 1), [mu]));
    const e2 = normalize(orthogonalize(gaussianVector(latentRng, D, 1), [mu, e1]));
    centroids.set(mu, c * D);
    styleAxes.set(e1, c * 2 * D);
    styleAxes.set(e2, c * 2 * D + D);
  }

  // Category sizes: Zipf over a random ranking of categories.
  const categoryRank = latentRng.shuffle(Int32Array.from({ length: C }, (_, i) => i));
  const categoryShare = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    categoryShare[c] = Math.pow((categoryRank[c] ?? 0) + 1, -params.categoryZipf);
  }
  const categoryCum = cumulative(categoryShare);

  // Items.
  const n = options.items;
  const category = new Int32Array(n);
  const createdAt = new Float64Array(n);
  const itemStyle = new Float32Array(n * 2);
  const itemLogPop = new Float32Array(n);
  const popularityRank = itemRng.shuffle(Int32Array.from({ length: n }, (_, i) => i));
  const names = categoryNames(C);
  const tags: string[] = [];
  const styleTag = new Int32Array(C * STYLE_WORDS.length);
  const levelTag = new Int32Array(C * LEVEL_WORDS.length);
  for (let c = 0; c < C; c++) {
    STYLE_WORDS.forEach((w, k) => {
      styleTag[c * STYLE_WORDS.length + k] = tags.length;
      tags.push(`${names[c]}/${w}`);
    });
    LEVEL_WORDS.forEach((w, k) => {
      levelTag[c * LEVEL_WORDS.length + k] = tags.length;
      tags.push(`${names[c]}/${w}`);
    });
  }
  const globalTag0 = tags.length;
  tags.push(...GLOBAL_TAGS);
  const tagOffsets = new Int32Array(n + 1);
  let tagIds = new Int32Array(n * 3);
  let tagCount = 0;
  const pushTag = (t: number) => {
    if (tagCount === tagIds.length) {
      const grown = new Int32Array(tagIds.length * 2);
      grown.set(tagIds);
      tagIds = grown;
    }
    tagIds[tagCount++] = t;
  };
  const backStart = start - params.backCatalogueDays * DAY_MS;
  for (let i = 0; i < n; i++) {
    const c = pickWeighted(itemRng, categoryCum);
    category[i] = c;
    createdAt[i] =
      itemRng.next() < params.backCatalogue
        ? Math.floor(backStart + itemRng.next() * (start - backStart))
        : Math.floor(start + itemRng.next() * (end - start));
    const r = params.styleRadius * Math.sqrt(itemRng.next());
    const theta = 2 * Math.PI * itemRng.next();
    itemStyle[2 * i] = r * Math.cos(theta);
    itemStyle[2 * i + 1] = r * Math.sin(theta);
    itemLogPop[i] = -params.zipfExponent * Math.log((popularityRank[i] ?? 0) + 1);
    // Tags: the style quadrant's tag (mostly right), a level tag, sometimes global tags.
    const quadrant = Math.min(3, Math.floor(theta / (Math.PI / 2)));
    const shown = itemRng.next() < 0.85 ? quadrant : itemRng.int(STYLE_WORDS.length);
    pushTag(styleTag[c * STYLE_WORDS.length + shown] ?? 0);
    if (itemRng.next() < 0.5) {
      pushTag(levelTag[c * LEVEL_WORDS.length + itemRng.int(LEVEL_WORDS.length)] ?? 0);
    }
    for (let g = 0; g < 2; g++) {
      if (itemRng.next() < 0.2) pushTag(globalTag0 + itemRng.int(GLOBAL_TAGS.length));
    }
    tagOffsets[i + 1] = tagCount;
  }
  const items: ItemTable = {
    ids: Array.from({ length: n }, (_, i) => `i${i}`),
    category,
    categories: names,
    tagOffsets,
    tagIds: tagIds.slice(0, tagCount),
    tags,
    createdAt,
  };

  // Users: profile, then taste drawn from a prior the profile shifts.
  const A = AGE_BANDS.length;
  const K = COUNTRIES.length;
  const ageEffect = new Float64Array(A * C);
  const countryEffect = new Float64Array(K * C);
  for (let x = 0; x < A * C; x++) ageEffect[x] = 1.2 * latentRng.normal();
  for (let x = 0; x < K * C; x++) countryEffect[x] = 0.8 * latentRng.normal();
  const ageCum = cumulative(AGE_WEIGHTS);
  const countryCum = cumulative(COUNTRIES.map((_, k) => 1 / (k + 1)));
  const deviceCum = DEVICE_BY_AGE.map(cumulative);
  const signupSpan = 730 * DAY_MS;

  const u = options.users;
  const ageBand = new Int32Array(u);
  const country = new Int32Array(u);
  const device = new Int32Array(u);
  const signupAt = new Float64Array(u);
  const userBase = new Float32Array(u * D);
  const userDrift = new Float32Array(u * D);
  const userRate = new Float64Array(u);
  const prior = new Float64Array(C);
  const priorCum = new Float64Array(C);
  const xmin = (params.sessionsPerDay * (params.activityShape - 1)) / params.activityShape;
  const favouriteWeights = [1, 0.7, 0.5];
  for (let j = 0; j < u; j++) {
    const a = pickWeighted(userRng, ageCum);
    const k = pickWeighted(userRng, countryCum);
    ageBand[j] = a;
    country[j] = k;
    device[j] = pickWeighted(userRng, deviceCum[a] ?? deviceCum[0] ?? new Float64Array([1]));
    signupAt[j] =
      userRng.next() < params.lateSignups
        ? Math.floor(start + userRng.next() * (end - start))
        : Math.floor(start - signupSpan + userRng.next() * signupSpan);
    let max = -Infinity;
    for (let c = 0; c < C; c++) {
      const logit =
        0.5 * Math.log(categoryShare[c] ?? 1) +
        (ageEffect[a * C + c] ?? 0) +
        (countryEffect[k * C + c] ?? 0);
      prior[c] = logit;
      if (logit > max) max = logit;
    }
    for (let c = 0; c < C; c++) prior[c] = Math.exp((prior[c] ?? 0) - max);
    // Favourite categories, without replacement.
    const favourites = userRng.next() < 0.35 ? 1 : userRng.next() < 0.6 ? 2 : 3;
    const raw = gaussianVector(userRng, D, params.tasteNoise);
    const picked = Float64Array.from(prior);
    for (let f = 0; f < Math.min(favourites, C); f++) {
      let sum = 0;
      for (let c = 0; c < C; c++) priorCum[c] = sum += picked[c] ?? 0;
      const c = pickWeighted(userRng, priorCum);
      picked[c] = 0;
      const w = favouriteWeights[f] ?? 0.5;
      for (let d = 0; d < D; d++) raw[d] = (raw[d] ?? 0) + w * (centroids[c * D + d] ?? 0);
    }
    userBase.set(normalize(raw), j * D);
    // Drift toward a category drawn from the same prior (sometimes a favourite: little change).
    let sum = 0;
    for (let c = 0; c < C; c++) priorCum[c] = sum += prior[c] ?? 0;
    const target = pickWeighted(userRng, priorCum);
    const strength = params.drift * userRng.next();
    for (let d = 0; d < D; d++) userDrift[j * D + d] = strength * (centroids[target * D + d] ?? 0);
    // Activity: Pareto-distributed session rate, capped.
    userRate[j] = Math.min(
      params.maxSessionsPerDay,
      xmin * Math.pow(userRng.nextOpen(), -1 / params.activityShape),
    );
  }
  const users: UserTable = {
    ids: Array.from({ length: u }, (_, j) => `u${j}`),
    ageBand,
    country,
    device,
    ageBands: AGE_BANDS,
    countries: COUNTRIES,
    devices: DEVICES,
    signupAt,
  };

  return {
    params,
    seed,
    dims: D,
    categories: C,
    start,
    end,
    days: options.days,
    centroids,
    styleAxes,
    items,
    itemStyle,
    itemLogPop,
    users,
    userBase,
    userDrift,
    userRate,
    catalogue: arrangeCatalogue(category, createdAt, itemLogPop, C),
  };
}

function arrangeCatalogue(
  category: Int32Array,
  createdAt: Float64Array,
  logPop: Float32Array,
  C: number,
): Catalogue {
  const n = category.length;
  const start = new Int32Array(C + 1);
  for (let i = 0; i < n; i++) {
    const slot = (category[i] ?? 0) + 1;
    start[slot] = (start[slot] ?? 0) + 1;
  }
  for (let c = 0; c < C; c++) start[c + 1] = (start[c + 1] ?? 0) + (start[c] ?? 0);
  const order = new Int32Array(n);
  const fill = start.slice(0, C);
  for (let i = 0; i < n; i++) {
    const c = category[i] ?? 0;
    order[fill[c] ?? 0] = i;
    fill[c] = (fill[c] ?? 0) + 1;
  }
  for (let c = 0; c < C; c++) {
    const slice = order.subarray(start[c] ?? 0, start[c + 1] ?? 0);
    slice.sort((a, b) => (createdAt[a] ?? 0) - (createdAt[b] ?? 0) || a - b);
  }
  const created = new Float64Array(n);
  const cumWeight = new Float64Array(n);
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let k = start[c] ?? 0; k < (start[c + 1] ?? 0); k++) {
      const i = order[k] ?? 0;
      created[k] = createdAt[i] ?? 0;
      sum += Math.exp(logPop[i] ?? 0);
      cumWeight[k] = sum;
    }
  }
  return { order, start, created, cumWeight };
}

/** Number of items of category c created at or before `time`. */
export function createdBy(catalogue: Catalogue, c: number, time: number): number {
  const lo = catalogue.start[c] ?? 0;
  return upperBound(catalogue.created, time, lo, catalogue.start[c + 1] ?? lo) - lo;
}
