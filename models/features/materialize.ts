/**
 * Materialisation: the batch views' offline tables (`features/` of a data set) loaded into the
 * online store, in batches, incrementally by event time.
 *
 * Each view keeps a watermark per data set in the store's meta values: the newest event time it
 * has loaded. A run skips rows at or before it, so loading again after nothing changed writes
 * nothing, and loading a rebuilt data set writes only the rows with newer times. The watermark
 * moves only after every row of the view is stored: a run that stops half way is redone from the
 * old watermark, which is harmless, because the store's event-time rule makes rewriting a row a
 * no-op and refuses an older row over a newer one. `full` ignores the watermarks and rewrites
 * every row (after a change the event times do not show, such as a rebuilt data set with the same
 * end, or a store that lost its data).
 */
import { BadRequestError } from '../../runtime/errors.js';
import type {
  FeatureDefinitions,
  FeatureWrite,
  OnlineStore,
  ViewDefinition,
} from '../../runtime/features/types.js';
import { MAX_BATCH_ROWS } from '../../runtime/features/validate.js';
import { readManifest } from '../data/dataset-io.js';
import { DatasetFormatError } from '../data/errors.js';
import { batchViewsOf } from './batch-views.js';
import {
  buildFeatureTables,
  readFeatureRows,
  readFeatureTablesManifest,
  staleFeatureTables,
} from './feature-tables.js';

/** Rows per store write. @default 1000 */
export const DEFAULT_MATERIALIZE_BATCH = 1000;

/** Where a view's watermark for a data set is kept in the store's meta values. */
export function watermarkKey(view: string, dataset: string): string {
  return `materialize:${view}:${dataset}`;
}

/** A watermark as stored (JSON, snake_case). */
interface StoredWatermark {
  /** Newest event time loaded (epoch ms). */
  watermark_ms: number;
  /** Fingerprint of the data the rows came from. */
  fingerprint: string;
  /** Rows in the table when it was loaded. */
  rows: number;
  /** When the load finished (ISO 8601). */
  loaded_at: string;
}

export interface MaterializeProgress {
  readonly view: string;
  /** Rows of the view's table gone through (written or skipped). */
  readonly done: number;
  /** Rows in the view's table. */
  readonly total: number;
  /** Rows stored so far. */
  readonly written: number;
}

export interface MaterializeOptions {
  /** Rewrite every row, ignoring the watermarks. @default false */
  full?: boolean;
  /** Rows per `store.write` (1..10000). @default 1000 */
  batchSize?: number;
  /** The batch views to load. @default every batch view of the definitions */
  views?: readonly string[];
  /** Called at the start of each view and after each write. */
  onProgress?: (progress: MaterializeProgress) => void;
  /** Clock for durations, in ms. @default performance.now */
  now?: () => number;
}

export interface ViewMaterializeResult {
  readonly view: string;
  /** Rows read from the table. */
  readonly read: number;
  /** Rows the store applied. */
  readonly written: number;
  /** Rows not sent: at or before the watermark. */
  readonly skipped: number;
  /** Rows sent but not applied: the store held a later event time. */
  readonly stale: number;
  /** The watermark before the run; `null` for none. */
  readonly previousWatermarkMs: number | null;
  /** The watermark after the run; `null` when the table has no rows and there was none. */
  readonly watermarkMs: number | null;
  readonly durationMs: number;
}

export interface MaterializeResult {
  readonly dataset: string;
  readonly fingerprint: string;
  readonly views: readonly ViewMaterializeResult[];
  readonly durationMs: number;
}

function parseWatermark(text: string | null): number | null {
  if (text === null) return null;
  try {
    const stored = JSON.parse(text) as Partial<StoredWatermark>;
    return typeof stored.watermark_ms === 'number' && Number.isFinite(stored.watermark_ms)
      ? stored.watermark_ms
      : null;
  } catch {
    // Unreadable: load as if there were none. Rewriting rows is harmless; skipping them is not.
    return null;
  }
}

/**
 * The batch views to load: every one of the definitions, or those `names` lists. Throws
 * `BadRequestError` on `views` for a name that is not a batch view.
 */
export function selectBatchViews(
  definitions: FeatureDefinitions,
  names: readonly string[] | undefined,
): ViewDefinition[] {
  const batch = batchViewsOf(definitions);
  if (names === undefined) return batch;
  if (names.length === 0) throw new BadRequestError('views', 'must name at least one view');
  return names.map((name) => {
    const view = batch.find((v) => v.name === name);
    if (view === undefined) {
      const what = definitions.views.some((v) => v.name === name)
        ? `${name} is not a batch view`
        : `unknown view ${name}`;
      throw new BadRequestError(
        'views',
        `${what} (batch views: ${batch.map((v) => v.name).join(', ')})`,
      );
    }
    return view;
  });
}

/**
 * Loads the batch views' tables of the data set in `datasetDir` into `store`. The tables must be
 * up to date with the data set and the definitions (see {@link staleFeatureTables}); otherwise it
 * rejects with a `DatasetFormatError` saying how to rebuild them. Rejects with `BadRequestError`
 * for bad options and with whatever the store rejects a write with; the watermark of the view
 * being loaded then stays where it was.
 */
export async function materializeDataset(
  store: OnlineStore,
  definitions: FeatureDefinitions,
  datasetDir: string,
  options: MaterializeOptions = {},
): Promise<MaterializeResult> {
  const batchSize = options.batchSize ?? DEFAULT_MATERIALIZE_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_ROWS) {
    throw new BadRequestError('batchSize', `must be an integer in 1..${MAX_BATCH_ROWS}`);
  }
  const views = selectBatchViews(definitions, options.views);
  const now = options.now ?? (() => performance.now());
  const started = now();
  const dataset = await readManifest(datasetDir);
  const stale = await staleFeatureTables(datasetDir, definitions, dataset);
  if (stale !== null) {
    throw new DatasetFormatError(
      datasetDir,
      `${stale}; rebuild them with \`recsys data features --data ${dataset.name}\``,
    );
  }
  const tables = await readFeatureTablesManifest(datasetDir);
  const results: ViewMaterializeResult[] = [];
  for (const view of views) {
    const viewStarted = now();
    const key = watermarkKey(view.name, dataset.name);
    const previous = parseWatermark(await store.getMeta(key));
    const skipAtOrBefore = options.full === true || previous === null ? -Infinity : previous;
    const total = tables.views[view.name]?.rows ?? 0;
    let read = 0;
    let written = 0;
    let skipped = 0;
    let staleRows = 0;
    let newest = previous ?? -Infinity;
    let reported = -1;
    const report = () => {
      reported = read;
      options.onProgress?.({ view: view.name, done: read, total, written });
    };
    let batch: FeatureWrite[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const result = await store.write({ rows: batch });
      written += result.written;
      staleRows += result.stale;
      batch = [];
      report();
    };
    report();
    for await (const rows of readFeatureRows(datasetDir, view, tables)) {
      for (const row of rows) {
        read++;
        if (row.eventTimeMs > newest) newest = row.eventTimeMs;
        if (row.eventTimeMs <= skipAtOrBefore) {
          skipped++;
          continue;
        }
        batch.push({
          view: view.name,
          entity: row.entity,
          row: { values: row.values, eventTimeMs: row.eventTimeMs },
        });
        if (batch.length === batchSize) await flush();
      }
      // Skipped rows move the bar too, so a run with little to write still shows it going. The
      // last report waits for the last write, so it shows every row and every row written.
      if (reported !== read && read < total) report();
    }
    await flush();
    if (reported !== read) report();
    const watermarkMs = Number.isFinite(newest) ? newest : null;
    // Nothing new and nothing written: the store is left as it was, meta values included.
    if (watermarkMs !== null && (watermarkMs !== previous || written > 0)) {
      const stored: StoredWatermark = {
        watermark_ms: watermarkMs,
        fingerprint: dataset.fingerprint,
        rows: read,
        loaded_at: new Date().toISOString(),
      };
      await store.setMeta(key, JSON.stringify(stored));
    }
    results.push({
      view: view.name,
      read,
      written,
      skipped,
      stale: staleRows,
      previousWatermarkMs: previous,
      watermarkMs,
      durationMs: now() - viewStarted,
    });
  }
  return {
    dataset: dataset.name,
    fingerprint: dataset.fingerprint,
    views: results,
    durationMs: now() - started,
  };
}

/** What {@link loadBatchFeatures} did. */
export interface LoadBatchFeaturesResult extends MaterializeResult {
  /** Why the feature tables were rebuilt first; `null` when they were up to date. */
  readonly rebuilt: string | null;
}

/**
 * The embedded node's start-up load: makes sure the feature tables of the data set in
 * `datasetDir` are up to date with it and with `definitions` (building them when missing or
 * stale, such as for a data set made before the definitions changed), then loads every batch view
 * into `store` (the in-memory store, empty at start, so every row is written).
 */
export async function loadBatchFeatures(
  store: OnlineStore,
  definitions: FeatureDefinitions,
  datasetDir: string,
  options: Omit<MaterializeOptions, 'views' | 'full'> = {},
): Promise<LoadBatchFeaturesResult> {
  if (batchViewsOf(definitions).length === 0) {
    const dataset = await readManifest(datasetDir);
    return {
      dataset: dataset.name,
      fingerprint: dataset.fingerprint,
      views: [],
      durationMs: 0,
      rebuilt: null,
    };
  }
  const rebuilt = await staleFeatureTables(datasetDir, definitions);
  if (rebuilt !== null) await buildFeatureTables(datasetDir, definitions);
  const result = await materializeDataset(store, definitions, datasetDir, {
    ...options,
    full: true,
  });
  return { ...result, rebuilt };
}
