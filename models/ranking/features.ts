/**
 * The ranking features, defined once. Training examples (`examples.ts`) and the serving path both
 * turn the same inputs into the same numbers through the functions below, so what a ranker learned
 * from and what it is shown cannot drift apart: a feature is a name, a kind and one function of a
 * {@link RankingContext}, and a context is built from the rows of the online feature views
 * (`configs/features.yaml`) whoever builds it.
 *
 * - Serving: {@link RankingInputsReader} reads the five views for a user and their candidates from
 *   the online store (one read per view, through the cache) and makes the contexts;
 *   {@link assembleFeatures} turns them into a row-major `Float32Array`, NaN for a missing value.
 * - Training: `examples.ts` rebuilds the online store as it stood at each query time and reads it
 *   through the very same reader.
 *
 * The stream views' rows are what their writer stored at each entity's newest event (it writes
 * when events come, not as time passes), so a count "in the last 5 minutes" is the count in the 5
 * minutes up to that event; `user_minutes_since_event` and `item_minutes_since_event` say how old
 * that is, and a row not rewritten within its TTL (a day) reads as the view's defaults.
 *
 * A model records the schema it was trained on ({@link rankingSchemaJson}); serving rebuilds it by
 * name ({@link rankingSchemaFromJson}), which refuses a feature whose kind or cardinality changed.
 */
import { BadRequestError, ConfigError } from '../../runtime/errors.js';
import { checkEntityId } from '../../runtime/features/definitions.js';
import type {
  FeatureViewReader,
  OnlineFeatures,
  ServedRow,
} from '../../runtime/features/online-features.js';
import type { FeatureDefinitions, FeatureValue } from '../../runtime/features/types.js';
import { FeatureType } from '../../runtime/features/types.js';
import { fnv1a32 } from '../../runtime/placement/hash.js';
import { fractionalYear } from '../features/batch-views.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** The feature views a ranking context holds a row of. A const object plus a same-named type. */
export const RankingView = {
  UserProfile: 'user_profile',
  UserRealtime: 'user_realtime',
  ItemProfile: 'item_profile',
  ItemPopularity: 'item_popularity',
  ItemRealtime: 'item_realtime',
} as const;
export type RankingView = (typeof RankingView)[keyof typeof RankingView];

/** Kinds of ranking feature. A const object plus a same-named type. */
export const RankingFeatureKind = {
  /** Any real number; NaN when missing. */
  Numeric: 'numeric',
  /** An integer id in `0 .. cardinality - 1`; NaN when missing. */
  Categorical: 'categorical',
} as const;
export type RankingFeatureKind = (typeof RankingFeatureKind)[keyof typeof RankingFeatureKind];

/**
 * What a ranker knows about one candidate at request time: the retrieval stage's verdict, the
 * time, and the rows of the online feature views for the user and the item, as the online store
 * serves them (a view's defaults, with `eventTimeMs` NaN, for an entity it holds nothing about).
 */
export interface RankingContext {
  /** Request time (epoch ms). */
  readonly now: number;
  /** The retrieval model's score of the candidate. */
  readonly retrievalScore: number;
  /** Position of the candidate among the request's candidates by retrieval score, 0 = best. */
  readonly retrievalRank: number;
  readonly userProfile: ServedRow;
  readonly userRealtime: ServedRow;
  readonly itemProfile: ServedRow;
  readonly itemPopularity: ServedRow;
  readonly itemRealtime: ServedRow;
}

/** One ranking feature: a column of the feature rows. */
export interface RankingFeature {
  /** `[a-z][a-z0-9_]*`, unique. */
  readonly name: string;
  readonly kind: RankingFeatureKind;
  /** Categorical features: the number of ids, `0 .. cardinality - 1`. */
  readonly cardinality?: number;
  readonly description: string;
  /** The view fields it reads, as `view.field`, checked against the definitions at start-up. */
  readonly inputs: readonly string[];
  /** The value for one candidate; NaN when it cannot be known. Pure. */
  readonly compute: (context: RankingContext) => number;
}

/** Hashed buckets of the item category feature (a hash keeps it free of any vocabulary). */
export const CATEGORY_BUCKETS = 1024;

/**
 * Bumped whenever a feature's computation changes meaning, so a model trained before refuses to
 * serve with the new one (the fingerprint covers it, beside the names, kinds and cardinalities).
 */
export const RANKING_FEATURES_VERSION = 1;

/** Field types a feature may read each input as: numbers, strings or string lists. */
const INPUT_TYPES: Readonly<Record<string, readonly FeatureType[]>> = {
  number: [FeatureType.Float, FeatureType.Int],
  string: [FeatureType.String],
  list: [FeatureType.StringList],
  numbers: [FeatureType.FloatList],
};

/** What each input is read as (`view.field` → kind of {@link INPUT_TYPES}). */
const INPUT_KIND: Readonly<Record<string, keyof typeof INPUT_TYPES>> = {
  'user_profile.interactions': 'number',
  'user_profile.mean_rating': 'number',
  'user_profile.signup_at_ms': 'number',
  'user_profile.top_categories': 'list',
  'user_profile.top_tags': 'list',
  'user_profile.top_tag_shares': 'numbers',
  'user_profile.era_mean_year': 'number',
  'user_profile.era_sd_years': 'number',
  'user_profile.mean_item_log_interactions': 'number',
  'user_realtime.views_5m': 'number',
  'user_realtime.clicks_5m': 'number',
  'user_realtime.views_30m': 'number',
  'user_realtime.clicks_30m': 'number',
  'user_realtime.ratings_5m': 'number',
  'user_realtime.ratings_30m': 'number',
  'user_realtime.top_categories_5m': 'list',
  'user_realtime.last_event_ms': 'number',
  'item_profile.category': 'string',
  'item_profile.created_at_ms': 'number',
  'item_profile.tags': 'list',
  'item_popularity.interactions': 'number',
  'item_popularity.interactions_30d': 'number',
  'item_popularity.users': 'number',
  'item_popularity.ctr': 'number',
  'item_popularity.mean_rating': 'number',
  'item_popularity.popularity_rank': 'number',
  'item_realtime.views_5m': 'number',
  'item_realtime.clicks_5m': 'number',
  'item_realtime.views_30m': 'number',
  'item_realtime.clicks_30m': 'number',
  'item_realtime.ctr_30m': 'number',
  'item_realtime.velocity': 'number',
};

/** A number field of a row; NaN when it holds something else. */
function num(row: ServedRow, field: string): number {
  const value = row.values[field];
  return typeof value === 'number' ? value : Number.NaN;
}

function text(row: ServedRow, field: string): string {
  const value = row.values[field];
  return typeof value === 'string' ? value : '';
}

const NO_STRINGS: readonly string[] = [];

function strings(row: ServedRow, field: string): readonly string[] {
  const value: FeatureValue | undefined = row.values[field];
  return Array.isArray(value) ? (value as readonly string[]) : NO_STRINGS;
}

const NO_NUMBERS: readonly number[] = [];

function numbers(row: ServedRow, field: string): readonly number[] {
  const value: FeatureValue | undefined = row.values[field];
  return Array.isArray(value) ? (value as readonly number[]) : NO_NUMBERS;
}

/**
 * How much the user's items share the item's tags: the user's share of each of the item's tags
 * (the share of their events on an item carrying it; 0 for a tag not among their top tags),
 * averaged over the item's tags (`mean`) or the highest (`max`). NaN when the item has no tags or
 * the user no top tags.
 */
function tagAffinity(ctx: RankingContext, what: 'mean' | 'max'): number {
  const tags = strings(ctx.itemProfile, 'tags');
  const top = strings(ctx.userProfile, 'top_tags');
  const shares = numbers(ctx.userProfile, 'top_tag_shares');
  if (tags.length === 0 || top.length === 0) return Number.NaN;
  let sum = 0;
  let max = 0;
  for (const tag of tags) {
    const at = top.indexOf(tag);
    const share = at === -1 ? 0 : (shares[at] ?? 0);
    sum += share;
    if (share > max) max = share;
  }
  return what === 'max' ? max : sum / tags.length;
}

/** The item's creation year minus the user's mean; NaN when either is unknown. */
function eraGap(ctx: RankingContext): number {
  const created = num(ctx.itemProfile, 'created_at_ms');
  const era = num(ctx.userProfile, 'era_mean_year');
  return created > 0 && era > 0 ? fractionalYear(created) - era : Number.NaN;
}

/** `ln(1 + count)`: counts span orders of magnitude; NaN for a negative or missing count. */
function logCount(count: number): number {
  return count >= 0 ? Math.log1p(count) : Number.NaN;
}

/** Time since an epoch-ms instant, in `unit` ms; NaN for 0 (the views' "unknown"). */
function since(now: number, ms: number, unit: number): number {
  return ms > 0 ? (now - ms) / unit : Number.NaN;
}

/**
 * Where the item's category stands in a list of categories: `match` 1 or 0, `rank` its position
 * (NaN when absent); both NaN when the item has no category or the list is empty (nothing known).
 */
function listed(ctx: RankingContext, list: readonly string[], what: 'match' | 'rank'): number {
  const category = text(ctx.itemProfile, 'category');
  if (category === '' || list.length === 0) return Number.NaN;
  const at = list.indexOf(category);
  if (what === 'match') return at === -1 ? 0 : 1;
  return at === -1 ? Number.NaN : at;
}

function numeric(
  name: string,
  description: string,
  inputs: readonly string[],
  compute: (ctx: RankingContext) => number,
): RankingFeature {
  return { name, kind: RankingFeatureKind.Numeric, description, inputs, compute };
}

/** A count field of a view, as `ln(1 + count)`. */
function loggedCount(
  name: string,
  description: string,
  view: 'userRealtime' | 'itemRealtime' | 'itemPopularity' | 'userProfile',
  input: string,
): RankingFeature {
  const field = input.slice(input.indexOf('.') + 1);
  return numeric(name, description, [input], (ctx) => logCount(num(ctx[view], field)));
}

/**
 * Every ranking feature, in column order. A schema ({@link rankingSchema}) selects some of them by
 * name; a model lists the ones it was trained on.
 */
export const RANKING_FEATURES: readonly RankingFeature[] = Object.freeze([
  numeric(
    'retrieval_score',
    "The retrieval model's score (cosine similarity of the towers).",
    [],
    (ctx) => ctx.retrievalScore,
  ),
  numeric(
    'retrieval_rank',
    "Position among the request's candidates by retrieval score, 0 = best.",
    [],
    (ctx) => ctx.retrievalRank,
  ),

  loggedCount(
    'item_log_interactions',
    'ln(1 + events on the item), batch.',
    'itemPopularity',
    'item_popularity.interactions',
  ),
  loggedCount(
    'item_log_interactions_30d',
    'ln(1 + events on the item in the 30 days before the batch), batch.',
    'itemPopularity',
    'item_popularity.interactions_30d',
  ),
  loggedCount(
    'item_log_users',
    'ln(1 + distinct users of the item), batch.',
    'itemPopularity',
    'item_popularity.users',
  ),
  numeric(
    'item_ctr',
    'Smoothed clicks per view of the item, batch.',
    ['item_popularity.ctr'],
    (ctx) => num(ctx.itemPopularity, 'ctr'),
  ),
  numeric(
    'item_mean_rating',
    'Mean explicit rating of the item, batch; NaN without ratings.',
    ['item_popularity.mean_rating'],
    (ctx) => {
      const rating = num(ctx.itemPopularity, 'mean_rating');
      return rating > 0 ? rating : Number.NaN;
    },
  ),
  numeric(
    'item_log_popularity_rank',
    'ln(1 + rank by events), 0 = most popular, batch; NaN unranked.',
    ['item_popularity.popularity_rank'],
    (ctx) => {
      const rank = num(ctx.itemPopularity, 'popularity_rank');
      return rank >= 0 ? Math.log1p(rank) : Number.NaN;
    },
  ),
  numeric(
    'item_recent_share',
    "Share of the item's events in the 30 days before the batch: how recent its popularity is.",
    ['item_popularity.interactions', 'item_popularity.interactions_30d'],
    (ctx) => {
      const all = num(ctx.itemPopularity, 'interactions');
      return all > 0 ? num(ctx.itemPopularity, 'interactions_30d') / all : Number.NaN;
    },
  ),

  numeric(
    'item_age_days',
    'Days since the item was created (or released), at request time; NaN unknown.',
    ['item_profile.created_at_ms'],
    (ctx) => since(ctx.now, num(ctx.itemProfile, 'created_at_ms'), DAY_MS),
  ),
  {
    name: 'item_category',
    kind: RankingFeatureKind.Categorical,
    cardinality: CATEGORY_BUCKETS,
    description: `The item's primary category, hashed (FNV-1a) into ${CATEGORY_BUCKETS} buckets; NaN without one.`,
    inputs: ['item_profile.category'],
    compute: (ctx) => {
      const category = text(ctx.itemProfile, 'category');
      return category === '' ? Number.NaN : fnv1a32(category) % CATEGORY_BUCKETS;
    },
  },

  loggedCount(
    'item_log_views_5m',
    'ln(1 + views of the item in the 5 minutes up to its newest live event), stream.',
    'itemRealtime',
    'item_realtime.views_5m',
  ),
  loggedCount(
    'item_log_clicks_5m',
    'ln(1 + clicks on the item in the 5 minutes up to its newest live event), stream.',
    'itemRealtime',
    'item_realtime.clicks_5m',
  ),
  loggedCount(
    'item_log_views_30m',
    'ln(1 + views of the item in the 30 minutes up to its newest live event), stream.',
    'itemRealtime',
    'item_realtime.views_30m',
  ),
  loggedCount(
    'item_log_clicks_30m',
    'ln(1 + clicks on the item in the 30 minutes up to its newest live event), stream.',
    'itemRealtime',
    'item_realtime.clicks_30m',
  ),
  numeric(
    'item_ctr_30m',
    'Smoothed clicks per view of the item over 30 minutes, stream.',
    ['item_realtime.ctr_30m'],
    (ctx) => num(ctx.itemRealtime, 'ctr_30m'),
  ),
  numeric(
    'item_velocity',
    "Log ratio of the item's 5-minute event rate to its 30-minute one, stream.",
    ['item_realtime.velocity'],
    (ctx) => num(ctx.itemRealtime, 'velocity'),
  ),
  numeric(
    'item_minutes_since_event',
    "Minutes since the item's newest live event (its real-time row's time); NaN for none in a day.",
    [],
    (ctx) => {
      const at = ctx.itemRealtime.eventTimeMs;
      return Number.isFinite(at) ? (ctx.now - at) / MINUTE_MS : Number.NaN;
    },
  ),

  loggedCount(
    'user_log_interactions',
    "ln(1 + the user's events), batch.",
    'userProfile',
    'user_profile.interactions',
  ),
  numeric(
    'user_mean_rating',
    'Mean explicit rating the user gave, batch; NaN without ratings.',
    ['user_profile.mean_rating'],
    (ctx) => {
      const rating = num(ctx.userProfile, 'mean_rating');
      return rating > 0 ? rating : Number.NaN;
    },
  ),
  numeric(
    'user_tenure_days',
    'Days since the user signed up, at request time; NaN unknown.',
    ['user_profile.signup_at_ms'],
    (ctx) => since(ctx.now, num(ctx.userProfile, 'signup_at_ms'), DAY_MS),
  ),

  loggedCount(
    'user_log_views_5m',
    "ln(1 + the user's views in the 5 minutes up to their newest live event), stream.",
    'userRealtime',
    'user_realtime.views_5m',
  ),
  loggedCount(
    'user_log_clicks_5m',
    "ln(1 + the user's clicks in the 5 minutes up to their newest live event), stream.",
    'userRealtime',
    'user_realtime.clicks_5m',
  ),
  loggedCount(
    'user_log_views_30m',
    "ln(1 + the user's views in the 30 minutes up to their newest live event), stream.",
    'userRealtime',
    'user_realtime.views_30m',
  ),
  loggedCount(
    'user_log_clicks_30m',
    "ln(1 + the user's clicks in the 30 minutes up to their newest live event), stream.",
    'userRealtime',
    'user_realtime.clicks_30m',
  ),
  loggedCount(
    'user_log_ratings_5m',
    "ln(1 + the user's ratings in the 5 minutes up to their newest live event), stream.",
    'userRealtime',
    'user_realtime.ratings_5m',
  ),
  loggedCount(
    'user_log_ratings_30m',
    "ln(1 + the user's ratings in the 30 minutes up to their newest live event), stream.",
    'userRealtime',
    'user_realtime.ratings_30m',
  ),
  numeric(
    'user_minutes_since_event',
    "Minutes since the user's newest live event; NaN for none in a day.",
    ['user_realtime.last_event_ms'],
    (ctx) => since(ctx.now, num(ctx.userRealtime, 'last_event_ms'), MINUTE_MS),
  ),

  numeric(
    'user_category_match',
    "1 when the item's category is among the user's top categories, else 0; NaN when either is unknown.",
    ['user_profile.top_categories', 'item_profile.category'],
    (ctx) => listed(ctx, strings(ctx.userProfile, 'top_categories'), 'match'),
  ),
  numeric(
    'user_category_rank',
    "Position of the item's category among the user's top categories (0 = favourite); NaN when not among them.",
    ['user_profile.top_categories', 'item_profile.category'],
    (ctx) => listed(ctx, strings(ctx.userProfile, 'top_categories'), 'rank'),
  ),
  numeric(
    'session_category_match',
    "1 when the item's category is among those the user engaged with in the 5 minutes up to their newest live event, else 0; NaN without a live session.",
    ['user_realtime.top_categories_5m', 'item_profile.category'],
    (ctx) => listed(ctx, strings(ctx.userRealtime, 'top_categories_5m'), 'match'),
  ),
  numeric(
    'session_category_rank',
    "Position of the item's category among those of the user's live session (0 = most engaged); NaN when not among them.",
    ['user_realtime.top_categories_5m', 'item_profile.category'],
    (ctx) => listed(ctx, strings(ctx.userRealtime, 'top_categories_5m'), 'rank'),
  ),

  numeric(
    'user_tag_affinity',
    "Mean over the item's tags of the share of the user's events on items carrying the tag (0 for a tag not among their top tags), batch; NaN when the item has no tags or the user none.",
    ['item_profile.tags', 'user_profile.top_tags', 'user_profile.top_tag_shares'],
    (ctx) => tagAffinity(ctx, 'mean'),
  ),
  numeric(
    'user_tag_affinity_max',
    "The highest of those shares over the item's tags, batch; NaN when the item has no tags or the user none.",
    ['item_profile.tags', 'user_profile.top_tags', 'user_profile.top_tag_shares'],
    (ctx) => tagAffinity(ctx, 'max'),
  ),
  numeric(
    'item_era_gap_years',
    "The item's creation (release) year minus the mean year of the user's items; NaN when either is unknown.",
    ['item_profile.created_at_ms', 'user_profile.era_mean_year'],
    eraGap,
  ),
  numeric(
    'item_era_z',
    "item_era_gap_years over the spread of the user's years (at least a year); NaN when unknown.",
    ['item_profile.created_at_ms', 'user_profile.era_mean_year', 'user_profile.era_sd_years'],
    (ctx) => eraGap(ctx) / Math.max(1, num(ctx.userProfile, 'era_sd_years')),
  ),
  numeric(
    'item_popularity_gap',
    "ln(1 + events on the item) minus the user's mean of it over their events: how much more mainstream than their usual, batch; NaN for a user without events.",
    [
      'item_popularity.interactions',
      'user_profile.mean_item_log_interactions',
      'user_profile.interactions',
    ],
    (ctx) =>
      num(ctx.userProfile, 'interactions') > 0
        ? logCount(num(ctx.itemPopularity, 'interactions')) -
          num(ctx.userProfile, 'mean_item_log_interactions')
        : Number.NaN,
  ),
]);

/** A selection of ranking features, in column order: the width and meaning of a feature row. */
export interface RankingFeatureSchema {
  readonly features: readonly RankingFeature[];
  readonly names: readonly string[];
  /** F, the number of columns. */
  readonly size: number;
  /** 8 hex digits over the version and each feature's name, kind and cardinality. */
  readonly fingerprint: string;
}

const BY_NAME: ReadonlyMap<string, RankingFeature> = new Map(
  RANKING_FEATURES.map((f) => [f.name, f]),
);

function fingerprintOf(features: readonly RankingFeature[]): string {
  const text = [
    `v${RANKING_FEATURES_VERSION}`,
    ...features.map((f) => `${f.name}:${f.kind}:${f.cardinality ?? ''}`),
  ].join('|');
  return fnv1a32(text).toString(16).padStart(8, '0');
}

/**
 * The schema of the features named (every one of {@link RANKING_FEATURES} when absent), in the
 * order given. Throws `ConfigError` at `path` naming an unknown or repeated feature.
 */
export function rankingSchema(names?: readonly string[], path = 'features'): RankingFeatureSchema {
  const chosen =
    names === undefined
      ? RANKING_FEATURES
      : names.map((name, i) => {
          const feature = BY_NAME.get(name);
          if (feature === undefined) {
            throw new ConfigError(
              `${path}[${i}]`,
              `unknown ranking feature ${String(name)} (known: ${[...BY_NAME.keys()].join(', ')})`,
            );
          }
          if (names.indexOf(name) !== i) {
            throw new ConfigError(`${path}[${i}]`, `ranking feature ${name} is listed twice`);
          }
          return feature;
        });
  if (chosen.length === 0) throw new ConfigError(path, 'must name at least one ranking feature');
  return Object.freeze({
    features: Object.freeze([...chosen]),
    names: Object.freeze(chosen.map((f) => f.name)),
    size: chosen.length,
    fingerprint: fingerprintOf(chosen),
  });
}

/** A schema as a model artifact records it (JSON, snake_case). */
export interface RankingSchemaJson {
  readonly version: number;
  readonly fingerprint: string;
  readonly features: ReadonlyArray<{
    readonly name: string;
    readonly kind: RankingFeatureKind;
    readonly cardinality?: number;
    readonly description: string;
  }>;
}

export function rankingSchemaJson(schema: RankingFeatureSchema): RankingSchemaJson {
  return {
    version: RANKING_FEATURES_VERSION,
    fingerprint: schema.fingerprint,
    features: schema.features.map((f) => ({
      name: f.name,
      kind: f.kind,
      ...(f.cardinality === undefined ? {} : { cardinality: f.cardinality }),
      description: f.description,
    })),
  };
}

/**
 * The schema a model was trained on, from what its artifact recorded. Throws `ConfigError` at
 * `path` when a feature is unknown here or when the features' version, kinds or cardinalities
 * differ from this code's (the model would be shown numbers it never learned from).
 */
export function rankingSchemaFromJson(json: unknown, path = 'schema'): RankingFeatureSchema {
  const recorded = json as Partial<RankingSchemaJson> | null;
  if (typeof recorded !== 'object' || recorded === null || !Array.isArray(recorded.features)) {
    throw new ConfigError(path, 'must be an object with a features list');
  }
  const schema = rankingSchema(
    recorded.features.map((f: { name?: unknown }) => String(f?.name)),
    `${path}.features`,
  );
  if (
    recorded.version !== RANKING_FEATURES_VERSION ||
    recorded.fingerprint !== schema.fingerprint
  ) {
    throw new ConfigError(
      `${path}.fingerprint`,
      `the model was trained on ranking features version ${String(recorded.version)} (fingerprint ${String(recorded.fingerprint)}); this code computes version ${RANKING_FEATURES_VERSION} (fingerprint ${schema.fingerprint})`,
    );
  }
  return schema;
}

/**
 * Checks that the definitions hold every view a ranking context is made of, and every field the
 * schema's features read with a type they can read. Throws `ConfigError` naming the view or field.
 */
export function checkRankingDefinitions(
  definitions: FeatureDefinitions,
  schema: RankingFeatureSchema = rankingSchema(),
): void {
  const views = new Map(definitions.views.map((v) => [v.name, v]));
  for (const name of Object.values(RankingView)) {
    if (!views.has(name)) {
      throw new ConfigError(
        `views.${name}`,
        `the ranking features read feature view ${name}, which the definitions lack`,
      );
    }
  }
  for (const feature of schema.features) {
    for (const input of feature.inputs) {
      const [viewName = '', fieldName = ''] = input.split('.');
      const field = views.get(viewName)?.fields.find((f) => f.name === fieldName);
      const types = INPUT_TYPES[INPUT_KIND[input] ?? ''] ?? [];
      if (field === undefined || !types.includes(field.type)) {
        throw new ConfigError(
          `views.${viewName}.fields.${fieldName}`,
          `ranking feature ${feature.name} reads it as ${types.join(' or ')}; the definitions ${field === undefined ? 'lack it' : `declare it ${field.type}`}`,
        );
      }
    }
  }
}

/**
 * Fills `out` (row-major, `contexts.length × schema.size`) with the schema's features of each
 * context, NaN where a value is missing, and returns it. A new array when `out` is absent; throws
 * `RangeError` when it is too small.
 */
export function assembleFeatures(
  schema: RankingFeatureSchema,
  contexts: readonly RankingContext[],
  out?: Float32Array,
): Float32Array {
  const width = schema.size;
  const needed = contexts.length * width;
  const rows = out ?? new Float32Array(needed);
  if (rows.length < needed) {
    throw new RangeError(
      `out holds ${rows.length} values; ${contexts.length} rows of ${width} need ${needed}`,
    );
  }
  const features = schema.features;
  for (let r = 0; r < contexts.length; r++) {
    const ctx = contexts[r] as RankingContext;
    const base = r * width;
    for (let f = 0; f < width; f++) rows[base + f] = (features[f] as RankingFeature).compute(ctx);
  }
  return rows;
}

/**
 * Each score's position by descending score, 0 = best; equal scores keep their order. What
 * `retrieval_rank` is, offline and online.
 */
export function retrievalRanks(scores: ArrayLike<number>): Int32Array {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort(
    (a, b) => (scores[b] as number) - (scores[a] as number) || a - b,
  );
  const ranks = new Int32Array(scores.length);
  order.forEach((candidate, rank) => (ranks[candidate] = rank));
  return ranks;
}

/** One candidate to rank: an item id and its retrieval score. */
export interface RankingCandidate {
  readonly itemId: string;
  readonly score: number;
}

/** What {@link RankingInputsReader.read} found. */
export interface RankingInputs {
  /** One context per candidate, in the order given. */
  readonly contexts: RankingContext[];
  /**
   * Views whose store read failed or was late: their rows (those not cached) are the defaults, so
   * the candidates are still ranked, with less information.
   */
  readonly degraded: readonly RankingView[];
}

/**
 * The serving side: reads the five views of a ranking context from the online store (one read per
 * view for the user and all candidates, through the cache) and makes one context per candidate.
 * Prepare it once (start-up errors are thrown here), then call {@link read} per request.
 */
export class RankingInputsReader {
  private readonly userProfile: FeatureViewReader;
  private readonly userRealtime: FeatureViewReader;
  private readonly itemProfile: FeatureViewReader;
  private readonly itemPopularity: FeatureViewReader;
  private readonly itemRealtime: FeatureViewReader;

  /** Throws `ConfigError` when the definitions lack a view or field the schema's features read. */
  constructor(features: OnlineFeatures, schema: RankingFeatureSchema = rankingSchema()) {
    checkRankingDefinitions(features.registry.definitions, schema);
    // Whole views: a view is one blob per entity either way, and a full reader shares cached rows.
    this.userProfile = features.prepare(RankingView.UserProfile);
    this.userRealtime = features.prepare(RankingView.UserRealtime);
    this.itemProfile = features.prepare(RankingView.ItemProfile);
    this.itemPopularity = features.prepare(RankingView.ItemPopularity);
    this.itemRealtime = features.prepare(RankingView.ItemRealtime);
  }

  /**
   * The contexts of `candidates` for `userId` at `now` (epoch ms). No candidates: no contexts (and
   * no read). Rejects with `BadRequestError` naming the field for a malformed user id, candidate
   * or time.
   */
  async read(
    userId: string,
    candidates: readonly RankingCandidate[],
    now: number,
  ): Promise<RankingInputs> {
    checkEntityId(userId, 'userId');
    // Requests arrive decoded from the wire: nothing about their shape is taken on trust.
    const list: unknown = candidates;
    if (!Array.isArray(list)) throw new BadRequestError('candidates', 'must be an array');
    if (typeof now !== 'number' || !Number.isFinite(now)) {
      throw new BadRequestError('now', 'must be a finite epoch-ms number');
    }
    const n = list.length;
    const itemIds = new Array<string>(n);
    const scores = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const candidate: unknown = list[i];
      if (typeof candidate !== 'object' || candidate === null) {
        throw new BadRequestError(`candidates[${i}]`, 'must be an object with itemId and score');
      }
      const { itemId, score } = candidate as Partial<Record<keyof RankingCandidate, unknown>>;
      checkEntityId(itemId, `candidates[${i}].itemId`);
      if (typeof score !== 'number' || !Number.isFinite(score)) {
        throw new BadRequestError(`candidates[${i}].score`, 'must be a finite number');
      }
      itemIds[i] = itemId;
      scores[i] = score;
    }
    if (n === 0) return { contexts: [], degraded: [] };
    const user = [userId];
    const [userProfile, userRealtime, itemProfile, itemPopularity, itemRealtime] =
      await Promise.all([
        this.userProfile.read(user),
        this.userRealtime.read(user),
        this.itemProfile.read(itemIds),
        this.itemPopularity.read(itemIds),
        this.itemRealtime.read(itemIds),
      ]);
    const degraded: RankingView[] = [];
    if (userProfile.degraded) degraded.push(RankingView.UserProfile);
    if (userRealtime.degraded) degraded.push(RankingView.UserRealtime);
    if (itemProfile.degraded) degraded.push(RankingView.ItemProfile);
    if (itemPopularity.degraded) degraded.push(RankingView.ItemPopularity);
    if (itemRealtime.degraded) degraded.push(RankingView.ItemRealtime);
    const ranks = retrievalRanks(scores);
    const contexts = new Array<RankingContext>(n);
    const profile = userProfile.rows[0] as ServedRow;
    const realtime = userRealtime.rows[0] as ServedRow;
    for (let i = 0; i < n; i++) {
      contexts[i] = {
        now,
        retrievalScore: scores[i] as number,
        retrievalRank: ranks[i] as number,
        userProfile: profile,
        userRealtime: realtime,
        itemProfile: itemProfile.rows[i] as ServedRow,
        itemPopularity: itemPopularity.rows[i] as ServedRow,
        itemRealtime: itemRealtime.rows[i] as ServedRow,
      };
    }
    return { contexts, degraded };
  }
}

const readers = new WeakMap<OnlineFeatures, RankingInputsReader>();

/**
 * {@link RankingInputsReader.read} with a reader prepared on first use for `features` (and kept
 * as long as `features` is): the ranking inputs of `candidates` for `userId` at `now`.
 */
export async function onlineRankingInputs(
  features: OnlineFeatures,
  userId: string,
  candidates: readonly RankingCandidate[],
  now: number,
): Promise<RankingInputs> {
  let reader = readers.get(features);
  if (reader === undefined) {
    reader = new RankingInputsReader(features);
    readers.set(features, reader);
  }
  return reader.read(userId, candidates, now);
}
