/**
 * The serving side of the feature store: what actors read features through. It puts the
 * in-process cache in front of the online store and keeps serving when the store does not answer.
 *
 * Reads: a view for many entities at once. Cached rows are served from memory; only the misses go
 * to the store, in one read. A store read that fails or takes longer than `readTimeoutMs` does not
 * fail the request: the misses get the view's defaults and the result says `degraded`, so a
 * recommendation is still made (with less information) when Redis is down or slow. What cannot be
 * served is a caller's mistake, an unknown view or field: that is refused, at start-up when the
 * reader is prepared.
 *
 * Writes go through to the store; when it is unreachable they wait in a bounded buffer and are
 * retried in order until they land (see `write-buffer.ts`). Rows written here, and rows named by a
 * change notice from another process, are dropped from the cache, so a hot entity's new values are
 * served at once rather than after the cache TTL.
 *
 * Hot path: `prepare(view, fields)` once, then `reader.read(entities)`. A warm read allocates the
 * result array and nothing per row when all fields are read: cached rows are complete, frozen
 * objects shared by every read.
 */
import { Registry } from 'prom-client';
import { BadRequestError, UnavailableError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { Subscription } from '../transport/types.js';
import { FeatureCache, type FeatureCacheStats, type ViewCache } from './cache.js';
import type { FeatureChangeNotice, FeatureChanges } from './changes.js';
import type { FeatureRegistry } from './definitions.js';
import { FeatureMetrics, StoreWriteOutcome, type ViewInstruments } from './feature-metrics.js';
import type {
  FeatureValue,
  OnlineStore,
  StoredRow,
  ViewDefinition,
  WriteBatch,
  WriteResult,
} from './types.js';
import { checkWriteBatch } from './validate.js';
import { DropReason, isRefusal, WriteBuffer, type WriteBufferStats } from './write-buffer.js';

/**
 * Options of {@link OnlineFeatures}. The tuning options have the names of the `features` section
 * of the resolved config, so `{ store, registry, ...config.features }` is a complete set.
 */
export interface OnlineFeaturesOptions {
  store: OnlineStore;
  registry: FeatureRegistry;
  /** Rows (one view of one entity) the cache holds; 0 turns the cache off. @default 100000 */
  cacheMaxEntries?: number;
  /** How long a cached row is served, in milliseconds. @default 5000 */
  cacheTtlMs?: number;
  /** A store read slower than this serves the defaults, marked degraded. @default 50 */
  readTimeoutMs?: number;
  /** Rows held for retry while the store is unreachable. @default 100000 */
  writeBufferMax?: number;
  /** Pause between retries of buffered writes, in milliseconds. @default 1000 */
  writeRetryMs?: number;
  /**
   * Change notices: the cache drops the rows they name; rows written through {@link
   * OnlineFeatures.write} are announced on them (see `publishChanges`).
   */
  changes?: FeatureChanges;
  /** Announce rows written through {@link OnlineFeatures.write} on `changes`. @default true */
  publishChanges?: boolean;
  /**
   * The runtime's feature metrics (one per Prometheus registry, shared by every instance).
   * @default metrics in a registry of their own, not exported
   */
  metrics?: FeatureMetrics;
  /** Told about each buffered batch that never landed (a refused compare-and-set, overflow). */
  onWriteDropped?: (batch: WriteBatch, reason: DropReason, err?: Error) => void;
  /** The clock (epoch ms) for cache TTLs and value ages. @default Date.now */
  now?: () => number;
  /** @default a silent logger */
  log?: Logger;
}

export interface ResolvedOnlineFeaturesOptions {
  cacheMaxEntries: number;
  cacheTtlMs: number;
  readTimeoutMs: number;
  writeBufferMax: number;
  writeRetryMs: number;
  publishChanges: boolean;
}

/** Validates the tuning options once, naming the option, and applies the defaults. */
export function resolveOnlineFeaturesOptions(
  options: Partial<ResolvedOnlineFeaturesOptions> = {},
): ResolvedOnlineFeaturesOptions {
  const integer = (name: string, value: number, min: number): number => {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(`${name} must be an integer >= ${min}`);
    }
    return value;
  };
  return {
    cacheMaxEntries: integer('cacheMaxEntries', options.cacheMaxEntries ?? 100_000, 0),
    cacheTtlMs: integer('cacheTtlMs', options.cacheTtlMs ?? 5_000, 1),
    readTimeoutMs: integer('readTimeoutMs', options.readTimeoutMs ?? 50, 1),
    writeBufferMax: integer('writeBufferMax', options.writeBufferMax ?? 100_000, 1),
    writeRetryMs: integer('writeRetryMs', options.writeRetryMs ?? 1_000, 1),
    publishChanges: options.publishChanges ?? true,
  };
}

/** The values of one view for one entity, as served. Shared between reads: never mutated. */
export interface ServedRow {
  /** Every field read: the stored value, or the field's default where none is stored. */
  readonly values: Readonly<Record<string, FeatureValue>>;
  /** When the stored values were true (epoch ms); `NaN` when these are the defaults. */
  readonly eventTimeMs: number;
}

export interface FeatureReadResult {
  /** One row per entity, in the order asked. */
  readonly rows: ServedRow[];
  /**
   * The store failed or was slow for this read's cache misses: their rows are the defaults. Rows
   * served from the cache are real either way.
   */
  readonly degraded: boolean;
}

export interface FeatureWriteResult extends WriteResult {
  /** The store was unreachable: the batch waits in the write buffer (`written` is then 0). */
  readonly buffered: boolean;
}

export interface OnlineFeaturesStats {
  /** Cache hits / (hits + misses), all views: the headline figure. */
  hitRate: number;
  cache: FeatureCacheStats;
  /** Store reads (one per feature read with misses), by outcome. */
  storeReads: { ok: number; error: number; timeout: number };
  /** Feature reads that served defaults for their misses. */
  degradedReads: number;
  /** Batches written, by outcome. */
  writes: Record<StoreWriteOutcome, number>;
  writeBuffer: WriteBufferStats;
}

/** A view resolved once: its cache, instruments and default row. */
interface ViewState {
  readonly definition: ViewDefinition;
  readonly cache: ViewCache<ServedRow>;
  readonly instruments: ViewInstruments;
  /** The row of an entity without stored values. */
  readonly defaults: ServedRow;
}

const TIMED_OUT = Symbol('timed out');

function freezeValues(
  values: Record<string, FeatureValue>,
): Readonly<Record<string, FeatureValue>> {
  for (const name in values) {
    const value = values[name];
    if (Array.isArray(value)) Object.freeze(value);
  }
  return Object.freeze(values);
}

/**
 * A read of one view and a fixed list of fields, resolved once (from {@link
 * OnlineFeatures.prepare}): what the serving path calls.
 */
export class FeatureViewReader {
  /** The fields each row holds, in definition order when all are read. */
  readonly fields: readonly string[];
  private readonly project: ((row: ServedRow) => ServedRow) | undefined;
  private readonly defaults: ServedRow;

  /** @internal */
  constructor(
    private readonly owner: OnlineFeatures,
    private readonly state: ViewState,
    fields: readonly string[] | undefined,
  ) {
    const all = state.definition.fields.map((field) => field.name);
    const subset =
      fields !== undefined &&
      !(fields.length === all.length && fields.every((f, i) => f === all[i]));
    this.fields = Object.freeze(subset ? [...fields] : all);
    if (subset) {
      const names = this.fields;
      this.project = (row) => {
        const values: Record<string, FeatureValue> = {};
        for (const name of names) values[name] = row.values[name] as FeatureValue;
        return { values, eventTimeMs: row.eventTimeMs };
      };
      this.defaults = Object.freeze(this.project(state.defaults));
    } else {
      this.project = undefined;
      this.defaults = state.defaults;
    }
  }

  get view(): ViewDefinition {
    return this.state.definition;
  }

  /**
   * The rows of `entities`, in order. Never rejects because of the store (see {@link
   * FeatureReadResult.degraded}); rejects with `BadRequestError` for a malformed entity id and
   * with `UnavailableError` once the reader is closed.
   */
  async read(entities: readonly string[]): Promise<FeatureReadResult> {
    const owner = this.owner;
    owner.checkOpen();
    const state = this.state;
    const cache = state.cache;
    const project = this.project;
    const now = owner.now();
    const count = entities.length;
    const rows = new Array<ServedRow>(count);
    let missing: number[] | undefined;
    let oldestMs = Infinity;
    for (let i = 0; i < count; i++) {
      const cached = cache.get(entities[i] as string, now);
      if (cached === undefined) {
        (missing ??= []).push(i);
        continue;
      }
      if (cached === null) {
        rows[i] = this.defaults;
        continue;
      }
      if (cached.eventTimeMs < oldestMs) oldestMs = cached.eventTimeMs;
      rows[i] = project === undefined ? cached : project(cached);
    }
    let degraded = false;
    if (missing !== undefined) {
      const fetched = await owner.fetch(state, entities, missing);
      if (fetched === undefined) {
        degraded = true;
        for (const i of missing) rows[i] = this.defaults;
      } else {
        for (let j = 0; j < missing.length; j++) {
          const row = fetched[j];
          const i = missing[j] as number;
          if (row === null || row === undefined) {
            rows[i] = this.defaults;
            continue;
          }
          if (row.eventTimeMs < oldestMs) oldestMs = row.eventTimeMs;
          rows[i] = project === undefined ? row : project(row);
        }
      }
    }
    if (oldestMs !== Infinity) {
      state.instruments.servedAge.observe(Math.max(0, now - oldestMs) / 1000);
    }
    return { rows, degraded };
  }
}

export class OnlineFeatures {
  readonly registry: FeatureRegistry;
  readonly options: ResolvedOnlineFeaturesOptions;
  /** @internal */
  readonly now: () => number;
  private readonly store: OnlineStore;
  private readonly cache: FeatureCache<ServedRow>;
  private readonly views = new Map<string, ViewState>();
  private readonly fullReaders = new Map<string, FeatureViewReader>();
  private readonly metrics: FeatureMetrics;
  private readonly removeMetricsSource: () => void;
  private readonly buffer: WriteBuffer;
  private readonly changes: FeatureChanges | undefined;
  private readonly subscription: Subscription | undefined;
  private readonly log: Logger;
  private readonly storeReads = { ok: 0, error: 0, timeout: 0 };
  private degradedReads = 0;
  private readonly writes: Record<StoreWriteOutcome, number> = {
    ok: 0,
    buffered: 0,
    retried: 0,
    refused: 0,
  };
  /** Whether the last store read answered in time, for logging the changes only. */
  private readsHealthy = true;
  /** Whether the buffer's overflow was logged since it last emptied. */
  private overflowLogged = false;
  private closed = false;

  constructor(options: OnlineFeaturesOptions) {
    this.options = resolveOnlineFeaturesOptions(options);
    this.store = options.store;
    this.registry = options.registry;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? silentLogger();
    this.metrics = options.metrics ?? new FeatureMetrics(new Registry());
    this.cache = new FeatureCache<ServedRow>({
      maxEntries: this.options.cacheMaxEntries,
      ttlMs: this.options.cacheTtlMs,
      now: this.now,
    });
    for (const definition of this.registry.definitions.views) {
      const values: Record<string, FeatureValue> = {};
      for (const field of definition.fields) values[field.name] = field.default;
      this.views.set(definition.name, {
        definition,
        cache: this.cache.view(definition.name),
        instruments: this.metrics.view(definition.name),
        defaults: Object.freeze({ values: freezeValues(values), eventTimeMs: Number.NaN }),
      });
    }
    const onWriteDropped = options.onWriteDropped;
    this.buffer = new WriteBuffer({
      write: (batch) => this.store.write(batch),
      maxRows: this.options.writeBufferMax,
      retryMs: this.options.writeRetryMs,
      onLanded: (batch) => {
        this.countWrite(StoreWriteOutcome.Retried);
        this.landed(batch);
        if (this.buffer.rows === 0) {
          this.log.info('buffered feature writes landed');
          this.overflowLogged = false;
        }
      },
      onDropped: (batch, reason, err) => {
        this.metrics.droppedRows.inc({ reason }, Math.max(1, batch.rows.length));
        if (reason === DropReason.Refused) this.countWrite(StoreWriteOutcome.Refused);
        // A long outage overflows on every write: say so once, the counter has the rest.
        if (reason !== DropReason.Overflow || !this.overflowLogged) {
          this.overflowLogged ||= reason === DropReason.Overflow;
          this.log.warn({ err, reason, rows: batch.rows.length }, 'buffered feature write dropped');
        }
        onWriteDropped?.(batch, reason, err);
      },
    });
    this.changes = options.changes;
    this.subscription = this.changes?.subscribe((notice) => this.onChange(notice));
    this.removeMetricsSource = this.metrics.addSource({
      cacheStats: () => this.cache.stats(),
      bufferedRows: () => this.buffer.rows,
    });
  }

  /**
   * A reader of `view` and `fields` (all of the view's when absent), resolved now: throws
   * `ConfigError` naming the unknown view or field. Call it at start-up and keep the reader.
   */
  prepare(view: string, fields?: readonly string[]): FeatureViewReader {
    // The registry names what is unknown; every view it knows has its state.
    this.registry.view(view);
    const state = this.views.get(view) as ViewState;
    if (fields === undefined) return this.fullReader(state);
    this.registry.fields(view, fields);
    return new FeatureViewReader(this, state, fields);
  }

  /**
   * One read without preparing: `prepare(view, fields).read(entities)`, except that an unknown
   * view or field rejects with `BadRequestError` (the request named it).
   */
  async read(
    view: string,
    entities: readonly string[],
    fields?: readonly string[],
  ): Promise<FeatureReadResult> {
    this.registry.requestView(view);
    const state = this.views.get(view) as ViewState;
    if (fields === undefined) return this.fullReader(state).read(entities);
    fields.forEach((name, i) => {
      if (!state.definition.fields.some((field) => field.name === name)) {
        throw new BadRequestError(
          `fields[${i}]`,
          `unknown field ${name} of feature view ${view} (known: ${state.definition.fields.map((f) => f.name).join(', ')})`,
        );
      }
    });
    return new FeatureViewReader(this, state, fields).read(entities);
  }

  /**
   * Writes `batch` through to the store and drops its rows from the cache. When the store is
   * unreachable (or writes are already waiting, which keeps them in order), the batch goes to the
   * write buffer and the result says `buffered`. Rejects with `BadRequestError` for a bad row (never
   * buffered) and with the store's `ConflictError` when a compare-and-set does not hold; a buffered
   * batch refused later is reported to `onWriteDropped` instead.
   */
  async write(batch: WriteBatch): Promise<FeatureWriteResult> {
    this.checkOpen();
    checkWriteBatch(this.registry, batch);
    if (!this.buffer.idle) return this.enqueue(batch);
    let result: WriteResult;
    try {
      result = await this.store.write(batch);
    } catch (err) {
      if (isRefusal(err)) {
        this.countWrite(StoreWriteOutcome.Refused);
        throw err;
      }
      this.log.warn({ err }, 'online store write failed: buffering writes until it answers');
      return this.enqueue(batch);
    }
    this.countWrite(StoreWriteOutcome.Ok);
    this.landed(batch);
    return { ...result, buffered: false };
  }

  /**
   * Writes what the buffer holds now; resolves once it is empty. Rejects with `UnavailableError`
   * while the store is still unreachable (the rows stay buffered, retries go on).
   */
  flush(): Promise<void> {
    return this.buffer.flush();
  }

  /**
   * Stops reading, writing and listening to change notices. Tries once to write what is
   * buffered; what still cannot be written is dropped (counted, reported to `onWriteDropped`).
   * The store is not closed: it belongs to the caller.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscription?.unsubscribe();
    try {
      await this.buffer.flush();
    } catch {
      // Reported by the buffer's close, below, as rows dropped at close.
    }
    await this.buffer.close();
    this.removeMetricsSource();
  }

  /** Drops every cached row (e.g. after a bulk load). */
  clearCache(): void {
    this.cache.clear();
  }

  stats(): OnlineFeaturesStats {
    const cache = this.cache.stats();
    return {
      hitRate: cache.hitRate,
      cache,
      storeReads: { ...this.storeReads },
      degradedReads: this.degradedReads,
      writes: { ...this.writes },
      writeBuffer: this.buffer.stats(),
    };
  }

  /** @internal */
  checkOpen(): void {
    if (this.closed) throw new UnavailableError('online features are closed');
  }

  /**
   * Reads `entities[i]` for every i of `missing` from the store, caches the answers and returns
   * them in the order of `missing`; `undefined` when the store failed or was late.
   * @internal
   */
  async fetch(
    state: ViewState,
    entities: readonly string[],
    missing: readonly number[],
  ): Promise<(ServedRow | null)[] | undefined> {
    const keys = missing.map((i) => entities[i] as string);
    const view = state.definition.name;
    const instruments = state.instruments;
    // A change notice that arrives while the store answers must win over the answer.
    const epoch = state.cache.epoch;
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(resolve, this.options.readTimeoutMs, TIMED_OUT);
    });
    const reading = this.store.read(view, keys);
    let stored: (StoredRow | null)[] | typeof TIMED_OUT;
    try {
      stored = await Promise.race([reading, late]);
    } catch (err) {
      // A malformed entity id is the caller's error, not the store's.
      if (err instanceof BadRequestError) throw err;
      this.storeReads.error++;
      instruments.readError.inc();
      this.degraded(state, err);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
    if (stored === TIMED_OUT) {
      this.storeReads.timeout++;
      instruments.readTimeout.inc();
      this.degraded(
        state,
        new UnavailableError(`no answer within ${this.options.readTimeoutMs} ms`),
      );
      // The answer may still come: it saves the next reads a trip, unless a notice overtook it.
      reading.then(
        (rows) => this.serveAndCache(state, keys, rows, epoch),
        () => undefined,
      );
      return undefined;
    }
    instruments.readDuration.observe((performance.now() - started) / 1000);
    this.storeReads.ok++;
    instruments.readOk.inc();
    if (!this.readsHealthy) {
      this.readsHealthy = true;
      this.log.info({ view }, 'online store reads recovered');
    }
    return this.serveAndCache(state, keys, stored, epoch);
  }

  private degraded(state: ViewState, err: unknown): void {
    this.degradedReads++;
    state.instruments.degraded.inc();
    if (this.readsHealthy) {
      this.readsHealthy = false;
      this.log.warn(
        { err, view: state.definition.name },
        'online store read failed or was late: serving feature defaults (degraded)',
      );
    }
  }

  private serveAndCache(
    state: ViewState,
    keys: readonly string[],
    stored: readonly (StoredRow | null)[],
    epoch: number,
  ): (ServedRow | null)[] {
    const now = this.now();
    const served = new Array<ServedRow | null>(keys.length);
    for (let j = 0; j < keys.length; j++) {
      const row = stored[j];
      const value = row === null || row === undefined ? null : this.toServed(state, row);
      served[j] = value;
      state.cache.set(keys[j] as string, value, now, epoch);
    }
    return served;
  }

  /** A stored row as served: complete (every field of the view, defaults filled in) and frozen. */
  private toServed(state: ViewState, row: StoredRow): ServedRow {
    const fields = state.definition.fields;
    const stored = row.values;
    // Stores return complete rows as a rule; only copy when one is not.
    let keys = 0;
    for (const name in stored) if (Object.hasOwn(stored, name)) keys++;
    let complete = keys === fields.length;
    for (let f = 0; complete && f < fields.length; f++) {
      complete = Object.hasOwn(stored, (fields[f] as { name: string }).name);
    }
    const values = complete
      ? (stored as Record<string, FeatureValue>)
      : this.registry.completeValues(state.definition.name, stored);
    return Object.freeze({ values: freezeValues(values), eventTimeMs: row.eventTimeMs });
  }

  private fullReader(state: ViewState): FeatureViewReader {
    let reader = this.fullReaders.get(state.definition.name);
    if (reader === undefined) {
      reader = new FeatureViewReader(this, state, undefined);
      this.fullReaders.set(state.definition.name, reader);
    }
    return reader;
  }

  private enqueue(batch: WriteBatch): FeatureWriteResult {
    this.buffer.add(batch);
    this.countWrite(StoreWriteOutcome.Buffered);
    return { written: 0, stale: 0, buffered: true };
  }

  private countWrite(outcome: StoreWriteOutcome): void {
    this.writes[outcome]++;
    this.metrics.storeWrites.inc({ outcome });
  }

  /** A batch is in the store: its rows leave this cache and, when asked, every other. */
  private landed(batch: WriteBatch): void {
    const byView = new Map<string, string[]>();
    for (const { view, entity } of batch.rows) {
      const entities = byView.get(view);
      if (entities === undefined) byView.set(view, [entity]);
      else entities.push(entity);
    }
    for (const [view, entities] of byView) {
      this.views.get(view)?.cache.invalidate(entities);
      if (this.options.publishChanges) this.publishChange(view, entities);
    }
  }

  private publishChange(view: string, entities: readonly string[]): void {
    if (this.changes === undefined) return;
    try {
      this.changes.publish(view, entities);
    } catch (err) {
      // At most once by design: a lost notice costs freshness up to the cache TTL.
      this.log.warn({ err, view }, 'feature change notice not published');
    }
  }

  private onChange(notice: FeatureChangeNotice): void {
    this.views.get(notice.view)?.cache.invalidate(notice.entities);
  }
}
