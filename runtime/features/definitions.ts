/**
 * Feature definitions: `configs/features.yaml` read and validated once, at start-up, and a registry
 * over them. Everything that names a view or a field (a ranker's feature list, a stream writer, the
 * materialiser) looks it up here when it starts, so a typo is a start-up error naming the key, not
 * a feature that silently reads as its default forever. The same registry checks every row written
 * to the online store, so a value of the wrong type is refused at the door instead of poisoning the
 * model's inputs later.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { defaultConfigPath, parseYamlDocument } from '../config/load.js';
import type { FeaturesConfig } from '../config/schema.js';
import { BadRequestError, ConfigError } from '../errors.js';
import {
  FeatureType,
  ViewSource,
  type EntityDefinition,
  type FeatureDefinitions,
  type FeatureValue,
  type FieldDefinition,
  type ViewDefinition,
} from './types.js';

/** Entity, view and field names: lower-case, usable as a Redis key part and a NATS subject token. */
export const FEATURE_NAME_PATTERN = /^[a-z][a-z0-9_]*$/;
/** Longest entity, view or field name. */
export const MAX_FEATURE_NAME_LENGTH = 64;
/** Longest entity id, in UTF-16 code units. */
export const MAX_ENTITY_ID_LENGTH = 256;
/** Longest view TTL: ten years. */
export const MAX_TTL_MS = 3650 * 86_400_000;

// The online store keeps processed marks and meta values next to the rows, under
// `<prefix>:fs:seen:` and `<prefix>:fs:meta:`: a view of either name would share their keys.
const RESERVED_VIEW_NAMES: ReadonlySet<string> = new Set(['seen', 'meta']);

const TYPES: ReadonlySet<string> = new Set(Object.values(FeatureType));
const SOURCES: ReadonlySet<string> = new Set(Object.values(ViewSource));

const TTL_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const TTL = /^(\d+)(ms|s|m|h|d)$/;

/** How each type is named in error messages. */
const TYPE_DESCRIPTIONS: Readonly<Record<FeatureType, string>> = {
  float: 'a float (a finite number)',
  int: 'an int (a safe integer)',
  bool: 'a bool',
  string: 'a string',
  float_list: 'a float_list (a list of finite numbers)',
  string_list: 'a string_list (a list of strings)',
};

const TOP_KEYS = ['entities', 'views'];
const ENTITY_KEYS = ['name', 'description'];
const VIEW_KEYS = ['name', 'entity', 'source', 'ttl', 'description', 'fields'];
const FIELD_KEYS = ['name', 'type', 'default', 'description'];

type Segment = string | number;
type Locate = (segments: readonly Segment[]) => string | undefined;
type PlainObject = Record<string, unknown>;

/** Whether `value` is of feature type `type` (a float is a finite number, an int a safe integer). */
export function isFeatureValue(type: FeatureType, value: unknown): value is FeatureValue {
  switch (type) {
    case FeatureType.Float:
      return typeof value === 'number' && Number.isFinite(value);
    case FeatureType.Int:
      return typeof value === 'number' && Number.isSafeInteger(value);
    case FeatureType.Bool:
      return typeof value === 'boolean';
    case FeatureType.String:
      return typeof value === 'string';
    case FeatureType.FloatList:
      return (
        Array.isArray(value) &&
        value.every((item) => typeof item === 'number' && Number.isFinite(item))
      );
    case FeatureType.StringList:
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
  }
}

/** A copy of a value, so stored values and callers' values never share a list. */
export function copyFeatureValue(value: FeatureValue): FeatureValue {
  return Array.isArray(value) ? value.slice() : value;
}

/**
 * Parses a TTL: `0` (never), or a whole number with a unit, `ms`, `s`, `m`, `h` or `d`
 * (`30s`, `15m`, `24h`, `30d`). Returns milliseconds, or `undefined` for anything else.
 */
export function parseTtl(value: unknown): number | undefined {
  if (value === 0 || value === '0') return 0;
  if (typeof value !== 'string') return undefined;
  const match = TTL.exec(value);
  if (match === null) return undefined;
  const ms = Number(match[1]) * (TTL_UNITS_MS[match[2] ?? ''] ?? Number.NaN);
  return Number.isSafeInteger(ms) && ms <= MAX_TTL_MS ? ms : undefined;
}

/** Reads and validates a definitions file. Throws {@link ConfigError} naming the file and key. */
export function loadFeatureDefinitions(path: string): FeatureDefinitions {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what =
      code === 'ENOENT'
        ? 'feature definitions file not found'
        : `cannot read feature definitions (${code})`;
    throw new ConfigError(path, what, { cause: err });
  }
  return parseFeatureDefinitions(text, path);
}

/**
 * Parses and validates definitions YAML; `source` names it in errors (a file path). Throws
 * {@link ConfigError} whose path is the key at fault, such as `views[2].fields[1].default`, and
 * whose message ends with `(source:line:column)`.
 */
export function parseFeatureDefinitions(text: string, source: string): FeatureDefinitions {
  const { doc, lineCounter } = parseYamlDocument(text, source);
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    throw new ConfigError(source, `cannot read YAML: ${(err as Error).message}`, { cause: err });
  }
  const locate: Locate = (segments) => {
    // The key itself may be absent (a required key): point at its nearest parent.
    for (let n = segments.length; n >= 0; n--) {
      const node: unknown = n === 0 ? doc.contents : doc.getIn(segments.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range !== undefined) {
        const pos = lineCounter.linePos(range[0]);
        return `${source}:${pos.line}:${pos.col}`;
      }
    }
    return source;
  };
  return new DefinitionsParser(source, locate).parse(raw);
}

/** `['views', 2, 'fields', 1, 'default']` as `views[2].fields[1].default`. */
function formatPath(segments: readonly Segment[]): string {
  let out = '';
  for (const segment of segments) {
    out += typeof segment === 'number' ? `[${segment}]` : out === '' ? segment : `.${segment}`;
  }
  return out;
}

function isPlainObject(value: unknown): value is PlainObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value for an error message: JSON, cut short. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  // JSON would show NaN and Infinity as null.
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? typeof value;
  } catch {
    text = typeof value;
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

class DefinitionsParser {
  constructor(
    private readonly source: string,
    private readonly locate: Locate,
  ) {}

  parse(raw: unknown): FeatureDefinitions {
    const root = this.object([], raw, TOP_KEYS, 'a mapping with entities and views');
    const entities = this.list(['entities'], root['entities']).map((item, i) =>
      this.entity(['entities', i], item),
    );
    if (entities.length === 0) this.fail(['entities'], 'must list at least one entity');
    this.unique('entities', entities);
    const entityNames = entities.map((entity) => entity.name);
    const views = this.list(['views'], root['views']).map((item, i) =>
      this.view(['views', i], item, entityNames),
    );
    this.unique('views', views);
    return Object.freeze({ entities: Object.freeze(entities), views: Object.freeze(views) });
  }

  private entity(at: Segment[], raw: unknown): EntityDefinition {
    const node = this.object(at, raw, ENTITY_KEYS, 'a mapping with name and description');
    return Object.freeze({
      name: this.name([...at, 'name'], node['name']),
      description: this.description([...at, 'description'], node['description']),
    });
  }

  private view(at: Segment[], raw: unknown, entities: readonly string[]): ViewDefinition {
    const node = this.object(at, raw, VIEW_KEYS, 'a mapping describing a view');
    const name = this.name([...at, 'name'], node['name']);
    if (RESERVED_VIEW_NAMES.has(name)) {
      this.fail([...at, 'name'], `${name} is reserved (the store keeps its own keys under it)`);
    }
    const entity = this.name([...at, 'entity'], node['entity']);
    if (!entities.includes(entity)) {
      this.fail([...at, 'entity'], `unknown entity ${entity} (known: ${entities.join(', ')})`);
    }
    const source = node['source'];
    if (typeof source !== 'string' || !SOURCES.has(source)) {
      this.fail(
        [...at, 'source'],
        `must be one of ${[...SOURCES].join(', ')}, got ${show(source)}`,
      );
    }
    const ttlMs = parseTtl(node['ttl']);
    if (ttlMs === undefined) {
      const bare = typeof node['ttl'] === 'number' ? ' (a bare number needs a unit)' : '';
      this.fail(
        [...at, 'ttl'],
        `must be 0 (never) or a duration up to 3650d such as 30s, 15m, 24h, 30d${bare}, got ${show(node['ttl'])}`,
      );
    }
    const fields = this.list([...at, 'fields'], node['fields']).map((item, i) =>
      this.field([...at, 'fields', i], item),
    );
    if (fields.length === 0) this.fail([...at, 'fields'], 'must list at least one field');
    this.unique([...at, 'fields'], fields);
    return Object.freeze({
      name,
      entity,
      source: source as ViewSource,
      ttlMs,
      fields: Object.freeze(fields),
      description: this.description([...at, 'description'], node['description']),
    });
  }

  private field(at: Segment[], raw: unknown): FieldDefinition {
    const node = this.object(at, raw, FIELD_KEYS, 'a mapping describing a field');
    const name = this.name([...at, 'name'], node['name']);
    const type = node['type'];
    if (typeof type !== 'string' || !TYPES.has(type)) {
      this.fail([...at, 'type'], `must be one of ${[...TYPES].join(', ')}, got ${show(type)}`);
    }
    const value = node['default'];
    if (value === undefined) this.fail([...at, 'default'], 'is required');
    if (!isFeatureValue(type as FeatureType, value)) {
      this.fail([...at, 'default'], `must be ${TYPE_DESCRIPTIONS[type as FeatureType]}`);
    }
    return Object.freeze({
      name,
      type: type as FeatureType,
      default: Array.isArray(value) ? (Object.freeze(value.slice()) as FeatureValue) : value,
      description: this.description([...at, 'description'], node['description']),
    });
  }

  private object(at: Segment[], raw: unknown, keys: readonly string[], what: string): PlainObject {
    if (!isPlainObject(raw)) this.fail(at, `must be ${what}, got ${show(raw)}`);
    for (const key of Object.keys(raw)) {
      if (!keys.includes(key)) {
        this.fail([...at, key], `unknown key (allowed: ${keys.join(', ')})`);
      }
    }
    return raw;
  }

  private list(at: Segment[], raw: unknown): unknown[] {
    if (raw === undefined) this.fail(at, 'is required');
    if (!Array.isArray(raw)) this.fail(at, `must be a list, got ${show(raw)}`);
    return raw;
  }

  private name(at: Segment[], raw: unknown): string {
    if (raw === undefined) this.fail(at, 'is required');
    if (
      typeof raw !== 'string' ||
      !FEATURE_NAME_PATTERN.test(raw) ||
      raw.length > MAX_FEATURE_NAME_LENGTH
    ) {
      this.fail(
        at,
        `must match ${FEATURE_NAME_PATTERN.source} (at most ${MAX_FEATURE_NAME_LENGTH} characters), got ${show(raw)}`,
      );
    }
    return raw;
  }

  private description(at: Segment[], raw: unknown): string {
    if (raw === undefined || raw === null) return '';
    if (typeof raw !== 'string') this.fail(at, `must be a string, got ${show(raw)}`);
    return raw;
  }

  private unique(at: Segment | Segment[], items: readonly { name: string }[]): void {
    const path = Array.isArray(at) ? at : [at];
    const seen = new Set<string>();
    items.forEach((item, i) => {
      if (seen.has(item.name)) this.fail([...path, i, 'name'], `duplicate name ${item.name}`);
      seen.add(item.name);
    });
  }

  private fail(segments: readonly Segment[], message: string): never {
    const path = segments.length === 0 ? this.source : formatPath(segments);
    const origin = this.locate(segments);
    throw new ConfigError(path, origin === undefined ? message : `${message} (${origin})`, {
      data: { file: this.source },
    });
  }
}

interface CompiledView {
  readonly definition: ViewDefinition;
  readonly fields: ReadonlyMap<string, FieldDefinition>;
}

// Lone UTF-16 surrogates cannot be encoded as UTF-8: two different ids would share a Redis key.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Checks an entity id: a non-empty string of at most {@link MAX_ENTITY_ID_LENGTH} characters,
 * well-formed Unicode. Any character is allowed otherwise. Throws {@link BadRequestError}.
 */
export function checkEntityId(entity: unknown, field = 'entity'): asserts entity is string {
  if (typeof entity !== 'string' || entity.length === 0) {
    throw new BadRequestError(field, `must be a non-empty string, got ${show(entity)}`);
  }
  if (entity.length > MAX_ENTITY_ID_LENGTH) {
    throw new BadRequestError(
      field,
      `must be at most ${MAX_ENTITY_ID_LENGTH} characters, got ${entity.length}`,
    );
  }
  if (LONE_SURROGATE.test(entity)) {
    throw new BadRequestError(field, 'must be well-formed Unicode (no lone surrogate)');
  }
}

/**
 * Lookups over validated definitions. `view` and `fields` are for start-up (they throw
 * {@link ConfigError}); `requestView` and `validateRow` are for requests (they throw
 * {@link BadRequestError}).
 */
export class FeatureRegistry {
  private readonly views = new Map<string, CompiledView>();

  constructor(readonly definitions: FeatureDefinitions) {
    for (const view of definitions.views) {
      this.views.set(view.name, {
        definition: view,
        fields: new Map(view.fields.map((field) => [field.name, field])),
      });
    }
  }

  /** Names of every view, in definition order. */
  get viewNames(): string[] {
    return [...this.views.keys()];
  }

  has(view: string): boolean {
    return this.views.has(view);
  }

  /**
   * The view called `name`. Throws {@link ConfigError} at `path` (the option that named it) when
   * there is none: call it at start-up.
   */
  view(name: string, path = 'view'): ViewDefinition {
    const view = this.views.get(name);
    if (view === undefined) throw new ConfigError(path, this.unknownView(name));
    return view.definition;
  }

  /**
   * The fields `names` of `view`, in the order given. Throws {@link ConfigError} at `path` for an
   * unknown view or field: call it at start-up.
   */
  fields(view: string, names: readonly string[], path = 'fields'): FieldDefinition[] {
    const compiled = this.views.get(view);
    if (compiled === undefined) throw new ConfigError(path, this.unknownView(view));
    return names.map((name, i) => {
      const field = compiled.fields.get(name);
      if (field === undefined) {
        throw new ConfigError(
          `${path}[${i}]`,
          `unknown field ${name} of feature view ${view} (known: ${[...compiled.fields.keys()].join(', ')})`,
        );
      }
      return field;
    });
  }

  /** The view called `name`, for a request: throws {@link BadRequestError} on field `view`. */
  requestView(name: string): ViewDefinition {
    const view = this.views.get(name);
    if (view === undefined) throw new BadRequestError('view', this.unknownView(name));
    return view.definition;
  }

  /** A fresh row of every field's default value of `view` (lists are copies). */
  defaults(view: string): Record<string, FeatureValue> {
    const definition = this.view(view);
    const row: Record<string, FeatureValue> = {};
    for (const field of definition.fields) row[field.name] = copyFeatureValue(field.default);
    return row;
  }

  /**
   * Checks a row to be written: `entity` an entity id (see {@link checkEntityId}), `values` a
   * mapping whose every key is a field of `view` holding a value of the field's type. Fields left
   * out are allowed: they read back as their defaults. Throws {@link BadRequestError} naming the
   * field, with the view and entity in its message and `data`.
   */
  validateRow(view: string, entity: string, values: unknown): void {
    const compiled = this.views.get(view);
    if (compiled === undefined) throw new BadRequestError('view', this.unknownView(view));
    checkEntityId(entity);
    const where = `(view ${view}, entity ${show(entity)})`;
    const data = { view, entity };
    if (!isPlainObject(values)) {
      throw new BadRequestError('values', `must be a mapping of field to value ${where}`, { data });
    }
    for (const [name, value] of Object.entries(values)) {
      const field = compiled.fields.get(name);
      if (field === undefined) {
        throw new BadRequestError(name, `unknown field of feature view ${view} ${where}`, { data });
      }
      if (!isFeatureValue(field.type, value)) {
        throw new BadRequestError(
          name,
          `must be ${TYPE_DESCRIPTIONS[field.type]}, got ${show(value)} ${where}`,
          { data },
        );
      }
    }
  }

  /**
   * The complete values of a stored row as the view defines them now: every field, a stored value
   * of the field's type where there is one, else the default. Keys the view no longer has are
   * dropped, so a row written before a definition changed still reads as the view says.
   */
  completeValues(
    view: string,
    stored: Readonly<Record<string, unknown>>,
  ): Record<string, FeatureValue> {
    const definition = this.view(view);
    const row: Record<string, FeatureValue> = {};
    for (const field of definition.fields) {
      const value = Object.hasOwn(stored, field.name) ? stored[field.name] : undefined;
      row[field.name] = isFeatureValue(field.type, value)
        ? copyFeatureValue(value)
        : copyFeatureValue(field.default);
    }
    return row;
  }

  private unknownView(name: string): string {
    return `unknown feature view ${name} (known: ${this.viewNames.join(', ')})`;
  }
}

const DEFAULT_DEFINITIONS = 'configs/features.yaml';

/**
 * Where `features.definitions` points: a relative path is taken from the working directory; the
 * default, when the working directory has no such file, is this package's own
 * `configs/features.yaml`, so `recsys` run from another folder still finds the shipped views.
 */
export function definitionsPath(features: Pick<FeaturesConfig, 'definitions'>): string {
  const path = resolve(features.definitions);
  if (features.definitions !== DEFAULT_DEFINITIONS || existsSync(path)) return path;
  return join(dirname(defaultConfigPath()), 'features.yaml');
}

/** Loads the definitions the `features` section of the configuration names. */
export function loadConfiguredDefinitions(
  features: Pick<FeaturesConfig, 'definitions'>,
): FeatureDefinitions {
  return loadFeatureDefinitions(definitionsPath(features));
}
