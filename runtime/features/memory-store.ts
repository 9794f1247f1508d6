/**
 * The online store in memory: the embedded default (one process, no Redis) and the reference the
 * conformance suite holds the Redis store to. Same semantics to the letter: event-time rule,
 * per-entity versions, compare-and-set refusing the whole batch, TTLs restarting with each write,
 * processed marks with their own TTL, meta values.
 *
 * Time comes from an injectable clock read at each call (`Date.now()` by default), so fake timers
 * drive expiry. Expired rows and marks are dropped when touched and swept once a minute of clock
 * time, so a long-running embedded process does not keep every mark it ever wrote.
 *
 * Values are copied in and out: a caller that mutates a list after writing it, or a list it read,
 * changes nothing stored.
 */
import { UnavailableError } from '../errors.js';
import { copyFeatureValue, FeatureRegistry } from './definitions.js';
import type {
  FeatureDefinitions,
  FeatureValue,
  OnlineStore,
  StoredRow,
  WriteBatch,
  WriteResult,
} from './types.js';
import {
  checkEntities,
  checkMarkIds,
  checkMetaKey,
  checkMetaValue,
  checkScope,
  checkWriteBatch,
  conflictError,
} from './validate.js';

/** Options of {@link MemoryOnlineStore}. */
export interface MemoryOnlineStoreOptions {
  definitions: FeatureDefinitions;
  /** The clock TTLs are measured with (epoch ms). @default () => Date.now() */
  now?: () => number;
}

interface Entry {
  readonly version: number;
  readonly eventTimeMs: number;
  readonly values: Readonly<Record<string, FeatureValue>>;
  readonly state: string | undefined;
  /** Clock time at which the row expires; `Infinity` for a view without TTL. */
  readonly expiresAtMs: number;
}

const SWEEP_INTERVAL_MS = 60_000;

export class MemoryOnlineStore implements OnlineStore {
  readonly registry: FeatureRegistry;
  private readonly now: () => number;
  /** view → entity → row. */
  private readonly rows = new Map<string, Map<string, Entry>>();
  /** scope → id → expiry (clock ms). */
  private readonly marks = new Map<string, Map<string, number>>();
  private readonly meta = new Map<string, string>();
  private closed = false;
  private lastSweepMs: number;

  constructor(options: MemoryOnlineStoreOptions) {
    this.registry = new FeatureRegistry(options.definitions);
    this.now = options.now ?? (() => Date.now());
    this.lastSweepMs = this.now();
    for (const view of options.definitions.views) this.rows.set(view.name, new Map());
  }

  // Every operation yields once before touching state, so callers cannot come to rely on a write
  // having happened before its promise settles, which a Redis round trip would not give them.

  async read(view: string, entities: readonly string[]): Promise<(StoredRow | null)[]> {
    this.checkOpen();
    this.registry.requestView(view);
    checkEntities(entities);
    await Promise.resolve();
    this.checkOpen();
    const now = this.now();
    return entities.map((entity) => {
      const entry = this.live(view, entity, now);
      if (entry === undefined) return null;
      const row: StoredRow = {
        values: this.registry.completeValues(view, entry.values),
        eventTimeMs: entry.eventTimeMs,
        version: entry.version,
        ...(entry.state === undefined ? {} : { state: entry.state }),
      };
      return row;
    });
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    this.checkOpen();
    checkWriteBatch(this.registry, batch);
    // Copied before yielding: what is stored is what was checked, whatever the caller does next.
    const rows = batch.rows.map(({ view, entity, ifVersion, row }) => {
      const values: Record<string, FeatureValue> = {};
      for (const [name, value] of Object.entries(row.values))
        values[name] = copyFeatureValue(value);
      return { view, entity, ifVersion, eventTimeMs: row.eventTimeMs, state: row.state, values };
    });
    const marks =
      batch.marks === undefined ? undefined : { ...batch.marks, ids: [...batch.marks.ids] };
    await Promise.resolve();
    this.checkOpen();
    const now = this.now();
    this.sweep(now);

    // Every compare-and-set is checked against the state before the batch, then all rows apply:
    // a batch is refused whole or applied whole.
    for (const { view, entity, ifVersion } of rows) {
      if (ifVersion === undefined) continue;
      const version = this.live(view, entity, now)?.version ?? 0;
      if (version !== ifVersion) throw conflictError(view, entity, version, ifVersion);
    }

    let written = 0;
    let stale = 0;
    for (const { view, entity, eventTimeMs, state, values } of rows) {
      const current = this.live(view, entity, now);
      if (current !== undefined && current.eventTimeMs > eventTimeMs) {
        stale++;
        continue;
      }
      const ttlMs = this.registry.view(view).ttlMs;
      this.viewRows(view).set(entity, {
        version: (current?.version ?? 0) + 1,
        eventTimeMs,
        values,
        state,
        expiresAtMs: ttlMs > 0 ? now + ttlMs : Number.POSITIVE_INFINITY,
      });
      written++;
    }

    if (marks !== undefined) {
      let scoped = this.marks.get(marks.scope);
      if (scoped === undefined) {
        scoped = new Map();
        this.marks.set(marks.scope, scoped);
      }
      for (const id of marks.ids) scoped.set(id, now + marks.ttlMs);
    }
    return { written, stale };
  }

  async processed(scope: string, ids: readonly string[]): Promise<boolean[]> {
    this.checkOpen();
    checkScope(scope);
    checkMarkIds(ids);
    await Promise.resolve();
    this.checkOpen();
    const now = this.now();
    const marks = this.marks.get(scope);
    return ids.map((id) => {
      const expiresAtMs = marks?.get(id);
      if (expiresAtMs === undefined) return false;
      if (now >= expiresAtMs) {
        marks?.delete(id);
        return false;
      }
      return true;
    });
  }

  async getMeta(key: string): Promise<string | null> {
    this.checkOpen();
    checkMetaKey(key);
    await Promise.resolve();
    this.checkOpen();
    return this.meta.get(key) ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.checkOpen();
    checkMetaKey(key);
    checkMetaValue(value);
    await Promise.resolve();
    this.checkOpen();
    this.meta.set(key, value);
  }

  close(): Promise<void> {
    this.closed = true;
    this.rows.clear();
    this.marks.clear();
    this.meta.clear();
    return Promise.resolve();
  }

  private checkOpen(): void {
    if (this.closed) throw new UnavailableError('online store is closed');
  }

  private viewRows(view: string): Map<string, Entry> {
    let rows = this.rows.get(view);
    if (rows === undefined) {
      rows = new Map();
      this.rows.set(view, rows);
    }
    return rows;
  }

  /** The stored row unless it has expired, which removes it. */
  private live(view: string, entity: string, now: number): Entry | undefined {
    const rows = this.rows.get(view);
    const entry = rows?.get(entity);
    if (entry === undefined) return undefined;
    if (now >= entry.expiresAtMs) {
      rows?.delete(entity);
      return undefined;
    }
    return entry;
  }

  private sweep(now: number): void {
    if (now - this.lastSweepMs < SWEEP_INTERVAL_MS) return;
    this.lastSweepMs = now;
    for (const rows of this.rows.values()) {
      for (const [entity, entry] of rows) if (now >= entry.expiresAtMs) rows.delete(entity);
    }
    for (const [scope, marks] of this.marks) {
      for (const [id, expiresAtMs] of marks) if (now >= expiresAtMs) marks.delete(id);
      if (marks.size === 0) this.marks.delete(scope);
    }
  }
}
