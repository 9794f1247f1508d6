/**
 * Loads `configs/config.yaml`: read, apply environment and caller overrides, fill defaults,
 * validate, convert to camelCase. Everything is checked once, at start-up, and a bad option throws
 * a {@link ConfigError} naming its dotted key path (and file line, or environment variable).
 *
 * Precedence, lowest first: schema defaults, the file, environment variables, `overrides`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { ConfigError } from '../errors.js';
import { ConfigSchema, type ResolvedConfig } from './schema.js';

/** An environment variable that overrides one option. */
export interface ConfigEnvVar {
  readonly name: string;
  /** Dotted key path of the option it sets. */
  readonly path: string;
  readonly description: string;
}

/**
 * Environment variables read by {@link resolveConfig} and {@link loadConfig}. An unset or empty
 * variable leaves the option alone. Integer options accept decimal digits only.
 */
export const CONFIG_ENV_VARS: readonly ConfigEnvVar[] = [
  { name: 'RECSYS_PREFIX', path: 'deployment.prefix', description: 'Subject prefix.' },
  {
    name: 'RECSYS_TRANSPORT',
    path: 'deployment.transport',
    description: 'inproc (one process) or nats.',
  },
  { name: 'NATS_URL', path: 'nats.url', description: 'NATS server URL(s), comma-separated.' },
  { name: 'REDIS_URL', path: 'redis.url', description: 'Redis URL of the online feature store.' },
  {
    name: 'RECSYS_PARTITIONS',
    path: 'runtime.partitions',
    description: 'Number of user partitions.',
  },
  { name: 'RECSYS_HOST_ID', path: 'host.id', description: 'Host id (empty: generated).' },
  {
    name: 'RECSYS_METRICS_PORT',
    path: 'metrics.port',
    description: 'Port of the /metrics endpoint (0: none); one per process on a machine.',
  },
  { name: 'RECSYS_GATEWAY_PORT', path: 'gateway.port', description: 'Port of the HTTP gateway.' },
  { name: 'LOG_LEVEL', path: 'log.level', description: 'Log level, such as info or debug.' },
];

/** Names the config file to load; read by the CLI, not by this module. */
export const CONFIG_FILE_ENV_VAR = 'RECSYS_CONFIG';

/** Every field optional, recursively; arrays are replaced whole, not merged. */
export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** Values set by the caller (for example from command-line flags), camelCase like the result. */
export type ConfigOverrides = DeepPartial<ResolvedConfig>;

export type ConfigEnv = Record<string, string | undefined>;

export interface LoadConfigOptions {
  /** YAML file to read; without it only defaults, environment and overrides apply. */
  path?: string;
  /** Environment to read overrides from; pass `process.env` from the entry point. */
  env?: ConfigEnv;
  overrides?: ConfigOverrides;
}

/** Reads, validates and resolves the configuration. Throws {@link ConfigError}. */
export function loadConfig(options: LoadConfigOptions = {}): ResolvedConfig {
  const { path, env = {}, overrides } = options;
  if (path === undefined) return resolve({}, env, overrides, () => undefined);
  const { raw, locate } = readYaml(path);
  return resolve(raw, env, overrides, locate);
}

/**
 * The configuration a command runs with: the file named by `file` (a `--config` flag), else by
 * `RECSYS_CONFIG`, else `configs/config.yaml`; then the environment and `overrides`.
 */
export function loadCommandConfig(
  file: string | undefined,
  env: ConfigEnv,
  overrides?: ConfigOverrides,
): ResolvedConfig {
  const path = file ?? env[CONFIG_FILE_ENV_VAR] ?? defaultConfigPath();
  return loadConfig(overrides === undefined ? { path, env } : { path, env, overrides });
}

/** Validates an already parsed YAML tree (snake_case keys). Pure; throws {@link ConfigError}. */
export function resolveConfig(raw: unknown, env: ConfigEnv = {}): ResolvedConfig {
  return resolve(raw, env, undefined, () => undefined);
}

/** `configs/config.yaml` of this package, found from this file in `runtime/` or `dist/runtime/`. */
export function defaultConfigPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new ConfigError('config', 'package root (package.json) not found');
    dir = parent;
  }
  return join(dir, 'configs', 'config.yaml');
}

type Segment = string | number;
type Locate = (segments: readonly Segment[]) => string | undefined;
type PlainObject = Record<string, unknown>;

interface SchemaNode {
  type?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  minItems?: number;
  pattern?: string;
  patternErrorMessage?: string;
  const?: unknown;
  anyOf?: SchemaNode[];
  items?: SchemaNode;
  properties?: Record<string, SchemaNode>;
  patternProperties?: Record<string, SchemaNode>;
}

interface Issue {
  segments: Segment[];
  message: string;
}

const ROOT = ConfigSchema as SchemaNode;

function isPlainObject(value: unknown): value is PlainObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses YAML keeping positions, for messages that point at a line; a syntax error throws
 * {@link ConfigError} on `source` (the file) with its line and column.
 */
export function parseYamlDocument(
  text: string,
  source: string,
): { doc: Document.Parsed; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const pos = syntax.linePos?.[0] ?? lineCounter.linePos(syntax.pos[0]);
    throw new ConfigError(
      source,
      `YAML syntax error at line ${pos.line}, column ${pos.col}: ${syntax.message}`,
      { cause: syntax },
    );
  }
  return { doc, lineCounter };
}

function readYaml(file: string): { raw: unknown; locate: Locate } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'config file not found' : `cannot read config file (${code})`;
    throw new ConfigError(file, what, { cause: err });
  }
  const { doc, lineCounter } = parseYamlDocument(text, file);
  const locate: Locate = (segments) => {
    // The key itself may be absent (a default, or a cross-field error): point at its nearest parent.
    for (let n = segments.length; n > 0; n--) {
      const node: unknown = doc.getIn(segments.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      if (range !== undefined) {
        const pos = lineCounter.linePos(range[0]);
        return `${file}:${pos.line}:${pos.col}`;
      }
    }
    return file;
  };
  try {
    return { raw: doc.toJS(), locate };
  } catch (err) {
    // Parsing succeeded but building the tree did not, for example an alias bomb.
    throw new ConfigError(file, `cannot read YAML: ${(err as Error).message}`, { cause: err });
  }
}

function resolve(
  raw: unknown,
  env: ConfigEnv,
  overrides: ConfigOverrides | undefined,
  locate: Locate,
): ResolvedConfig {
  // An empty file parses as null; a section whose options are all commented out does too.
  const tree: unknown = raw === null || raw === undefined ? {} : Value.Clone(raw);
  if (!isPlainObject(tree)) {
    const origin = locate([]);
    const message = `must be a mapping of sections, got ${show(tree)}`;
    throw new ConfigError('config', origin === undefined ? message : `${message} (${origin})`);
  }
  for (const [key, value] of Object.entries(tree)) if (value === null) delete tree[key];

  // Remembers which options came from outside the file, so an error names the right culprit.
  const sources = new Map<string, string>();
  for (const variable of CONFIG_ENV_VARS) {
    const value = env[variable.name];
    if (value === undefined || value === '') continue;
    const segments = variable.path.split('.');
    setAt(tree, segments, fromEnv(schemaAt(segments), value));
    sources.set(variable.path, `from environment variable ${variable.name}`);
  }
  if (overrides !== undefined) mergeOverrides(tree, overrides, ROOT, [], sources);

  const filled = withDefaults(ROOT, tree);
  const issues = schemaIssues(filled);
  if (issues.length === 0) issues.push(...crossFieldIssues(filled as PlainObject));
  const [first, ...rest] = issues;
  if (first !== undefined) {
    const where = (issue: Issue): string => {
      const origin = sourceOf(sources, issue.segments) ?? locate(issue.segments);
      return origin === undefined ? issue.message : `${issue.message} (${origin})`;
    };
    const more = rest.map((issue) => `\n  also ${renderPath(issue.segments)}: ${where(issue)}`);
    throw new ConfigError(renderPath(first.segments), where(first) + more.join(''));
  }
  return toCamel(ROOT, filled) as ResolvedConfig;
}

/** The environment variable or override that set this key or one of its parents, if any. */
function sourceOf(sources: Map<string, string>, segments: readonly Segment[]): string | undefined {
  for (let n = segments.length; n > 0; n--) {
    const source = sources.get(renderPath(segments.slice(0, n)));
    if (source !== undefined) return source;
  }
  return undefined;
}

/**
 * Fills missing options from the schema's defaults. TypeBox's `Value.Default` is not used: it
 * merges a value of the wrong type into the default (a list given for a mapping becomes a
 * mapping, a mapping given for a list becomes a list), which would hide the mistake.
 */
function withDefaults(schema: SchemaNode, value: unknown): unknown {
  const filled = value === undefined ? Value.Clone(schema.default) : value;
  if (schema.properties === undefined || !isPlainObject(filled)) return filled;
  for (const [key, child] of Object.entries(schema.properties)) {
    const option = withDefaults(child, filled[key]);
    if (option !== undefined) filled[key] = option;
  }
  return filled;
}

/** Environment values are strings; numbers and booleans are converted when they read as such. */
function fromEnv(schema: SchemaNode | undefined, value: string): unknown {
  const trimmed = value.trim();
  if (schema?.type === 'integer' && /^[+-]?\d+$/.test(trimmed)) return Number(trimmed);
  if (schema?.type === 'boolean' && (trimmed === 'true' || trimmed === 'false')) {
    return trimmed === 'true';
  }
  // Anything else stays a string, so validation reports it with the option's usual message.
  return value;
}

function schemaAt(segments: readonly Segment[]): SchemaNode | undefined {
  let schema: SchemaNode | undefined = ROOT;
  for (const segment of segments) {
    if (schema === undefined) return undefined;
    if (typeof segment === 'number') schema = schema.items;
    else schema = schema.properties?.[segment] ?? Object.values(schema.patternProperties ?? {})[0];
  }
  return schema;
}

function setAt(tree: PlainObject, segments: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of segments.slice(0, -1)) {
    const child = node[key];
    if (child === undefined || child === null) node = node[key] = {};
    else if (isPlainObject(child)) node = child;
    // A section of the wrong type stays as it is, and validation reports the section.
    else return;
  }
  node[segments[segments.length - 1] ?? ''] = value;
}

function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Deep-merges camelCase overrides into the snake_case tree, renaming keys the schema knows. */
function mergeOverrides(
  target: PlainObject,
  overrides: object,
  schema: SchemaNode | undefined,
  segments: string[],
  sources: Map<string, string>,
): void {
  for (const [camelKey, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const snake = snakeCase(camelKey);
    // Only schema-declared keys are renamed: map keys (actor kinds in host.groups) are data.
    const key = schema?.properties?.[snake] !== undefined ? snake : camelKey;
    const childSchema = schemaAt([...segments, key]);
    if (isPlainObject(value) && childSchema?.type === 'object') {
      const current = target[key];
      const into = isPlainObject(current) ? current : (target[key] = {});
      mergeOverrides(into, value, childSchema, [...segments, key], sources);
    } else {
      target[key] = Value.Clone(value);
      sources.set(renderPath([...segments, key]), 'from overrides');
    }
  }
}

function toCamel(schema: SchemaNode | undefined, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => toCamel(schema?.items, item));
  if (!isPlainObject(value)) return value;
  const out: PlainObject = {};
  if (schema?.properties !== undefined) {
    // Schema order, not file order, so the result prints the same however the file is arranged.
    for (const [key, declared] of Object.entries(schema.properties)) {
      if (key in value) out[camelCase(key)] = toCamel(declared, value[key]);
    }
    return out;
  }
  const entry = Object.values(schema?.patternProperties ?? {})[0];
  for (const [key, child] of Object.entries(value)) out[key] = toCamel(entry, child);
  return out;
}

/** Turns TypeBox's errors into one human message per key path, in schema order. */
function schemaIssues(value: unknown): Issue[] {
  const issues: Issue[] = [];
  const seen: string[] = [];
  for (const error of Value.Errors(ConfigSchema, value)) {
    const segments = pointerToSegments(error.path, value);
    const path = renderPath(segments);
    // One message per key and nothing below it: a list with duplicates that also holds a bad
    // item, say, is reported once, as the list.
    if (
      seen.some(
        (done) => path === done || path.startsWith(`${done}.`) || path.startsWith(`${done}[`),
      )
    ) {
      continue;
    }
    seen.push(path);
    issues.push({ segments, message: describe(error) });
  }
  return issues;
}

function describe(error: ValueError): string {
  const schema = error.schema as SchemaNode;
  const got = `got ${show(error.value)}`;
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      if (schema.properties !== undefined) {
        return `unknown key (expected one of: ${Object.keys(schema.properties).join(', ')})`;
      }
      return `invalid key: must match ${Object.keys(schema.patternProperties ?? {}).join(', ')}`;
    case ValueErrorType.ArrayUniqueItems:
      return `must not contain duplicates, ${got}`;
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${schema.minItems ?? 1} item(s), ${got}`;
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    default:
      return `${expected(schema)}, ${got}`;
  }
}

/** What a value of `schema` must look like, phrased for a person editing YAML. */
function expected(schema: SchemaNode): string {
  if (schema.anyOf?.every((member) => member.const !== undefined)) {
    return `must be one of: ${schema.anyOf.map((member) => String(member.const)).join(', ')}`;
  }
  switch (schema.type) {
    case 'integer':
    case 'number': {
      const bounds = [
        schema.minimum === undefined ? '' : `>= ${schema.minimum}`,
        schema.maximum === undefined ? '' : `<= ${schema.maximum}`,
      ].filter((bound) => bound !== '');
      const kind = schema.type === 'integer' ? 'an integer' : 'a number';
      return `must be ${kind}${bounds.length > 0 ? ` ${bounds.join(' and ')}` : ''}`;
    }
    case 'boolean':
      return 'must be true or false';
    case 'string':
      if (schema.patternErrorMessage !== undefined) return schema.patternErrorMessage;
      if (schema.pattern !== undefined) return `must be a string matching ${schema.pattern}`;
      return schema.minLength === 1 ? 'must be a non-empty string' : 'must be a string';
    case 'array':
      return 'must be a list';
    case 'object':
      return 'must be a mapping';
    default:
      return 'has the wrong type';
  }
}

/** Checks that relate two options; run only once every option has the right type and range. */
function crossFieldIssues(config: PlainObject): Issue[] {
  const issues: Issue[] = [];
  const placement = config['placement'] as Record<string, number>;
  const leaseTtl = placement['lease_ttl_ms'] ?? 0;
  const renew = placement['renew_interval_ms'] ?? 0;
  // A lease must survive one missed renewal, or a slow tick hands the partition to another host.
  if (!(renew < leaseTtl / 2)) {
    issues.push({
      segments: ['placement', 'renew_interval_ms'],
      message: `must be < placement.lease_ttl_ms / 2 = ${leaseTtl / 2}, got ${renew}`,
    });
  }
  const heartbeat = placement['heartbeat_interval_ms'] ?? 0;
  const memberTtl = placement['member_ttl_ms'] ?? 0;
  // Likewise one lost heartbeat must not declare a live host dead.
  if (!(memberTtl > heartbeat * 2)) {
    issues.push({
      segments: ['placement', 'member_ttl_ms'],
      message: `must be > placement.heartbeat_interval_ms * 2 = ${heartbeat * 2}, got ${memberTtl}`,
    });
  }
  const host = config['host'] as { actors: string[]; groups: Record<string, string[]> };
  if (host.actors.length > 0) {
    for (const kind of Object.keys(host.groups)) {
      if (host.actors.includes(kind)) continue;
      issues.push({
        segments: ['host', 'groups', kind],
        message: `names actor kind ${kind}, which this host does not run (host.actors: ${host.actors.join(', ')})`,
      });
    }
  }
  const windows = (config['events'] as { windows_minutes: number[] }).windows_minutes;
  // The shortest window comes first: velocity and session features compare it with the longest.
  windows.forEach((minutes, i) => {
    if (i > 0 && !(minutes > windows[i - 1]!)) {
      issues.push({
        segments: ['events', 'windows_minutes', i],
        message: `must be longer than the window before it (${windows[i - 1]}), got ${minutes}`,
      });
    }
  });
  return issues;
}

/** `/host/actors/0` → `['host', 'actors', 0]`; array indices become numbers. */
function pointerToSegments(pointer: string, root: unknown): Segment[] {
  const segments: Segment[] = [];
  let node = root;
  for (const token of pointer.split('/').slice(1)) {
    const key = token.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      segments.push(Number(key));
      node = node[Number(key)] as unknown;
    } else {
      segments.push(key);
      node = isPlainObject(node) ? node[key] : undefined;
    }
  }
  return segments;
}

/** `['host', 'actors', 0]` → `host.actors[0]`; keys that are not plain tokens are quoted. */
function renderPath(segments: readonly Segment[]): string {
  if (segments.length === 0) return 'config';
  return segments
    .map((segment, i) => {
      if (typeof segment === 'number') return `[${segment}]`;
      if (!/^[A-Za-z0-9_-]+$/.test(segment)) return `[${JSON.stringify(segment)}]`;
      return i === 0 ? segment : `.${segment}`;
    })
    .join('');
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  // String() keeps NaN and Infinity (from overrides) readable; JSON would print them as null.
  if (typeof value === 'number') return String(value);
  const text = JSON.stringify(value) ?? `a ${typeof value}`;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
