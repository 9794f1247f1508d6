/**
 * Picks the online store of a deployment: in memory when everything runs in one process
 * (`inproc`), Redis when hosts spread over NATS (`nats`), the same rule as the rest of the runtime.
 *
 * The memory store lives in the process that opened it: open it once and hand the same store to
 * every user in the process, or they will not see each other's writes.
 */
import type { Transport } from '../config/schema.js';
import type { Logger } from '../log.js';
import { MemoryOnlineStore } from './memory-store.js';
import { RedisOnlineStore } from './redis-store.js';
import type { FeatureDefinitions, OnlineStore } from './types.js';

/** Options of {@link openOnlineStore}. */
export interface OpenOnlineStoreOptions {
  /** `inproc`: in memory; `nats`: Redis at `redisUrl`. */
  transport: Transport;
  /** Used with `nats` only. */
  redisUrl: string;
  /** Deployment prefix; Redis keys start `<prefix>:fs:`. */
  prefix: string;
  definitions: FeatureDefinitions;
  /** Clock of the memory store's TTLs. @default () => Date.now() */
  now?: () => number;
  /** Redis: how long to wait for the first connection. @default 10000 */
  readyTimeoutMs?: number;
  /** Redis: how long one connection attempt may take. @default 2000 */
  connectTimeoutMs?: number;
  /** Redis: a command without a reply after this long rejects. @default 1000 */
  commandTimeoutMs?: number;
  /** Redis: logs losing and regaining the connection. */
  log?: Logger;
}

/**
 * Opens the online store of a deployment. With `nats`, resolves once Redis is connected and
 * rejects with `UnavailableError` when it cannot be reached within `readyTimeoutMs`.
 */
export async function openOnlineStore(options: OpenOnlineStoreOptions): Promise<OnlineStore> {
  if (options.transport === 'inproc') {
    return new MemoryOnlineStore({ definitions: options.definitions, now: options.now });
  }
  return RedisOnlineStore.connect({
    url: options.redisUrl,
    prefix: options.prefix,
    definitions: options.definitions,
    readyTimeoutMs: options.readyTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    commandTimeoutMs: options.commandTimeoutMs,
    log: options.log,
  });
}
