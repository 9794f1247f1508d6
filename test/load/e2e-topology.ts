/**
 * Starts the system under test on a built world, in one of two shapes:
 *
 * - `embedded`: one `recsys start` process (in-process transport, in-memory stores): every actor
 *   kind and the HTTP gateway share one event loop;
 * - `distributed`: a nats-server and a redis-server of its own on free ports, the batch features
 *   materialised into that Redis (`recsys materialize`), then one `recsys node` per item shard (the
 *   first also runs the `features` actor), one for the ranker, one for the user actors (and the
 *   `user-feed` reader of the feedback stream), and a
 *   `recsys gateway`, all over NATS.
 * - `nodes`: the same servers, and two `recsys node` processes that each run every kind (the user
 *   partitions split between them by lease, every shard and the ranker on both), and a gateway:
 *   a user actor's calls to the shards and the ranker are served in its own process
 *   (`nats.local_requests`), and only the gateway's call and the events cross the server.
 *
 * Every process gets the same configuration, written once to a temporary folder; the copies
 * differ only in the ports each process listens on (`metrics.port`, and `gateway.port`), as two
 * processes cannot share one.
 */
import { writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as stringifyYaml } from 'yaml';
import type { SessionState, UserProtocol } from '../../actors/user/messages.js';
import { USER_KIND } from '../../actors/user/messages.js';
import { runMaterialize } from '../../models/cli/materialize.js';
import { ActorClient } from '../../runtime/client/client.js';
import { NatsTransport } from '../../runtime/transport/nats.js';
import { getFreePort, startNatsServer, startRedisServer } from '../helpers/servers.js';
import type { NatsServerHandle, RedisServerHandle } from '../helpers/servers.js';
import { GatewayClient, waitUntil } from './e2e-http.js';
import type { StateOf } from './e2e-load.js';
import type { WatchedProcess } from './e2e-metrics.js';
import type { World } from './e2e-world.js';
import { makeTempDir, startChild } from './processes.js';
import type { ChildHandle } from './processes.js';

export const E2eTopology = {
  Embedded: 'embedded',
  Distributed: 'distributed',
  Nodes: 'nodes',
} as const;
export type E2eTopology = (typeof E2eTopology)[keyof typeof E2eTopology];

const CLI_MAIN = fileURLToPath(new URL('../../main.ts', import.meta.url));
const PREFIX = 'e2e';
const NODE_READY = '"evt":"node_ready"';
const GATEWAY_READY = '"evt":"gateway_ready"';

export interface RunningSystem {
  topology: E2eTopology;
  gatewayUrl: string;
  /** Every process of the system, servers included, for CPU and metrics. */
  processes: WatchedProcess[];
  /** The user actor's session over NATS (distributed only). */
  stateOf: StateOf | undefined;
  /** Seconds each start-up step took. */
  startup: Record<string, number>;
  /** What ran where, one line per process. */
  layout: string[];
  stop(): Promise<void>;
}

export interface StartSystemOptions {
  topology: E2eTopology;
  world: World;
  progress: (line: string) => void;
  /** Generous for the full world: a process loads 1M items' index and features. */
  readyTimeoutMs: number;
}

interface ConfigInput {
  world: World;
  transport: 'inproc' | 'nats';
  natsUrl?: string;
  redisUrl?: string;
}

/** The configuration every process shares, without the per-process ports. */
function sharedConfig(input: ConfigInput): Record<string, unknown> {
  const { world } = input;
  return {
    deployment: { prefix: PREFIX, transport: input.transport },
    ...(input.natsUrl === undefined ? {} : { nats: { url: input.natsUrl } }),
    ...(input.redisUrl === undefined ? {} : { redis: { url: input.redisUrl } }),
    data: { dir: world.dir },
    items: { shards: world.shards, index_version: basename(world.indexDir) },
    features: { embedded_dataset: input.transport === 'inproc' ? world.datasetDir : '' },
    log: { level: 'info' },
  };
}

async function writeProcessConfig(
  dir: string,
  name: string,
  shared: Record<string, unknown>,
  ports: { metrics: number; gateway?: number },
): Promise<string> {
  const path = join(dir, `config-${name}.yaml`);
  await writeFile(
    path,
    stringifyYaml({
      ...shared,
      metrics: { port: ports.metrics },
      ...(ports.gateway === undefined
        ? {}
        : { gateway: { host: '127.0.0.1', port: ports.gateway } }),
    }),
  );
  return path;
}

/**
 * Waits until the gateway says it is ready (`GET /ready`: user actors, item shards, ranker and
 * events stream reachable) and answers a recommendation for a user of the data set.
 */
async function waitForGateway(url: string, userId: string, timeoutMs: number): Promise<void> {
  const client = new GatewayClient({ baseUrl: url, maxSockets: 1, timeoutMs: 5000 });
  try {
    await waitUntil(
      `gateway ${url}/ready`,
      async () => (await client.get('/ready')).status === 200,
      timeoutMs,
    );
    await waitUntil(
      `gateway ${url}`,
      async () => (await client.post('/recommend', { user_id: userId, count: 10 })).status === 200,
      timeoutMs,
    );
  } finally {
    client.close();
  }
}

interface Started {
  child: ChildHandle;
  metricsPort: number;
  seconds: number;
}

async function startProcess(
  name: string,
  args: string[],
  readyLine: string,
  metricsPort: number,
  readyTimeoutMs: number,
  progress: (line: string) => void,
): Promise<Started> {
  const started = performance.now();
  const child = await startChild({
    name,
    args: [CLI_MAIN, ...args],
    readyLine,
    readyTimeoutMs,
  });
  const seconds = (performance.now() - started) / 1000;
  progress(`${name} ready in ${seconds.toFixed(1)} s (pid ${child.pid})`);
  return { child, metricsPort, seconds };
}

const metricsUrl = (port: number): string => `http://127.0.0.1:${port}/metrics`;

async function startEmbedded(
  options: StartSystemOptions,
  firstUser: string,
): Promise<RunningSystem> {
  const { world, progress } = options;
  const dir = await makeTempDir();
  const shared = sharedConfig({ world, transport: 'inproc' });
  const ports = { metrics: await getFreePort(), gateway: await getFreePort() };
  const config = await writeProcessConfig(dir, 'embedded', shared, ports);
  progress('starting recsys start (embedded: every actor and the gateway in one process)');
  const started = await startProcess(
    'recsys start',
    ['start', '--no-demo', '--config', config],
    NODE_READY,
    ports.metrics,
    options.readyTimeoutMs,
    progress,
  );
  const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;
  await waitForGateway(gatewayUrl, firstUser, options.readyTimeoutMs);
  return {
    topology: 'embedded',
    gatewayUrl,
    processes: [
      { name: 'recsys start', pid: started.child.pid, metricsUrl: metricsUrl(ports.metrics) },
    ],
    stateOf: undefined,
    startup: { 'recsys start': started.seconds },
    layout: [`recsys start (pid ${started.child.pid}): every actor kind and the gateway`],
    stop: () => started.child.stop(),
  };
}

/** One process of the distributed layout. */
interface NodeSpec {
  name: string;
  /** `recsys node` flags, or the gateway command. */
  args: string[];
  gateway: boolean;
}

function distributedLayout(shards: number): NodeSpec[] {
  const nodes: NodeSpec[] = Array.from({ length: shards }, (_, s) => ({
    name: `items-${s}`,
    // The first shard's process also runs the features actor (the real-time views).
    args: [
      'node',
      '--actors',
      s === 0 ? 'items,features' : 'items',
      '--group',
      `items=${s}`,
      '--host-id',
      `e2e-items-${s}`,
    ],
    gateway: false,
  }));
  nodes.push(
    {
      name: 'ranker',
      args: ['node', '--actors', 'rank', '--host-id', 'e2e-ranker'],
      gateway: false,
    },
    // user-feed brings feedback published straight to the stream to the sessions.
    {
      name: 'user',
      args: ['node', '--actors', 'user,user-feed', '--host-id', 'e2e-user'],
      gateway: false,
    },
    { name: 'gateway', args: ['gateway'], gateway: true },
  );
  return nodes;
}

/** Nodes that each run every kind; the first also the `features` actor (the real-time views). */
function nodesLayout(shards: number, count = 2): NodeSpec[] {
  const groups = Array.from({ length: shards }, (_, s) => String(s)).join(',');
  const nodes: NodeSpec[] = Array.from({ length: count }, (_, n) => ({
    name: `node-${n}`,
    args: [
      'node',
      '--actors',
      n === 0 ? 'user,user-feed,items,rank,features' : 'user,user-feed,items,rank',
      '--group',
      `items=${groups}`,
      '--host-id',
      `e2e-node-${n}`,
    ],
    gateway: false,
  }));
  nodes.push({ name: 'gateway', args: ['gateway'], gateway: true });
  return nodes;
}

async function startDistributed(
  options: StartSystemOptions,
  firstUser: string,
): Promise<RunningSystem> {
  const { world, progress } = options;
  const startup: Record<string, number> = {};
  const children: ChildHandle[] = [];
  let nats: NatsServerHandle | undefined;
  let redis: RedisServerHandle | undefined;
  let transport: NatsTransport | undefined;
  const stopAll = async (): Promise<void> => {
    await transport?.close().catch(() => undefined);
    // The gateway and the users first (they call the others), then the rest, then the servers.
    for (const child of [...children].reverse()) await child.stop();
    await nats?.stop().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
  };
  try {
    [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    progress(
      `nats-server ${nats.url} (pid ${nats.pid}), redis-server ${redis.url} (pid ${redis.pid})`,
    );
    const dir = await makeTempDir();
    const shared = sharedConfig({
      world,
      transport: 'nats',
      natsUrl: nats.url,
      redisUrl: redis.url,
    });
    const materializeConfig = await writeProcessConfig(dir, 'materialize', shared, { metrics: 0 });
    progress('recsys materialize: the batch features into Redis');
    const materializeStarted = performance.now();
    const materialized = await runMaterialize(
      { data: world.datasetDir, config: materializeConfig, full: true, progress: false },
      {},
    );
    startup['materialize'] = (performance.now() - materializeStarted) / 1000;
    const rows = materialized.views.map((v) => `${v.view} ${v.written}`).join(', ');
    progress(`materialized in ${startup['materialize'].toFixed(1)} s: ${rows}`);

    const layout =
      options.topology === 'nodes' ? nodesLayout(world.shards) : distributedLayout(world.shards);
    const processes: WatchedProcess[] = [
      { name: 'nats-server', pid: nats.pid },
      { name: 'redis-server', pid: redis.pid },
    ];
    const lines: string[] = [];
    let gatewayPort = 0;
    // Shards, ranker and users start together (each waits for its own artefacts); the gateway last.
    const start = async (spec: NodeSpec): Promise<void> => {
      const metricsPort = await getFreePort();
      const gatewayPortHere = spec.gateway ? await getFreePort() : undefined;
      const config = await writeProcessConfig(dir, spec.name, shared, {
        metrics: metricsPort,
        ...(gatewayPortHere === undefined ? {} : { gateway: gatewayPortHere }),
      });
      const started = await startProcess(
        spec.name,
        [...spec.args, '--config', config],
        spec.gateway ? GATEWAY_READY : NODE_READY,
        metricsPort,
        options.readyTimeoutMs,
        progress,
      );
      children.push(started.child);
      startup[spec.name] = started.seconds;
      processes.push({
        name: spec.name,
        pid: started.child.pid,
        // The gateway serves its metrics on its own HTTP port.
        metricsUrl:
          gatewayPortHere === undefined
            ? metricsUrl(metricsPort)
            : `http://127.0.0.1:${gatewayPortHere}/metrics`,
      });
      lines.push(`${spec.name} (pid ${started.child.pid}): recsys ${spec.args.join(' ')}`);
      if (gatewayPortHere !== undefined) gatewayPort = gatewayPortHere;
    };
    await Promise.all(layout.filter((spec) => !spec.gateway).map(start));
    for (const spec of layout.filter((s) => s.gateway)) await start(spec);
    // They became ready in any order: list them in the layout's.
    const rank = (name: string): number => layout.findIndex((spec) => spec.name === name);
    processes.sort((a, b) => rank(a.name) - rank(b.name));
    lines.sort((a, b) => rank(a.split(' ')[0]!) - rank(b.split(' ')[0]!));
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    await waitForGateway(gatewayUrl, firstUser, options.readyTimeoutMs);

    transport = await NatsTransport.connect({ servers: nats.url, name: 'bench-e2e' });
    // Partitions as the processes have them: the shipped default, which the config keeps.
    const client = new ActorClient({ transport, prefix: PREFIX, defaultTimeoutMs: 2000 });
    const users = client.keyed<UserProtocol>(USER_KIND);
    const stateOf = (userId: string): Promise<SessionState> => users.ask(userId, 'state', {});
    lines.unshift(`nats-server (pid ${nats.pid}), redis-server (pid ${redis.pid})`);
    return {
      topology: options.topology,
      gatewayUrl,
      processes,
      stateOf,
      startup,
      layout: lines,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Starts the topology; `firstUser` is a user of the data set, asked until the gateway answers. */
export function startSystem(
  options: StartSystemOptions,
  firstUser: string,
): Promise<RunningSystem> {
  return options.topology === 'embedded'
    ? startEmbedded(options, firstUser)
    : startDistributed(options, firstUser);
}
