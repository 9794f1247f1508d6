/**
 * Readiness of what a recommendation needs, for `GET /ready`: the user actors (every partition
 * owned by some host, from their services' `$SRV.STATS`), each item shard and the ranker slot the
 * default variant scores with (each answers its `stats`), and the events stream (answers `info`).
 * All checks run at once under one short budget; each says what it found, so a 503 tells an
 * operator what is missing rather than only that something is.
 */
import type { ActorClient } from '../runtime/client/client.js';
import { toRecsysError } from '../runtime/errors.js';
import { discoverServices } from '../runtime/services/discover.js';
import type { EventStream } from '../runtime/stream/index.js';
import { within } from '../runtime/timeouts.js';
import type { Transport } from '../runtime/transport/types.js';
import { ITEMS_KIND } from '../actors/item-shard/messages.js';
import type { ItemShardProtocol } from '../actors/item-shard/messages.js';
import type { RankerProtocol } from '../actors/ranker/messages.js';
import { USER_KIND } from '../actors/user/messages.js';

/**
 * The `rank` actor kind's name (its subject token). Written out here: the gateway imports the
 * actors' protocols, not their implementations, where the constant lives.
 */
export const RANK_KIND = 'rank';

export interface CheckResult {
  ok: boolean;
  /** What was found: `64/64 partitions owned by 1 host`, `no responders`, ... */
  detail: string;
}

export interface ReadyReport {
  ready: boolean;
  /** Names of the checks that failed, in check order. */
  not_ready: string[];
  checks: Record<string, CheckResult>;
}

/** Asked by `GET /ready`. */
export type ReadyCheck = () => Promise<ReadyReport>;

export interface ReadyCheckOptions {
  client: ActorClient;
  /** The transport the client uses, for the `$SRV.STATS` scatter. */
  transport: Transport;
  events: EventStream;
  prefix: string;
  partitions: number;
  /** `items.shards`: shards 0..S-1 must each answer. */
  shards: number;
  /** `recommend.ranker_slot`. */
  rankerSlot: string;
  /** Budget of every check, ms. @default 500 */
  timeoutMs?: number;
}

/**
 * How long the user actors' `$SRV.STATS` replies are collected, at most, ms. Every host answers at
 * once (it is a subscription, not an actor message), so this is plenty even across NATS.
 */
const STATS_WINDOW_MS = 150;

/** Fails a check with what was found (not an error of the check itself). */
class NotReady extends Error {}

async function check(run: () => Promise<string>): Promise<CheckResult> {
  try {
    return { ok: true, detail: await run() };
  } catch (err) {
    if (err instanceof NotReady) return { ok: false, detail: err.message };
    const e = toRecsysError(err);
    return { ok: false, detail: `${e.code}: ${e.message}` };
  }
}

export function createReadyCheck(options: ReadyCheckOptions): ReadyCheck {
  const timeoutMs = options.timeoutMs ?? 500;
  const service = `${options.prefix.replaceAll('.', '_')}-${USER_KIND}`;
  const shards = options.client.grouped<ItemShardProtocol>(ITEMS_KIND);
  const ranker = options.client.grouped<RankerProtocol>(RANK_KIND);

  const users = async (): Promise<string> => {
    // A scatter collects replies until its window closes: keep it short, so /ready stays fast.
    const replies = await discoverServices(options.transport, 'STATS', {
      name: service,
      timeoutMs: Math.min(timeoutMs, STATS_WINDOW_MS),
    });
    if (replies.length === 0) throw new NotReady(`no host runs the ${USER_KIND} actor`);
    const owned = new Set<number>();
    for (const reply of replies) {
      const data = reply.endpoints[0]?.data as { partitions?: unknown } | undefined;
      if (Array.isArray(data?.partitions)) {
        for (const p of data.partitions) if (typeof p === 'number') owned.add(p);
      }
    }
    const detail = `${owned.size}/${options.partitions} partitions owned by ${replies.length} host${
      replies.length === 1 ? '' : 's'
    }`;
    if (owned.size < options.partitions) throw new NotReady(detail);
    return detail;
  };

  const shard = (s: number) => async (): Promise<string> => {
    const stats = await shards.ask(String(s), 'stats', {}, { timeoutMs });
    return `${stats.vectors} items, index ${stats.index_version}`;
  };

  const rank = async (): Promise<string> => {
    const stats = await ranker.ask(options.rankerSlot, 'stats', {}, { timeoutMs });
    if (stats.model_version === null) throw new NotReady('no model loaded');
    return `${stats.model_kind ?? 'model'} ${stats.model_version}`;
  };

  const events = async (): Promise<string> => {
    const info = await within(
      options.events.info(),
      timeoutMs,
      () => new NotReady(`no answer within ${timeoutMs} ms`),
    );
    return `stream ${info.name}, ${info.messages} messages`;
  };

  const named: Array<[string, () => Promise<string>]> = [
    [USER_KIND, users],
    ...Array.from({ length: options.shards }, (_, s): [string, () => Promise<string>] => [
      `${ITEMS_KIND}.${s}`,
      shard(s),
    ]),
    [`${RANK_KIND}.${options.rankerSlot}`, rank],
    ['events', events],
  ];

  return async () => {
    const results = await Promise.all(
      named.map(async ([name, run]) => [name, await check(run)] as const),
    );
    const checks: Record<string, CheckResult> = {};
    const notReady: string[] = [];
    for (const [name, result] of results) {
      checks[name] = result;
      if (!result.ok) notReady.push(name);
    }
    return { ready: notReady.length === 0, not_ready: notReady, checks };
  };
}
