/**
 * The gateway in tests: built on a running node (its client, streams and metrics registry), as
 * `recsys start` builds it, and driven with `app.inject()` without listening; or run as
 * `recsys gateway`, a process of its own, and driven over HTTP.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { buildGateway, createReadyCheck } from '../../gateway/index.js';
import type { GatewayApp } from '../../gateway/index.js';
import type { ResolvedConfig } from '../../runtime/config/index.js';
import { decode } from '../../runtime/codec.js';
import { eventFilter, openEventsStream } from '../../runtime/events/index.js';
import type { FeedbackEvent } from '../../runtime/events/index.js';
import { silentLogger } from '../../runtime/log.js';
import type { RunningNode } from '../../runtime/node.js';
import type { EventStream, StreamMessage } from '../../runtime/stream/index.js';

export interface TestGateway {
  readonly app: GatewayApp;
  readonly events: EventStream;
  readonly config: ResolvedConfig;
}

/**
 * A gateway on `node`, configured by `config` (the gateway's own view: its budgets and limits may
 * differ from the node's). `events` replaces the events stream (to make it fail).
 */
export async function gatewayOn(
  node: RunningNode,
  config: ResolvedConfig,
  options: { events?: EventStream; readyTimeoutMs?: number; observeTimeoutMs?: number } = {},
): Promise<TestGateway> {
  const stream =
    options.events ??
    (await openEventsStream(node.streams, config.deployment.prefix, config.events));
  const app = buildGateway({
    client: node.client,
    events: stream,
    config,
    log: silentLogger(),
    registry: node.metrics.registry,
    ...(options.observeTimeoutMs === undefined
      ? {}
      : { observeTimeoutMs: options.observeTimeoutMs }),
    ready: createReadyCheck({
      client: node.client,
      transport: node.transport,
      events: stream,
      prefix: config.deployment.prefix,
      partitions: config.runtime.partitions,
      shards: config.items.shards,
      rankerSlot: config.recommend.rankerSlot,
      timeoutMs: options.readyTimeoutMs ?? 200,
    }),
  });
  return { app, events: stream, config };
}

/** Every feedback event the stream holds now, in stream order. */
export async function storedFeedback(
  stream: EventStream,
  prefix: string,
): Promise<Array<FeedbackEvent & { seq: number }>> {
  const filter = eventFilter(prefix, 'feedback');
  const last = (await stream.info()).lastSeq;
  const out: Array<FeedbackEvent & { seq: number }> = [];
  if (last === 0) return out;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const take = (message: StreamMessage): void => {
    if (message.seq <= last && message.subject.startsWith(filter.slice(0, -1))) {
      out.push({ ...(decode(message.data) as FeedbackEvent), seq: message.seq });
    }
    if (message.seq >= last) done();
  };
  // Read everything up to the last sequence now stored, whatever its subject, then stop.
  const reader = await stream.read(`${prefix}.events.>`, 1, take);
  await finished;
  await reader.stop();
  return out;
}

const ROOT = new URL('../../', import.meta.url).pathname;

/** `recsys gateway` running as a child process. */
export interface GatewayProcess {
  readonly child: ChildProcess;
  /** Where it listens: `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `recsys gateway` (through tsx, on the sources) with the config file at `configPath` on
 * any free port, and resolves once it logs `gateway_ready`; rejects with its stderr if it exits
 * first.
 */
export async function spawnGateway(configPath: string): Promise<GatewayProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'main.ts'), 'gateway', '--config', configPath, '--port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (text) => {
      try {
        const line = JSON.parse(text) as Record<string, unknown>;
        if (line['evt'] === 'gateway_ready') resolve(String(line['url']));
      } catch {
        // Not a log line.
      }
    });
    void exited.then((code) => reject(new Error(`gateway exited (${code}): ${stderr}`)));
  });
  return { child, url, exited };
}
