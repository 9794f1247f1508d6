/**
 * The online store on Redis, through ioredis: the production implementation.
 *
 * Layout (every key under `<prefix>:fs:`):
 * - `<prefix>:fs:<view>:<entity>`: one string per entity per view, `<version>:<eventTimeMs>:<json>`
 *   where the JSON is `{"v": values, "s": state}`. Version and event time come first so the write
 *   script compares them without decoding JSON. Entity ids may hold any character (`:` included):
 *   keys are binary-safe and a view name never contains `:`.
 * - `<prefix>:fs:seen:<scope>:<id>`: a processed mark, expiring with `PX`.
 * - `<prefix>:fs:meta:<key>`: a meta value.
 *
 * A read of N entities is one `MGET`; a write batch is one `EVALSHA` of a Lua script that checks
 * every `ifVersion` first, then applies the rows and sets the marks, so the batch is atomic.
 *
 * Single instance only: the script touches many keys, and Redis Cluster runs a script only when
 * all of its keys hash to one slot, which rows of many entities do not. Use one Redis server (with
 * a replica for failover), not a cluster.
 *
 * When Redis is down, commands fail at once instead of queueing: no offline queue, no retry of a
 * command whose connection dropped, and a command timeout for a server that stopped answering.
 * They reject with `UnavailableError` (the ioredis error as `cause`); the layer above falls back to
 * defaults for reads and buffers writes for retry. The connection itself keeps reconnecting in the
 * background.
 */
import { Redis } from 'ioredis';
import { ConfigError, InternalError, RecsysError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { assertPrefix } from '../subjects.js';
import { FeatureRegistry } from './definitions.js';
import type {
  FeatureDefinitions,
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

/** Options of {@link RedisOnlineStore}. */
export interface RedisOnlineStoreOptions {
  /**
   * Redis URL (`redis://host:port`, `rediss://` for TLS). Either this or `client`.
   */
  url?: string;
  /**
   * An ioredis client to use instead of a URL. It stays its owner's: `close()` does not quit it,
   * and the timeout options below do not apply to it (its own settings do).
   */
  client?: Redis;
  /** Key prefix, the deployment prefix such as `recsys`; keys start `<prefix>:fs:`. */
  prefix: string;
  definitions: FeatureDefinitions;
  /** How long one connection attempt may take. @default 2000 */
  connectTimeoutMs?: number;
  /** A command without a reply after this long rejects with `UnavailableError`. @default 1000 */
  commandTimeoutMs?: number;
  /** Longest pause between reconnection attempts while Redis is down. @default 1000 */
  reconnectMaxDelayMs?: number;
  /** Logs losing and regaining the connection. @default no logging */
  log?: Logger;
}

/** Options of {@link RedisOnlineStore.connect}. */
export interface RedisOnlineStoreConnectOptions extends RedisOnlineStoreOptions {
  /** How long `connect` waits for the first connection before rejecting. @default 10000 */
  readyTimeoutMs?: number;
}

interface ResolvedTimeouts {
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  reconnectMaxDelayMs: number;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(name, `must be a positive integer (ms), got ${value}`);
  }
  return value;
}

/**
 * One script over every key of the batch: atomic on a single Redis server; on Redis Cluster it
 * would need every key in one hash slot, which is why the store assumes a single instance.
 *
 * ARGV: the number of rows, the marks' TTL, then per row `ifVersion` ('' for none), event time,
 * payload JSON, TTL ('0' for none). KEYS: the row keys, then the mark keys. Returns
 * `{1, written, stale}`, or `{0, row (1-based), stored version}` for an `ifVersion` that does not
 * hold, in which case nothing was written.
 */
const WRITE_SCRIPT = `
local n = tonumber(ARGV[1])
local function header(raw)
  if not raw then return 0, nil end
  local a = string.find(raw, ':', 1, true)
  local b = string.find(raw, ':', a + 1, true)
  return tonumber(string.sub(raw, 1, a - 1)), tonumber(string.sub(raw, a + 1, b - 1))
end
for i = 1, n do
  local expected = ARGV[2 + 4 * (i - 1) + 1]
  if expected ~= '' then
    local version = header(redis.call('GET', KEYS[i]))
    if version ~= tonumber(expected) then return {0, i, version} end
  end
end
local written, stale = 0, 0
for i = 1, n do
  local base = 2 + 4 * (i - 1)
  local raw = redis.call('GET', KEYS[i])
  local version, time = header(raw)
  if raw and time > tonumber(ARGV[base + 2]) then
    stale = stale + 1
  else
    local value = (version + 1) .. ':' .. ARGV[base + 2] .. ':' .. ARGV[base + 3]
    local ttl = tonumber(ARGV[base + 4])
    if ttl > 0 then
      redis.call('SET', KEYS[i], value, 'PX', ttl)
    else
      redis.call('SET', KEYS[i], value)
    end
    written = written + 1
  end
end
for j = n + 1, #KEYS do
  redis.call('SET', KEYS[j], '1', 'PX', ARGV[2])
end
return {1, written, stale}
`;

const WRITE_COMMAND = 'recsysFeatureStoreWrite';

/** The script as ioredis defines it: the key count first, then keys, then arguments. */
type WriteCommand = (numKeys: number, ...keysAndArgs: string[]) => Promise<unknown>;

/** Reply errors that mean "not now" rather than "never": the write may be retried. */
const TRANSIENT_REPLIES = ['LOADING', 'BUSY', 'OOM', 'READONLY', 'MASTERDOWN', 'TRYAGAIN'];

/** The payload JSON inside a stored value. */
interface Payload {
  v: Record<string, unknown>;
  s?: string;
}

export class RedisOnlineStore implements OnlineStore {
  readonly registry: FeatureRegistry;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly keyPrefix: string;
  private readonly target: string;
  private readonly log: Logger | undefined;
  private closed = false;
  private lastError: Error | undefined;
  private connectionLost = false;

  /**
   * Creates the store; a client made from `url` starts connecting at once. Commands sent before
   * the first connection is up reject: use {@link RedisOnlineStore.connect} to wait for it.
   */
  constructor(options: RedisOnlineStoreOptions) {
    this.registry = new FeatureRegistry(options.definitions);
    this.keyPrefix = `${assertPrefix(options.prefix)}:fs:`;
    this.log = options.log;
    const timeouts: ResolvedTimeouts = {
      connectTimeoutMs: positiveInt('connectTimeoutMs', options.connectTimeoutMs, 2_000),
      commandTimeoutMs: positiveInt('commandTimeoutMs', options.commandTimeoutMs, 1_000),
      reconnectMaxDelayMs: positiveInt('reconnectMaxDelayMs', options.reconnectMaxDelayMs, 1_000),
    };
    if ((options.url === undefined) === (options.client === undefined)) {
      throw new ConfigError('url', 'give either a Redis url or a client, not both or neither');
    }
    if (options.client !== undefined) {
      this.client = options.client;
      this.ownsClient = false;
      this.target = 'redis (given client)';
    } else {
      const url = options.url ?? '';
      this.target = redactUrl(url);
      this.client = new Redis(url, {
        connectTimeout: timeouts.connectTimeoutMs,
        commandTimeout: timeouts.commandTimeoutMs,
        // Fail fast while disconnected: no queue of commands waiting for the connection, and a
        // command in flight when it drops is rejected at once instead of resent on reconnect
        // (the layer above retries writes; a resent compare-and-set would conflict with itself).
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        retryStrategy: (times) => Math.min(times * 100, timeouts.reconnectMaxDelayMs),
      });
      this.ownsClient = true;
      this.client.on('error', (err: Error) => {
        this.lastError = err;
      });
      this.client.on('ready', () => {
        if (this.connectionLost)
          this.log?.info({ target: this.target }, 'online store reconnected');
        this.connectionLost = false;
      });
      this.client.on('close', () => {
        if (this.closed || this.connectionLost) return;
        this.connectionLost = true;
        this.log?.warn(
          { target: this.target, err: this.lastError },
          'online store connection lost',
        );
      });
    }
    this.client.defineCommand(WRITE_COMMAND, { lua: WRITE_SCRIPT });
  }

  /**
   * Creates a store and waits until its connection is ready. Rejects with `UnavailableError` when
   * Redis cannot be reached within `readyTimeoutMs`, so a wrong URL is a start-up error.
   */
  static async connect(options: RedisOnlineStoreConnectOptions): Promise<RedisOnlineStore> {
    const readyTimeoutMs = positiveInt('readyTimeoutMs', options.readyTimeoutMs, 10_000);
    const store = new RedisOnlineStore(options);
    try {
      await store.waitUntilReady(readyTimeoutMs);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /** Resolves once the connection is ready; rejects with `UnavailableError` after `timeoutMs`. */
  waitUntilReady(timeoutMs: number): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.client.off('end', onEnd);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onReady = (): void => done();
      const onEnd = (): void =>
        done(new UnavailableError(`${this.target}: connection ended`, { cause: this.lastError }));
      const timer = setTimeout(
        () =>
          done(
            new UnavailableError(`${this.target}: not ready within ${timeoutMs} ms`, {
              cause: this.lastError,
            }),
          ),
        timeoutMs,
      );
      this.client.on('ready', onReady);
      this.client.on('end', onEnd);
    });
  }

  async read(view: string, entities: readonly string[]): Promise<(StoredRow | null)[]> {
    this.checkOpen();
    this.registry.requestView(view);
    checkEntities(entities);
    if (entities.length === 0) return [];
    const keys = entities.map((entity) => this.rowKey(view, entity));
    let raw: (string | null)[];
    try {
      raw = await this.client.mget(keys);
    } catch (err) {
      throw this.storeError(err, 'read');
    }
    return raw.map((value, i) =>
      value === null ? null : this.decode(view, entities[i] ?? '', value),
    );
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    this.checkOpen();
    checkWriteBatch(this.registry, batch);
    const { rows, marks } = batch;
    const keys: string[] = rows.map(({ view, entity }) => this.rowKey(view, entity));
    const args: string[] = [String(rows.length), String(marks?.ttlMs ?? 0)];
    for (const { view, row, ifVersion } of rows) {
      const payload: Payload = { v: row.values };
      if (row.state !== undefined) payload.s = row.state;
      args.push(
        ifVersion === undefined ? '' : String(ifVersion),
        String(row.eventTimeMs),
        JSON.stringify(payload),
        String(this.registry.view(view).ttlMs),
      );
    }
    if (marks !== undefined) {
      for (const id of marks.ids) keys.push(this.markKey(marks.scope, id));
    }
    if (keys.length === 0) return { written: 0, stale: 0 };
    let reply: unknown;
    try {
      reply = await this.writeCommand()(keys.length, ...keys, ...args);
    } catch (err) {
      throw this.storeError(err, 'write');
    }
    const [ok, a, b] = Array.isArray(reply) ? (reply as unknown[]) : [];
    if (ok === 1 && typeof a === 'number' && typeof b === 'number') {
      return { written: a, stale: b };
    }
    const conflicted = ok === 0 && typeof a === 'number' ? rows[a - 1] : undefined;
    if (conflicted !== undefined) {
      throw conflictError(
        conflicted.view,
        conflicted.entity,
        typeof b === 'number' ? b : 0,
        conflicted.ifVersion ?? 0,
      );
    }
    throw new InternalError(`online store write: unexpected reply ${JSON.stringify(reply)}`);
  }

  async processed(scope: string, ids: readonly string[]): Promise<boolean[]> {
    this.checkOpen();
    checkScope(scope);
    checkMarkIds(ids);
    if (ids.length === 0) return [];
    let raw: (string | null)[];
    try {
      raw = await this.client.mget(ids.map((id) => this.markKey(scope, id)));
    } catch (err) {
      throw this.storeError(err, 'processed');
    }
    return raw.map((value) => value !== null);
  }

  async getMeta(key: string): Promise<string | null> {
    this.checkOpen();
    checkMetaKey(key);
    try {
      return await this.client.get(this.metaKey(key));
    } catch (err) {
      throw this.storeError(err, 'getMeta');
    }
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.checkOpen();
    checkMetaKey(key);
    checkMetaValue(value);
    try {
      await this.client.set(this.metaKey(key), value);
    } catch (err) {
      throw this.storeError(err, 'setMeta');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ownsClient) return;
    if (this.client.status === 'ready') {
      try {
        await this.client.quit();
        return;
      } catch {
        // The connection dropped while quitting: nothing left to close gracefully.
      }
    }
    this.client.disconnect();
  }

  /** The key of one entity's row of one view. */
  rowKey(view: string, entity: string): string {
    return `${this.keyPrefix}${view}:${entity}`;
  }

  private markKey(scope: string, id: string): string {
    return `${this.keyPrefix}seen:${scope}:${id}`;
  }

  private metaKey(key: string): string {
    return `${this.keyPrefix}meta:${key}`;
  }

  private writeCommand(): WriteCommand {
    // Defined at run time by `defineCommand`, so the client's type does not know it.
    const command = (this.client as unknown as Record<string, WriteCommand | undefined>)[
      WRITE_COMMAND
    ];
    if (command === undefined) throw new InternalError(`${WRITE_COMMAND} is not defined`);
    return command.bind(this.client);
  }

  private decode(view: string, entity: string, raw: string): StoredRow {
    const first = raw.indexOf(':');
    const second = first < 0 ? -1 : raw.indexOf(':', first + 1);
    const version = Number(raw.slice(0, first));
    const eventTimeMs = Number(raw.slice(first + 1, second));
    let payload: Payload | undefined;
    if (second > 0) {
      try {
        payload = JSON.parse(raw.slice(second + 1)) as Payload;
      } catch {
        payload = undefined;
      }
    }
    if (
      !Number.isSafeInteger(version) ||
      version <= 0 ||
      !Number.isFinite(eventTimeMs) ||
      typeof payload !== 'object' ||
      payload === null ||
      typeof payload.v !== 'object' ||
      payload.v === null
    ) {
      throw new InternalError(
        `online store: undecodable value at ${this.rowKey(view, entity)} (not written by this store)`,
        { data: { view, entity } },
      );
    }
    const row: StoredRow = {
      values: this.registry.completeValues(view, payload.v),
      eventTimeMs,
      version,
      ...(typeof payload.s === 'string' ? { state: payload.s } : {}),
    };
    return row;
  }

  private checkOpen(): void {
    if (this.closed) throw new UnavailableError('online store is closed');
  }

  private storeError(err: unknown, operation: string): Error {
    if (err instanceof RecsysError) return err;
    const error = err instanceof Error ? err : new Error(String(err));
    const message = `online store ${operation} on ${this.target}: ${error.message}`;
    if (error.name === 'ReplyError') {
      const transient = TRANSIENT_REPLIES.some((code) => error.message.startsWith(code));
      return transient
        ? new UnavailableError(message, { cause: error })
        : new InternalError(message, { cause: error });
    }
    // Connection refused or closed, timed out, not connected: Redis is unreachable for now.
    return new UnavailableError(message, { cause: error });
  }
}

/** A URL for messages and logs: without its password. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis (unparseable url)';
  }
}
