/**
 * Argument checks and subject matching shared by the stream implementations, so a name, subject or
 * option that JetStream would refuse is refused in memory too, with the same error, and so both
 * decide the same way whether a subject belongs to a stream.
 */
import { BadRequestError } from '../errors.js';
import type { Headers } from '../transport/types.js';
import type { ConsumeOptions, ReadFrom, StreamMessage, StreamOptions } from './types.js';

const NAME = /^[A-Za-z0-9_-]+$/;
const SPACE = /\s/;

/** {@link StreamOptions} with defaults applied and limits checked. */
export interface ResolvedStreamOptions {
  readonly subjects: readonly string[];
  readonly maxAgeMs: number;
  readonly maxBytes: number;
  readonly storage: 'file' | 'memory';
  readonly duplicateWindowMs: number;
}

/** {@link ConsumeOptions} with defaults applied and limits checked. */
export interface ResolvedConsumeOptions {
  readonly filter: string | undefined;
  readonly ackWaitMs: number;
  readonly maxDeliver: number;
  readonly concurrency: number;
  readonly onGiveUp: ((message: StreamMessage, err: Error) => unknown) | undefined;
  readonly onError: ((err: Error) => void) | undefined;
}

export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
export const DEFAULT_ACK_WAIT_MS = 30_000;
export const DEFAULT_MAX_DELIVER = 5;

export function checkStreamName(name: string): void {
  if (!NAME.test(name)) {
    throw new BadRequestError('stream', `must match ${NAME.source}, got ${JSON.stringify(name)}`);
  }
}

export function checkDurableName(name: string): void {
  if (!NAME.test(name)) {
    throw new BadRequestError('durable', `must match ${NAME.source}, got ${JSON.stringify(name)}`);
  }
}

export function resolveStreamOptions(options: StreamOptions): ResolvedStreamOptions {
  if (!Array.isArray(options.subjects) || options.subjects.length === 0) {
    throw new BadRequestError('subjects', 'must list at least one subject');
  }
  for (const subject of options.subjects) patternTokens('subjects', subject);
  if (new Set(options.subjects).size !== options.subjects.length) {
    throw new BadRequestError('subjects', 'must not list a subject twice');
  }
  const maxAgeMs = options.maxAgeMs ?? 0;
  // The server's own floor: it refuses an age limit under 100 ms.
  if (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 0 || (maxAgeMs > 0 && maxAgeMs < 100)) {
    throw new BadRequestError('maxAgeMs', 'must be 0 (no age limit) or an integer >= 100');
  }
  const maxBytes = options.maxBytes ?? -1;
  if (!Number.isSafeInteger(maxBytes) || (maxBytes !== -1 && maxBytes <= 0)) {
    throw new BadRequestError('maxBytes', 'must be a positive integer, or -1 for no limit');
  }
  const storage = options.storage ?? 'file';
  if (storage !== 'file' && storage !== 'memory') {
    throw new BadRequestError('storage', `must be 'file' or 'memory'`);
  }
  const window = options.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
  if (!Number.isSafeInteger(window) || window <= 0) {
    throw new BadRequestError('duplicateWindowMs', 'must be a positive integer');
  }
  return {
    subjects: [...options.subjects],
    maxAgeMs,
    maxBytes,
    storage,
    // The server refuses a duplicate window longer than the age limit.
    duplicateWindowMs: maxAgeMs > 0 ? Math.min(window, maxAgeMs) : window,
  };
}

export function resolveConsumeOptions(
  options: ConsumeOptions,
  streamSubjects: readonly string[],
): ResolvedConsumeOptions {
  if (options.filter !== undefined) checkFilter(options.filter, streamSubjects);
  const ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  if (!Number.isSafeInteger(ackWaitMs) || ackWaitMs <= 0) {
    throw new BadRequestError('ackWaitMs', 'must be a positive integer');
  }
  const maxDeliver = options.maxDeliver ?? DEFAULT_MAX_DELIVER;
  if (!Number.isSafeInteger(maxDeliver) || maxDeliver <= 0) {
    throw new BadRequestError('maxDeliver', 'must be a positive integer');
  }
  const concurrency = options.concurrency ?? 1;
  if (!Number.isSafeInteger(concurrency) || concurrency <= 0) {
    throw new BadRequestError('concurrency', 'must be a positive integer');
  }
  return {
    filter: options.filter,
    ackWaitMs,
    maxDeliver,
    concurrency,
    onGiveUp: options.onGiveUp,
    onError: options.onError,
  };
}

export function checkFromSeq(fromSeq: number): void {
  if (!Number.isSafeInteger(fromSeq) || fromSeq <= 0) {
    throw new BadRequestError('fromSeq', 'must be a positive integer (1: the first message)');
  }
}

export function checkFromTime(timeMs: number): void {
  if (typeof timeMs !== 'number' || !Number.isFinite(timeMs) || timeMs < 0) {
    throw new BadRequestError('fromTimeMs', 'must be a finite, non-negative epoch-ms number');
  }
}

/** A read's start: a sequence, or a time; a plain object with a time, not both. */
export function checkReadFrom(from: ReadFrom): void {
  if (typeof from === 'number') {
    checkFromSeq(from);
  } else if (typeof from === 'object' && from !== null) {
    checkFromTime(from.fromTimeMs);
  } else {
    throw new BadRequestError('from', 'must be a sequence or { fromTimeMs }');
  }
}

/**
 * A filter must be a valid pattern and, as JetStream requires, either within one of the stream's
 * subjects or (with wildcards) wider than one of them: a filter that could never match is a bug.
 */
export function checkFilter(filter: string, streamSubjects: readonly string[]): void {
  patternTokens('filter', filter);
  const wide = filter.includes('*') || filter.includes('>');
  const fits = streamSubjects.some(
    (subject) => isSubsetOf(filter, subject) || (wide && isSubsetOf(subject, filter)),
  );
  if (!fits) {
    throw new BadRequestError(
      'filter',
      `${JSON.stringify(filter)} does not match the stream's subjects ${streamSubjects.join(', ')}`,
    );
  }
}

/** A publish subject: literal (no wildcards) and captured by one of the stream's subjects. */
export function checkPublishSubject(
  stream: string,
  subject: string,
  streamSubjects: readonly string[],
): void {
  const tokens = patternTokens('subject', subject);
  if (tokens.includes('*') || tokens.includes('>')) {
    throw new BadRequestError('subject', `must not contain wildcards: ${JSON.stringify(subject)}`);
  }
  if (!streamSubjects.some((pattern) => subjectMatches(subject, pattern))) {
    throw new BadRequestError(
      'subject',
      `${subject} is not captured by stream ${stream} (subjects: ${streamSubjects.join(', ')})`,
    );
  }
}

const HEADER_NAME = /^[!-9;-~]+$/;
const LINE_BREAK = /[\r\n]/;

/**
 * Header names are printable ASCII without `:`, values hold no line break, as on the NATS wire.
 * `Nats-` names belong to JetStream (the message id, expectations, limits), so callers cannot set
 * them, and readers never see them: a message carries the headers it was published with.
 */
export function checkHeaders(headers: Headers): void {
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name) || isJetStreamHeader(name)) {
      throw new BadRequestError(
        'headers',
        `invalid header name ${JSON.stringify(name)} (printable ASCII without ':', not Nats-*)`,
      );
    }
    if (typeof value !== 'string' || LINE_BREAK.test(value)) {
      throw new BadRequestError('headers', `header ${name} must be a string without line breaks`);
    }
  }
}

export function isJetStreamHeader(name: string): boolean {
  return name.toLowerCase().startsWith('nats-');
}

/** Whether literal `subject` matches `pattern` (`*`: one token, `>`: one or more at the end). */
export function subjectMatches(subject: string, pattern: string): boolean {
  return isSubsetOf(subject, pattern);
}

/**
 * {@link subjectMatches} against one pattern, compiled once for a reader that tests many subjects:
 * a literal pattern is a string comparison, `a.b.>` a prefix test, only `*` patterns split.
 */
export function subjectMatcher(pattern: string): (subject: string) => boolean {
  const wildcards = pattern.includes('*') || pattern.includes('>');
  if (!wildcards) return (subject) => subject === pattern;
  if (!pattern.includes('*') && pattern.endsWith('.>')) {
    const prefix = pattern.slice(0, -1);
    return (subject) => subject.length > prefix.length && subject.startsWith(prefix);
  }
  return (subject) => isSubsetOf(subject, pattern);
}

/** Whether every subject matching `a` also matches `b` (both may hold wildcards). */
export function isSubsetOf(a: string, b: string): boolean {
  const as = a.split('.');
  const bs = b.split('.');
  for (let i = 0; i < bs.length; i++) {
    const bt = bs[i]!;
    const at = as[i];
    if (at === undefined) return false;
    if (bt === '>') return true;
    if (at === '>') return false;
    if (bt === '*') continue;
    if (at === '*' || at !== bt) return false;
  }
  return as.length === bs.length;
}

/** Whether some subject matches both patterns (JetStream refuses streams that overlap). */
export function subjectsOverlap(a: string, b: string): boolean {
  const as = a.split('.');
  const bs = b.split('.');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const at = as[i]!;
    const bt = bs[i]!;
    if (at === '>' || bt === '>') return true;
    if (at !== '*' && bt !== '*' && at !== bt) return false;
  }
  return as.length === bs.length;
}

function patternTokens(field: string, subject: string): string[] {
  if (typeof subject !== 'string' || subject.length === 0 || SPACE.test(subject)) {
    throw new BadRequestError(field, `invalid subject ${JSON.stringify(subject)}`);
  }
  const tokens = subject.split('.');
  if (tokens.includes('')) {
    throw new BadRequestError(field, `empty token in ${JSON.stringify(subject)}`);
  }
  const gt = tokens.indexOf('>');
  if (gt !== -1 && gt !== tokens.length - 1) {
    throw new BadRequestError(field, `'>' must be the last token: ${JSON.stringify(subject)}`);
  }
  return tokens;
}
