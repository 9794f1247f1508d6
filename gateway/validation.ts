/**
 * Request validation with the TypeBox compiler, in place of fastify's default Ajv: the schemas are
 * TypeBox's own, so they are checked exactly as they are typed, and every error is turned into the
 * field path a client can act on (`events[3].event_type`) with a message that states the rule
 * (`must be one of click, view, ...`, `must be an integer in 1..100`) rather than the failed
 * keyword.
 *
 * Bodies are checked as sent (no type coercion: `"count": "10"` is refused); query strings and
 * path parameters are converted first, since they only carry strings (`?count=10`).
 *
 * A body whose schema is a union (one feedback event, or a batch) is reported against the branch
 * it comes closest to (the fewest errors), so a batch with one bad event names that event's field
 * rather than "does not match any of".
 */
import { Kind, TypeGuard } from '@sinclair/typebox';
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/errors';
import type { ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';

/** One validation failure: the field at fault and what it must be. */
export interface FieldError {
  /** `user_id`, `events[3].event_type`, or the part itself (`body`, `querystring`) for the whole. */
  field: string;
  message: string;
  /** JSON pointer of the field, as fastify's Ajv errors carry it. */
  instancePath: string;
}

export type ValidationResult = { value: unknown } | { error: FieldError[] };

/** Readable rules of the patterns the schemas use. */
const PATTERN_RULES: Record<string, string> = {
  '^[^\\u0000-\\u001f\\u007f]+$': 'without control characters',
  '^[A-Za-z0-9_.:-]{1,128}$': 'of 1..128 characters of [A-Za-z0-9_.:-]',
};

/** `/events/3/event_type` → `events[3].event_type`; the empty pointer → `root`. */
export function fieldOf(pointer: string, root: string): string {
  if (pointer === '') return root;
  let field = '';
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    field += /^\d+$/.test(token) ? `[${token}]` : field === '' ? token : `.${token}`;
  }
  return field;
}

function range(min: unknown, max: unknown, unit: string): string {
  const lo = typeof min === 'number' ? min : undefined;
  const hi = typeof max === 'number' ? max : undefined;
  if (lo !== undefined && hi !== undefined) return ` in ${lo}..${hi}${unit}`;
  if (lo !== undefined) return ` >= ${lo}${unit}`;
  if (hi !== undefined) return ` <= ${hi}${unit}`;
  return unit;
}

/** What a value of `schema` must be, as one phrase: `must be an integer in 1..100`. */
export function describeSchema(schema: TSchema): string {
  if (TypeGuard.IsUnion(schema)) {
    const literals = schema.anyOf.filter((s) => TypeGuard.IsLiteral(s)).map((s) => s.const);
    if (literals.length === schema.anyOf.length) {
      return `must be one of ${literals.map(String).join(', ')}`;
    }
    // `must be a string or a finite number >= 0`: each branch's own rule, without its `must be`.
    return `must be ${schema.anyOf.map((branch) => describeSchema(branch).replace(/^must be /, '')).join(' or ')}`;
  }
  switch (schema[Kind]) {
    case 'Integer':
      return `must be an integer${range(schema['minimum'], schema['maximum'], '')}`;
    case 'Number':
      return `must be a finite number${range(schema['minimum'], schema['maximum'], '')}`;
    case 'String': {
      const pattern = typeof schema['pattern'] === 'string' ? schema['pattern'] : undefined;
      const rule = pattern === undefined ? undefined : PATTERN_RULES[pattern];
      if (rule?.startsWith('of ') === true) return `must be a string ${rule}`;
      const length = range(schema['minLength'], schema['maxLength'], ' characters');
      return `must be a string${length === ' characters' ? '' : ` of${length.replace(/^ in/, '')}`}${
        rule === undefined ? '' : ` ${rule}`
      }`;
    }
    case 'Array':
      return `must be an array of${range(schema['minItems'], schema['maxItems'], ' items').replace(/^ in/, '')}`;
    case 'Object':
    case 'Record':
      return 'must be a JSON object';
    case 'Boolean':
      return 'must be true or false';
    default:
      return 'has the wrong type';
  }
}

function toFieldError(error: ValueError, root: string): FieldError {
  const field = fieldOf(error.path, root);
  let message: string;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      message = 'is required';
      break;
    case ValueErrorType.ObjectAdditionalProperties: {
      const known = TypeGuard.IsObject(error.schema) ? Object.keys(error.schema.properties) : [];
      message = `unknown field${known.length === 0 ? '' : ` (expected one of: ${known.join(', ')})`}`;
      break;
    }
    default:
      message = describeSchema(error.schema);
  }
  return { field, message, instancePath: error.path };
}

function errorsOf(check: TypeCheck<TSchema>, value: unknown, root: string): FieldError[] {
  return [...check.Errors(value)].map((error) => toFieldError(error, root));
}

/** How many of an object value's own keys `schema` (an object schema) does not declare. */
function unknownKeys(schema: TSchema, value: unknown): number {
  if (!TypeGuard.IsObject(schema) || typeof value !== 'object' || value === null) return 0;
  return Object.keys(value).filter((key) => !(key in schema.properties)).length;
}

/**
 * A fastify validator for `schema` on `httpPart` (`body`, `querystring`, `params`, `headers`): the
 * value (converted, for everything but the body) or the field errors, first the one to report.
 */
export function compileValidator(
  schema: TSchema,
  httpPart: string | undefined,
): (value: unknown) => ValidationResult {
  const root = httpPart ?? 'body';
  const convert = httpPart !== undefined && httpPart !== 'body';
  const check = TypeCompiler.Compile(schema);
  // A union is reported against its closest branch, so each branch gets a checker of its own.
  const variants: TSchema[] = TypeGuard.IsUnion(schema) ? schema.anyOf : [];
  const branches = variants.map((branch) => TypeCompiler.Compile(branch));
  return (input) => {
    // fastify hands a missing body over as null.
    const value = convert ? Value.Convert(schema, input) : input;
    if (check.Check(value)) return { value };
    if (value === null || value === undefined) {
      return { error: [{ field: root, message: 'is required', instancePath: '' }] };
    }
    if (branches.length === 0) return { error: errorsOf(check, value, root) };
    // The closest branch: the one that knows most of the value's own fields, then the one with
    // the fewest errors (a batch with a bad event is a batch, not a malformed single event).
    let best: { unknown: number; errors: FieldError[] } | undefined;
    for (const [i, branch] of branches.entries()) {
      const errors = errorsOf(branch, value, root);
      const unknown = unknownKeys(variants[i]!, value);
      if (
        best === undefined ||
        unknown < best.unknown ||
        (unknown === best.unknown && errors.length < best.errors.length)
      ) {
        best = { unknown, errors };
      }
    }
    return { error: best?.errors ?? [] };
  };
}
