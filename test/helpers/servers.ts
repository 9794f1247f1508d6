/**
 * Real `nats-server` and `redis-server` processes for integration tests.
 *
 * Each call starts its own server on a free port of 127.0.0.1 and resolves only once the server
 * serves requests (for NATS with JetStream: the JetStream API answers). Every started server is
 * tracked, so `stopAllServers()` in an `afterEach`/`afterAll` cleans up whatever a test left behind,
 * and servers still running when the test process exits are killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

const HOST = '127.0.0.1';

// ---------------------------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------------------------

/** The server programs the integration tests run. */
export type ServerBinary = 'nats-server' | 'redis-server';

const BINARY_ENV_VARS: Record<ServerBinary, string> = {
  'nats-server': 'NATS_SERVER_BIN',
  'redis-server': 'REDIS_SERVER_BIN',
};

// Distribution packages install nats-server into /usr/sbin, which is not on every user's PATH.
const FALLBACK_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin'];

/** Thrown when a server program cannot be found; `binary` names it. */
export class MissingServerBinaryError extends Error {
  override readonly name = 'MissingServerBinaryError';
  readonly code = 'MISSING_SERVER_BINARY';

  constructor(
    readonly binary: ServerBinary,
    detail: string,
  ) {
    super(`${binary} not found: ${detail}`);
  }
}

/** The environment variable that points at `binary` explicitly (`NATS_SERVER_BIN`, `REDIS_SERVER_BIN`). */
export function serverBinaryEnvVar(binary: ServerBinary): string {
  return BINARY_ENV_VARS[binary];
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Locates a server program: the path in its environment variable if that is set (no fallback, so
 * a wrong setting is noticed), else the first match on `PATH`, else the usual install folders.
 */
export function findServerBinary(
  binary: ServerBinary,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const explicit = env[BINARY_ENV_VARS[binary]];
  if (explicit !== undefined && explicit !== '') {
    return isExecutableFile(explicit) ? explicit : undefined;
  }
  const dirs = [...(env.PATH ?? '').split(delimiter).filter((dir) => dir !== ''), ...FALLBACK_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, binary);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function requireServerBinary(binary: ServerBinary): string {
  const found = findServerBinary(binary);
  if (found !== undefined) return found;
  const envVar = BINARY_ENV_VARS[binary];
  const explicit = process.env[envVar];
  throw new MissingServerBinaryError(
    binary,
    explicit !== undefined && explicit !== ''
      ? `${envVar}=${explicit} is not an executable file`
      : `not on PATH; install it or set ${envVar} to its path`,
  );
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

// Ports handed out by this process, so two servers started back to back never get the same one.
const handedOutPorts = new Set<number>();

/** A TCP port on 127.0.0.1 that was free a moment ago (listen on port 0, read it, close). */
export async function getFreePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.once('error', reject);
      server.listen({ port: 0, host: HOST, exclusive: true }, () => {
        const address = server.address();
        const port = address !== null && typeof address === 'object' ? address.port : 0;
        server.close((err) => (err ? reject(err) : resolve(port)));
      });
    });
    if (port > 0 && !handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error('could not find a free TCP port on 127.0.0.1');
}

/** Rejects when something already listens on `port` of 127.0.0.1. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`port ${port} on ${HOST} is already in use`, { cause: err })
          : err,
      ),
    );
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve()));
  });
}

// ---------------------------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------------------------

/** A running test server. */
export interface ServerHandle {
  /** Client URL, e.g. `nats://127.0.0.1:4567` or `redis://127.0.0.1:4567`. */
  readonly url: string;
  readonly port: number;
  /** Process id of the current server process (changes on `restart()`). */
  readonly pid: number;
  /** SIGTERM, wait for the exit, remove the temporary store if this helper created it. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), wait for the exit; the store is kept for `restart()`. */
  kill(): Promise<void>;
  /** Start again on the same port (and store), resolving once ready; stops a running process first. */
  restart(): Promise<void>;
}

/** A running `nats-server`. */
export interface NatsServerHandle extends ServerHandle {
  /** JetStream store directory (`-sd`). */
  readonly storeDir: string;
}

/** A running `redis-server` (no persistence). */
export type RedisServerHandle = ServerHandle;

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Enable JetStream (`-js`). @default true */
  jetstream?: boolean;
  /** JetStream store directory; kept on `stop()`. @default a fresh temporary directory, removed on `stop()` */
  storeDir?: string;
  /** Client port. @default a free random port */
  port?: number;
  /** How long to wait for the server to become ready. @default 20000 */
  readyTimeoutMs?: number;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Client port. @default a free random port */
  port?: number;
  /** How long to wait for the server to become ready. @default 20000 */
  readyTimeoutMs?: number;
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 10_000;
const PROBE_TIMEOUT_MS = 1_000;
const PROBE_INTERVAL_MS = 50;
const OUTPUT_TAIL_CHARS = 4_000;

interface ServerSpec {
  binary: ServerBinary;
  bin: string;
  args: string[];
  url: string;
  port: number;
  /** Directory the server writes to. */
  dir: string;
  /** Whether this helper created `dir` (and so removes it on `stop()`). */
  ownsDir: boolean;
  readyTimeoutMs: number;
  probe: () => Promise<void>;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

const liveServers = new Set<ManagedServer>();

class ManagedServer implements NatsServerHandle {
  private child: ChildProcess | undefined;
  private exit: Exit | undefined;
  private exited: Promise<void> = Promise.resolve();
  private lastPid = 0;
  private output = '';

  constructor(private readonly spec: ServerSpec) {}

  get url(): string {
    return this.spec.url;
  }

  get port(): number {
    return this.spec.port;
  }

  get storeDir(): string {
    return this.spec.dir;
  }

  get pid(): number {
    return this.lastPid;
  }

  /** Recent stdout and stderr of the current process, for error messages. */
  outputTail(): string {
    return this.output;
  }

  async start(): Promise<void> {
    // Without this check the readiness probe could reach another server on the same port and
    // report ready while this one is exiting with "address already in use".
    await assertPortFree(this.spec.port);
    await mkdir(this.spec.dir, { recursive: true });
    this.output = '';
    this.exit = undefined;
    const child = spawn(this.spec.bin, this.spec.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.lastPid = child.pid ?? 0;
    liveServers.add(this);
    ensureExitHook();

    const append = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit ??= { code, signal };
        resolve();
      });
      // Spawn failures (EACCES, ENOENT) emit 'error' and never 'exit'.
      child.once('error', (error) => {
        this.exit ??= { code: null, signal: null, error };
        resolve();
      });
    });

    try {
      await this.waitReady();
    } catch (err) {
      await this.terminate('SIGKILL');
      throw err;
    }
  }

  private describeExit(exit: Exit): string {
    if (exit.error) return `failed to start: ${exit.error.message}`;
    return exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
  }

  private failure(summary: string, cause?: unknown): Error {
    const tail = this.output.trim();
    const message =
      `${this.spec.binary} on port ${this.spec.port} ${summary}` +
      (tail === '' ? ' (no output)' : `\n--- ${this.spec.binary} output (tail) ---\n${tail}`);
    return cause === undefined ? new Error(message) : new Error(message, { cause });
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + this.spec.readyTimeoutMs;
    let lastError: unknown;
    for (;;) {
      if (this.exit) throw this.failure(`${this.describeExit(this.exit)} before it was ready`);
      try {
        await this.spec.probe();
        // The probe may have raced a crash; only a live process counts as ready.
        if (!this.exit) return;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() >= deadline) {
        const reason = lastError instanceof Error ? lastError.message : String(lastError);
        throw this.failure(
          `not ready after ${this.spec.readyTimeoutMs} ms (last probe: ${reason})`,
          lastError,
        );
      }
      await sleep(PROBE_INTERVAL_MS);
    }
  }

  /** Sends `signal` and waits for the exit, escalating to SIGKILL after a grace period. */
  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined || this.exit) return;
    child.kill(signal);
    if (signal !== 'SIGKILL') {
      const cancel = new AbortController();
      const grace = sleep(STOP_GRACE_MS, 'timeout' as const, { signal: cancel.signal }).catch(
        () => 'exited' as const,
      );
      const outcome = await Promise.race([this.exited.then(() => 'exited' as const), grace]);
      cancel.abort();
      if (outcome === 'timeout') child.kill('SIGKILL');
    }
    await this.exited;
  }

  async stop(): Promise<void> {
    await this.terminate('SIGTERM');
    liveServers.delete(this);
    if (this.spec.ownsDir) await rm(this.spec.dir, { recursive: true, force: true });
  }

  async kill(): Promise<void> {
    await this.terminate('SIGKILL');
  }

  async restart(): Promise<void> {
    await this.terminate('SIGTERM');
    await this.start();
  }

  /** Last resort at process exit: synchronous, so it works inside an 'exit' listener. */
  killSync(): void {
    if (this.child !== undefined && !this.exit) this.child.kill('SIGKILL');
    if (this.spec.ownsDir) rmSync(this.spec.dir, { recursive: true, force: true });
  }
}

let exitHookInstalled = false;

// A test process that dies without running its afterAll hooks must not leave servers behind.
function ensureExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const server of liveServers) server.killSync();
  });
}

/** Stops every server started by this process that has not been stopped yet. */
export async function stopAllServers(): Promise<void> {
  const results = await Promise.allSettled([...liveServers].map((server) => server.stop()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function isPortConflict(err: unknown, server: ManagedServer): boolean {
  const inUse = /already in use/i;
  return (err instanceof Error && inUse.test(err.message)) || inUse.test(server.outputTail());
}

/**
 * Starts servers built by `build` until one starts; when the port was picked here and another
 * process grabbed it in between, tries again with a new port.
 */
async function startOnFreePort(
  pinnedPort: number | undefined,
  build: (port: number) => Promise<ManagedServer>,
): Promise<ManagedServer> {
  for (let attempt = 1; ; attempt++) {
    const server = await build(pinnedPort ?? (await getFreePort()));
    try {
      await server.start();
      return server;
    } catch (err) {
      await server.stop();
      if (pinnedPort !== undefined || attempt >= 3 || !isPortConflict(err, server)) throw err;
    }
  }
}

function validatePort(port: number | undefined): void {
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65_535)) {
    throw new TypeError('port must be an integer between 1 and 65535');
  }
}

// ---------------------------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------------------------

async function probeNats(url: string, jetstream: boolean): Promise<void> {
  const nc = await connect({ servers: url, reconnect: false, timeout: PROBE_TIMEOUT_MS });
  try {
    if (jetstream) {
      const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: PROBE_TIMEOUT_MS });
      await jsm.getAccountInfo();
    } else {
      await nc.flush();
    }
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/**
 * Starts a `nats-server` (`-a 127.0.0.1 -p <port> [-js -sd <dir>]`, no monitoring port) and waits
 * until it accepts clients and, with JetStream, until the JetStream API answers.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  validatePort(options.port);
  const bin = requireServerBinary('nats-server');
  const jetstream = options.jetstream ?? true;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  return startOnFreePort(options.port, async (port) => {
    const ownsDir = options.storeDir === undefined;
    const dir = options.storeDir ?? (await mkdtemp(join(tmpdir(), 'recsys-nats-')));
    const url = `nats://${HOST}:${port}`;
    const args = ['-a', HOST, '-p', String(port)];
    if (jetstream) args.push('-js', '-sd', dir);
    return new ManagedServer({
      binary: 'nats-server',
      bin,
      args,
      url,
      port,
      dir,
      ownsDir,
      readyTimeoutMs,
      probe: () => probeNats(url, jetstream),
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

/**
 * Sends an inline `PING` to a Redis server over a plain TCP socket and resolves with the first
 * reply line (`+PONG` when the server is ready, `-LOADING ...` while it loads).
 */
export function pingRedis(port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    let received = '';
    const finish = (err: Error | undefined, line?: string): void => {
      socket.destroy();
      if (err) reject(err);
      else resolve(line ?? '');
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`no PING reply within ${timeoutMs} ms`)));
    socket.once('error', (err) => finish(err));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      const end = received.indexOf('\r\n');
      if (end >= 0) finish(undefined, received.slice(0, end));
    });
    socket.once('end', () => finish(new Error('connection closed before a PING reply')));
  });
}

async function probeRedis(port: number): Promise<void> {
  const reply = await pingRedis(port);
  if (reply !== '+PONG') throw new Error(`PING answered ${JSON.stringify(reply)}`);
}

/**
 * Starts a `redis-server` without persistence (`--save '' --appendonly no --bind 127.0.0.1`) and
 * waits until `PING` answers `+PONG`.
 */
export async function startRedisServer(
  options: RedisServerOptions = {},
): Promise<RedisServerHandle> {
  validatePort(options.port);
  const bin = requireServerBinary('redis-server');
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  return startOnFreePort(options.port, async (port) => {
    // Its own working directory, so nothing it might write lands in the current directory.
    const dir = await mkdtemp(join(tmpdir(), 'recsys-redis-'));
    const args = [
      '--port',
      String(port),
      '--bind',
      HOST,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      dir,
    ];
    return new ManagedServer({
      binary: 'redis-server',
      bin,
      args,
      url: `redis://${HOST}:${port}`,
      port,
      dir,
      ownsDir: true,
      readyTimeoutMs,
      probe: () => probeRedis(port),
    });
  });
}
