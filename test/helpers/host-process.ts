/**
 * Runs `recsys node` in a child process (through tsx, on the TypeScript sources) and reads its JSON
 * log lines: readiness and every partition it acquires, releases or loses, each with its time.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';

export interface OwnershipEvent {
  host: string;
  kind: string;
  partition: number;
  evt: 'partition_acquired' | 'partition_released' | 'partition_lost';
  at: number;
}

export interface HostProcess {
  readonly id: string;
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
  /** Every line the process logged, parsed. */
  readonly lines: Array<Record<string, unknown>>;
  /** Sends a signal and waits for the exit; returns the time the process was seen gone. */
  kill(signal: NodeJS.Signals): Promise<number>;
}

const ROOT = new URL('../../', import.meta.url).pathname;

export function writeConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'recsys-config-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

export function spawnHost(options: {
  id: string;
  configPath: string;
  kindsModule: string;
  events: OwnershipEvent[];
  args?: string[];
}): HostProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'main.ts'),
      'node',
      '--config',
      options.configPath,
      '--host-id',
      options.id,
      '--kinds-module',
      options.kindsModule,
      ...(options.args ?? []),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const ready = new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      lines.push(line);
      const evt = line['evt'];
      if (evt === 'node_ready') resolve();
      if (
        evt === 'partition_acquired' ||
        evt === 'partition_released' ||
        evt === 'partition_lost'
      ) {
        options.events.push({
          host: options.id,
          kind: String(line['actor']),
          partition: Number(line['partition']),
          evt,
          at: Number(line['at']),
        });
      }
    });
    void exited.then((code) =>
      reject(new Error(`host ${options.id} exited (${code}) before ready: ${stderr}`)),
    );
  });
  ready.catch(() => undefined);
  return {
    id: options.id,
    child,
    ready,
    exited,
    lines,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      return Date.now();
    },
  };
}

export interface Interval {
  host: string;
  start: number;
  end: number;
}

/**
 * Ownership intervals per partition from the events; a host that died without a release ends at
 * the time given in `deaths` (or `now`).
 */
export function ownershipIntervals(
  events: readonly OwnershipEvent[],
  kind: string,
  deaths: ReadonlyMap<string, number>,
  now = Date.now(),
): Map<number, Interval[]> {
  const open = new Map<string, number>();
  const byPartition = new Map<number, Interval[]>();
  const close = (host: string, partition: number, end: number): void => {
    const key = `${host}/${partition}`;
    const start = open.get(key);
    if (start === undefined) return;
    open.delete(key);
    const list = byPartition.get(partition) ?? [];
    list.push({ host, start, end });
    byPartition.set(partition, list);
  };
  for (const e of [...events].filter((e) => e.kind === kind).sort((a, b) => a.at - b.at)) {
    if (e.evt === 'partition_acquired') open.set(`${e.host}/${e.partition}`, e.at);
    else close(e.host, e.partition, e.at);
  }
  for (const key of [...open.keys()]) {
    const [host, partition] = key.split('/') as [string, string];
    close(host, Number(partition), deaths.get(host) ?? now);
  }
  for (const list of byPartition.values()) list.sort((a, b) => a.start - b.start);
  return byPartition;
}

/** Pairs of intervals of one partition held by two hosts at the same instant. */
export function overlaps(intervals: ReadonlyMap<number, Interval[]>): string[] {
  const found: string[] = [];
  for (const [partition, list] of intervals) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        if (a.host !== b.host && a.start < b.end && b.start < a.end) {
          found.push(
            `partition ${partition}: ${a.host} [${a.start}, ${a.end}] and ${b.host} [${b.start}, ${b.end}]`,
          );
        }
      }
    }
  }
  return found;
}
