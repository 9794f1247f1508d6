/**
 * The gateway's two ways to run:
 *
 * - `recsys gateway`: a process of its own in front of a distributed deployment. It connects to
 *   NATS (`nats.url`), opens the events stream on JetStream, calls the actors with its own client
 *   and listens on `gateway.host:gateway.port`; SIGTERM or SIGINT closes it (requests in flight
 *   finish first).
 * - embedded, inside `recsys start`: {@link serveEmbeddedGateway} runs once the node is up and
 *   serves the gateway from the same process, with the node's client, streams and metrics registry,
 *   so one `/metrics` shows the actors and the gateway together.
 */
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { loadCommandConfig } from '../runtime/config/index.js';
import type { ConfigOverrides, ResolvedConfig } from '../runtime/config/index.js';
import { exitOnSignals, exitStartFailure } from '../runtime/cli/exit.js';
import { ConfigError } from '../runtime/errors.js';
import { openEventsStream } from '../runtime/events/index.js';
import { createLogger } from '../runtime/log.js';
import { RuntimeMetrics } from '../runtime/metrics.js';
import { connectNats, createActorClient } from '../runtime/node.js';
import type { RunningNode } from '../runtime/node.js';
import { NatsStreamStore } from '../runtime/stream/index.js';
import type { NatsTransport } from '../runtime/transport/nats.js';
import { buildGateway } from './app.js';
import { createReadyCheck } from './ready.js';
import { listenGateway } from './server.js';
import type { ListeningGateway } from './server.js';

export interface GatewayCommandOptions {
  config?: string;
  natsUrl?: string;
  host?: string;
  port?: string;
}

/** Registers `recsys gateway` on the program. */
export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description(
      'Serve the HTTP gateway (recommend, feedback, health, metrics, docs) in front of actors on NATS',
    )
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option('--nats-url <url>', 'NATS server URL(s), comma-separated (default: nats.url)')
    .option('--host <host>', 'address to listen on (default: gateway.host)')
    .option('--port <port>', 'port to listen on, 0 for any free port (default: gateway.port)')
    .action((flags: GatewayCommandOptions) => runGatewayCommand(flags));
}

function overridesOf(flags: GatewayCommandOptions): ConfigOverrides {
  const overrides: ConfigOverrides = {};
  if (flags.natsUrl !== undefined) overrides.nats = { url: flags.natsUrl };
  const gateway: ConfigOverrides['gateway'] = {};
  if (flags.host !== undefined) gateway.host = flags.host;
  if (flags.port !== undefined) {
    const port = Number(flags.port);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new ConfigError('--port', `must be an integer in 0..65535, got ${flags.port}`);
    }
    gateway.port = port;
  }
  if (Object.keys(gateway).length > 0) overrides.gateway = gateway;
  return overrides;
}

/** What `recsys gateway` runs; resolves once the gateway listens. */
export async function runGatewayCommand(flags: GatewayCommandOptions): Promise<void> {
  let config: ResolvedConfig;
  try {
    config = loadCommandConfig(flags.config, process.env, overridesOf(flags));
  } catch (err) {
    exitStartFailure(err);
  }
  const log = createLogger({ level: config.log.level, pretty: config.log.pretty });
  let transport: NatsTransport | undefined;
  let gateway: ListeningGateway;
  try {
    transport = await connectNats(config, 'gateway');
    const metrics = new RuntimeMetrics({
      defaultMetrics: config.metrics.enabled && config.metrics.defaultMetrics,
    });
    const client = createActorClient(config, transport, metrics);
    const events = await openEventsStream(
      new NatsStreamStore(transport.connection),
      config.deployment.prefix,
      config.events,
    );
    const app = buildGateway({
      client,
      events,
      config,
      log,
      registry: metrics.registry,
      ready: createReadyCheck({
        client,
        transport,
        events,
        prefix: config.deployment.prefix,
        partitions: config.runtime.partitions,
        shards: config.items.shards,
        rankerSlot: config.recommend.rankerSlot,
      }),
    });
    gateway = await listenGateway(app, config.gateway);
  } catch (err) {
    log.error({ err }, 'gateway failed to start');
    await transport?.close().catch(() => undefined);
    exitStartFailure(err);
  }
  log.info(
    { evt: 'gateway_ready', url: gateway.url, nats: config.nats.url, pid: process.pid },
    `gateway listening on ${gateway.url}`,
  );

  const connection = transport;
  exitOnSignals(log, async () => {
    await gateway.close();
    await connection.close();
  });
}

/** The lines `recsys start` prints once the gateway listens: where it is and how to try it. */
export function gatewayBanner(url: string): string {
  const json = "-H 'content-type: application/json'";
  return [
    `recsys gateway on ${url}`,
    `  curl -s ${url}/recommend ${json} -d '{"user_id": "user_123", "count": 10}'`,
    `  curl -s ${url}/feedback ${json} -d '{"user_id": "user_123", "item_id": "item_456", "event_type": "click"}'`,
    `  curl -s ${url}/ready`,
    `  API docs: ${url}/docs (OpenAPI: ${url}/openapi.json), metrics: ${url}/metrics`,
    '',
  ].join('\n');
}

/**
 * Serves the gateway inside an embedded node (in-process transport), on `gateway.host:port`, with
 * the node's client, streams and metrics registry; prints where it is and how to try it. A node on
 * NATS serves none: the gateway runs there as `recsys gateway`. It closes on SIGTERM or SIGINT,
 * while the node drains.
 */
export async function serveEmbeddedGateway(context: {
  config: ResolvedConfig;
  log: Logger;
  node: RunningNode;
  /** Where the banner goes. @default process.stderr */
  out?: NodeJS.WritableStream;
}): Promise<ListeningGateway | undefined> {
  const { config, log, node } = context;
  if (config.deployment.transport !== 'inproc') return undefined;
  const events = await openEventsStream(node.streams, config.deployment.prefix, config.events);
  const app = buildGateway({
    client: node.client,
    events,
    config,
    log,
    registry: node.metrics.registry,
    ready: createReadyCheck({
      client: node.client,
      transport: node.transport,
      events,
      prefix: config.deployment.prefix,
      partitions: config.runtime.partitions,
      shards: config.items.shards,
      rankerSlot: config.recommend.rankerSlot,
    }),
  });
  const gateway = await listenGateway(app, config.gateway);
  log.info({ evt: 'gateway_ready', url: gateway.url }, `gateway listening on ${gateway.url}`);
  // Human-facing lines go to stderr, so stdout stays one JSON log line per entry.
  (context.out ?? process.stderr).write(gatewayBanner(gateway.url));
  const onSignal = (): void => void gateway.close();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return {
    url: gateway.url,
    port: gateway.port,
    close: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      return gateway.close();
    },
  };
}
