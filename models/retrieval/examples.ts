/**
 * Training examples from an event log. Each positive event is one example: the user as they were
 * just before it (id, profile, the last N items they interacted with before this event) and the
 * item of the event as the positive.
 *
 * Which events are positives: by default every event (`all`), because the evaluation protocol
 * counts any later interaction as a hit and the serving session keeps views as well as clicks.
 * `engaged` keeps clicks, likes, purchases and ratings, falling back to every event when a data
 * set has nothing but views. Histories always hold every event type, as the serving session does.
 */
import type { EventTable } from '../data/types.js';
import { EventType } from '../data/types.js';

export const PositiveEvents = {
  /** Every event type is a positive. */
  All: 'all',
  /** Clicks, likes, purchases and ratings (views only when there is nothing else). */
  Engaged: 'engaged',
} as const;
export type PositiveEvents = (typeof PositiveEvents)[keyof typeof PositiveEvents];

export interface TrainingExamples {
  /** Events grouped by user in time order: user u's items are `items[offsets[u] .. offsets[u+1])`. */
  readonly offsets: Int32Array;
  readonly items: Int32Array;
  /** User of each entry of `items`. */
  readonly userOf: Int32Array;
  /** Time of each entry of `items` (epoch ms). */
  readonly ts: Float64Array;
  /** Positions in `items` of the positive events: one example each. */
  readonly examples: Int32Array;
  /** Positive examples per item (the sampling frequency behind the logQ correction). */
  readonly itemCounts: Float64Array;
}

/** Groups `events` by user (stable, so in time order) and picks the positives. */
export function buildExamples(
  events: EventTable,
  users: number,
  items: number,
  positives: PositiveEvents = PositiveEvents.All,
): TrainingExamples {
  const n = events.length;
  let engagedOnly = positives === PositiveEvents.Engaged;
  if (engagedOnly) {
    let engaged = 0;
    for (let e = 0; e < n; e++) if (events.type[e] !== EventType.View) engaged++;
    if (engaged === 0) engagedOnly = false;
  }
  const offsets = new Int32Array(users + 1);
  for (let e = 0; e < n; e++) {
    const u = events.user[e] as number;
    const i = events.item[e] as number;
    if (!(u >= 0 && u < users)) throw new RangeError(`event ${e} names user ${u} of ${users}`);
    if (!(i >= 0 && i < items)) throw new RangeError(`event ${e} names item ${i} of ${items}`);
    offsets[u + 1] = (offsets[u + 1] as number) + 1;
  }
  for (let u = 0; u < users; u++)
    offsets[u + 1] = (offsets[u + 1] as number) + (offsets[u] as number);
  const next = offsets.slice(0, users);
  const grouped = new Int32Array(n);
  const userOf = new Int32Array(n);
  const ts = new Float64Array(n);
  const positive = new Uint8Array(n);
  for (let e = 0; e < n; e++) {
    const u = events.user[e] as number;
    const at = next[u] as number;
    grouped[at] = events.item[e] as number;
    userOf[at] = u;
    ts[at] = events.ts[e] as number;
    positive[at] = !engagedOnly || events.type[e] !== EventType.View ? 1 : 0;
    next[u] = at + 1;
  }
  let count = 0;
  for (let p = 0; p < n; p++) count += positive[p] as number;
  const examples = new Int32Array(count);
  const itemCounts = new Float64Array(items);
  let k = 0;
  for (let p = 0; p < n; p++) {
    if (positive[p] !== 1) continue;
    examples[k++] = p;
    const i = grouped[p] as number;
    itemCounts[i] = (itemCounts[i] as number) + 1;
  }
  return { offsets, items: grouped, userOf, ts, examples, itemCounts };
}
