/**
 * Checks the container and monitoring files (Dockerfile, docker-compose.yml, Prometheus and Grafana
 * configuration) against the code they deploy, as far as that is possible without a container
 * engine: the compose file parses, the node services' environment is one the config loader accepts,
 * Prometheus scrapes exactly those services on the configured metrics port, and every metric the
 * Grafana dashboard queries is one the runtime exposes.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  CONFIG_ENV_VARS,
  defaultConfigPath,
  loadConfig,
  resolveConfig,
  type ConfigEnv,
} from '../../runtime/config/index.js';
import { RuntimeMetrics } from '../../runtime/metrics.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const readYaml = (path: string): unknown => parse(read(path), { merge: true });

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  ports?: Array<string | { host_ip?: string; published?: string | number }>;
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  healthcheck?: { test?: string | string[] };
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

const compose = readYaml('docker-compose.yml') as ComposeFile;
const services = Object.entries(compose.services);
const metricsPort = loadConfig({ path: defaultConfigPath() }).metrics.port;

function commandOf(service: ComposeService): string[] {
  const command = service.command ?? [];
  return typeof command === 'string' ? command.split(/\s+/).filter((w) => w !== '') : command;
}

/** Services running the project image as a `recsys node` host process. */
const nodeServices = services.filter(
  ([, service]) => service.build !== undefined && commandOf(service)[0] === 'node',
);

/** Compose interpolation: `${NAME:-default}` and `${NAME-default}` take the default, `${NAME}` ''. */
function interpolate(value: string): string {
  return value.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g, (_, fallback?: string) =>
    fallback === undefined ? '' : fallback,
  );
}

function environmentOf(service: ComposeService): ConfigEnv {
  const env: ConfigEnv = {};
  const raw = service.environment ?? {};
  const entries: Array<[string, unknown]> = Array.isArray(raw)
    ? raw.map((item) => {
        const at = item.indexOf('=');
        return at === -1 ? [item, undefined] : [item.slice(0, at), item.slice(at + 1)];
      })
    : Object.entries(raw);
  for (const [name, value] of entries) {
    if (value === undefined || value === null) env[name] = undefined;
    // Numbers and booleans reach the process as their YAML spelling.
    else env[name] = interpolate(typeof value === 'string' ? value : JSON.stringify(value));
  }
  return env;
}

/** A Grafana panel; a row holds its collapsed panels in `panels`. */
interface Panel {
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string } | string | null;
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  panels?: Panel[];
}

function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.split(/^FROM\s/m).slice(1);
  const runtimeStage = stages[stages.length - 1] ?? '';
  const instructions = (stage: string, keyword: string): string[] =>
    stage
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.toUpperCase().startsWith(`${keyword} `))
      .map((line) => line.slice(keyword.length).trim());

  it('is multi-stage, and the runtime stage installs production dependencies only', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const runs = instructions(runtimeStage, 'RUN').join('\n');
    expect(runs).toMatch(/npm ci\b[^\n]*--omit=dev/);
    expect(runs).not.toMatch(/npm (install|ci)(?![^\n]*--omit=dev)/);
  });

  it('copies the compiled code, bin/, configs/ and package.json into the runtime stage', () => {
    const copies = instructions(runtimeStage, 'COPY');
    const sources = copies.flatMap((copy) =>
      copy
        .split(/\s+/)
        .filter((word) => !word.startsWith('--'))
        .slice(0, -1),
    );
    expect(sources).toEqual(
      expect.arrayContaining(['/app/dist', 'bin', 'configs', 'package.json', 'package-lock.json']),
    );
  });

  it('runs as a non-root user', () => {
    const users = instructions(runtimeStage, 'USER');
    const last = users[users.length - 1];
    expect(last).toBeDefined();
    expect(last).not.toMatch(/^(root|0)(:|$)/);
  });

  it('starts the recsys CLI, exposes the metrics port and health-checks it', () => {
    expect(instructions(runtimeStage, 'ENTRYPOINT')).toEqual(['["node", "bin/recsys.js"]']);
    expect(instructions(runtimeStage, 'EXPOSE')).toContain(String(metricsPort));
    const gatewayPort = loadConfig({ path: defaultConfigPath() }).gateway.port;
    expect(instructions(runtimeStage, 'EXPOSE')).toContain(String(gatewayPort));
    const healthcheck = instructions(runtimeStage, 'HEALTHCHECK').join('\n');
    expect(healthcheck).toContain(`http://127.0.0.1:${metricsPort}/healthz`);
  });

  it('is not denied the files it copies by .dockerignore', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim().replace(/\/$/, ''))
      .filter((line) => line !== '' && !line.startsWith('#'));
    const needed = [
      'package.json',
      'package-lock.json',
      '.npmrc',
      'tsconfig.json',
      'tsconfig.build.json',
      'bin',
      'configs',
      'runtime',
    ];
    for (const path of needed) {
      expect(existsSync(join(ROOT, path)), path).toBe(true);
      expect(ignored, path).not.toContain(path);
    }
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
  });

  it('needs no devDependency at run time', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies?: Record<string, string> };
    const dependencies = Object.keys(pkg.dependencies ?? {});
    const build = JSON.parse(read('tsconfig.build.json')) as {
      include: string[];
      exclude?: string[];
    };
    const excluded = new Set((build.exclude ?? []).filter((path) => !path.includes('*')));
    const files: string[] = [];
    const walk = (dir: string): void => {
      if (!existsSync(dir)) return;
      // `include` lists single files too (the composition root `main.ts`).
      if (!statSync(dir).isDirectory()) {
        files.push(dir);
        return;
      }
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (/\.[cm]?[jt]s$/.test(name) && !/\.test\.[cm]?[jt]s$/.test(name)) files.push(path);
      }
    };
    for (const dir of [...build.include, 'bin']) walk(join(ROOT, dir));
    const imported = new Set<string>();
    for (const file of files) {
      if (excluded.has(relative(ROOT, file).split('\\').join('/'))) continue;
      const source = readFileSync(file, 'utf8');
      const specifiers = [
        ...source.matchAll(/\bfrom\s+'([^'.][^']*)'/g),
        ...source.matchAll(/\bimport\(\s*'([^'.][^']*)'\s*\)/g),
        // pino transports name their module as a string, loaded in a worker.
        ...source.matchAll(/\btarget:\s*'([^'./][^']*)'/g),
      ].map((match) => match[1] ?? '');
      for (const specifier of specifiers) {
        if (specifier.startsWith('node:')) continue;
        const parts = specifier.split('/');
        imported.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? ''));
      }
    }
    expect(imported.size).toBeGreaterThan(0);
    expect([...imported].filter((name) => !dependencies.includes(name))).toEqual([]);
  });
});

describe('docker-compose.yml', () => {
  it('parses, and every service that builds uses the Dockerfile', () => {
    expect(services.length).toBeGreaterThan(0);
    const built = services.filter(([, service]) => service.build !== undefined);
    expect(built.length).toBeGreaterThan(0);
    for (const [name, service] of built) {
      const build = typeof service.build === 'string' ? { context: service.build } : service.build;
      expect(build?.context ?? '.', name).toBe('.');
      expect(build?.dockerfile ?? 'Dockerfile', name).toBe('Dockerfile');
    }
  });

  it('runs node services with NATS and Redis, after NATS is healthy', () => {
    expect(nodeServices.map(([name]) => name)).toEqual(['node-1', 'node-2']);
    expect(compose.services['nats']?.healthcheck?.test).toBeDefined();
    for (const [name, service] of nodeServices) {
      const dependsOn = service.depends_on;
      expect(Array.isArray(dependsOn), name).toBe(false);
      expect((dependsOn as Record<string, { condition?: string }>)['nats']?.condition, name).toBe(
        'service_healthy',
      );
    }
  });

  it('sets only environment variables the config loader knows, and they resolve', () => {
    const known = CONFIG_ENV_VARS.map((variable) => variable.name);
    for (const [name, service] of nodeServices) {
      const env = environmentOf(service);
      expect(
        Object.keys(env).filter((key) => !known.includes(key)),
        name,
      ).toEqual([]);
      const config = resolveConfig({}, env);
      expect(config.deployment.transport, name).toBe('nats');
      expect(config.host.id, name).toBe(name);
      // As the container starts: the shipped config file, then the environment.
      const loaded = loadConfig({ path: defaultConfigPath(), env });
      expect(loaded.nats.url, name).toBe('nats://nats:4222');
      expect(loaded.redis.url, name).toBe('redis://redis:6379');
    }
  });

  it('builds the demo once before the hosts and the gateway start, into the volume they share', () => {
    const setup = compose.services['setup'];
    expect(setup === undefined ? [] : commandOf(setup)).toEqual(['demo']);
    const dependents = [...nodeServices, ['gateway', compose.services['gateway']] as const];
    for (const [name, service] of dependents) {
      const dependsOn = service?.depends_on as Record<string, { condition?: string }> | undefined;
      expect(dependsOn?.['setup']?.condition, name).toBe('service_completed_successfully');
      expect(service?.volumes, name).toEqual(setup?.volumes);
    }
  });

  it('runs the gateway over NATS on the configured port, published on 127.0.0.1', () => {
    const gateway = compose.services['gateway'];
    expect(gateway === undefined ? [] : commandOf(gateway)).toEqual(['gateway']);
    const port = loadConfig({ path: defaultConfigPath() }).gateway.port;
    expect(gateway?.ports).toEqual([`127.0.0.1:${port}:${port}`]);
    const env = gateway === undefined ? {} : environmentOf(gateway);
    const known = CONFIG_ENV_VARS.map((variable) => variable.name);
    expect(Object.keys(env).filter((key) => !known.includes(key))).toEqual([]);
    expect(resolveConfig({}, env).deployment.transport).toBe('nats');
    expect(JSON.stringify(gateway?.healthcheck?.test)).toContain(`127.0.0.1:${port}/health`);
  });

  it('publishes ports on 127.0.0.1 only', () => {
    for (const [name, service] of services) {
      for (const port of service.ports ?? []) {
        const hostIp = typeof port === 'string' ? port.split(':')[0] : port.host_ip;
        expect(hostIp, `${name}: ${JSON.stringify(port)}`).toBe('127.0.0.1');
      }
    }
  });

  it('mounts files and folders that exist in the repository', () => {
    const mounts = services.flatMap(([, service]) =>
      (service.volumes ?? []).map((volume) =>
        typeof volume === 'string' ? volume.split(':')[0] : volume.source,
      ),
    );
    const local = mounts.filter((source): source is string => source?.startsWith('.') === true);
    expect(local.length).toBeGreaterThan(0);
    for (const source of local) expect(existsSync(join(ROOT, source)), source).toBe(true);
  });
});

describe('Prometheus', () => {
  it('scrapes every node service, and only them, on the metrics port', () => {
    const prometheus = readYaml('configs/prometheus/prometheus.yml') as {
      scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }> }>;
    };
    const job = prometheus.scrape_configs.find((config) => config.job_name === 'recsys-nodes');
    expect(job).toBeDefined();
    const targets = (job?.static_configs ?? []).flatMap((config) => config.targets);
    expect([...targets].sort()).toEqual(
      nodeServices.map(([name]) => `${name}:${metricsPort}`).sort(),
    );
  });
});

describe('Prometheus, the gateway', () => {
  it('scrapes the gateway on its own port', () => {
    const prometheus = readYaml('configs/prometheus/prometheus.yml') as {
      scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }> }>;
    };
    const job = prometheus.scrape_configs.find((config) => config.job_name === 'recsys-gateway');
    const port = loadConfig({ path: defaultConfigPath() }).gateway.port;
    expect((job?.static_configs ?? []).flatMap((config) => config.targets)).toEqual([
      `gateway:${port}`,
    ]);
  });
});

describe('Grafana', () => {
  const datasources = readYaml('configs/grafana/provisioning/datasources/prometheus.yml') as {
    datasources: Array<{ uid: string; type: string; url: string }>;
  };
  const dashboard = JSON.parse(read('configs/grafana/dashboards/runtime.json')) as {
    uid: string;
    panels: Panel[];
    templating?: { list: Array<{ query?: string | { query?: string } }> };
  };
  const panels = allPanels(dashboard.panels);

  it('provisions the dashboards from the folder compose mounts', () => {
    const providers = readYaml('configs/grafana/provisioning/dashboards/recsys.yml') as {
      providers: Array<{ options: { path: string } }>;
    };
    const grafana = compose.services['grafana'];
    const mounts = (grafana?.volumes ?? []).filter((v): v is string => typeof v === 'string');
    const target = mounts
      .map((volume) => volume.split(':'))
      .find(([source]) => source?.replace(/\/$/, '') === './configs/grafana/dashboards')?.[1];
    expect(target).toBeDefined();
    expect(providers.providers.map((provider) => provider.options.path)).toContain(target);
  });

  it('refers to the provisioned Prometheus datasource by uid', () => {
    const uids = datasources.datasources.map((datasource) => datasource.uid);
    const prometheus = datasources.datasources.find((d) => d.type === 'prometheus');
    expect(prometheus?.url).toBe('http://prometheus:9090');
    const queried = panels.filter((panel) => (panel.targets ?? []).length > 0);
    expect(queried.length).toBeGreaterThan(0);
    for (const panel of queried) {
      const datasource = panel.datasource;
      expect(typeof datasource === 'object' && datasource !== null, panel.title).toBe(true);
      expect(uids, panel.title).toContain((datasource as { uid?: string }).uid);
      for (const target of panel.targets ?? []) {
        if (target.datasource !== undefined) expect(uids).toContain(target.datasource.uid);
      }
    }
  });

  it('queries only metrics the runtime exposes', async () => {
    const exposition = await new RuntimeMetrics({ defaultMetrics: true }).expose();
    const types = new Map<string, string>();
    for (const match of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      types.set(match[1] ?? '', match[2] ?? '');
    }
    const exists = (name: string): boolean => {
      if (types.has(name)) return true;
      const base = /^(.*)_(bucket|count|sum)$/.exec(name);
      if (base === null) return false;
      const type = types.get(base[1] ?? '');
      return type === 'histogram' || (type === 'summary' && base[2] !== 'bucket');
    };
    const exprs = [
      ...panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? '')),
      ...(dashboard.templating?.list ?? []).map((variable) =>
        typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? ''),
      ),
    ];
    const names = new Set(exprs.flatMap((expr) => expr.match(/\brecsys_[a-z0-9_]+/g) ?? []));
    expect(names.size).toBeGreaterThan(10);
    expect([...names].filter((name) => !exists(name))).toEqual([]);
  });
});
