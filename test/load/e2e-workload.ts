/**
 * What the end-to-end load asks: recommendations for a population of users, a few of them hot and
 * most of them rare (Zipf over the data set's users, in a seeded random order so the hot ones are
 * not the first ids), plus a share of users nobody has seen (cold start, each a fresh id); and
 * feedback: after every few recommendations, a click on an item of a recent reply.
 */
import type { RecommendReply } from '../../actors/user/messages.js';
import { prng } from '../helpers/assertions.js';

export interface WorkloadOptions {
  /** The data set's user ids (the retrieval model's `user_ids.json`). */
  users: readonly string[];
  /** Exponent of the Zipf law over known users. @default 0.9 */
  zipfExponent?: number;
  /** Share of recommendations for users never seen. @default 0.05 */
  unknownShare?: number;
  /** Recommendations per feedback event. @default 5 */
  recommendsPerFeedback?: number;
  /** Items asked per recommendation. @default 10 */
  count?: number;
  seed?: number;
}

export type Operation =
  | { kind: 'recommend'; userId: string; body: { user_id: string; count: number } }
  | {
      kind: 'feedback';
      userId: string;
      itemId: string;
      body: { user_id: string; item_id: string; event_type: 'click' };
    };

/** Replies remembered for clicks: the most recent ones, each clicked at most once. */
const RECENT_REPLIES = 4096;

export class Workload {
  private readonly users: readonly string[];
  private readonly cumulative: Float64Array;
  private readonly order: Int32Array;
  private readonly random: () => number;
  private readonly unknownShare: number;
  private readonly period: number;
  private readonly count: number;
  private readonly recent: { userId: string; items: string[] }[] = [];
  private unknownSerial = 0;
  private readonly runId = Date.now().toString(36);

  constructor(options: WorkloadOptions) {
    if (options.users.length === 0) throw new RangeError('users must not be empty');
    this.users = options.users;
    this.random = prng(options.seed ?? 17);
    this.unknownShare = options.unknownShare ?? 0.05;
    this.period = (options.recommendsPerFeedback ?? 5) + 1;
    this.count = options.count ?? 10;
    const exponent = options.zipfExponent ?? 0.9;
    const n = options.users.length;
    this.cumulative = new Float64Array(n);
    let total = 0;
    for (let r = 0; r < n; r++) {
      total += 1 / (r + 1) ** exponent;
      this.cumulative[r] = total;
    }
    // Rank r is user order[r]: a seeded shuffle (Fisher-Yates).
    this.order = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      const t = this.order[i]!;
      this.order[i] = this.order[j]!;
      this.order[j] = t;
    }
  }

  /** A known user by Zipf rank. */
  knownUser(): string {
    const total = this.cumulative[this.cumulative.length - 1]!;
    const target = this.random() * total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    return this.users[this.order[lo]!]!;
  }

  /** A user drawn uniformly from the data set (the read-your-writes sample). */
  anyKnownUser(): string {
    return this.users[Math.floor(this.random() * this.users.length)]!;
  }

  /** A user id nobody has seen. */
  unknownUser(): string {
    return `e2e-new-${this.runId}-${this.unknownSerial++}`;
  }

  /** The `i`-th operation of the load: every `period`-th a click, when a reply is there to click. */
  next(i: number): Operation {
    if (i % this.period === this.period - 1) {
      const reply = this.recent.pop();
      const itemId =
        reply === undefined
          ? undefined
          : reply.items[Math.floor(this.random() * reply.items.length)];
      if (reply !== undefined && itemId !== undefined) {
        return {
          kind: 'feedback',
          userId: reply.userId,
          itemId,
          body: { user_id: reply.userId, item_id: itemId, event_type: 'click' },
        };
      }
    }
    const userId = this.random() < this.unknownShare ? this.unknownUser() : this.knownUser();
    return { kind: 'recommend', userId, body: { user_id: userId, count: this.count } };
  }

  /** Remembers a reply's items, for a later click. */
  replied(reply: RecommendReply): void {
    if (reply.items.length === 0) return;
    this.recent.push({ userId: reply.user_id, items: reply.items.map((item) => item.item_id) });
    if (this.recent.length > RECENT_REPLIES) this.recent.shift();
  }
}
