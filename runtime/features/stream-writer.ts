/**
 * The stream feature writer: computes the `source: stream` views of the feature definitions
 * (`user_realtime`, `item_realtime`) from feedback events and writes them to the online store,
 * exactly once per event however often an event is delivered and however many replicas write.
 *
 * Every field is computed from sliding windows ({@link WindowCounters}) of the entity's events:
 * `<kind>s_<window>` counts, `ctr_<window>` (the item counters' Beta prior), `velocity`,
 * `top_categories_<window>` (categories of the items engaged with, from the item profile view),
 * `last_event_ms`. A field it cannot compute is a start-up error naming the view and the field.
 *
 * The windows travel with the values: each row's `state` holds its entity's buckets, so any replica
 * (or this one after a restart) carries on from the stored row. A batch is applied in one atomic
 * store write that compare-and-sets every row on the version it read and stores the events'
 * processed marks; a replica that lost the race reads again and retries, and a batch redelivered
 * after a crash finds its marks and changes nothing. Hot entities keep their windows in memory
 * between batches, but only while the stored version is the one this writer wrote last.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { ConfigError, ConflictError, UnavailableError } from '../errors.js';
import { consumeEvents } from '../events/consumer.js';
import type { EventConsumer } from '../events/consumer.js';
import { EventKind, FEEDBACK_TYPES, eventFilter, parseFeedbackEvent } from '../events/feedback.js';
import type { FeedbackEvent } from '../events/feedback.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import type { EventStream } from '../stream/index.js';
import { FeatureRegistry, checkEntityId } from './definitions.js';
import type {
  FeatureDefinitions,
  FeatureRow,
  FeatureValue,
  FeatureWrite,
  OnlineStore,
  StoredRow,
  ViewDefinition,
} from './types.js';
import { FeatureType, ViewSource } from './types.js';
import { MAX_BATCH_ROWS } from './validate.js';
import {
  DEFAULT_WINDOWS_MINUTES,
  RecordOutcome,
  WindowCounters,
  resolveWindowCountersOptions,
  smoothedCtr,
  velocityScore,
  windowName,
  windowsFromMinutes,
} from './windows.js';
import type { CounterWindow } from './windows.js';

/**
 * The fields of a feedback event the writer reads: `event_id` is the processed mark's id, `type`
 * one of the writer's `kinds` (another type counts in no window but still moves `last_event_ms`
 * and the categories), `ts_ms` the time the windows count it at.
 */
export type StreamFeedbackEvent = Readonly<
  Pick<FeedbackEvent, 'event_id' | 'user_id' | 'item_id' | 'ts_ms'> & { type: string }
>;

/** Where change notices go: a `FeatureChanges`. */
export interface FeatureChangePublisher {
  publish(view: string, entities: readonly string[]): void;
}

export interface StreamFeatureWriterOptions {
  store: OnlineStore;
  definitions: FeatureDefinitions;
  /** The stream views written. @default every view with `source: stream` */
  views?: readonly string[];
  /** The counter windows in minutes (`events.windows_minutes`), shortest first. @default [5, 30] */
  windowsMinutes?: readonly number[];
  /** Event types counted, each its own counter. @default FEEDBACK_TYPES */
  kinds?: readonly string[];
  /** The processed-mark scope: one per consumer group. @default 'stream-features' */
  scope?: string;
  /** The stream's duplicate window (`events.duplicate_window_ms`). @default 120000 */
  duplicateWindowMs?: number;
  /** How long the consumer waits for an acknowledgement before redelivering. @default 30000 */
  ackWaitMs?: number;
  /** Deliveries of an event at most (`events.max_deliver`). @default 5 */
  maxDeliver?: number;
  /**
   * How long a processed mark is kept. At least the duplicate window and the longest a redelivery
   * can come (`ackWaitMs · maxDeliver`); by default also the longest window plus `maxFutureMs`, so
   * an event delivered again after its mark has gone is too old for any window and counts nowhere.
   * @default max(duplicateWindowMs, ackWaitMs · maxDeliver, longest window + maxFutureMs)
   */
  markTtlMs?: number;
  /**
   * Entities per view whose windows stay in memory between batches (least recently written out
   * first); the others are restored from their stored state when their events come.
   * @default 100000
   */
  maxEntities?: number;
  /** Store writes tried per batch when other replicas keep winning the race. @default 5 */
  maxAttempts?: number;
  /** How far past the clock an event's time may be; later events count nowhere. @default 10000 */
  maxFutureMs?: number;
  /** The CTR prior's mean, as the item counters'. @default 0.05 */
  ctrPriorMean?: number;
  /** The CTR prior's weight in views, as the item counters'. @default 20 */
  ctrPriorViews?: number;
  /** The velocity's pseudo-count, as the item counters'. @default 5 */
  velocityPrior?: number;
  /** Categories in a `top_categories_<window>` list at most. @default 3 */
  topCategories?: number;
  /** The view holding an item's category. @default 'item_profile' */
  categoryView?: string;
  /** The string field of `categoryView` holding the category. @default 'category' */
  categoryField?: string;
  /** Told the entities of every view written, for caches to drop. */
  changes?: FeatureChangePublisher;
  /** Metrics shared by the writers of a runtime. @default a private registry's */
  metrics?: StreamWriterMetrics;
  /** The clock the windows end at (epoch ms). @default Date.now */
  now?: () => number;
  log?: Logger;
}

export interface ResolvedStreamFeatureWriterOptions {
  views: readonly string[];
  windows: readonly CounterWindow[];
  kinds: readonly string[];
  scope: string;
  ackWaitMs: number;
  maxDeliver: number;
  markTtlMs: number;
  maxEntities: number;
  maxAttempts: number;
  maxFutureMs: number;
  ctrPriorMean: number;
  ctrPriorViews: number;
  velocityPrior: number;
  topCategories: number;
  categoryView: string;
  categoryField: string;
  now: () => number;
}

const SCOPE = /^[A-Za-z0-9_.-]{1,128}$/;

const positiveInt = (value: number, name: string): number => {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer`);
  }
  return value;
};
const positive = (value: number, name: string): number => {
  if (!(value > 0 && Number.isFinite(value))) {
    throw new RangeError(`${name} must be a positive number`);
  }
  return value;
};

/** Validates once, naming the option, and applies the defaults (the views are checked later). */
export function resolveStreamFeatureWriterOptions(
  options: StreamFeatureWriterOptions,
): ResolvedStreamFeatureWriterOptions {
  const minutes = options.windowsMinutes ?? DEFAULT_WINDOWS_MINUTES;
  minutes.forEach((m, i) => {
    if (!Number.isSafeInteger(m) || m < 1) {
      throw new RangeError(`windowsMinutes[${i}] must be a positive integer`);
    }
  });
  const windows = windowsFromMinutes(minutes);
  const scope = options.scope ?? 'stream-features';
  if (!SCOPE.test(scope)) throw new RangeError(`scope must match ${SCOPE.source}`);
  const duplicateWindowMs = positiveInt(options.duplicateWindowMs ?? 120_000, 'duplicateWindowMs');
  const ackWaitMs = positiveInt(options.ackWaitMs ?? 30_000, 'ackWaitMs');
  const maxDeliver = positiveInt(options.maxDeliver ?? 5, 'maxDeliver');
  const maxFutureMs = options.maxFutureMs ?? 10_000;
  if (!Number.isSafeInteger(maxFutureMs) || maxFutureMs < 0) {
    throw new RangeError('maxFutureMs must be a non-negative integer');
  }
  const floor = Math.max(duplicateWindowMs, ackWaitMs * maxDeliver);
  const longest = windows[windows.length - 1]?.spanMs ?? 0;
  const markTtlMs = positiveInt(
    options.markTtlMs ?? Math.max(floor, longest + maxFutureMs),
    'markTtlMs',
  );
  if (markTtlMs < floor) {
    throw new RangeError(
      `markTtlMs must be at least the duplicate window and ackWaitMs · maxDeliver (${floor})`,
    );
  }
  const ctrPriorMean = options.ctrPriorMean ?? 0.05;
  if (!(ctrPriorMean > 0 && ctrPriorMean < 1)) {
    throw new RangeError('ctrPriorMean must be in (0, 1)');
  }
  const resolved: ResolvedStreamFeatureWriterOptions = {
    views:
      options.views ??
      options.definitions.views.filter((v) => v.source === ViewSource.Stream).map((v) => v.name),
    windows,
    kinds: [...(options.kinds ?? FEEDBACK_TYPES)],
    scope,
    ackWaitMs,
    maxDeliver,
    markTtlMs,
    maxEntities: positiveInt(options.maxEntities ?? 100_000, 'maxEntities'),
    maxAttempts: positiveInt(options.maxAttempts ?? 5, 'maxAttempts'),
    maxFutureMs,
    ctrPriorMean,
    ctrPriorViews: positive(options.ctrPriorViews ?? 20, 'ctrPriorViews'),
    velocityPrior: positive(options.velocityPrior ?? 5, 'velocityPrior'),
    topCategories: positiveInt(options.topCategories ?? 3, 'topCategories'),
    categoryView: options.categoryView ?? 'item_profile',
    categoryField: options.categoryField ?? 'category',
    now: options.now ?? Date.now,
  };
  // Windows and kinds are checked as the counters they configure check them.
  resolveWindowCountersOptions({ kinds: resolved.kinds, windows });
  return resolved;
}

/** What became of an event handed to the writer. A const object plus a same-named type. */
export const StreamEventOutcome = {
  /** Counted in the windows (and reflected in the rows written). */
  Applied: 'applied',
  /** Its id was processed before, or came twice in one batch: nothing done. */
  Duplicate: 'duplicate',
  /** Older than the longest window: it only moved `last_event_ms`. */
  Old: 'old',
  /**
   * Counted nowhere: too far in the future (marked processed, as its redelivery would be refused
   * the same way), or malformed (not marked: its id may be what is wrong with it).
   */
  Rejected: 'rejected',
} as const;
export type StreamEventOutcome = (typeof StreamEventOutcome)[keyof typeof StreamEventOutcome];

/** Live figures of one writer, read at scrape time. */
export interface StreamWriterMetricsSource {
  /** Age of the newest event processed (seconds), `undefined` before the first. */
  lagSeconds(): number | undefined;
}

/**
 * The writer's Prometheus metrics, registered once per registry and shared by the writers of a
 * runtime: events by outcome, compare-and-set conflicts, states that could not be restored, and
 * the freshness of what was written (the age of the newest event processed, the stalest writer's).
 */
export class StreamWriterMetrics {
  readonly events: Counter<'outcome'>;
  readonly conflicts: Counter;
  readonly stateResets: Counter<'view'>;
  private readonly sources = new Set<StreamWriterMetricsSource>();

  constructor(registry: Registry) {
    const registers = [registry];
    const sources = this.sources;
    this.events = new Counter({
      name: 'recsys_features_stream_events_total',
      help: 'Feedback events handed to the stream feature writer, by outcome (applied, duplicate, old, rejected)',
      labelNames: ['outcome'],
      registers,
    });
    this.conflicts = new Counter({
      name: 'recsys_features_stream_conflicts_total',
      help: 'Stream feature writes refused because another writer updated one of their entities first (retried)',
      registers,
    });
    this.stateResets = new Counter({
      name: 'recsys_features_stream_state_resets_total',
      help: 'Stored window states that could not be restored (other windows, or malformed): counting restarted from zero',
      labelNames: ['view'],
      registers,
    });
    new Gauge({
      name: 'recsys_features_stream_lag_seconds',
      help: 'Age of the newest feedback event the stream feature writer has processed',
      registers,
      collect() {
        let lag: number | undefined;
        for (const source of sources) {
          const seconds = source.lagSeconds();
          if (seconds !== undefined && (lag === undefined || seconds > lag)) lag = seconds;
        }
        this.set(lag ?? 0);
      },
    });
  }

  /** Registers a source of live figures; returns a function that removes it. */
  addSource(source: StreamWriterMetricsSource): () => void {
    this.sources.add(source);
    return () => this.sources.delete(source);
  }
}

/** How {@link StreamFeatureWriter.consume} joins the events stream. */
export interface StreamFeatureConsumerOptions {
  /** The deployment's subject prefix. */
  prefix: string;
  /** The durable consumer the writer's replicas share. @default 'stream-features' */
  durable?: string;
  /** Most events in one batch (one store write). @default 256 */
  batchSize?: number;
  /** How long a batch gathers after its first event; 0: natural batching (see the consumer). @default 0 */
  batchDelayMs?: number;
  /** Pause after a failed batch before it goes back for redelivery. @default 1000 */
  retryDelayMs?: number;
  /** Where the consumer's counters go. @default a registry of its own */
  registry?: Registry;
  log?: Logger;
  /** Told when the reader stops on its own. */
  onError?: (err: Error) => void;
}

/** What one call of {@link StreamFeatureWriter.processBatch} did. */
export interface StreamBatchResult {
  /** Events by outcome. */
  events: Record<StreamEventOutcome, number>;
  /** Rows written, all views together. */
  rows: number;
  /** Store writes refused by a compare-and-set and retried. */
  conflicts: number;
}

export interface StreamFeatureWriterStats {
  events: Record<StreamEventOutcome, number>;
  rows: number;
  conflicts: number;
  /** Batches that failed (thrown to the caller, to be delivered again). */
  failedBatches: number;
  /** Entities whose windows are in memory, per view. */
  entities: Record<string, number>;
  /** Time of the newest event processed (epoch ms), `null` before the first. */
  newestEventMs: number | null;
}

/** One field of a stream view and how it is computed. */
type FieldPlan =
  | { name: string; what: 'count'; window: number; kind: number }
  | { name: string; what: 'ctr'; window: number }
  | { name: string; what: 'velocity' }
  | { name: string; what: 'last_event' }
  | { name: string; what: 'top_categories'; window: number };

/**
 * An entity held in memory: the version and event time of the row this writer wrote last (both,
 * since a row that expired starts its versions again at 1), the categories it counts.
 */
interface Held {
  version: number;
  eventTimeMs: number;
  categories: string[];
}

/** What one batch does to one entity of one view. */
interface Touched {
  held: Held;
  /** The newest event time reflected: the stored row's, or a newer event's. */
  eventTimeMs: number;
  /** Whether an event of the batch reached it (one not rejected): then its row is written. */
  changed: boolean;
}

/** The serialised windows of one entity: its counters and, per category, the category's. */
interface EntityState {
  w: string;
  c?: Array<[string, string]>;
}

/** Categories counted per entity at most: past it, the least engaged one is forgotten. */
const MAX_CATEGORIES = 8;
const COUNT_FIELD = /^([a-z][a-z0-9_]*)s_([0-9a-z]+)$/;
const ENGAGED = 'engaged';

/** The writer of one stream view: its plan, its windows, the entities it holds. */
class ViewWriter {
  readonly name: string;
  readonly entityOf: (event: StreamFeedbackEvent) => string;
  readonly plans: readonly FieldPlan[];
  readonly counters: WindowCounters;
  /** Per entity and category, the events on items of that category. */
  readonly categories: WindowCounters | undefined;
  /** Which window of `categories` each window of `counters` is, -1 when not counted there. */
  private readonly categoryWindow: Int32Array;
  /** Most recently written last. */
  private readonly held = new Map<string, Held>();
  private readonly sums: Float64Array;
  private readonly categorySums: Float64Array;

  constructor(
    definition: ViewDefinition,
    private readonly options: ResolvedStreamFeatureWriterOptions,
    hasCategories: boolean,
  ) {
    this.name = definition.name;
    const at = (field: string): string => `${definition.name}.${field}`;
    if (definition.entity === 'user') this.entityOf = (e) => e.user_id;
    else if (definition.entity === 'item') this.entityOf = (e) => e.item_id;
    else {
      throw new ConfigError(
        definition.name,
        `stream view ${definition.name} is keyed by entity ${definition.entity}; the stream writer keys rows by user or item`,
      );
    }
    const { windows, kinds } = options;
    const windowOf = new Map(windows.map((w, i) => [windowName(w.spanMs), i]));
    const configured = [...windowOf.keys()].join(', ');
    const window = (name: string, suffix: string): number => {
      const index = windowOf.get(suffix);
      if (index === undefined) {
        throw new ConfigError(
          at(name),
          `field ${name} of stream view ${definition.name}: no ${suffix} window in events.windows_minutes (configured: ${configured})`,
        );
      }
      return index;
    };
    const plans: FieldPlan[] = [];
    const categoryWindows = new Set<number>();
    for (const field of definition.fields) {
      const { name, type } = field;
      const expect = (wanted: FeatureType): void => {
        if (type !== wanted) {
          throw new ConfigError(
            at(name),
            `field ${name} of stream view ${definition.name} must be of type ${wanted} (the stream writer computes it so), not ${type}`,
          );
        }
      };
      const count = COUNT_FIELD.exec(name);
      if (name === 'velocity') {
        expect(FeatureType.Float);
        if (windows.length < 2) {
          throw new ConfigError(
            at(name),
            `field velocity of stream view ${definition.name} compares the shortest window with the longest: events.windows_minutes needs two`,
          );
        }
        plans.push({ name, what: 'velocity' });
      } else if (name === 'last_event_ms') {
        expect(FeatureType.Float);
        plans.push({ name, what: 'last_event' });
      } else if (name.startsWith('top_categories_')) {
        expect(FeatureType.StringList);
        if (!hasCategories) {
          throw new ConfigError(
            at(name),
            `field ${name} of stream view ${definition.name} needs the item categories of view ${options.categoryView}, field ${options.categoryField} (a string field of an item view)`,
          );
        }
        const w = window(name, name.slice('top_categories_'.length));
        categoryWindows.add(w);
        plans.push({ name, what: 'top_categories', window: w });
      } else if (name.startsWith('ctr_')) {
        expect(FeatureType.Float);
        if (!kinds.includes('view') || !kinds.includes('click')) {
          throw new ConfigError(at(name), `field ${name} needs view and click events counted`);
        }
        plans.push({ name, what: 'ctr', window: window(name, name.slice('ctr_'.length)) });
      } else if (count !== null && kinds.includes(count[1]!)) {
        expect(FeatureType.Float);
        const w = window(name, count[2]!);
        plans.push({ name, what: 'count', window: w, kind: kinds.indexOf(count[1]!) });
      } else {
        throw new ConfigError(
          at(name),
          `field ${name} of stream view ${definition.name} is not one the stream writer computes: <kind>s_<window> (kinds ${kinds.join(', ')}; windows ${configured}), ctr_<window>, velocity, top_categories_<window>, last_event_ms`,
        );
      }
    }
    this.plans = plans;
    // Room for every entity held between batches and every entity of a batch, so the counters'
    // own eviction never takes a key the writer still needs (`holdsAll` checks it all the same).
    const maxKeys = options.maxEntities + MAX_BATCH_ROWS;
    this.counters = new WindowCounters({
      kinds,
      windows,
      maxKeys,
      maxFutureMs: options.maxFutureMs,
    });
    this.sums = new Float64Array(windows.length * kinds.length);
    this.categoryWindow = new Int32Array(windows.length).fill(-1);
    const categoryList = [...categoryWindows].sort((a, b) => a - b);
    categoryList.forEach((w, i) => (this.categoryWindow[w] = i));
    this.categories =
      categoryList.length === 0
        ? undefined
        : new WindowCounters({
            kinds: [ENGAGED],
            windows: categoryList.map((w) => windows[w]!),
            maxKeys: Math.min(2 ** 30, maxKeys * MAX_CATEGORIES),
            maxFutureMs: options.maxFutureMs,
          });
    this.categorySums = new Float64Array(categoryList.length);
  }

  get size(): number {
    return this.held.size;
  }

  /**
   * The entity's windows as of `stored`: the ones in memory when this writer wrote that version
   * last (and all its keys are still held), else restored from the row's state, else empty.
   * Returns whether a state could not be restored.
   */
  load(entity: string, stored: StoredRow | null, log: Logger): { held: Held; reset: boolean } {
    const version = stored?.version ?? 0;
    const eventTimeMs = stored?.eventTimeMs ?? Number.NEGATIVE_INFINITY;
    const held = this.held.get(entity);
    if (
      held !== undefined &&
      held.version === version &&
      held.eventTimeMs === eventTimeMs &&
      this.holdsAll(entity, held)
    ) {
      this.held.delete(entity);
      this.held.set(entity, held);
      return { held, reset: false };
    }
    this.forget(entity);
    const fresh: Held = { version, eventTimeMs, categories: [] };
    let reset = false;
    if (stored?.state !== undefined && !this.restore(entity, stored.state, fresh)) {
      reset = true;
      log.warn(
        { view: this.name, entity, version },
        'stored window state could not be restored: counting from zero',
      );
      this.counters.delete(entity);
      for (const category of fresh.categories) {
        this.categories?.delete(categoryKey(entity, category));
      }
      fresh.categories = [];
    }
    this.held.set(entity, fresh);
    return { held: fresh, reset };
  }

  /**
   * Counts one event: in the entity's windows when its type is counted, in its category's when
   * it has one. What became of it by its time (the same in every view: they share their windows).
   */
  apply(
    entity: string,
    held: Held,
    event: StreamFeedbackEvent,
    category: string,
    now: number,
  ): RecordOutcome {
    const counters = this.counters;
    const outcome =
      counters.kindIndex(event.type) === -1
        ? counters.admits(event.ts_ms, now)
        : counters.record(entity, event.type, event.ts_ms, now);
    const categories = this.categories;
    if (
      categories !== undefined &&
      category !== '' &&
      categories.admits(event.ts_ms, now) === RecordOutcome.Recorded
    ) {
      if (!held.categories.includes(category)) {
        this.makeRoom(entity, held, now);
        held.categories.push(category);
      }
      categories.record(categoryKey(entity, category), ENGAGED, event.ts_ms, now);
    }
    return outcome;
  }

  /** The values of the entity's row at `now`. */
  values(
    entity: string,
    held: Held,
    eventTimeMs: number,
    now: number,
  ): Record<string, FeatureValue> {
    const { kinds, windows, ctrPriorMean, ctrPriorViews, velocityPrior, topCategories } =
      this.options;
    const k = kinds.length;
    const sums = this.counters.sums(entity, now, this.sums);
    const values: Record<string, FeatureValue> = {};
    let ranked: Map<number, string[]> | undefined;
    for (const plan of this.plans) {
      switch (plan.what) {
        case 'count':
          values[plan.name] = sums[plan.window * k + plan.kind]!;
          break;
        case 'ctr': {
          const at = plan.window * k;
          values[plan.name] = smoothedCtr(
            sums[at + kinds.indexOf('click')]!,
            sums[at + kinds.indexOf('view')]!,
            ctrPriorMean,
            ctrPriorViews,
          );
          break;
        }
        case 'velocity': {
          let short = 0;
          let long = 0;
          const last = (windows.length - 1) * k;
          for (let t = 0; t < k; t++) {
            short += sums[t]!;
            long += sums[last + t]!;
          }
          values[plan.name] = velocityScore(
            short,
            long,
            windows[0]!.spanMs,
            this.counters.watchedMs(now),
            velocityPrior,
          );
          break;
        }
        case 'last_event':
          values[plan.name] = eventTimeMs;
          break;
        case 'top_categories':
          ranked ??= this.rankCategories(entity, held, now);
          values[plan.name] = (ranked.get(plan.window) ?? []).slice(0, topCategories);
          break;
      }
    }
    return values;
  }

  /** The entity's windows as a row state. */
  state(entity: string, held: Held): string {
    const state: EntityState = { w: this.counters.exportState(entity) ?? '' };
    if (this.categories !== undefined) {
      const categories = this.categories;
      state.c = held.categories.flatMap((category) => {
        const exported = categories.exportState(categoryKey(entity, category));
        return exported === null ? [] : [[category, exported] as [string, string]];
      });
    }
    return JSON.stringify(state);
  }

  /** Forgets what the entity's windows hold in memory: the next batch restores them from the store. */
  forget(entity: string): void {
    const held = this.held.get(entity);
    this.held.delete(entity);
    this.counters.delete(entity);
    if (held !== undefined && this.categories !== undefined) {
      for (const category of held.categories) this.categories.delete(categoryKey(entity, category));
    }
  }

  /**
   * Forgets the least recently written entities past `maxEntities`. Called between batches only:
   * every entity of a batch stays until its row is written.
   */
  trim(): void {
    while (this.held.size > this.options.maxEntities) {
      const oldest = this.held.keys().next().value;
      if (oldest === undefined) break;
      this.forget(oldest);
    }
  }

  private holdsAll(entity: string, held: Held): boolean {
    // An entity that has written holds counters; one whose key went for room is restored instead.
    if (held.version > 0 && !this.counters.has(entity)) return false;
    const categories = this.categories;
    return (
      categories === undefined ||
      held.categories.every((category) => categories.has(categoryKey(entity, category)))
    );
  }

  private restore(entity: string, text: string, held: Held): boolean {
    let state: unknown;
    try {
      state = JSON.parse(text);
    } catch {
      return false;
    }
    if (!isEntityState(state)) return false;
    if (state.w !== '' && !this.counters.importState(entity, state.w)) return false;
    if (this.categories !== undefined) {
      for (const [category, exported] of (state.c ?? []).slice(0, MAX_CATEGORIES)) {
        if (!this.categories.importState(categoryKey(entity, category), exported)) return false;
        held.categories.push(category);
      }
    }
    return true;
  }

  /** Before a new category: drops those that emptied, and the least engaged one when full. */
  private makeRoom(entity: string, held: Held, now: number): void {
    const categories = this.categories!;
    const engagement = (category: string): number => {
      const sums = categories.sums(categoryKey(entity, category), now, this.categorySums);
      return sums[sums.length - 1]!;
    };
    held.categories = held.categories.filter((category) => {
      if (engagement(category) > 0) return true;
      categories.delete(categoryKey(entity, category));
      return false;
    });
    if (held.categories.length < MAX_CATEGORIES) return;
    let least = 0;
    for (let i = 1; i < held.categories.length; i++) {
      if (engagement(held.categories[i]!) < engagement(held.categories[least]!)) least = i;
    }
    categories.delete(categoryKey(entity, held.categories[least]!));
    held.categories.splice(least, 1);
  }

  /**
   * Per window of `top_categories` fields: the categories with events in it, most engaged first,
   * then the most recently engaged, then by name.
   */
  private rankCategories(entity: string, held: Held, now: number): Map<number, string[]> {
    const categories = this.categories!;
    const ranked = new Map<number, string[]>();
    const scored = held.categories.map((category) => {
      const key = categoryKey(entity, category);
      return {
        category,
        sums: Float64Array.from(categories.sums(key, now, this.categorySums)),
        newest: categories.newest(key) ?? 0,
      };
    });
    this.categoryWindow.forEach((at, w) => {
      if (at === -1) return;
      ranked.set(
        w,
        scored
          .filter((s) => s.sums[at]! > 0)
          .sort(
            (a, b) =>
              b.sums[at]! - a.sums[at]! ||
              b.newest - a.newest ||
              (a.category < b.category ? -1 : a.category > b.category ? 1 : 0),
          )
          .map((s) => s.category),
      );
    });
    return ranked;
  }
}

/** One key per (entity, category), unambiguous whatever characters either holds. */
const categoryKey = (entity: string, category: string): string =>
  `${entity.length}:${entity}${category}`;

function isEntityState(value: unknown): value is EntityState {
  if (typeof value !== 'object' || value === null) return false;
  const { w, c } = value as Record<string, unknown>;
  return (
    typeof w === 'string' &&
    (c === undefined ||
      (Array.isArray(c) &&
        c.every(
          (pair) =>
            Array.isArray(pair) &&
            pair.length === 2 &&
            typeof pair[0] === 'string' &&
            typeof pair[1] === 'string',
        )))
  );
}

/**
 * Whether an event has what the writer needs (ids the store takes, a type, a finite time); one
 * that does not is counted as rejected and neither applied nor marked.
 */
function isWellFormed(event: StreamFeedbackEvent): boolean {
  try {
    checkEntityId(event.event_id);
    checkEntityId(event.user_id);
    checkEntityId(event.item_id);
  } catch {
    return false;
  }
  return typeof event.type === 'string' && Number.isFinite(event.ts_ms);
}

const noOutcomes = (): Record<StreamEventOutcome, number> => ({
  applied: 0,
  duplicate: 0,
  old: 0,
  rejected: 0,
});

export class StreamFeatureWriter {
  readonly options: ResolvedStreamFeatureWriterOptions;
  readonly metrics: StreamWriterMetrics;
  private readonly store: OnlineStore;
  private readonly views: readonly ViewWriter[];
  private readonly categoryView: string | undefined;
  private readonly changes: FeatureChangePublisher | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly removeSource: () => void;
  /** Batches run one at a time: each reads, counts and writes the windows of the one before. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private newestEventMs = Number.NEGATIVE_INFINITY;
  private readonly totals = {
    events: noOutcomes(),
    rows: 0,
    conflicts: 0,
    failedBatches: 0,
  };

  /** Throws {@link ConfigError} naming the view and field for a stream field it cannot compute. */
  constructor(options: StreamFeatureWriterOptions) {
    this.options = resolveStreamFeatureWriterOptions(options);
    this.store = options.store;
    this.changes = options.changes;
    this.log = options.log ?? silentLogger();
    this.now = this.options.now;
    const registry = new FeatureRegistry(options.definitions);
    const { categoryView, categoryField } = this.options;
    let hasCategories = false;
    if (registry.has(categoryView)) {
      const view = registry.view(categoryView);
      const field = view.fields.find((f) => f.name === categoryField);
      hasCategories = view.entity === 'item' && field?.type === FeatureType.String;
    }
    this.views = this.options.views.map((name, i) => {
      const definition = registry.view(name, `views[${i}]`);
      if (definition.source !== ViewSource.Stream) {
        throw new ConfigError(`views[${i}]`, `view ${name} is not a stream view`);
      }
      return new ViewWriter(definition, this.options, hasCategories);
    });
    if (this.views.length === 0) {
      throw new ConfigError('views', 'no stream view to write: the definitions have none');
    }
    this.categoryView = this.views.some((v) => v.categories !== undefined)
      ? categoryView
      : undefined;
    this.metrics = options.metrics ?? new StreamWriterMetrics(new Registry());
    this.removeSource = this.metrics.addSource({ lagSeconds: () => this.lagSeconds() });
  }

  /**
   * Applies a batch of events: the ones not processed before are counted and every row they touch
   * is written, with their processed marks, in one atomic store write (several for a batch of more
   * than the store's batch limit). Resolves once written; rejects, having written nothing of the
   * failed part, when the store fails or other writers keep winning the race, so the caller can
   * deliver the batch again.
   */
  processBatch(events: readonly StreamFeedbackEvent[]): Promise<StreamBatchResult> {
    if (this.closed) return Promise.reject(new UnavailableError('stream feature writer is closed'));
    const run = this.queue.then(() => this.run(events));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** {@link processBatch} for a consumer that hands batches of decoded messages. */
  handle(batch: ReadonlyArray<{ readonly event: StreamFeedbackEvent }>): Promise<void> {
    return this.processBatch(batch.map(({ event }) => event)).then(() => undefined);
  }

  /**
   * Feeds the writer from the feedback events of `stream` (the events stream) through a durable
   * consumer: batches acknowledged once written, redelivered when a write fails, with the
   * acknowledgement wait and deliveries the marks' lifetime was sized for.
   */
  consume(stream: EventStream, options: StreamFeatureConsumerOptions): Promise<EventConsumer> {
    const { prefix, durable, batchSize, batchDelayMs, retryDelayMs, registry, log, onError } =
      options;
    return consumeEvents<FeedbackEvent>(stream, {
      durable: durable ?? 'stream-features',
      filter: eventFilter(prefix, EventKind.Feedback),
      prefix,
      parse: (data) => parseFeedbackEvent(data),
      handle: (batch) => this.handle(batch),
      ackWaitMs: this.options.ackWaitMs,
      maxDeliver: this.options.maxDeliver,
      ...(batchSize === undefined ? {} : { batchSize }),
      ...(batchDelayMs === undefined ? {} : { batchDelayMs }),
      ...(retryDelayMs === undefined ? {} : { retryDelayMs }),
      ...(registry === undefined ? {} : { registry }),
      ...(onError === undefined ? {} : { onError }),
      log: log ?? this.log,
    });
  }

  /** Age of the newest event processed (seconds), `undefined` before the first. */
  lagSeconds(): number | undefined {
    if (this.newestEventMs === Number.NEGATIVE_INFINITY) return undefined;
    return Math.max(0, this.now() - this.newestEventMs) / 1000;
  }

  stats(): StreamFeatureWriterStats {
    return {
      events: { ...this.totals.events },
      rows: this.totals.rows,
      conflicts: this.totals.conflicts,
      failedBatches: this.totals.failedBatches,
      entities: Object.fromEntries(this.views.map((v) => [v.name, v.size])),
      newestEventMs: this.newestEventMs === Number.NEGATIVE_INFINITY ? null : this.newestEventMs,
    };
  }

  /** Waits for the batch in progress and refuses later ones; the store stays open (not ours). */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    this.removeSource();
  }

  private async run(events: readonly StreamFeedbackEvent[]): Promise<StreamBatchResult> {
    const result: StreamBatchResult = { events: noOutcomes(), rows: 0, conflicts: 0 };
    // Every row and every mark of a chunk go in one store write, which has a size limit.
    const chunk = Math.max(1, Math.floor(MAX_BATCH_ROWS / Math.max(1, this.views.length)));
    try {
      for (let from = 0; from < events.length; from += chunk) {
        await this.runChunk(events.slice(from, from + chunk), result);
      }
    } catch (err) {
      this.totals.failedBatches++;
      throw err;
    } finally {
      for (const [outcome, n] of Object.entries(result.events)) {
        this.totals.events[outcome as StreamEventOutcome] += n;
        if (n > 0) this.metrics.events.inc({ outcome }, n);
      }
      this.totals.rows += result.rows;
      this.totals.conflicts += result.conflicts;
    }
    return result;
  }

  private async runChunk(
    events: readonly StreamFeedbackEvent[],
    result: StreamBatchResult,
  ): Promise<void> {
    const { scope, maxAttempts } = this.options;
    const unique = new Map<string, StreamFeedbackEvent>();
    for (const event of events) {
      if (!isWellFormed(event)) result.events.rejected++;
      else if (unique.has(event.event_id)) result.events.duplicate++;
      else unique.set(event.event_id, event);
    }
    const ids = [...unique.keys()];
    if (ids.length === 0) return;

    for (let attempt = 1; ; attempt++) {
      // Checked again on every attempt: the writer that won the race may have had these events too.
      const marked = await this.store.processed(scope, ids);
      const todo = [...unique.values()].filter((_, i) => marked[i] !== true);
      const done = await this.attempt(todo);
      if (done === 'conflict') {
        result.conflicts++;
        this.metrics.conflicts.inc();
        if (attempt < maxAttempts) continue;
        throw new ConflictError(
          `stream features: other writers updated the same entities ${maxAttempts} times in a row; batch not written`,
          { data: { attempts: maxAttempts } },
        );
      }
      result.events.duplicate += ids.length - todo.length;
      for (const [outcome, n] of Object.entries(done.events)) {
        result.events[outcome as StreamEventOutcome] += n;
      }
      result.rows += done.rows;
      if (done.newestEventMs > this.newestEventMs) this.newestEventMs = done.newestEventMs;
      return;
    }
  }

  /**
   * Reads the rows of the entities `todo` touches, counts `todo` on top of them and writes the rows
   * back with the events' marks, in one store write. `'conflict'` when a compare-and-set failed:
   * nothing was written, and the windows of the touched entities are forgotten so that the retry
   * restores them from what it reads.
   */
  private async attempt(
    todo: readonly StreamFeedbackEvent[],
  ): Promise<
    'conflict' | { events: Record<StreamEventOutcome, number>; rows: number; newestEventMs: number }
  > {
    const events = noOutcomes();
    if (todo.length === 0) return { events, rows: 0, newestEventMs: Number.NEGATIVE_INFINITY };
    const entitiesOf = this.views.map((view) => [...new Set(todo.map(view.entityOf))]);
    const items = [...new Set(todo.map((e) => e.item_id))];
    // One read per view, all at once: the rows with their versions and states, and the categories.
    const [profiles, ...stored] = await Promise.all([
      this.categoryView === undefined
        ? Promise.resolve([])
        : this.store.read(this.categoryView, items),
      ...this.views.map((view, v) => this.store.read(view.name, entitiesOf[v]!)),
    ]);
    const categoryOf = new Map<string, string>();
    items.forEach((item, i) => {
      const value = profiles[i]?.values[this.options.categoryField];
      if (typeof value === 'string') categoryOf.set(item, value);
    });

    const now = this.now();
    const touched = this.views.map((view, v) => {
      const byEntity = new Map<string, Touched>();
      entitiesOf[v]!.forEach((entity, i) => {
        const row = stored[v]![i] ?? null;
        const { held, reset } = view.load(entity, row, this.log);
        if (reset) this.metrics.stateResets.inc({ view: view.name });
        const eventTimeMs = row?.eventTimeMs ?? Number.NEGATIVE_INFINITY;
        byEntity.set(entity, { held, eventTimeMs, changed: false });
      });
      return byEntity;
    });

    let newestEventMs = Number.NEGATIVE_INFINITY;
    let rows: FeatureWrite[];
    let written: string[][];
    try {
      for (const event of todo) {
        const category = categoryOf.get(event.item_id) ?? '';
        let outcome: RecordOutcome = RecordOutcome.Rejected;
        for (let v = 0; v < this.views.length; v++) {
          const view = this.views[v]!;
          const entity = view.entityOf(event);
          const entry = touched[v]!.get(entity)!;
          outcome = view.apply(entity, entry.held, event, category, now);
          if (outcome === RecordOutcome.Rejected) continue;
          entry.changed = true;
          if (event.ts_ms > entry.eventTimeMs) entry.eventTimeMs = event.ts_ms;
        }
        if (outcome === RecordOutcome.Rejected) {
          events.rejected++;
          continue;
        }
        events[outcome === RecordOutcome.Recorded ? 'applied' : 'old']++;
        if (event.ts_ms > newestEventMs) newestEventMs = event.ts_ms;
      }

      rows = [];
      written = this.views.map(() => []);
      this.views.forEach((view, v) => {
        for (const [entity, entry] of touched[v]!) {
          if (!entry.changed) continue;
          // Rewritten even when no event is newer than the stored row (late events): its counts
          // changed. Its event time cannot go back, so the store never finds it stale.
          const row: FeatureRow = {
            values: view.values(entity, entry.held, entry.eventTimeMs, now),
            eventTimeMs: entry.eventTimeMs,
            state: view.state(entity, entry.held),
          };
          rows.push({ view: view.name, entity, row, ifVersion: entry.held.version });
          written[v]!.push(entity);
        }
      });

      await this.store.write({
        rows,
        marks: {
          scope: this.options.scope,
          ids: todo.map((e) => e.event_id),
          ttlMs: this.options.markTtlMs,
        },
      });
    } catch (err) {
      // Whatever the store did, memory now holds counts it may not have: start over from it.
      this.views.forEach((view, v) => {
        for (const entity of touched[v]!.keys()) view.forget(entity);
      });
      if (err instanceof ConflictError) return 'conflict';
      throw err;
    }
    // The store numbers each applied write: the versions this writer's windows now stand for.
    this.views.forEach((view, v) => {
      for (const entity of written[v]!) {
        const entry = touched[v]!.get(entity)!;
        entry.held.version++;
        entry.held.eventTimeMs = entry.eventTimeMs;
      }
      view.trim();
    });
    const changes = this.changes;
    if (changes !== undefined) {
      this.views.forEach((view, v) => {
        if (written[v]!.length === 0) return;
        try {
          changes.publish(view.name, written[v]!);
        } catch (err) {
          // Notices are best effort: a cache that misses one serves the old row until its TTL.
          this.log.warn({ err, view: view.name }, 'feature change notice not published');
        }
      });
    }
    this.log.debug({ events: todo.length, rows: rows.length }, 'stream features written');
    return { events, rows: rows.length, newestEventMs };
  }
}
