/**
 * Checks the actors' message validators share: a payload is a plain object, and it holds no field
 * its protocol does not name. Both throw `BadRequestError` naming the field, so a caller over NATS
 * learns which one to fix.
 */
import { BadRequestError } from '../runtime/errors.js';

/** `payload` as a record; `field` names it in the error when it is not a plain object. */
export function plainObject(payload: unknown, field: string): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new BadRequestError(field, 'must be an object');
  }
  return payload as Record<string, unknown>;
}

/** Refuses a key not in `known`; `at` prefixes the field path of a nested object (`items[2].`). */
export function onlyKeys(
  payload: Record<string, unknown>,
  known: readonly string[],
  at = '',
): void {
  for (const key of Object.keys(payload)) {
    if (!known.includes(key)) {
      throw new BadRequestError(
        `${at}${key}`,
        `unknown field (known: ${known.join(', ') || 'none'})`,
      );
    }
  }
}
