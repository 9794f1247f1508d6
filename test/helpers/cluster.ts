/**
 * Builds test clusters of nodes in one process, on the in-process transport or on a real
 * nats-server, through the same `startNode` the CLI uses.
 */
import { randomBytes } from 'node:crypto';
import type { ActorKind } from '../../runtime/actor/actor.js';
import type { Protocol } from '../../runtime/actor/protocol.js';
import { resolveConfig } from '../../runtime/config/index.js';
import type { ResolvedConfig } from '../../runtime/config/index.js';
import { silentLogger } from '../../runtime/log.js';
import { createInProcessCluster, startNode } from '../../runtime/node.js';
import type { InProcessCluster, RunningNode } from '../../runtime/node.js';

/** Raw (snake_case) config sections a test wants to change. */
export type RawConfig = Record<string, Record<string, unknown>>;

/** Lease timings short enough for tests to watch handoffs, long enough for a busy 2-core machine. */
export const FAST_PLACEMENT = {
  lease_ttl_ms: 3000,
  renew_interval_ms: 600,
  heartbeat_interval_ms: 300,
  member_ttl_ms: 2000,
};

export function testConfig(
  transport: 'inproc' | 'nats',
  natsUrl: string | undefined,
  raw: RawConfig = {},
): ResolvedConfig {
  return resolveConfig({
    ...raw,
    deployment: { prefix: 'test', transport, ...raw['deployment'] },
    nats: {
      ...(natsUrl === undefined ? {} : { url: natsUrl }),
      reconnect_wait_ms: 100,
      ...raw['nats'],
    },
    placement: { ...FAST_PLACEMENT, ...raw['placement'] },
    log: { level: 'silent', ...raw['log'] },
    metrics: { default_metrics: false, port: 0, ...raw['metrics'] },
  });
}

export interface TestCluster {
  readonly transport: 'inproc' | 'nats';
  /** Starts one more node with the given kinds and config changes. */
  node(kinds: readonly ActorKind<Protocol>[], raw?: RawConfig): Promise<RunningNode>;
  /** Stops every node still running. */
  close(): Promise<void>;
}

export interface TestClusterOptions {
  /**
   * Nodes share one in-process bus, KV and streams and place partitions by leases (as separate
   * hosts would); otherwise each in-process node is alone.
   */
  shared?: boolean;
  /** Subject prefix of every node (`deployment.prefix`). @default 'test' */
  prefix?: string;
}

/** A prefix no other test uses: for tests whose streams must start empty on a shared server. */
export function uniquePrefix(base = 't'): string {
  return `${base}${randomBytes(4).toString('hex')}`;
}

/** `natsUrl` undefined: in-process transport. */
export function testCluster(
  natsUrl: string | undefined,
  options: TestClusterOptions = {},
): TestCluster {
  const transport = natsUrl === undefined ? 'inproc' : 'nats';
  const cluster: InProcessCluster | undefined =
    transport === 'inproc' && options.shared === true ? createInProcessCluster() : undefined;
  const nodes: RunningNode[] = [];
  return {
    transport,
    async node(kinds, raw = {}) {
      const config = testConfig(
        transport,
        natsUrl,
        options.prefix === undefined
          ? raw
          : { ...raw, deployment: { prefix: options.prefix, ...raw['deployment'] } },
      );
      const node = await startNode({
        config,
        kinds,
        log: silentLogger(),
        ...(cluster === undefined ? {} : { cluster }),
      });
      nodes.push(node);
      return node;
    },
    async close() {
      await Promise.all(nodes.splice(0).map((node) => node.stop()));
    },
  };
}
