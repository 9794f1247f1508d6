/**
 * Argument checks shared by the online-store implementations, so a request one store refuses is
 * refused by the other with the same error, and a bad row is refused before anything of its batch
 * is written.
 */
import { BadRequestError, ConflictError } from '../errors.js';
import { checkEntityId, type FeatureRegistry } from './definitions.js';
import type { WriteBatch } from './types.js';

/**
 * Most rows (and most processed marks) in one write batch. One batch is one atomic step, which on
 * Redis holds the server for its duration: larger loads are written as several batches.
 */
export const MAX_BATCH_ROWS = 10_000;

/** Processed-mark scopes: a consumer group name. */
const SCOPE = /^[A-Za-z0-9_.-]{1,128}$/;
const MAX_META_KEY_LENGTH = 256;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the entity ids of a read. */
export function checkEntities(entities: unknown): asserts entities is readonly string[] {
  if (!Array.isArray(entities)) throw new BadRequestError('entities', 'must be a list');
  entities.forEach((entity, i) => checkEntityId(entity, `entities[${i}]`));
}

/** Checks a processed-mark scope: 1 to 128 of `A-Z a-z 0-9 _ . -`. */
export function checkScope(scope: unknown, field = 'scope'): asserts scope is string {
  if (typeof scope !== 'string' || !SCOPE.test(scope)) {
    throw new BadRequestError(field, `must match ${SCOPE.source}, got ${JSON.stringify(scope)}`);
  }
}

/** Checks processed-mark ids: non-empty strings of at most 256 characters, at most 10000. */
export function checkMarkIds(ids: unknown, field = 'ids'): asserts ids is readonly string[] {
  if (!Array.isArray(ids)) throw new BadRequestError(field, 'must be a list');
  if (ids.length > MAX_BATCH_ROWS) {
    throw new BadRequestError(field, `must hold at most ${MAX_BATCH_ROWS} ids, got ${ids.length}`);
  }
  // The same rule as entity ids: any well-formed string of 1 to 256 characters.
  ids.forEach((id, i) => checkEntityId(id, `${field}[${i}]`));
}

export function checkMetaKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_META_KEY_LENGTH) {
    throw new BadRequestError('key', `must be a string of 1 to ${MAX_META_KEY_LENGTH} characters`);
  }
}

export function checkMetaValue(value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new BadRequestError('value', 'must be a string');
}

/**
 * Checks a whole write batch: every row (its view, entity and values through the registry, its
 * event time, state and `ifVersion`) and the marks. Throws {@link BadRequestError}.
 */
export function checkWriteBatch(
  registry: FeatureRegistry,
  batch: unknown,
): asserts batch is WriteBatch {
  if (!isPlainObject(batch)) throw new BadRequestError('batch', 'must be an object with rows');
  const { rows, marks } = batch;
  if (!Array.isArray(rows)) throw new BadRequestError('rows', 'must be a list');
  if (rows.length > MAX_BATCH_ROWS) {
    throw new BadRequestError(
      'rows',
      `must hold at most ${MAX_BATCH_ROWS} rows, got ${rows.length}`,
    );
  }
  rows.forEach((write: unknown, i) => {
    if (!isPlainObject(write)) throw new BadRequestError(`rows[${i}]`, 'must be an object');
    const { view, entity, row, ifVersion } = write;
    if (typeof view !== 'string') throw new BadRequestError(`rows[${i}].view`, 'must be a string');
    registry.requestView(view);
    checkEntityId(entity, `rows[${i}].entity`);
    const where = `(view ${view}, entity ${JSON.stringify(entity)})`;
    const data = { view, entity };
    if (!isPlainObject(row)) {
      throw new BadRequestError(`rows[${i}].row`, `must be an object ${where}`, { data });
    }
    registry.validateRow(view, entity, row['values']);
    const eventTimeMs = row['eventTimeMs'];
    if (typeof eventTimeMs !== 'number' || !Number.isFinite(eventTimeMs)) {
      throw new BadRequestError('eventTimeMs', `must be a finite number (epoch ms) ${where}`, {
        data,
      });
    }
    if (row['state'] !== undefined && typeof row['state'] !== 'string') {
      throw new BadRequestError('state', `must be a string when present ${where}`, { data });
    }
    if (
      ifVersion !== undefined &&
      (typeof ifVersion !== 'number' || !Number.isSafeInteger(ifVersion) || ifVersion < 0)
    ) {
      throw new BadRequestError('ifVersion', `must be a non-negative integer ${where}`, { data });
    }
  });
  if (marks === undefined) return;
  if (!isPlainObject(marks)) throw new BadRequestError('marks', 'must be an object');
  checkScope(marks['scope'], 'marks.scope');
  checkMarkIds(marks['ids'], 'marks.ids');
  const ttlMs = marks['ttlMs'];
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new BadRequestError('marks.ttlMs', 'must be a positive integer');
  }
}

/** The error of a compare-and-set (`ifVersion`) that does not hold: the batch was not written. */
export function conflictError(
  view: string,
  entity: string,
  version: number,
  expected: number,
): ConflictError {
  return new ConflictError(
    `feature view ${view}, entity ${JSON.stringify(entity)} is at version ${version}, not ${expected}: batch not written`,
    { data: { view, entity, version, expected } },
  );
}
