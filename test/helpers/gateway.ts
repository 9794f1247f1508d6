/**
 * The gateway in tests: built on a running node (its client, streams and metrics registry), as
 * `recsys start` builds it, and driven with `app.inject()` without listening.
 */
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
