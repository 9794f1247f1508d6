/**
 * How fast popularity goes stale in a data set, measured on its own training events: the
 * half-life of an exponentially decayed popularity ranking that best predicts the last tenth of
 * the training period from what came before (recall@100 of the items each user went on to touch,
 * their earlier items excluded). Counting only, no training: milliseconds on a million events.
 *
 * The trainer draws its simulated new users with this half-life, so the cold-start vector learns
 * what is popular now, at the pace the data itself moves (months in a twenty-year film log, a day
 * or two in a catalogue with a stream of fresh items).
 */
import type { EventTable } from '../data/types.js';
import { Rng } from './rng.js';

const DAY_MS = 86_400_000;

export interface HalfLifeChoice {
  /** The chosen half-life in days; 0 when no decay predicted best. */
  readonly halfLifeDays: number;
  /** Recall@100 on the validation slice of each candidate (0 = no decay). */
  readonly candidates: ReadonlyArray<{ readonly halfLifeDays: number; readonly recall: number }>;
  readonly validationUsers: number;
}

export interface ChooseHalfLifeOptions {
  /** Share of the training events (the latest) used to validate. @default 0.1 */
  readonly validationShare?: number;
  /** Validation users sampled at most. @default 2000 */
  readonly maxUsers?: number;
  /** @default 100 */
  readonly k?: number;
  /** @default 0 */
  readonly seed?: number;
}

/** Picks the popularity half-life for `events` (sorted by time); see the module comment. */
export function choosePopularityHalfLife(
  events: EventTable,
  itemCount: number,
  options: ChooseHalfLifeOptions = {},
): HalfLifeChoice {
  const n = events.length;
  const none: HalfLifeChoice = { halfLifeDays: 0, candidates: [], validationUsers: 0 };
  if (n < 20) return none;
  const split = Math.floor(n * (1 - (options.validationShare ?? 0.1)));
  const cutoff = events.ts[split] as number;
  let at = split;
  while (at > 0 && (events.ts[at - 1] as number) >= cutoff) at--;
  const first = events.ts[0] as number;
  const spanDays = (cutoff - first) / DAY_MS;
  if (at === 0 || at === n || !(spanDays > 0)) return none;

  // Each validation user's earlier items (excluded) and later items (the truth).
  const seen = new Map<number, Set<number>>();
  for (let e = 0; e < at; e++) {
    const u = events.user[e] as number;
    let set = seen.get(u);
    if (set === undefined) seen.set(u, (set = new Set()));
    set.add(events.item[e] as number);
  }
  const truth = new Map<number, Set<number>>();
  for (let e = at; e < n; e++) {
    const u = events.user[e] as number;
    const item = events.item[e] as number;
    if (seen.get(u)?.has(item) === true) continue;
    let set = truth.get(u);
    if (set === undefined) truth.set(u, (set = new Set()));
    set.add(item);
  }
  let users = [...truth.keys()].sort((a, b) => a - b);
  const maxUsers = options.maxUsers ?? 2000;
  if (users.length > maxUsers) {
    const picked = Int32Array.from(users);
    new Rng(options.seed ?? 0).shuffle(picked);
    users = Array.from(picked.subarray(0, maxUsers)).sort((a, b) => a - b);
  }
  const k = options.k ?? 100;
  const halfLives = [0];
  for (let d = 2; d <= 256; d *= 2) halfLives.push(spanDays / d);
  const scores = new Float64Array(itemCount);
  const candidates = halfLives.map((halfLifeDays) => {
    scores.fill(0);
    const rate = halfLifeDays === 0 ? 0 : Math.LN2 / (halfLifeDays * DAY_MS);
    for (let e = 0; e < at; e++) {
      const i = events.item[e] as number;
      scores[i] = (scores[i] as number) + Math.exp(-rate * (cutoff - (events.ts[e] as number)));
    }
    const order = Array.from({ length: itemCount }, (_, i) => i).sort(
      (a, b) => (scores[b] as number) - (scores[a] as number) || a - b,
    );
    let recall = 0;
    for (const u of users) {
      const exclude = seen.get(u);
      const want = truth.get(u) as Set<number>;
      let taken = 0;
      let hits = 0;
      for (let r = 0; r < order.length && taken < k; r++) {
        const item = order[r] as number;
        if (exclude?.has(item) === true) continue;
        taken++;
        if (want.has(item)) hits++;
      }
      recall += hits / want.size;
    }
    return { halfLifeDays, recall: users.length === 0 ? 0 : recall / users.length };
  });
  let best = candidates[0] as (typeof candidates)[number];
  for (const c of candidates) if (c.recall > best.recall) best = c;
  return { halfLifeDays: best.halfLifeDays, candidates, validationUsers: users.length };
}
