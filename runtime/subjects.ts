/**
 * The one place NATS subjects are built. Every token is checked, so a bad prefix, kind or op fails
 * at start-up instead of subscribing to a wildcard by accident. Actor keys are encoded into a single
 * token: characters outside `[A-Za-z0-9_-]` become `%XX` (UTF-8 bytes), so `user_123` stays readable
 * in `nats sub` output while `a.b` or `*` can never split or widen a subject.
 */
import { BadRequestError } from './errors.js';

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Throws unless `token` is a plain subject token (no empty token, space, `.`, `*` or `>`). */
export function assertToken(what: string, token: string): string {
  if (!TOKEN.test(token)) {
    throw new BadRequestError(what, `must match ${TOKEN.source}, got ${JSON.stringify(token)}`);
  }
  return token;
}

/** Checks a dotted prefix such as `recsys` or `prod.recsys`. */
export function assertPrefix(prefix: string): string {
  for (const token of prefix.split('.')) assertToken('prefix', token);
  return prefix;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes an actor key into one subject token. The inverse is {@link decodeKey}. */
export function encodeKey(key: string): string {
  if (key.length === 0) throw new BadRequestError('key', 'must not be empty');
  if (TOKEN.test(key)) return key;
  let out = '';
  for (const ch of key) {
    if (/[A-Za-z0-9_-]/.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of encoder.encode(ch))
      out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

const ESCAPE = /^[0-9A-Fa-f]{2}$/;

/** Throws `BadRequestError` (field `subject`) on a `%` not followed by two hex digits. */
export function decodeKey(token: string): string {
  if (!token.includes('%')) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '%') {
      const hex = token.slice(i + 1, i + 3);
      if (!ESCAPE.test(hex)) {
        throw new BadRequestError(
          'subject',
          `key token ${JSON.stringify(token)} has a % not followed by two hex digits`,
        );
      }
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return decoder.decode(new Uint8Array(bytes));
}

/** Subjects of one deployment, all under its prefix. */
export class Subjects {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = assertPrefix(prefix);
  }

  /** `<prefix>.<kind>.<partition>.<key>.<op>`: a keyed actor call. */
  keyed(kind: string, partition: number, key: string, op: string): string {
    return `${this.prefix}.${assertToken('kind', kind)}.${partition}.${encodeKey(key)}.${assertToken('op', op)}`;
  }

  /** `<prefix>.<kind>.<partition>.>`: what the owner of one partition subscribes to. */
  keyedPartition(kind: string, partition: number): string {
    return `${this.prefix}.${assertToken('kind', kind)}.${partition}.>`;
  }

  /** `<prefix>.<kind>.<group>.<op>`: a call to any replica of a group (a shard, a model version). */
  grouped(kind: string, group: string, op: string): string {
    return `${this.prefix}.${assertToken('kind', kind)}.${assertToken('group', group)}.${assertToken('op', op)}`;
  }

  /** `<prefix>.<kind>.<group>.*`: what every replica of a group subscribes to (in one queue group). */
  groupedAll(kind: string, group: string): string {
    return `${this.prefix}.${assertToken('kind', kind)}.${assertToken('group', group)}.*`;
  }

  /** The queue group shared by the replicas of one group. */
  queueGroup(kind: string, group: string): string {
    return `${this.prefix}.${assertToken('kind', kind)}.${assertToken('group', group)}`;
  }

  /** Splits a keyed subject into its parts; `undefined` if it is not one of this prefix. */
  parseKeyed(
    subject: string,
  ): { kind: string; partition: number; key: string; op: string } | undefined {
    const rest = this.stripPrefix(subject);
    const parts = rest?.split('.');
    if (parts?.length !== 4) return undefined;
    const [kind, partition, key, op] = parts as [string, string, string, string];
    const p = Number(partition);
    if (!Number.isInteger(p) || p < 0) return undefined;
    try {
      return { kind, partition: p, key: decodeKey(key), op };
    } catch {
      return undefined; // A malformed escape: not a subject of this deployment's keys.
    }
  }

  /** Splits a grouped subject into its parts; `undefined` if it is not one of this prefix. */
  parseGrouped(subject: string): { kind: string; group: string; op: string } | undefined {
    const parts = this.stripPrefix(subject)?.split('.');
    if (parts?.length !== 3) return undefined;
    const [kind, group, op] = parts as [string, string, string];
    return { kind, group, op };
  }

  /** KV bucket names cannot contain dots: `prod.recsys` + `members` → `prod_recsys-members`. */
  bucket(name: string): string {
    return `${this.prefix.replaceAll('.', '_')}-${assertToken('bucket', name)}`;
  }

  private stripPrefix(subject: string): string | undefined {
    return subject.startsWith(this.prefix + '.')
      ? subject.slice(this.prefix.length + 1)
      : undefined;
  }
}
