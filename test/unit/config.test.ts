import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  CONFIG_ENV_VARS,
  configJsonSchema,
  defaultConfigPath,
  loadConfig,
  resolveConfig,
  type ConfigEnv,
  type ResolvedConfig,
} from '../../runtime/config/index.js';
import { ConfigError, ErrorCode } from '../../runtime/errors.js';

const DEFAULTS: ResolvedConfig = {
  deployment: { prefix: 'recsys', transport: 'inproc' },
  nats: {
    url: 'nats://127.0.0.1:4222',
    name: 'recsys',
    reconnectWaitMs: 250,
    maxReconnectAttempts: -1,
    localRequests: true,
  },
  redis: { url: 'redis://127.0.0.1:6379' },
  runtime: {
    partitions: 64,
    mailboxCapacity: 1024,
    passivateAfterMs: 300_000,
    defaultTimeoutMs: 1000,
    drainTimeoutMs: 10_000,
    maxHandlerMs: 30_000,
  },
  placement: {
    leaseTtlMs: 6000,
    renewIntervalMs: 2000,
    heartbeatIntervalMs: 1000,
    memberTtlMs: 6000,
  },
  host: { actors: [], id: '', groups: {} },
  log: { level: 'info', pretty: false },
  metrics: { enabled: true, defaultMetrics: true, port: 9464 },
  data: { dir: '.data' },
  retrieval: {
    dims: 64,
    historyLength: 50,
    hiddenUnits: 128,
    batchSize: 512,
    epochs: 3,
    learningRate: 0.3,
    temperature: 0.1,
    logqCorrection: true,
    seed: 42,
  },
  items: {
    shards: 1,
    metric: 'ip',
    quantization: 'f16',
    connectivity: 16,
    expansionAdd: 128,
    expansionSearch: 64,
    maxK: 1000,
    workers: 1,
    compactionThreshold: 10_000,
    eventsMaxAgeDays: 30,
    counterMaxItems: 100_000,
    indexVersion: '',
  },
  features: {
    definitions: 'configs/features.yaml',
    embeddedDataset: 'demo',
    cacheMaxEntries: 100_000,
    cacheTtlMs: 5_000,
    readTimeoutMs: 50,
    writeBufferMax: 100_000,
    writeRetryMs: 1_000,
  },
  events: {
    maxAgeDays: 7,
    maxBytes: -1,
    duplicateWindowMs: 120_000,
    windowsMinutes: [5, 30],
    maxDeliver: 5,
  },
  recommend: {
    candidates: 100,
    defaultCount: 10,
    maxCount: 100,
    rankerSlot: 'gbdt',
    timeoutMs: 250,
    retrievalTimeoutMs: 60,
    rankingTimeoutMs: 60,
    replayHours: 24,
    servedTtlMinutes: 60,
    maxSessionItems: 1000,
    popularItems: 1000,
  },
  gateway: {
    host: '0.0.0.0',
    port: 8000,
    bodyLimitBytes: 1_048_576,
    maxFeedbackBatch: 1000,
    feedbackTimeoutMs: 2000,
  },
};

/** Runs `fn`, expecting a ConfigError, and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, none thrown');
}

const rejects = (raw: unknown, env: ConfigEnv = {}): ConfigError =>
  configError(() => resolveConfig(raw, env));

/** `{ runtime: { partitions: 0 } }` from `'runtime.partitions', 0`. */
function at(path: string, value: unknown): Record<string, unknown> {
  const [section = '', key = ''] = path.split('.');
  return { [section]: { [key]: value } };
}

let dir: string | undefined;
function tempFile(name: string, text: string): string {
  dir ??= mkdtempSync(join(tmpdir(), 'config-test-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('defaults', () => {
  it('fills every option when the file is empty', () => {
    expect(resolveConfig({})).toEqual(DEFAULTS);
    expect(resolveConfig(null)).toEqual(DEFAULTS);
    expect(loadConfig()).toEqual(DEFAULTS);
  });

  it('fills a section whose options are all commented out (parsed as null)', () => {
    expect(resolveConfig({ runtime: null, log: { level: 'debug' } })).toEqual({
      ...DEFAULTS,
      log: { level: 'debug', pretty: false },
    });
  });

  it('keeps the options a section sets and defaults the rest', () => {
    expect(resolveConfig({ runtime: { partitions: 8 } }).runtime).toEqual({
      ...DEFAULTS.runtime,
      partitions: 8,
    });
  });
});

describe('sections convert to camelCase', () => {
  it('deployment', () => {
    const raw = { deployment: { prefix: 'prod.recsys', transport: 'nats' } };
    expect(resolveConfig(raw).deployment).toEqual({ prefix: 'prod.recsys', transport: 'nats' });
  });

  it('nats', () => {
    const raw = {
      nats: {
        url: 'nats://a:4222, nats://b:4222',
        name: 'edge',
        reconnect_wait_ms: 10,
        max_reconnect_attempts: 5,
        local_requests: false,
      },
    };
    expect(resolveConfig(raw).nats).toEqual({
      url: 'nats://a:4222, nats://b:4222',
      name: 'edge',
      reconnectWaitMs: 10,
      maxReconnectAttempts: 5,
      localRequests: false,
    });
  });

  it('redis', () => {
    expect(resolveConfig({ redis: { url: 'rediss://cache:6380/1' } }).redis).toEqual({
      url: 'rediss://cache:6380/1',
    });
  });

  it('runtime', () => {
    const raw = {
      runtime: {
        partitions: 4096,
        mailbox_capacity: 1,
        passivate_after_ms: 1000,
        default_timeout_ms: 600_000,
        drain_timeout_ms: 0,
        max_handler_ms: 3_600_000,
      },
    };
    expect(resolveConfig(raw).runtime).toEqual({
      partitions: 4096,
      mailboxCapacity: 1,
      passivateAfterMs: 1000,
      defaultTimeoutMs: 600_000,
      drainTimeoutMs: 0,
      maxHandlerMs: 3_600_000,
    });
  });

  it('placement', () => {
    const raw = {
      placement: {
        lease_ttl_ms: 600_000,
        renew_interval_ms: 100,
        heartbeat_interval_ms: 100,
        member_ttl_ms: 500,
      },
    };
    expect(resolveConfig(raw).placement).toEqual({
      leaseTtlMs: 600_000,
      renewIntervalMs: 100,
      heartbeatIntervalMs: 100,
      memberTtlMs: 500,
    });
  });

  it('host (group map keys are actor kinds and keep their spelling)', () => {
    const raw = {
      host: {
        actors: ['user', 'item_shard'],
        id: 'host-1',
        groups: { item_shard: ['0', '1'] },
      },
    };
    expect(resolveConfig(raw).host).toEqual({
      actors: ['user', 'item_shard'],
      id: 'host-1',
      groups: { item_shard: ['0', '1'] },
    });
  });

  it('log', () => {
    expect(resolveConfig({ log: { level: 'trace', pretty: true } }).log).toEqual({
      level: 'trace',
      pretty: true,
    });
  });

  it('metrics', () => {
    const raw = { metrics: { enabled: false, default_metrics: false } };
    expect(resolveConfig(raw).metrics).toEqual({
      enabled: false,
      defaultMetrics: false,
      port: 9464,
    });
  });
});

describe('unknown keys', () => {
  it('at top level, listing the sections', () => {
    const err = rejects({ runtim: {} });
    expect(err.path).toBe('runtim');
    expect(err.message).toBe(
      'runtim: unknown key (expected one of: deployment, nats, redis, runtime, placement, host, log, metrics, data, retrieval, items, features, events, recommend, gateway)',
    );
  });

  it('nested, listing the section options', () => {
    const err = rejects({ runtime: { partitons: 8 } });
    expect(err.path).toBe('runtime.partitons');
    expect(err.message).toBe(
      'runtime.partitons: unknown key (expected one of: partitions, mailbox_capacity, passivate_after_ms, default_timeout_ms, drain_timeout_ms, max_handler_ms)',
    );
  });

  it('camelCase spelling in YAML is unknown', () => {
    expect(rejects({ runtime: { mailboxCapacity: 8 } }).path).toBe('runtime.mailboxCapacity');
  });

  it('a group map key that is not a token', () => {
    const err = rejects({ host: { groups: { 'item.shard': ['0'] } } });
    expect(err.path).toBe('host.groups["item.shard"]');
    expect(err.message).toMatch(/invalid key: must match \^\[A-Za-z0-9_-\]\+\$/);
  });
});

describe('wrong types', () => {
  it.each([
    ['runtime.partitions', '64', 'must be an integer >= 1 and <= 4096, got "64"'],
    ['runtime.partitions', 1.5, 'must be an integer >= 1 and <= 4096, got 1.5'],
    ['nats.max_reconnect_attempts', null, 'must be an integer >= -1, got null'],
    ['nats.name', 42, 'must be a non-empty string, got 42'],
    ['log.pretty', 'yes', 'must be true or false, got "yes"'],
    ['host.actors', 'user', 'must be a list, got "user"'],
    ['host.groups', ['0'], 'must be a mapping, got ["0"]'],
    ['host.actors', { user: true }, 'must be a list, got {"user":true}'],
  ])('%s = %j', (path, value, message) => {
    const err = rejects(at(path, value));
    expect(err.path).toBe(path);
    expect(err.message).toBe(`${path}: ${message}`);
  });

  it('a section that is not a mapping', () => {
    const err = rejects({ runtime: 5 });
    expect(err.path).toBe('runtime');
    expect(err.message).toBe('runtime: must be a mapping, got 5');
    expect(rejects({ runtime: [8] }).message).toBe('runtime: must be a mapping, got [8]');
  });

  it('a file that is not a mapping of sections', () => {
    expect(rejects(['runtime']).path).toBe('config');
  });
});

describe('out-of-range values', () => {
  // [path, minimum, maximum]; every bound is checked one step outside.
  const bounds: [string, number, number | undefined][] = [
    ['nats.reconnect_wait_ms', 10, 60_000],
    ['nats.max_reconnect_attempts', -1, undefined],
    ['runtime.partitions', 1, 4096],
    ['runtime.mailbox_capacity', 1, 1_000_000],
    ['runtime.passivate_after_ms', 1000, 86_400_000],
    ['runtime.default_timeout_ms', 1, 600_000],
    ['runtime.drain_timeout_ms', 0, 600_000],
    ['runtime.max_handler_ms', 1, 3_600_000],
    ['placement.lease_ttl_ms', 500, 600_000],
    ['placement.renew_interval_ms', 100, 300_000],
    ['placement.heartbeat_interval_ms', 100, 60_000],
    ['placement.member_ttl_ms', 500, 600_000],
  ];
  const cases = bounds.flatMap(([path, min, max]) => {
    const range = max === undefined ? `>= ${min}` : `>= ${min} and <= ${max}`;
    const below: [string, number, string] = [path, min - 1, range];
    return max === undefined ? [below] : [below, [path, max + 1, range] as typeof below];
  });

  it.each(cases)('%s = %d', (path, value, range) => {
    const err = rejects(at(path, value));
    expect(err.path).toBe(path);
    expect(err.message).toBe(`${path}: must be an integer ${range}, got ${value}`);
    expect(err.code).toBe(ErrorCode.ConfigInvalid);
    expect(err.data['path']).toBe(path);
  });
});

describe('bad enum values', () => {
  it('deployment.transport', () => {
    const err = rejects({ deployment: { transport: 'tcp' } });
    expect(err.path).toBe('deployment.transport');
    expect(err.message).toBe('deployment.transport: must be one of: inproc, nats, got "tcp"');
  });

  it('log.level', () => {
    const err = rejects({ log: { level: 'verbose' } });
    expect(err.message).toBe(
      'log.level: must be one of: fatal, error, warn, info, debug, trace, silent, got "verbose"',
    );
  });
});

describe('malformed strings and lists', () => {
  it.each([
    ['deployment.prefix', 'recsys.'],
    ['deployment.prefix', 'rec sys'],
    ['deployment.prefix', 'recsys.*'],
    ['nats.url', ''],
    ['nats.url', 'nats://a:4222,,nats://b:4222'],
    ['redis.url', 'http://127.0.0.1:6379'],
    ['host.id', 'host 1'],
  ])('%s = %j', (path, value) => {
    const err = rejects(at(path, value));
    expect(err.path).toBe(path);
    expect(err.message).toMatch(/: must be .*, got "/);
  });

  it('an actor kind that is not a token names its index', () => {
    const err = rejects({ host: { actors: ['user', 'item shard'] } });
    expect(err.path).toBe('host.actors[1]');
    expect(err.message).toMatch(/must be an actor kind/);
  });

  it('a duplicated actor kind', () => {
    const err = rejects({ host: { actors: ['user', 'user'] } });
    expect(err.message).toBe('host.actors: must not contain duplicates, got ["user","user"]');
  });

  it('an empty or malformed group list', () => {
    expect(rejects({ host: { groups: { items: [] } } }).path).toBe('host.groups.items');
    expect(rejects({ host: { groups: { items: ['0', '0'] } } }).path).toBe('host.groups.items');
    expect(rejects({ host: { groups: { items: ['a.b'] } } }).path).toBe('host.groups.items[0]');
  });
});

describe('cross-field checks', () => {
  it('renew_interval_ms must be < lease_ttl_ms / 2', () => {
    const err = rejects({ placement: { lease_ttl_ms: 4000, renew_interval_ms: 2000 } });
    expect(err.path).toBe('placement.renew_interval_ms');
    expect(err.message).toBe(
      'placement.renew_interval_ms: must be < placement.lease_ttl_ms / 2 = 2000, got 2000',
    );
    expect(resolveConfig({ placement: { lease_ttl_ms: 4001 } }).placement.leaseTtlMs).toBe(4001);
  });

  it('member_ttl_ms must be > heartbeat_interval_ms * 2', () => {
    const err = rejects({ placement: { heartbeat_interval_ms: 3000 } });
    expect(err.path).toBe('placement.member_ttl_ms');
    expect(err.message).toBe(
      'placement.member_ttl_ms: must be > placement.heartbeat_interval_ms * 2 = 6000, got 6000',
    );
  });

  it('a group map key must be one of host.actors when that list is not empty', () => {
    const err = rejects({ host: { actors: ['user'], groups: { items: ['0'] } } });
    expect(err.path).toBe('host.groups.items');
    expect(err.message).toMatch(/which this host does not run/);
    expect(resolveConfig({ host: { groups: { items: ['0'] } } }).host.groups).toEqual({
      items: ['0'],
    });
  });
});

describe('several errors', () => {
  it('the first in schema order is the error path, the others follow in the message', () => {
    const err = rejects({ log: { level: 'loud' }, runtime: { partitions: 0 } });
    expect(err.path).toBe('runtime.partitions');
    expect(err.message.split('\n')).toEqual([
      'runtime.partitions: must be an integer >= 1 and <= 4096, got 0',
      '  also log.level: must be one of: fatal, error, warn, info, debug, trace, silent, got "loud"',
    ]);
  });
});

describe('environment overrides', () => {
  const applied: [string, string, (config: ResolvedConfig) => unknown, unknown][] = [
    ['RECSYS_PREFIX', 'staging.recsys', (c) => c.deployment.prefix, 'staging.recsys'],
    ['RECSYS_TRANSPORT', 'nats', (c) => c.deployment.transport, 'nats'],
    [
      'NATS_URL',
      'nats://n1:4222,nats://n2:4222',
      (c) => c.nats.url,
      'nats://n1:4222,nats://n2:4222',
    ],
    ['REDIS_URL', 'redis://cache:6379', (c) => c.redis.url, 'redis://cache:6379'],
    ['RECSYS_PARTITIONS', '16', (c) => c.runtime.partitions, 16],
    ['RECSYS_HOST_ID', 'host-7', (c) => c.host.id, 'host-7'],
    ['RECSYS_METRICS_PORT', '9465', (c) => c.metrics.port, 9465],
    ['RECSYS_GATEWAY_PORT', '8080', (c) => c.gateway.port, 8080],
    ['LOG_LEVEL', 'warn', (c) => c.log.level, 'warn'],
  ];

  it.each(applied)('%s=%s is applied', (name, value, pick, expected) => {
    expect(pick(resolveConfig({}, { [name]: value }))).toEqual(expected);
  });

  it('covers every documented variable', () => {
    expect(applied.map(([name]) => name).sort()).toEqual(CONFIG_ENV_VARS.map((v) => v.name).sort());
    for (const variable of CONFIG_ENV_VARS) expect(variable.description).not.toBe('');
  });

  it('wins over the file', () => {
    expect(
      resolveConfig({ runtime: { partitions: 8 } }, { RECSYS_PARTITIONS: '32' }).runtime.partitions,
    ).toBe(32);
  });

  it('an empty or unset variable leaves the option alone', () => {
    expect(
      resolveConfig({ nats: { url: 'nats://x:1' } }, { NATS_URL: '', LOG_LEVEL: undefined }),
    ).toEqual({
      ...DEFAULTS,
      nats: { ...DEFAULTS.nats, url: 'nats://x:1' },
    });
  });

  it('reads nothing but the env it is given', () => {
    process.env['RECSYS_PARTITIONS'] = '2';
    try {
      expect(resolveConfig({}).runtime.partitions).toBe(64);
    } finally {
      delete process.env['RECSYS_PARTITIONS'];
    }
  });

  it('a non-integer RECSYS_PARTITIONS names the variable', () => {
    const err = rejects({}, { RECSYS_PARTITIONS: '16x' });
    expect(err.path).toBe('runtime.partitions');
    expect(err.message).toBe(
      'runtime.partitions: must be an integer >= 1 and <= 4096, got "16x" (from environment variable RECSYS_PARTITIONS)',
    );
  });

  it('an out-of-range RECSYS_PARTITIONS names the variable', () => {
    const err = rejects({}, { RECSYS_PARTITIONS: '0' });
    expect(err.path).toBe('runtime.partitions');
    expect(err.message).toMatch(/got 0 \(from environment variable RECSYS_PARTITIONS\)$/);
  });

  it('an invalid NATS_URL names the variable', () => {
    const err = rejects({}, { NATS_URL: 'nats://a:4222 nats://b:4222' });
    expect(err.path).toBe('nats.url');
    expect(err.message).toMatch(/^nats\.url: must be .*\(from environment variable NATS_URL\)$/);
  });

  it('an invalid LOG_LEVEL names the variable', () => {
    const err = rejects({}, { LOG_LEVEL: 'INFO' });
    expect(err.path).toBe('log.level');
    expect(err.message).toMatch(/got "INFO" \(from environment variable LOG_LEVEL\)$/);
  });
});

describe('overrides', () => {
  it('are camelCase, win over environment and file, and keep group keys as written', () => {
    const file = tempFile('c.yaml', 'runtime:\n  partitions: 8\n');
    const config = loadConfig({
      path: file,
      env: { RECSYS_PARTITIONS: '16' },
      overrides: {
        runtime: { partitions: 32, mailboxCapacity: 10 },
        host: { groups: { item_shard: ['3'] } },
      },
    });
    expect(config.runtime).toEqual({ ...DEFAULTS.runtime, partitions: 32, mailboxCapacity: 10 });
    expect(config.host.groups).toEqual({ item_shard: ['3'] });
  });

  it('an invalid override says where it came from', () => {
    const err = configError(() => loadConfig({ overrides: { runtime: { maxHandlerMs: 0 } } }));
    expect(err.path).toBe('runtime.max_handler_ms');
    expect(err.message).toMatch(/got 0 \(from overrides\)$/);
  });
});

describe('files', () => {
  it('a missing file names the file', () => {
    const file = join(tmpdir(), 'no-such-dir-for-config-test', 'config.yaml');
    const err = configError(() => loadConfig({ path: file }));
    expect(err.path).toBe(file);
    expect(err.message).toBe(`${file}: config file not found`);
  });

  it('a YAML syntax error names the file and line', () => {
    const file = tempFile('bad.yaml', 'log:\n  level: info\n  pretty: a: b\n');
    const err = configError(() => loadConfig({ path: file }));
    expect(err.path).toBe(file);
    expect(err.message).toMatch(new RegExp(`^${file}: YAML syntax error at line 3, column \\d+: `));
  });

  it('a duplicated key is a syntax error', () => {
    const file = tempFile('dup.yaml', 'log:\n  level: info\n  level: debug\n');
    expect(configError(() => loadConfig({ path: file })).message).toMatch(/at line 3/);
  });

  it('an invalid option in a file names the file and line', () => {
    const file = tempFile('range.yaml', 'log:\n  level: info\nruntime:\n  partitions: 0\n');
    const err = configError(() => loadConfig({ path: file }));
    expect(err.path).toBe('runtime.partitions');
    expect(err.message).toBe(
      `runtime.partitions: must be an integer >= 1 and <= 4096, got 0 (${file}:4:15)`,
    );
  });

  it('a file that is not a mapping names the file', () => {
    const file = tempFile('list.yaml', '- runtime\n');
    const err = configError(() => loadConfig({ path: file }));
    expect(err.path).toBe('config');
    expect(err.message).toBe(`config: must be a mapping of sections, got ["runtime"] (${file})`);
  });

  it('an empty file gives the defaults', () => {
    expect(loadConfig({ path: tempFile('empty.yaml', '# nothing\n') })).toEqual(DEFAULTS);
  });
});

/** Dotted paths of every option (leaf) in the JSON Schema. */
function optionPaths(schema: Record<string, unknown>, prefix = ''): string[] {
  const properties = schema['properties'] as Record<string, Record<string, unknown>> | undefined;
  if (properties === undefined) return [prefix];
  return Object.entries(properties).flatMap(([key, child]) =>
    optionPaths(child, prefix === '' ? key : `${prefix}.${key}`),
  );
}

describe('committed files', () => {
  it('configs/config.yaml loads and equals the defaults', () => {
    expect(loadConfig({ path: defaultConfigPath() })).toEqual(DEFAULTS);
  });

  it('configs/config.yaml lists every option', () => {
    const raw = parse(readFileSync(defaultConfigPath(), 'utf8')) as Record<string, unknown>;
    for (const path of optionPaths(configJsonSchema())) {
      const [section = '', key = ''] = path.split('.');
      expect(raw[section], `${path} is missing from config.yaml`).toHaveProperty(key);
    }
  });

  it('configs/config.schema.json matches the TypeBox schema', () => {
    const file = join(dirname(defaultConfigPath()), 'config.schema.json');
    const committed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    expect(
      committed,
      'configs/config.schema.json is stale: regenerate it with `npx tsx runtime/config/write-schema.ts`',
    ).toEqual(configJsonSchema());
  });

  it('every object rejects unknown keys and every option has a description and default', () => {
    const visit = (node: Record<string, unknown>, path: string): void => {
      if (node['type'] === 'object') expect(node['additionalProperties'], path).toBe(false);
      if (path !== '') {
        expect(node['description'], path).toEqual(expect.any(String));
        expect(node, path).toHaveProperty('default');
      }
      const properties = node['properties'] as Record<string, Record<string, unknown>> | undefined;
      for (const [key, child] of Object.entries(properties ?? {})) {
        visit(child, path === '' ? key : `${path}.${key}`);
      }
    };
    visit(configJsonSchema(), '');
  });
});

describe('events.windows_minutes', () => {
  it('must grow from one window to the next', () => {
    const err = rejects({ events: { windows_minutes: [5, 5] } });
    expect(err.path).toBe('events.windows_minutes[1]');
    expect(err.message).toContain('must be longer than the window before it (5), got 5');
  });
});
