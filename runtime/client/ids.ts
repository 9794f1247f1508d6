import { randomBytes } from 'node:crypto';

/**
 * Request ids: a random per-process prefix plus a counter. Unique across processes for practical
 * purposes and far cheaper than a UUID per message on the hot path.
 */
export function createIdGenerator(): () => string {
  const prefix = randomBytes(6).toString('base64url');
  let counter = 0;
  return () => `${prefix}-${(++counter).toString(36)}`;
}
