/**
 * The live session of one user, in memory: what the user actor knows beyond the batch features.
 * Pure: every method that depends on time takes the time, so a test drives it with explicit
 * clocks.
 *
 * - Feedback events in sliding windows (`events.windows_minutes`), counted per type, with the
 *   categories of their items; events older than the longest window leave the windows.
 * - Items seen (interacted with) and items served (shown by a recommendation, forgotten after
 *   `servedTtlMs`): both are kept out of the next recommendations. Each list holds at most
 *   `maxItems`, the oldest forgotten first.
 * - Applied event ids: an event applied once is skipped when it comes again (the gateway's
 *   `observe`, the stream feed and a replay may all bring the same event). The newest
 *   `4 × maxItems` ids are remembered.
 * - The history the user tower pools: the user's batch history (the `recent_items` of the
 *   `user_profile` view, as of that row's event time) followed by the items of the session's
 *   events after it, in event-time order, the last `historyLength`.
 */
import { FEEDBACK_TYPES } from '../../runtime/events/feedback.js';
import type { FeedbackType } from '../../runtime/events/feedback.js';

const MINUTE_MS = 60_000;

export interface SessionOptions {
  /** Sliding windows, in minutes, shortest first (`events.windows_minutes`). */
  windowsMinutes: readonly number[];
  /** A served item is kept out of recommendations this long; 0 keeps none. */
  servedTtlMs: number;
  /** Seen items, and served items, remembered at most (`recommend.max_session_items`). */
  maxItems: number;
  /** Items the user tower pools (the model's `historyLength`). */
  historyLength: number;
}

/** A feedback event as the session keeps it: its item's category looked up (`''` unknown). */
export interface SessionEvent {
  readonly event_id: string;
  readonly item_id: string;
  readonly type: FeedbackType;
  readonly ts_ms: number;
  readonly category: string;
}

interface Timed {
  readonly ts: number;
  readonly item: string;
}

interface WindowEvent {
  readonly ts: number;
  readonly type: FeedbackType;
  readonly category: string;
}

/** Validates the options once, naming the option. */
export function checkSessionOptions(options: SessionOptions): SessionOptions {
  const { windowsMinutes, servedTtlMs, maxItems, historyLength } = options;
  if (
    windowsMinutes.length === 0 ||
    !windowsMinutes.every(
      (w, i) => Number.isFinite(w) && w > 0 && (i === 0 || w > windowsMinutes[i - 1]!),
    )
  ) {
    throw new RangeError('windowsMinutes must be positive and increasing');
  }
  if (!Number.isFinite(servedTtlMs) || servedTtlMs < 0) {
    throw new RangeError('servedTtlMs must be a non-negative number');
  }
  if (!Number.isSafeInteger(maxItems) || maxItems < 1) {
    throw new RangeError('maxItems must be a positive integer');
  }
  if (!Number.isSafeInteger(historyLength) || historyLength < 1) {
    throw new RangeError('historyLength must be a positive integer');
  }
  return options;
}

/** Sets `key` as the newest entry of an insertion-ordered map, dropping the oldest past `max`. */
function touch<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value!);
}

/** Inserts into a list sorted by `ts` (after equal times), keeping the last `max`. */
function insertByTime<T extends { readonly ts: number }>(list: T[], entry: T, max: number): void {
  let at = list.length;
  while (at > 0 && list[at - 1]!.ts > entry.ts) at--;
  list.splice(at, 0, entry);
  if (list.length > max) list.splice(0, list.length - max);
}

export class Session {
  private readonly windowsMs: readonly number[];
  private readonly longestMs: number;
  /** Event ids applied, oldest first. */
  private readonly applied = new Set<string>();
  /** Item → time of its newest event; oldest interaction first. */
  private readonly seenItems = new Map<string, number>();
  /** Item → time it was last served; oldest first. */
  private readonly servedItems = new Map<string, number>();
  /** Events of the longest window (and possibly older, until pruned), in time order. */
  private readonly recent: WindowEvent[] = [];
  /** The session's history, in time order, the last `historyLength`. */
  private readonly sessionHistory: Timed[] = [];
  private batchHistory: readonly string[] = [];
  private batchAsOfMs = Number.NEGATIVE_INFINITY;
  private appliedCount = 0;

  constructor(private readonly options: SessionOptions) {
    checkSessionOptions(options);
    this.windowsMs = options.windowsMinutes.map((m) => m * MINUTE_MS);
    this.longestMs = this.windowsMs[this.windowsMs.length - 1]!;
  }

  /** Feedback events applied (duplicates not counted). */
  get events(): number {
    return this.appliedCount;
  }

  /** Whether the event with this id was applied already. */
  has(eventId: string): boolean {
    return this.applied.has(eventId);
  }

  /**
   * Applies one event; false (and nothing changes) when its id was applied before. `nowMs` only
   * prunes the windows.
   */
  apply(event: SessionEvent, nowMs: number): boolean {
    if (this.applied.has(event.event_id)) return false;
    this.applied.add(event.event_id);
    while (this.applied.size > 4 * this.options.maxItems) {
      this.applied.delete(this.applied.values().next().value!);
    }
    this.appliedCount++;
    const seenAt = this.seenItems.get(event.item_id);
    touch(
      this.seenItems,
      event.item_id,
      Math.max(seenAt ?? event.ts_ms, event.ts_ms),
      this.options.maxItems,
    );
    insertByTime(
      this.recent,
      { ts: event.ts_ms, type: event.type, category: event.category },
      this.options.maxItems,
    );
    insertByTime(
      this.sessionHistory,
      { ts: event.ts_ms, item: event.item_id },
      this.options.historyLength,
    );
    this.prune(nowMs);
    return true;
  }

  /** Remembers items as served at `atMs` (nothing when the served TTL is 0). */
  markServed(items: readonly string[], atMs: number): void {
    if (this.options.servedTtlMs === 0) return;
    for (const item of items) touch(this.servedItems, item, atMs, this.options.maxItems);
    this.prune(atMs);
  }

  /**
   * The user's history before the session: `items` oldest first, true as of `asOfMs` (session
   * events at or before it are in it already, and are not pooled twice).
   */
  setBatchHistory(items: readonly string[], asOfMs: number): void {
    this.batchHistory = items;
    this.batchAsOfMs = Number.isNaN(asOfMs) ? Number.NEGATIVE_INFINITY : asOfMs;
  }

  /** Whether the user has a batch history. */
  get hasBatchHistory(): boolean {
    return this.batchHistory.length > 0;
  }

  /** The items the user tower pools, oldest first. */
  history(): string[] {
    const after = this.sessionHistory.filter((h) => h.ts > this.batchAsOfMs).map((h) => h.item);
    const all = [...this.batchHistory, ...after];
    return all.slice(Math.max(0, all.length - this.options.historyLength));
  }

  /** Items not to recommend at `nowMs`: seen, served and not expired, and the batch history. */
  excluded(nowMs: number): Set<string> {
    this.prune(nowMs);
    const out = new Set<string>(this.batchHistory);
    for (const item of this.seenItems.keys()) out.add(item);
    for (const item of this.servedItems.keys()) out.add(item);
    return out;
  }

  /** Items seen, and served items not expired at `nowMs`. */
  counts(nowMs: number): { seen: number; served: number } {
    this.prune(nowMs);
    return { seen: this.seenItems.size, served: this.servedItems.size };
  }

  /** Events per type in each window ending at `nowMs`, keyed `<minutes>m`. */
  windows(nowMs: number): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    this.options.windowsMinutes.forEach((minutes, w) => {
      const from = nowMs - this.windowsMs[w]!;
      const counts: Record<string, number> = {};
      for (const type of FEEDBACK_TYPES) counts[type] = 0;
      for (const event of this.recent) {
        if (event.ts > from && event.ts <= nowMs) counts[event.type]!++;
      }
      out[`${minutes}m`] = counts;
    });
    return out;
  }

  /** Categories of the events in the longest window ending at `nowMs`, most first. */
  categories(nowMs: number): { category: string; count: number }[] {
    const from = nowMs - this.longestMs;
    const counts = new Map<string, number>();
    for (const event of this.recent) {
      if (event.ts <= from || event.ts > nowMs || event.category === '') continue;
      counts.set(event.category, (counts.get(event.category) ?? 0) + 1);
    }
    return [...counts]
      .map(([category, count]) => ({ category, count }))
      .sort((a, b) => b.count - a.count || (a.category < b.category ? -1 : 1));
  }

  /** Drops window events older than the longest window, and expired served items. */
  private prune(nowMs: number): void {
    const from = nowMs - this.longestMs;
    let drop = 0;
    while (drop < this.recent.length && this.recent[drop]!.ts <= from) drop++;
    if (drop > 0) this.recent.splice(0, drop);
    const expiry = nowMs - this.options.servedTtlMs;
    for (const [item, at] of this.servedItems) {
      if (at > expiry) break;
      this.servedItems.delete(item);
    }
  }
}
