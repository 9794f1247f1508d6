/**
 * The batch feature views of `configs/features.yaml` (`source: batch`), computed from a data set:
 * what the online store serves about a user or an item before any live event arrives.
 *
 * The definitions decide what is written: a table holds exactly the fields its view declares, in
 * their declared order, so a field removed from the definitions disappears from the tables and a
 * declared field the code cannot compute is an error naming it, not a silent default.
 *
 * Every row carries an event time, the time its values were true: for a profile the user's sign-up
 * or the item's creation, or the newest event the row reflects when later; for popularity the end
 * of the data. A row with no time of its own (no sign-up, no creation time, no event) takes the end
 * of the data: its values are known as of then. Materialisation uses these times as its watermark.
 */
import { ConfigError } from '../../runtime/errors.js';
import { FeatureType, ViewSource } from '../../runtime/features/types.js';
import type {
  FeatureDefinitions,
  FeatureValue,
  FieldDefinition,
  ViewDefinition,
} from '../../runtime/features/types.js';
import { EventType } from '../data/types.js';
import type { Dataset } from '../data/types.js';

export const DAY_MS = 86_400_000;

/** Prior of the smoothed click-through rate: its mean. @default 0.05 */
export const CTR_PRIOR_MEAN = 0.05;
/** Prior of the smoothed click-through rate: its weight, in views. @default 20 */
export const CTR_PRIOR_VIEWS = 20;
/** `interactions_30d` counts events in this many days before the end of the data. */
export const RECENT_DAYS = 30;
/** `top_categories` holds at most this many categories. */
export const TOP_CATEGORIES = 3;
/** `top_tags` holds at most this many tags. */
export const TOP_TAGS = 10;
/**
 * `recent_items` holds at most this many items: `retrieval.history_length`'s default, the
 * history the user tower pools (a model with a longer history pools the session's items too).
 */
export const RECENT_ITEMS = 50;

/** The batch views this module computes, by name. A const object plus a same-named type. */
export const BatchView = {
  UserProfile: 'user_profile',
  ItemProfile: 'item_profile',
  ItemPopularity: 'item_popularity',
} as const;
export type BatchView = (typeof BatchView)[keyof typeof BatchView];

/** What a computation yields: entity ids, event times, and the values of every field it knows. */
interface ComputedView {
  readonly ids: readonly string[];
  readonly eventTimeMs: Float64Array;
  readonly fields: Readonly<Record<string, readonly FeatureValue[]>>;
}

/** One value per entity, from `f`. */
function column(n: number, f: (index: number) => FeatureValue): FeatureValue[] {
  return Array.from({ length: n }, (_, index) => f(index));
}

/** One batch view's table in memory: one row per entity. */
export interface FeatureTable {
  /** The view's definition; `fields` lists the table's columns after the id and event time. */
  readonly view: ViewDefinition;
  /** Entity ids, one per row. */
  readonly ids: readonly string[];
  /** Event time of each row (epoch ms). */
  readonly eventTimeMs: Float64Array;
  /** Values of each declared field, by field name; `columns[f][r]` is row r's value. */
  readonly columns: Readonly<Record<string, readonly FeatureValue[]>>;
}

/** The statistics of a data set every batch view draws on, computed in one pass over its events. */
interface EventStats {
  /** End of the data (epoch ms): the newest event, or the manifest's end without events. */
  readonly endMs: number;
  readonly userEvents: Int32Array;
  readonly userRatingSum: Float64Array;
  readonly userRatings: Int32Array;
  /** Newest event of each user, NaN for none. */
  readonly userLastMs: Float64Array;
  readonly userTopCategories: readonly string[][];
  /** Each user's last {@link RECENT_ITEMS} item ids, oldest first. */
  readonly userRecentItems: readonly string[][];
  /** Each user's taste over their items: tags, era, how mainstream ({@link userTaste}). */
  readonly userTaste: UserTaste;
  readonly itemEvents: Int32Array;
  readonly itemRecent: Int32Array;
  readonly itemUsers: Int32Array;
  readonly itemViews: Int32Array;
  readonly itemClicks: Int32Array;
  readonly itemRatingSum: Float64Array;
  readonly itemRatings: Int32Array;
}

/**
 * Clicks per view, smoothed towards {@link CTR_PRIOR_MEAN} with the weight of
 * {@link CTR_PRIOR_VIEWS} views (the mean of a Beta posterior). A click implies a view, so a log
 * with clicks but no views counts each click as one.
 */
export function smoothedCtr(views: number, clicks: number): number {
  const shown = Math.max(views, clicks);
  return (clicks + CTR_PRIOR_MEAN * CTR_PRIOR_VIEWS) / (shown + CTR_PRIOR_VIEWS);
}

function eventStats(dataset: Dataset): EventStats {
  const { users, items, events } = dataset;
  const nUsers = users.ids.length;
  const nItems = items.ids.length;
  const n = events.length;
  const endMs = n > 0 ? (events.ts[n - 1] ?? 0) : dataset.manifest.timeRange.to;
  const recentFrom = endMs - RECENT_DAYS * DAY_MS;

  const userEvents = new Int32Array(nUsers);
  const userRatingSum = new Float64Array(nUsers);
  const userRatings = new Int32Array(nUsers);
  const userLastMs = new Float64Array(nUsers).fill(NaN);
  const itemEvents = new Int32Array(nItems);
  const itemRecent = new Int32Array(nItems);
  const itemViews = new Int32Array(nItems);
  const itemClicks = new Int32Array(nItems);
  const itemRatingSum = new Float64Array(nItems);
  const itemRatings = new Int32Array(nItems);
  for (let e = 0; e < n; e++) {
    const u = events.user[e] ?? 0;
    const i = events.item[e] ?? 0;
    const ts = events.ts[e] ?? 0;
    const type = events.type[e];
    userEvents[u]!++;
    itemEvents[i]!++;
    // Events are sorted by time, so the last one seen is the newest.
    userLastMs[u] = ts;
    if (ts > recentFrom) itemRecent[i]!++;
    if (type === EventType.View) itemViews[i]!++;
    else if (type === EventType.Click) itemClicks[i]!++;
    else if (type === EventType.Rating) {
      const rating = events.value[e] ?? 0;
      userRatingSum[u]! += rating;
      userRatings[u]!++;
      itemRatingSum[i]! += rating;
      itemRatings[i]!++;
    }
  }

  // The events of each user, grouped by a stable counting sort (time order kept within a user):
  // one pass over it counts each user's categories and each item's distinct users.
  const offsets = new Int32Array(nUsers + 1);
  for (let u = 0; u < nUsers; u++) offsets[u + 1] = (offsets[u] ?? 0) + (userEvents[u] ?? 0);
  const fill = offsets.slice(0, nUsers);
  const byUser = new Int32Array(n);
  for (let e = 0; e < n; e++) {
    const u = events.user[e] ?? 0;
    byUser[fill[u]!++] = events.item[e] ?? 0;
  }
  const itemUsers = new Int32Array(nItems);
  const lastUser = new Int32Array(nItems).fill(-1);
  const categoryCount = new Int32Array(items.categories.length);
  const touched: number[] = [];
  const userTopCategories: string[][] = new Array<string[]>(nUsers);
  const userRecentItems: string[][] = new Array<string[]>(nUsers);
  for (let u = 0; u < nUsers; u++) {
    // The retrieval trainer's history rule: the items of the user's last events, every type,
    // in time order, repeats kept.
    const from = Math.max(offsets[u] ?? 0, (offsets[u + 1] ?? 0) - RECENT_ITEMS);
    const recent: string[] = [];
    for (let k = from; k < (offsets[u + 1] ?? 0); k++) recent.push(items.ids[byUser[k] ?? 0] ?? '');
    userRecentItems[u] = recent;
    for (let k = offsets[u] ?? 0; k < (offsets[u + 1] ?? 0); k++) {
      const i = byUser[k] ?? 0;
      if (lastUser[i] !== u) {
        lastUser[i] = u;
        itemUsers[i]!++;
      }
      const c = items.category[i] ?? 0;
      if (categoryCount[c] === 0) touched.push(c);
      categoryCount[c]!++;
    }
    userTopCategories[u] = topCategories(
      touched,
      categoryCount,
      items.categories,
      TOP_CATEGORIES,
    ).map((c) => items.categories[c] ?? '');
    for (const c of touched) categoryCount[c] = 0;
    touched.length = 0;
  }
  return {
    endMs,
    userEvents,
    userRatingSum,
    userRatings,
    userLastMs,
    userTopCategories,
    userRecentItems,
    userTaste: userTaste(dataset, itemEvents),
    itemEvents,
    itemRecent,
    itemUsers,
    itemViews,
    itemClicks,
    itemRatingSum,
    itemRatings,
  };
}

/** What a user's items say about their taste, per user (see the `user_profile` fields). */
interface UserTaste {
  readonly topTags: readonly string[][];
  readonly topTagShares: readonly number[][];
  readonly eraMeanYear: Float64Array;
  readonly eraSdYears: Float64Array;
  readonly meanItemLogInteractions: Float64Array;
}

const YEAR_MS = 365.2425 * DAY_MS;

/** An epoch-ms time as a fractional calendar year (1970.0 at the epoch). */
export function fractionalYear(ms: number): number {
  return 1970 + ms / YEAR_MS;
}

/**
 * Per user, over their events: the {@link TOP_TAGS} tags their items carry most (every tag of
 * each item; most first, ties to the smaller name) with the share of their events on an item
 * carrying each; the mean and standard deviation of their items' creation years (items of known
 * creation only; 0 for none); the mean `ln(1 + events on the item)` of their items, with
 * `itemEvents` counting each item's events (0 without events).
 */
function userTaste(dataset: Dataset, itemEvents: Int32Array): UserTaste {
  const { users, items, events } = dataset;
  const nUsers = users.ids.length;
  // Each user's events, grouped by a counting sort, so one dense tag counter serves every user.
  const offsets = new Int32Array(nUsers + 1);
  for (let e = 0; e < events.length; e++) offsets[(events.user[e] ?? 0) + 1]!++;
  for (let u = 0; u < nUsers; u++) offsets[u + 1]! += offsets[u] ?? 0;
  const fill = offsets.slice(0, nUsers);
  const byUser = new Int32Array(events.length);
  for (let e = 0; e < events.length; e++)
    byUser[fill[events.user[e] ?? 0]!++] = events.item[e] ?? 0;
  const tagCount = new Int32Array(items.tags.length);
  const touched: number[] = [];
  const topTags: string[][] = new Array<string[]>(nUsers);
  const topTagShares: number[][] = new Array<number[]>(nUsers);
  const eraMeanYear = new Float64Array(nUsers);
  const eraSdYears = new Float64Array(nUsers);
  const meanItemLogInteractions = new Float64Array(nUsers);
  for (let u = 0; u < nUsers; u++) {
    const first = offsets[u] ?? 0;
    const n = (offsets[u + 1] ?? 0) - first;
    let yearSum = 0;
    let yearSq = 0;
    let years = 0;
    let popSum = 0;
    for (let k = first; k < first + n; k++) {
      const i = byUser[k] ?? 0;
      popSum += Math.log1p(itemEvents[i] ?? 0);
      const created = items.createdAt[i] ?? NaN;
      if (!Number.isNaN(created)) {
        // Years since 1970, not calendar years: their squares keep the spread's precision.
        const year = created / YEAR_MS;
        yearSum += year;
        yearSq += year * year;
        years++;
      }
      for (let t = items.tagOffsets[i] ?? 0; t < (items.tagOffsets[i + 1] ?? 0); t++) {
        const tag = items.tagIds[t] ?? 0;
        if (tagCount[tag] === 0) touched.push(tag);
        tagCount[tag]!++;
      }
    }
    const ranked = topCategories(touched, tagCount, items.tags, TOP_TAGS);
    topTags[u] = ranked.map((t) => items.tags[t] ?? '');
    topTagShares[u] = ranked.map((t) => (tagCount[t] ?? 0) / n);
    for (const tag of touched) tagCount[tag] = 0;
    touched.length = 0;
    if (years > 0) {
      const meanYear = yearSum / years;
      eraMeanYear[u] = fractionalYear(meanYear * YEAR_MS);
      eraSdYears[u] = Math.sqrt(Math.max(0, yearSq / years - meanYear * meanYear));
    }
    meanItemLogInteractions[u] = n > 0 ? popSum / n : 0;
  }
  return { topTags, topTagShares, eraMeanYear, eraSdYears, meanItemLogInteractions };
}

/**
 * The most frequent of the touched categories (or tags), most first, at most `limit`; ties go to
 * the smaller name. Their indices.
 */
function topCategories(
  touched: readonly number[],
  count: Int32Array,
  names: readonly string[],
  limit: number,
): number[] {
  const ranked = [...touched].sort((a, b) => {
    const byCount = (count[b] ?? 0) - (count[a] ?? 0);
    if (byCount !== 0) return byCount;
    const x = names[a] ?? '';
    const y = names[b] ?? '';
    return x < y ? -1 : x > y ? 1 : a - b;
  });
  return ranked.slice(0, limit);
}

function mean(sum: number, count: number): number {
  return count === 0 ? 0 : sum / count;
}

function nameOr(vocabulary: readonly string[], index: number): string {
  return index < 0 ? '' : (vocabulary[index] ?? '');
}

function knownOr(ms: number, fallback: number): number {
  return Number.isNaN(ms) ? fallback : ms;
}

function userProfile(dataset: Dataset, stats: EventStats): ComputedView {
  const { users } = dataset;
  const n = users.ids.length;
  const eventTimeMs = new Float64Array(n);
  for (let u = 0; u < n; u++) {
    const signup = users.signupAt[u] ?? NaN;
    const last = stats.userLastMs[u] ?? NaN;
    eventTimeMs[u] = Number.isNaN(last)
      ? knownOr(signup, stats.endMs)
      : Math.max(last, knownOr(signup, last));
  }
  return {
    ids: users.ids,
    eventTimeMs,
    fields: {
      age_band: column(n, (u) => nameOr(users.ageBands, users.ageBand[u] ?? -1)),
      country: column(n, (u) => nameOr(users.countries, users.country[u] ?? -1)),
      device: column(n, (u) => nameOr(users.devices, users.device[u] ?? -1)),
      signup_at_ms: column(n, (u) => knownOr(users.signupAt[u] ?? NaN, 0)),
      interactions: column(n, (u) => stats.userEvents[u] ?? 0),
      mean_rating: column(n, (u) => mean(stats.userRatingSum[u] ?? 0, stats.userRatings[u] ?? 0)),
      top_categories: column(n, (u) => stats.userTopCategories[u] ?? []),
      recent_items: column(n, (u) => stats.userRecentItems[u] ?? []),
      top_tags: column(n, (u) => stats.userTaste.topTags[u] ?? []),
      top_tag_shares: column(n, (u) => stats.userTaste.topTagShares[u] ?? []),
      era_mean_year: column(n, (u) => stats.userTaste.eraMeanYear[u] ?? 0),
      era_sd_years: column(n, (u) => stats.userTaste.eraSdYears[u] ?? 0),
      mean_item_log_interactions: column(n, (u) => stats.userTaste.meanItemLogInteractions[u] ?? 0),
    },
  };
}

function itemProfile(dataset: Dataset, stats: EventStats): ComputedView {
  const { items } = dataset;
  const n = items.ids.length;
  const eventTimeMs = Float64Array.from(items.createdAt.subarray(0, n), (ms) =>
    knownOr(ms, stats.endMs),
  );
  return {
    ids: items.ids,
    eventTimeMs,
    fields: {
      category: column(n, (i) => nameOr(items.categories, items.category[i] ?? -1)),
      tags: column(n, (i) => {
        const out: string[] = [];
        for (let k = items.tagOffsets[i] ?? 0; k < (items.tagOffsets[i + 1] ?? 0); k++) {
          out.push(items.tags[items.tagIds[k] ?? 0] ?? '');
        }
        return out;
      }),
      created_at_ms: column(n, (i) => knownOr(items.createdAt[i] ?? NaN, 0)),
      title: column(n, (i) => items.titles?.[i] ?? ''),
    },
  };
}

function itemPopularity(dataset: Dataset, stats: EventStats): ComputedView {
  const n = dataset.items.ids.length;
  // Rank 0 is the item with the most events; ties go to the earlier item, so ranks are distinct.
  const order = Int32Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (stats.itemEvents[b] ?? 0) - (stats.itemEvents[a] ?? 0) || a - b,
  );
  const rank = new Int32Array(n);
  order.forEach((item, r) => (rank[item] = r));
  return {
    ids: dataset.items.ids,
    eventTimeMs: new Float64Array(n).fill(stats.endMs),
    fields: {
      interactions: column(n, (i) => stats.itemEvents[i] ?? 0),
      interactions_30d: column(n, (i) => stats.itemRecent[i] ?? 0),
      users: column(n, (i) => stats.itemUsers[i] ?? 0),
      ctr: column(n, (i) => smoothedCtr(stats.itemViews[i] ?? 0, stats.itemClicks[i] ?? 0)),
      mean_rating: column(n, (i) => mean(stats.itemRatingSum[i] ?? 0, stats.itemRatings[i] ?? 0)),
      popularity_rank: column(n, (i) => rank[i] ?? -1),
    },
  };
}

const COMPUTATIONS: Readonly<
  Record<BatchView, (dataset: Dataset, stats: EventStats) => ComputedView>
> = {
  [BatchView.UserProfile]: userProfile,
  [BatchView.ItemProfile]: itemProfile,
  [BatchView.ItemPopularity]: itemPopularity,
};

function isBatchView(name: string): name is BatchView {
  return Object.hasOwn(COMPUTATIONS, name);
}

/** The views of `definitions` with `source: batch`, in declared order. */
export function batchViewsOf(definitions: FeatureDefinitions): ViewDefinition[] {
  return definitions.views.filter((v) => v.source === ViewSource.Batch);
}

const FIELD_TYPES: Readonly<Record<BatchView, Readonly<Record<string, FeatureType>>>> = {
  [BatchView.UserProfile]: {
    age_band: FeatureType.String,
    country: FeatureType.String,
    device: FeatureType.String,
    signup_at_ms: FeatureType.Float,
    interactions: FeatureType.Int,
    mean_rating: FeatureType.Float,
    top_categories: FeatureType.StringList,
    recent_items: FeatureType.StringList,
    top_tags: FeatureType.StringList,
    top_tag_shares: FeatureType.FloatList,
    era_mean_year: FeatureType.Float,
    era_sd_years: FeatureType.Float,
    mean_item_log_interactions: FeatureType.Float,
  },
  [BatchView.ItemProfile]: {
    category: FeatureType.String,
    tags: FeatureType.StringList,
    created_at_ms: FeatureType.Float,
    title: FeatureType.String,
  },
  [BatchView.ItemPopularity]: {
    interactions: FeatureType.Int,
    interactions_30d: FeatureType.Int,
    users: FeatureType.Int,
    ctr: FeatureType.Float,
    mean_rating: FeatureType.Float,
    popularity_rank: FeatureType.Int,
  },
};

/**
 * Checks that every batch view of `definitions` can be computed: a known view, of the entity the
 * computation is keyed by, declaring only known fields of the computed type (an `int` may be
 * declared `float`). Throws `ConfigError` naming the view or field.
 */
export function checkBatchDefinitions(definitions: FeatureDefinitions): void {
  for (const view of batchViewsOf(definitions)) checkView(view);
}

function checkView(view: ViewDefinition): BatchView {
  const where = `views.${view.name}`;
  if (!isBatchView(view.name)) {
    throw new ConfigError(
      where,
      `is a batch view with no computation; batch views computed from a data set: ${Object.values(BatchView).join(', ')}`,
    );
  }
  const entity = ENTITIES[view.name];
  if (view.entity !== entity) {
    throw new ConfigError(`${where}.entity`, `must be ${entity}, got ${view.entity}`);
  }
  const known = FIELD_TYPES[view.name];
  for (const field of view.fields) {
    if (field.name === `${entity}_id` || field.name === 'event_time') {
      throw new ConfigError(
        `${where}.fields.${field.name}`,
        'is the name of a key column of the feature tables',
      );
    }
    const type = known[field.name];
    if (type === undefined) {
      throw new ConfigError(
        `${where}.fields.${field.name}`,
        `has no batch computation; fields of ${view.name}: ${Object.keys(known).join(', ')}`,
      );
    }
    if (!typeFits(type, field)) {
      throw new ConfigError(
        `${where}.fields.${field.name}.type`,
        `is computed as ${type}, declared ${field.type}`,
      );
    }
  }
  return view.name;
}

const ENTITIES: Readonly<Record<BatchView, string>> = {
  [BatchView.UserProfile]: 'user',
  [BatchView.ItemProfile]: 'item',
  [BatchView.ItemPopularity]: 'item',
};

function typeFits(computed: FeatureType, field: FieldDefinition): boolean {
  return (
    computed === field.type || (computed === FeatureType.Int && field.type === FeatureType.Float)
  );
}

/**
 * Computes the batch views of `definitions` (all of them, or those named in `views`) from a data
 * set held in memory. Each table has one row per user or item of the data set and exactly the
 * declared fields. Throws `ConfigError` when a declared view or field cannot be computed.
 */
export function computeBatchViews(
  dataset: Dataset,
  definitions: FeatureDefinitions,
  views?: readonly string[],
): FeatureTable[] {
  const wanted = batchViewsOf(definitions).filter(
    (v) => views === undefined || views.includes(v.name),
  );
  const checked = wanted.map((view) => ({ view, name: checkView(view) }));
  if (checked.length === 0) return [];
  const stats = eventStats(dataset);
  return checked.map(({ view, name }) => {
    const computed = COMPUTATIONS[name](dataset, stats);
    const columns: Record<string, readonly FeatureValue[]> = {};
    for (const field of view.fields) columns[field.name] = computed.fields[field.name]!;
    return { view, ids: computed.ids, eventTimeMs: computed.eventTimeMs, columns };
  });
}
