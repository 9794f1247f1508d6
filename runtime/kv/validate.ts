/**
 * Argument checks shared by the KV implementations, so a name or key that NATS KV would refuse is
 * refused in memory too, with the same error.
 */
import { BadRequestError } from '../errors.js';
import type { KvBucketOptions } from './types.js';

const BUCKET = /^[A-Za-z0-9_-]+$/;
// NATS KV's own key rule: subject-safe characters, no leading or trailing dot.
const KEY = /^[-/=.\w]+$/;

export function checkBucket(name: string, options: KvBucketOptions): void {
  if (!BUCKET.test(name)) {
    throw new BadRequestError('bucket', `must match ${BUCKET.source}, got ${JSON.stringify(name)}`);
  }
  if (!Number.isFinite(options.ttlMs) || options.ttlMs < 0) {
    throw new BadRequestError('ttlMs', 'must be a non-negative number (0: no expiry)');
  }
}

export function checkKey(key: string): void {
  if (!KEY.test(key) || key.startsWith('.') || key.endsWith('.') || key.includes('..')) {
    throw new BadRequestError('key', `invalid key ${JSON.stringify(key)}`);
  }
}

export function checkRevision(field: string, revision: number): void {
  if (!Number.isSafeInteger(revision) || revision <= 0) {
    throw new BadRequestError(field, 'must be a positive integer');
  }
}
