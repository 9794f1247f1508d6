/**
 * What the `recsys` subcommands do. Each reads the environment once, here at the edge, and hands
 * plain options to the runtime.
 */
import { loadCommandConfig } from '../config/index.js';
import type { ConfigOverrides, ResolvedConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../log.js';
import { startNode } from '../node.js';
import type { RunningNode } from '../node.js';
import { discoverServices } from '../services/discover.js';
import type { ServiceVerb } from '../services/micro.js';
import { NatsTransport } from '../transport/nats.js';
import { exitOnSignals, exitStartFailure } from './exit.js';
import { loadKindModules } from './kinds.js';
import type { AfterStart, CreateKinds, PrepareStart } from './kinds.js';
import type { NodeCommandOptions } from './program.js';

/** `--group items=0,1` → `{ items: ['0', '1'] }`. */
export function parseGroups(flags: readonly string[]): Record<string, string[]> {
  const groups: Record<string, string[]> = {};
  for (const flag of flags) {
    const [kind, list] = flag.split('=', 2);
    if (kind === undefined || kind === '' || list === undefined || list === '') {
      throw new ConfigError(
        '--group',
        `expected kind=group[,group...], got ${JSON.stringify(flag)}`,
      );
    }
    groups[kind] = [...(groups[kind] ?? []), ...list.split(',').map((g) => g.trim())];
  }
  return groups;
}

export async function runNodeCommand(
  flags: NodeCommandOptions,
  builtinKinds: CreateKinds,
  prepareStart?: PrepareStart,
  afterStart?: AfterStart,
): Promise<void> {
  let config: ResolvedConfig;
  const overrides: ConfigOverrides = {};
  try {
    const groups = parseGroups(flags.group ?? []);
    overrides.host = {
      ...(flags.actors === undefined
        ? {}
        : { actors: flags.actors.split(',').map((a) => a.trim()) }),
      ...(flags.hostId === undefined ? {} : { id: flags.hostId }),
      ...(Object.keys(groups).length === 0 ? {} : { groups }),
    };
    if (flags.transport !== undefined) overrides.deployment = { transport: flags.transport };
    if (flags.natsUrl !== undefined) overrides.nats = { url: flags.natsUrl };
    config = loadCommandConfig(flags.config, process.env, overrides);
  } catch (err) {
    exitStartFailure(err);
  }
  const log = createLogger({ level: config.log.level, pretty: config.log.pretty });
  let node: RunningNode;
  try {
    await prepareStart?.({ config, log, configPath: flags.config });
    const builtin = await builtinKinds({ config, log });
    const extra = await loadKindModules(flags.kindsModule ?? [], { config, log });
    node = await startNode({ config, kinds: [...builtin, ...extra], log });
  } catch (err) {
    log.error({ err }, 'node failed to start');
    exitStartFailure(err);
  }
  try {
    await afterStart?.({ config, log, node });
  } catch (err) {
    await node.stop().catch(() => undefined);
    log.error({ err }, 'node failed to start');
    exitStartFailure(err);
  }
  log.info(
    {
      evt: 'node_ready',
      hostId: node.hostId,
      transport: config.deployment.transport,
      pid: process.pid,
    },
    'node ready',
  );

  exitOnSignals(log, () => node.stop());
}

export interface ServicesCommandOptions {
  verb: 'ping' | 'info' | 'stats';
  name?: string;
  natsUrl?: string;
  config?: string;
  json?: boolean;
}

export async function runServicesCommand(flags: ServicesCommandOptions): Promise<void> {
  let config: ResolvedConfig;
  try {
    config = loadCommandConfig(
      flags.config,
      process.env,
      flags.natsUrl === undefined ? {} : { nats: { url: flags.natsUrl } },
    );
  } catch (err) {
    exitStartFailure(err);
  }
  const transport = await NatsTransport.connect({
    servers: config.nats.url.split(',').map((url) => url.trim()),
    name: `${config.nats.name}-cli`,
    maxReconnectAttempts: 0,
  });
  try {
    const verb = flags.verb.toUpperCase() as ServiceVerb;
    const replies = await discoverServices(
      transport,
      verb,
      flags.name === undefined ? {} : { name: flags.name },
    );
    if (flags.json === true) {
      process.stdout.write(`${JSON.stringify(replies, null, 2)}\n`);
    } else {
      printTable(replies as unknown as Array<Record<string, unknown>>);
    }
  } finally {
    await transport.close();
  }
}

function printTable(replies: Array<Record<string, unknown>>): void {
  if (replies.length === 0) {
    process.stdout.write('no services found\n');
    return;
  }
  const rows = replies.map((r) => {
    const metadata = (r['metadata'] ?? {}) as Record<string, string>;
    const endpoints = (r['endpoints'] ?? []) as Array<Record<string, unknown>>;
    const requests = endpoints.reduce((n, e) => n + Number(e['num_requests'] ?? 0), 0);
    const errors = endpoints.reduce((n, e) => n + Number(e['num_errors'] ?? 0), 0);
    return [
      String(r['name']),
      String(r['id']),
      String(r['version']),
      metadata['host'] ?? '',
      String(requests),
      String(errors),
    ];
  });
  const header = ['NAME', 'ID', 'VERSION', 'HOST', 'REQUESTS', 'ERRORS'];
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  for (const row of [header, ...rows]) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
}
