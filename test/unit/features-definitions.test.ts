import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { BadRequestError, ConfigError } from '../../runtime/errors.js';
import {
  checkEntityId,
  FeatureRegistry,
  loadFeatureDefinitions,
  parseFeatureDefinitions,
  parseTtl,
} from '../../runtime/features/definitions.js';
import { FeatureType, ViewSource } from '../../runtime/features/types.js';
import { SUITE_DEFINITIONS } from '../helpers/online-store-suite.js';

const SHIPPED = fileURLToPath(new URL('../../configs/features.yaml', import.meta.url));

/** A valid document whose first view's first field is replaced by `field` (YAML flow mapping). */
function withField(field: string): string {
  return `
entities:
  - { name: user }
views:
  - name: v
    entity: user
    source: batch
    ttl: 0
    fields:
      - { name: ok, type: int, default: 0 }
      - ${field}
`;
}

function parseError(text: string): ConfigError {
  try {
    parseFeatureDefinitions(text, 'features.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseFeatureDefinitions', () => {
  it('parses the shipped configs/features.yaml', () => {
    const definitions = loadFeatureDefinitions(SHIPPED);
    expect(definitions.entities.map((e) => e.name)).toEqual(['user', 'item']);
    const views = new Map(definitions.views.map((view) => [view.name, view]));
    expect([...views.keys()]).toEqual([
      'user_profile',
      'item_profile',
      'item_popularity',
      'user_realtime',
      'item_realtime',
    ]);
    expect(views.get('user_profile')).toMatchObject({
      entity: 'user',
      source: ViewSource.Batch,
      ttlMs: 0,
    });
    expect(views.get('item_popularity')?.ttlMs).toBe(30 * 86_400_000);
    expect(views.get('user_realtime')).toMatchObject({
      source: ViewSource.Stream,
      ttlMs: 86_400_000,
    });
    const ctr = views.get('item_popularity')?.fields.find((field) => field.name === 'ctr');
    expect(ctr).toMatchObject({ type: FeatureType.Float, default: 0.05 });
    const tags = views.get('item_profile')?.fields.find((field) => field.name === 'tags');
    expect(tags).toMatchObject({ type: FeatureType.StringList, default: [] });
    for (const view of definitions.views) {
      expect(view.description, view.name).not.toBe('');
      for (const field of view.fields) expect(field.description, field.name).not.toBe('');
    }
  });

  it('fills optional descriptions and freezes what it returns', () => {
    const definitions = parseFeatureDefinitions(
      withField('{ name: x, type: bool, default: true }'),
      'f',
    );
    expect(definitions.entities[0]).toEqual({ name: 'user', description: '' });
    expect(definitions.views[0]?.fields[1]).toEqual({
      name: 'x',
      type: 'bool',
      default: true,
      description: '',
    });
    expect(Object.isFrozen(definitions.views[0]?.fields)).toBe(true);
    expect(Object.isFrozen(definitions.views[0]?.fields[0])).toBe(true);
  });

  it('accepts a default of every type', () => {
    const definitions = parseFeatureDefinitions(
      `
entities: [{ name: user }]
views:
  - name: v
    entity: user
    source: stream
    ttl: 15m
    fields:
      - { name: f, type: float, default: -0.5 }
      - { name: f_int, type: float, default: 3 }
      - { name: i, type: int, default: -1 }
      - { name: b, type: bool, default: false }
      - { name: s, type: string, default: '' }
      - { name: fl, type: float_list, default: [1, 2.5] }
      - { name: sl, type: string_list, default: [a, 'b c'] }
`,
      'f',
    );
    expect(definitions.views[0]?.ttlMs).toBe(15 * 60_000);
    expect(definitions.views[0]?.fields.map((field) => field.default)).toEqual([
      -0.5,
      3,
      -1,
      false,
      '',
      [1, 2.5],
      ['a', 'b c'],
    ]);
  });

  it.each([
    ['{ name: x, type: float, default: abc }', 'views[0].fields[1].default', 'must be a float'],
    ['{ name: x, type: float, default: .nan }', 'views[0].fields[1].default', 'must be a float'],
    ['{ name: x, type: int, default: 1.5 }', 'views[0].fields[1].default', 'must be an int'],
    ['{ name: x, type: bool, default: 1 }', 'views[0].fields[1].default', 'must be a bool'],
    ['{ name: x, type: string, default: 3 }', 'views[0].fields[1].default', 'must be a string'],
    [
      '{ name: x, type: float_list, default: [1, a] }',
      'views[0].fields[1].default',
      'must be a float_list',
    ],
    [
      '{ name: x, type: string_list, default: [a, 1] }',
      'views[0].fields[1].default',
      'must be a string_list',
    ],
    ['{ name: x, type: string_list }', 'views[0].fields[1].default', 'is required'],
    ['{ name: x, type: decimal, default: 0 }', 'views[0].fields[1].type', 'must be one of float'],
    ['{ type: int, default: 0 }', 'views[0].fields[1].name', 'is required'],
    ['{ name: X, type: int, default: 0 }', 'views[0].fields[1].name', 'must match'],
    ['{ name: 1x, type: int, default: 0 }', 'views[0].fields[1].name', 'must match'],
    ['{ name: a-b, type: int, default: 0 }', 'views[0].fields[1].name', 'must match'],
    [`{ name: ${'a'.repeat(65)}, type: int, default: 0 }`, 'views[0].fields[1].name', 'must match'],
    ['{ name: ok, type: int, default: 0 }', 'views[0].fields[1].name', 'duplicate name ok'],
    ['{ name: x, type: int, default: 0, unit: ms }', 'views[0].fields[1].unit', 'unknown key'],
    ['just a string', 'views[0].fields[1]', 'must be a mapping'],
  ])('rejects the field %s at %s', (field, path, message) => {
    const err = parseError(withField(field));
    expect(err.path).toBe(path);
    expect(err.message).toContain(`${path}: ${message}`);
    // Points at the place in the file: the field is on line 11 of the document.
    expect(err.message).toMatch(/\(features\.yaml:11:\d+\)$/);
    expect(err.data).toMatchObject({ file: 'features.yaml' });
  });

  /** A one-view document; a key given as '' is left out. */
  const VIEW = (lines: Record<string, string>): string => {
    const view = { name: 'v', entity: 'user', source: 'batch', ttl: '0', ...lines };
    const body = Object.entries(view)
      .filter(([, value]) => value !== '')
      .map(([key, value]) => `    ${key}: ${value}\n`)
      .join('');
    return `entities:\n  - { name: user }\nviews:\n  - fields: [{ name: a, type: int, default: 0 }]\n${body}`;
  };

  it.each([
    [{ entity: 'items' }, 'views[0].entity', 'unknown entity items (known: user)'],
    [{ source: 'kafka' }, 'views[0].source', 'must be one of batch, stream'],
    [{ ttl: '10' }, 'views[0].ttl', 'a bare number needs a unit'],
    [{ ttl: '1w' }, 'views[0].ttl', 'must be 0 (never) or a duration'],
    [{ ttl: '-5s' }, 'views[0].ttl', 'must be 0 (never) or a duration'],
    [{ ttl: '1.5h' }, 'views[0].ttl', 'must be 0 (never) or a duration'],
    [{ ttl: '3651d' }, 'views[0].ttl', 'must be 0 (never) or a duration'],
    [{ ttl: '' }, 'views[0].ttl', 'must be 0 (never) or a duration'],
    [{ name: 'seen' }, 'views[0].name', 'seen is reserved'],
    [{ name: 'meta' }, 'views[0].name', 'meta is reserved'],
    [{ name: 'View' }, 'views[0].name', 'must match'],
    [{ owner: 'me' }, 'views[0].owner', 'unknown key'],
  ])('rejects the view %o at %s', (lines, path, message) => {
    const err = parseError(VIEW(lines));
    expect(err.path).toBe(path);
    expect(err.message).toMatch(new RegExp(`^${path.replace(/[[\]]/g, '\\$&')}: `));
    expect(err.message).toContain(message);
  });

  it.each([
    ['entities: [{ name: user }]\n', 'views', 'is required'],
    ['entities: []\nviews: []\n', 'entities', 'must list at least one entity'],
    [
      'entities: [{ name: user }, { name: user }]\nviews: []\n',
      'entities[1].name',
      'duplicate name user',
    ],
    ['entities: [{ name: user, kind: person }]\nviews: []\n', 'entities[0].kind', 'unknown key'],
    ['entities: [{ name: user }]\nviews: []\nextra: 1\n', 'extra', 'unknown key'],
    ['entities: [{ name: user }]\nviews: {}\n', 'views', 'must be a list'],
    [
      'entities: [{ name: user }]\nviews:\n  - { name: v, entity: user, source: batch, ttl: 0, fields: [] }\n',
      'views[0].fields',
      'must list at least one field',
    ],
    [
      `entities: [{ name: user }]
views:
  - { name: v, entity: user, source: batch, ttl: 0, fields: [{ name: a, type: int, default: 0 }] }
  - { name: v, entity: user, source: batch, ttl: 0, fields: [{ name: a, type: int, default: 0 }] }
`,
      'views[1].name',
      'duplicate name v',
    ],
    ['- a\n- b\n', 'features.yaml', 'must be a mapping with entities and views'],
    ['', 'features.yaml', 'must be a mapping with entities and views'],
  ])('rejects the document %j at %s', (text, path, message) => {
    const err = parseError(text);
    expect(err.path).toBe(path);
    expect(err.message).toContain(`${path}: ${message}`);
  });

  it('reports YAML syntax errors and missing files with the file name', () => {
    const syntax = parseError('entities: [\n');
    expect(syntax.path).toBe('features.yaml');
    expect(syntax.message).toContain('YAML syntax error at line');
    expect(() => loadFeatureDefinitions('no-such-dir/features.yaml')).toThrow(
      'no-such-dir/features.yaml: feature definitions file not found',
    );
  });
});

describe('parseTtl', () => {
  it.each([
    [0, 0],
    ['0', 0],
    ['0s', 0],
    ['250ms', 250],
    ['30s', 30_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['30d', 2_592_000_000],
    ['3650d', 3650 * 86_400_000],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseTtl(text)).toBe(ms);
  });

  it.each([[10], ['10'], ['1w'], ['1.5h'], ['-1s'], [' 5s'], ['5 s'], ['3651d'], [null], [true]])(
    'refuses %j',
    (text) => {
      expect(parseTtl(text)).toBeUndefined();
    },
  );
});

describe('FeatureRegistry', () => {
  const registry = new FeatureRegistry(SUITE_DEFINITIONS);

  it('finds views and fields, and names the option and the known ones when it cannot', () => {
    expect(registry.view('everything').entity).toBe('user');
    expect(registry.viewNames).toEqual(['everything', 'other', 'short_lived']);
    expect(registry.fields('everything', ['sl', 'f']).map((field) => field.type)).toEqual([
      'string_list',
      'float',
    ]);
    expect(() => registry.view('nope', 'ranker.features.views[0]')).toThrow(
      new ConfigError(
        'ranker.features.views[0]',
        'unknown feature view nope (known: everything, other, short_lived)',
      ),
    );
    expect(() => registry.fields('everything', ['f', 'g'], 'ranker.fields')).toThrow(
      'ranker.fields[1]: unknown field g of feature view everything (known: f, i, b, s, fl, sl)',
    );
    expect(() => registry.fields('nope', ['f'])).toThrow(ConfigError);
    expect(() => registry.requestView('nope')).toThrow(BadRequestError);
  });

  it('gives a fresh default row each time', () => {
    const defaults = registry.defaults('everything');
    expect(defaults).toEqual({ f: 0.5, i: -1, b: false, s: 'none', fl: [0, 0], sl: [] });
    (defaults['fl'] as number[]).push(1);
    expect(registry.defaults('everything')['fl']).toEqual([0, 0]);
    expect(SUITE_DEFINITIONS.views[0]?.fields[4]?.default).toEqual([0, 0]);
  });

  it('accepts rows of the declared types, fields left out included', () => {
    registry.validateRow('everything', 'u1', {});
    registry.validateRow('everything', 'u1', {
      f: 1e300,
      i: Number.MAX_SAFE_INTEGER,
      b: false,
      s: '',
      fl: [],
      sl: [''],
    });
  });

  it.each([
    ['f', { f: Number.NaN }, 'must be a float'],
    ['f', { f: '1' }, 'must be a float'],
    ['i', { i: 0.5 }, 'must be an int'],
    ['i', { i: 2 ** 53 }, 'must be an int'],
    ['b', { b: 'true' }, 'must be a bool'],
    ['s', { s: null }, 'must be a string'],
    ['fl', { fl: [1, Number.POSITIVE_INFINITY] }, 'must be a float_list'],
    ['fl', { fl: '1,2' }, 'must be a float_list'],
    ['sl', { sl: [null] }, 'must be a string_list'],
    ['zz', { zz: 1 }, 'unknown field of feature view everything'],
    ['values', null, 'must be a mapping'],
    ['values', [1], 'must be a mapping'],
  ])('refuses a row with a bad %s', (field, values, message) => {
    let caught: unknown;
    try {
      registry.validateRow('everything', 'u 1', values);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BadRequestError);
    const err = caught as BadRequestError;
    expect(err.field).toBe(field);
    expect(err.message).toContain(message);
    expect(err.message).toContain('(view everything, entity "u 1")');
    expect(err.data).toMatchObject({ view: 'everything', entity: 'u 1', field });
  });

  it('refuses an unknown view and bad entity ids', () => {
    expect(() => registry.validateRow('nope', 'u1', {})).toThrow(
      'view: unknown feature view nope (known: everything, other, short_lived)',
    );
    for (const entity of ['', 'x'.repeat(257), 5, '\uD800x']) {
      expect(() => registry.validateRow('everything', entity as string, {})).toThrow(
        BadRequestError,
      );
    }
    expect(() => checkEntityId('x'.repeat(256))).not.toThrow();
    expect(() => checkEntityId('😀:any chars * > .')).not.toThrow();
    expect(() => checkEntityId('\uDC00', 'ids[3]')).toThrow('ids[3]: must be well-formed Unicode');
  });

  it('completes stored values as the view defines them now', () => {
    expect(
      registry.completeValues('everything', { f: 2, gone: 1, i: 'was a string', sl: ['a'] }),
    ).toEqual({ f: 2, i: -1, b: false, s: 'none', fl: [0, 0], sl: ['a'] });
  });
});
