import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import {
  BadRequestError,
  ConfigError,
  ConflictError,
  DeadlineExceededError,
  ErrorCode,
  InternalError,
  NoRespondersError,
  NotOwnerError,
  OverloadedError,
  RecsysError,
  TimeoutError,
  toRecsysError,
  UnavailableError,
  UnknownOpError,
} from '../../runtime/errors.js';
import {
  decodeReply,
  encodeErrorReply,
  Header,
  RETRYABLE_BEFORE_WORK,
} from '../../runtime/wire.js';
import type { Reply } from '../../runtime/transport/types.js';

/** One instance of every error class, each carrying data of every allowed value type. */
const samples: readonly RecsysError[] = [
  new BadRequestError('user_id', 'must be a non-empty string', { data: { max_length: 64 } }),
  new UnknownOpError('user has no operation "recomend"', { data: { op: 'recomend' } }),
  new NotOwnerError('partition 7 is not served here', { data: { partition: 7 } }),
  new OverloadedError('mailbox full (1024 waiting)', { data: { capacity: 1024 } }),
  new DeadlineExceededError('deadline passed 12 ms ago', { data: { late_ms: 12 } }),
  new TimeoutError('recsys.user.3.u1.state: no reply within the deadline', {
    data: { subject: 'recsys.user.3.u1.state', attempts: 2 },
  }),
  new NoRespondersError('no responders on recsys.items.0.search', { data: { shard: 0 } }),
  new UnavailableError('transport closed', { data: { draining: true } }),
  new InternalError('Cannot read properties of undefined', { data: { handler: null } }),
  new ConfigError('runtime.partitions', 'must be at most 4096', { data: { got: 5000 } }),
  new ConflictError('key user.3 in bucket leases is at revision 9, not 8', {
    data: { bucket: 'leases', key: 'user.3', revision: 9, expected: 8 },
  }),
];

/** Decodes a reply that must be an error reply and returns the rebuilt error. */
function rebuild(reply: Reply): RecsysError {
  try {
    decodeReply(reply);
  } catch (err) {
    expect(err).toBeInstanceOf(RecsysError);
    return err as RecsysError;
  }
  throw new Error('expected decodeReply to throw');
}

describe('errors over the wire', () => {
  it('has one sample per error code', () => {
    const codes = samples.map((err) => err.code).sort();
    expect(codes).toEqual(Object.values(ErrorCode).sort());
  });

  it.each(samples.map((err) => [err.name, err] as const))(
    '%s round-trips into the same class with the same fields',
    (_name, original) => {
      const rebuilt = rebuild(encodeErrorReply(original));
      expect(Object.getPrototypeOf(rebuilt)).toBe(Object.getPrototypeOf(original));
      expect(rebuilt.name).toBe(original.name);
      expect(rebuilt.code).toBe(original.code);
      expect(rebuilt.message).toBe(original.message);
      expect(rebuilt.retryable).toBe(original.retryable);
      expect(rebuilt.status).toBe(original.status);
      expect(rebuilt.data).toEqual(original.data);
    },
  );

  it('keeps the field of a BadRequestError and the path of a ConfigError', () => {
    const bad = rebuild(encodeErrorReply(new BadRequestError('items[3].id', 'must be a string')));
    expect(bad).toBeInstanceOf(BadRequestError);
    expect((bad as BadRequestError).field).toBe('items[3].id');
    expect(bad.message).toBe('items[3].id: must be a string');
    expect(bad.data).toEqual({ field: 'items[3].id' });

    const config = rebuild(encodeErrorReply(new ConfigError('nats.url', 'must be a nats:// URL')));
    expect(config).toBeInstanceOf(ConfigError);
    expect((config as ConfigError).path).toBe('nats.url');
    expect(config.message).toBe('nats.url: must be a nats:// URL');
    expect(config.data).toEqual({ path: 'nats.url' });
  });

  it('sets the NATS service error headers from the error', () => {
    for (const err of samples) {
      const { headers } = encodeErrorReply(err);
      expect(headers[Header.ServiceErrorCode], err.code).toBe(String(err.status));
      expect(headers[Header.ServiceError], err.code).toBe(err.message);
      expect(headers[Header.ErrorCode], err.code).toBe(err.code);
      expect(headers[Header.ErrorRetryable], err.code).toBe(String(err.retryable));
    }
  });

  it('gives each class the status its callers and NATS tools expect', () => {
    const statuses = Object.fromEntries(samples.map((err) => [err.code, err.status]));
    expect(statuses).toEqual({
      bad_request: 400,
      unknown_op: 404,
      not_owner: 409,
      overloaded: 429,
      deadline_exceeded: 408,
      timeout: 504,
      no_responders: 503,
      unavailable: 503,
      internal: 500,
      config_invalid: 500,
      conflict: 409,
    });
  });

  it('retries automatically exactly the retryable codes', () => {
    const retryable = samples.filter((err) => err.retryable).map((err) => err.code);
    expect([...RETRYABLE_BEFORE_WORK].sort()).toEqual(retryable.sort());
  });

  it('rebuilds the error from its headers when the body is unreadable', () => {
    const { headers } = encodeErrorReply(new OverloadedError('mailbox full (8 waiting)'));
    const rebuilt = rebuild({ data: new TextEncoder().encode('{not json'), headers });
    expect(rebuilt).toBeInstanceOf(OverloadedError);
    expect(rebuilt.message).toBe('mailbox full (8 waiting)');
    expect(rebuilt.retryable).toBe(true);
  });

  it('turns a code it does not know into an InternalError keeping the message', () => {
    const body = { error: { code: 'quota_exceeded', message: 'too many calls', retryable: true } };
    const rebuilt = rebuild({
      data: new TextEncoder().encode(JSON.stringify(body)),
      headers: { [Header.ErrorCode]: 'quota_exceeded', [Header.ServiceError]: 'too many calls' },
    });
    expect(rebuilt).toBeInstanceOf(InternalError);
    expect(rebuilt.code).toBe('internal');
    expect(rebuilt.message).toBe('too many calls');
  });

  it('surfaces a plain NATS service error as an InternalError carrying its message', () => {
    const rebuilt = rebuild({
      data: new Uint8Array(0),
      headers: { [Header.ServiceError]: 'database is down', [Header.ServiceErrorCode]: '503' },
    });
    expect(rebuilt).toBeInstanceOf(InternalError);
    expect(rebuilt.code).toBe('internal');
    expect(rebuilt.message).toBe('database is down');
    expect(rebuilt.data).toEqual({ status: 503 });

    const noCode = rebuild({ data: new Uint8Array(0), headers: { [Header.ServiceError]: 'oops' } });
    expect(noCode).toBeInstanceOf(InternalError);
    expect(noCode.message).toBe('oops');
    expect(noCode.data).toEqual({ status: 500 });
  });

  it('returns the decoded value of a reply that is not an error', () => {
    const data = new TextEncoder().encode('{"items":[1,2]}');
    expect(decodeReply({ data, headers: {} })).toEqual({ items: [1, 2] });
  });
});

describe('toRecsysError', () => {
  it('returns a runtime error unchanged', () => {
    const err = new NotOwnerError('moved');
    expect(toRecsysError(err)).toBe(err);
  });

  it('wraps an Error as internal, keeping its message and cause', () => {
    const cause = new TypeError('x is not a function');
    const err = toRecsysError(cause);
    expect(err).toBeInstanceOf(InternalError);
    expect(err.code).toBe('internal');
    expect(err.retryable).toBe(false);
    expect(err.message).toBe('x is not a function');
    expect(err.cause).toBe(cause);
  });

  it('wraps a thrown non-Error as internal', () => {
    for (const [thrown, message] of [
      ['plain string', 'plain string'],
      [42, '42'],
      [undefined, 'undefined'],
      [null, 'null'],
      [{ reason: 'x' }, '[object Object]'],
    ] as const) {
      const err = toRecsysError(thrown);
      expect(err).toBeInstanceOf(InternalError);
      expect(err.message).toBe(message);
    }
  });
});

describe('docs/errors.md', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  /** Rows of the codes table, keyed by code: `| `code` | `Class` | yes | 400 | ... | ... |`. */
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const code = /^`([a-z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (code !== undefined && cells.length >= 8) rows.set(code, cells.slice(1, -1));
  }

  it('every ErrorCode value is documented in docs/errors.md', () => {
    const missing = Object.values(ErrorCode).filter((code) => !rows.has(code));
    expect(missing, `codes missing from docs/errors.md: ${missing.join(', ')}`).toEqual([]);
  });

  it('documents only codes that exist', () => {
    const known = new Set<string>(Object.values(ErrorCode));
    expect([...rows.keys()].filter((code) => !known.has(code))).toEqual([]);
  });

  it('states the class, retryability and status each error really has', () => {
    for (const err of samples) {
      const row = rows.get(err.code);
      if (row === undefined) continue;
      const [, cls, retryable, status, when, what] = row;
      expect(cls, err.code).toBe(`\`${err.name}\``);
      expect(retryable, err.code).toBe(err.retryable ? 'yes' : 'no');
      expect(status, err.code).toBe(String(err.status));
      expect(when?.length, `${err.code}: when it happens`).toBeGreaterThan(20);
      expect(what?.length, `${err.code}: what a caller should do`).toBeGreaterThan(20);
    }
  });
});
