/**
 * Child processes and scratch directories of a benchmark. Every child is tracked until it exits,
 * so the harness can stop them all at the end, on an error or on Ctrl-C, and a last-resort `exit`
 * hook kills whatever is left. Each child also gets `child-guard.ts` preloaded: it watches its stdin
 * pipe and shuts the child down when the benchmark process goes away without cleaning up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const GUARD = fileURLToPath(new URL('./child-guard.ts', import.meta.url));
const OUTPUT_TAIL_CHARS = 4000;
const STOP_GRACE_MS = 12_000;
/**
 * Extra options for node in every child, space-separated: `BENCH_NODE_ARGS="--cpu-prof
 * --cpu-prof-dir=prof"` profiles each process of a run (node refuses `--cpu-prof` in NODE_OPTIONS).
 */
const EXTRA_NODE_ARGS = (process.env['BENCH_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a !== '');

export interface ChildOptions {
  /** Shown in errors. */
  name: string;
  /** Arguments after `node --import tsx`: a script and its arguments. */
  args: string[];
  /** Options for node itself, before the script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Ready once a stdout line contains this. */
  readyLine: string;
  /** @default 30000 */
  readyTimeoutMs?: number;
}

export interface ChildHandle {
  readonly name: string;
  readonly pid: number;
  /** SIGTERM (graceful), SIGKILL after a grace period; resolves once it exited. */
  stop(): Promise<void>;
}

const live = new Set<ManagedChild>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

class ManagedChild implements ChildHandle {
  readonly pid: number;
  private output = '';
  private exitInfo: string | undefined;
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    this.pid = child.pid ?? 0;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal === null ? `exited with code ${code}` : `killed by ${signal}`;
        live.delete(this);
        resolve();
      });
      child.once('error', (err) => {
        this.exitInfo = `failed to start: ${err.message}`;
        live.delete(this);
        resolve();
      });
    });
    const append = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
  }

  waitReady(readyLine: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let buffered = '';
      const onData = (chunk: Buffer): void => {
        buffered += chunk.toString('utf8');
        if (buffered.includes(readyLine)) {
          finish();
          resolve();
        }
        buffered = buffered.slice(-readyLine.length - 1024);
      };
      const timer = setTimeout(() => {
        finish();
        reject(this.failure(`not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      const onExit = (): void => {
        finish();
        reject(this.failure(`${this.exitInfo ?? 'exited'} before it was ready`));
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.child.stdout?.off('data', onData);
        this.child.off('exit', onExit);
      };
      this.child.stdout?.on('data', onData);
      this.child.once('exit', onExit);
    });
  }

  private failure(summary: string): Error {
    const tail = this.output.trim();
    return new Error(
      `${this.name} (pid ${this.pid}) ${summary}` +
        (tail === '' ? ' (no output)' : `\n--- ${this.name} output (tail) ---\n${tail}`),
    );
  }

  async stop(): Promise<void> {
    if (this.exitInfo !== undefined) return;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), STOP_GRACE_MS);
    });
    const outcome = await Promise.race([this.exited.then(() => 'exited' as const), grace]);
    clearTimeout(timer);
    if (outcome === 'timeout') this.child.kill('SIGKILL');
    await this.exited;
  }

  killSync(): void {
    if (this.exitInfo === undefined) this.child.kill('SIGKILL');
  }
}

/** Starts `node --import tsx <args>` and resolves once it printed its ready line. */
export async function startChild(options: ChildOptions): Promise<ChildHandle> {
  const nodeArgs = [...EXTRA_NODE_ARGS, ...(options.nodeArgs ?? [])];
  const argv = [...nodeArgs, '--import', 'tsx', '--import', GUARD, ...options.args];
  const child = spawn(process.execPath, argv, {
    // stdin stays an open pipe: the child guard takes its end as "the parent is gone".
    stdio: ['pipe', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  const managed = new ManagedChild(options.name, child);
  live.add(managed);
  ensureExitHook();
  try {
    await managed.waitReady(options.readyLine, options.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await managed.stop();
    throw err;
  }
  return managed;
}

/** Stops every child still running, in parallel. */
export async function stopAllChildren(): Promise<void> {
  await Promise.allSettled([...live].map((child) => child.stop()));
}

/** A fresh temporary directory, removed by {@link removeTempDirs} or at exit at the latest. */
export async function makeTempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'recsys-bench-'));
  tempDirs.add(dir);
  ensureExitHook();
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  const dirs = [...tempDirs];
  tempDirs.clear();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}

function ensureExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.killSync();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * CPU time (user + system) a process has used so far, in ms, read from `/proc/<pid>/stat`;
 * `undefined` where there is no procfs. For the benchmark's own process use `process.cpuUsage()`.
 */
export function processCpuMs(pid: number): number | undefined {
  return statCpuMs(`/proc/${pid}/stat`);
}

/**
 * CPU time of each thread of a process so far, in ms, by thread id (the main thread's id is the
 * pid); empty where there is no procfs. Node names every thread `node`, so the id is all there is
 * to tell them apart: a thread absent from an earlier reading started since.
 */
export function threadCpuMs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const ms = statCpuMs(`/proc/${pid}/task/${tid}/stat`);
    if (ms !== undefined) out.set(Number(tid), ms);
  }
  return out;
}

function statCpuMs(path: string): number | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the file, 12 and 13 here; in clock ticks.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

// USER_HZ is 100 on every Linux architecture Node runs on.
const CLOCK_TICKS_PER_SECOND = 100;
