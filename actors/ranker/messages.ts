/**
 * The protocol of the `rank` actor: score a user's candidates with the ranker a model slot serves.
 * Stateless: any replica of the slot's group answers, so the group is a NATS queue group.
 *
 *   nats req recsys.rank.gbdt.rank '{"user_id":"u1","candidates":[{"item_id":"i1","score":0.8}]}'
 *
 * Wire fields are snake_case.
 */
import { BadRequestError } from '../../runtime/errors.js';
import { onlyKeys, plainObject } from '../message-fields.js';
import { checkEntityId } from '../../runtime/features/definitions.js';

export interface RankCandidate {
  item_id: string;
  /** The retrieval score (the two-tower similarity), a feature of the ranker. */
  score: number;
}

export interface RankRequest {
  user_id: string;
  /** 1..{@link MAX_CANDIDATES} items, each once. */
  candidates: RankCandidate[];
  /** The time features are taken at (epoch ms); the ranker's clock when absent. */
  now_ms?: number;
  /**
   * Answer only the best `top_k` (1..{@link MAX_CANDIDATES}); every candidate when absent. Every
   * candidate is scored either way: it keeps the reply, which the caller decodes, small.
   */
  top_k?: number;
}

export interface RankedItem {
  item_id: string;
  /** The ranker's score: larger is better (not a probability). */
  score: number;
}

export interface RankReply {
  /** Every candidate (or the best `top_k`), best first. */
  items: RankedItem[];
  /** The model version that scored them. */
  model_version: string;
  /** Feature views that could not be read in time: their features were the defaults. */
  degraded: string[];
}

export interface RankerStats {
  slot: string;
  model_version: string | null;
  model_kind: string | null;
  model_dir: string | null;
  /** Requests scored, and candidates per request (mean and largest). */
  requests: number;
  batch_mean: number;
  batch_max: number;
  /** Time to assemble features and score, ms: median and 99th percentile of recent requests. */
  latency_p50_ms: number | null;
  latency_p99_ms: number | null;
  /** Model loads that failed (the previous version went on serving). */
  load_failures: number;
}

export type RankerProtocol = {
  rank: { request: RankRequest; reply: RankReply };
  stats: { request: Record<string, never>; reply: RankerStats };
};

/** Most candidates one `rank` may carry. */
export const MAX_CANDIDATES = 1000;

export function validateRank(payload: unknown): RankRequest {
  const request = plainObject(payload, 'request');
  onlyKeys(request, ['user_id', 'candidates', 'now_ms', 'top_k']);
  const { user_id, candidates, now_ms, top_k } = request;
  checkEntityId(user_id, 'user_id');
  if (!Array.isArray(candidates) || candidates.length === 0 || candidates.length > MAX_CANDIDATES) {
    throw new BadRequestError('candidates', `must be an array of 1..${MAX_CANDIDATES} candidates`);
  }
  const seen = new Set<string>();
  const checked = candidates.map((candidate: unknown, i): RankCandidate => {
    const at = `candidates[${i}]`;
    const fields = plainObject(candidate, at);
    onlyKeys(fields, ['item_id', 'score'], `${at}.`);
    const { item_id, score } = fields;
    checkEntityId(item_id, `${at}.item_id`);
    if (typeof score !== 'number' || !Number.isFinite(score)) {
      throw new BadRequestError(`${at}.score`, 'must be a finite number');
    }
    if (seen.has(item_id)) throw new BadRequestError(`${at}.item_id`, `repeats ${item_id}`);
    seen.add(item_id);
    return { item_id, score };
  });
  if (
    now_ms !== undefined &&
    (typeof now_ms !== 'number' || !Number.isFinite(now_ms) || now_ms < 0)
  ) {
    throw new BadRequestError('now_ms', 'must be a non-negative epoch-ms number');
  }
  if (
    top_k !== undefined &&
    (typeof top_k !== 'number' || !Number.isInteger(top_k) || top_k < 1 || top_k > MAX_CANDIDATES)
  ) {
    throw new BadRequestError('top_k', `must be an integer in 1..${MAX_CANDIDATES}`);
  }
  return {
    user_id,
    candidates: checked,
    ...(now_ms === undefined ? {} : { now_ms }),
    ...(top_k === undefined ? {} : { top_k }),
  };
}

export function validateStats(payload: unknown): Record<string, never> {
  if (payload !== undefined) onlyKeys(plainObject(payload, 'request'), []);
  return {};
}
