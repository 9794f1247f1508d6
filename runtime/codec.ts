/**
 * Payload encoding. Ordinary payloads are plain JSON, so `nats req recsys.user.3.u1.state '{}'`
 * works from a shell. A payload that holds typed arrays (embedding vectors) is sent as a frame:
 *
 *   u32 LE json length | JSON | zero padding to 8 bytes | attachment bytes (each padded to 8)
 *
 * with every typed array in the JSON replaced by `{"$bin": "f32", "o": offset, "n": length}`.
 * A Float32Array therefore travels as its own bytes (bit-exact, NaN payloads included) instead of
 * as decimal text, and the header `Recsys-Encoding: frame` tells the receiver which form it got.
 */
import { BadRequestError } from './errors.js';
import type { Headers } from './transport/types.js';

export const ENCODING_HEADER = 'Recsys-Encoding';
const FRAME = 'frame';
const ALIGN = 8;

type TypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

const TYPES = {
  f32: Float32Array,
  f64: Float64Array,
  i32: Int32Array,
  u32: Uint32Array,
  i16: Int16Array,
  u16: Uint16Array,
  i8: Int8Array,
  u8: Uint8Array,
} as const;
type TypeTag = keyof typeof TYPES;

function tagOf(view: ArrayBufferView): TypeTag | undefined {
  for (const [tag, ctor] of Object.entries(TYPES)) {
    if (view instanceof ctor) return tag as TypeTag;
  }
  return undefined;
}

interface Placeholder {
  $bin: TypeTag;
  o: number;
  n: number;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const EMPTY = new Uint8Array(0);

export interface Encoded {
  data: Uint8Array;
  /** Headers the receiver needs to decode (empty for plain JSON). */
  headers: Headers;
}

const padded = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/** Containers deeper than this are left to the replacer path (no message of ours nests so deep). */
const MAX_LIFT_DEPTH = 32;

/** The typed arrays of a payload being framed, with the attachment bytes they take so far. */
interface Attachments {
  list: TypedArray[];
  bytes: number;
}

/** Returned by {@link lift} when the value cannot be lifted (see there); never part of a payload. */
const NOT_LIFTED = Symbol('not lifted');

/**
 * `value` with every typed array replaced by its placeholder, recorded in `out`: the containers on
 * the way to a typed array are shallow copies, everything else (most of a payload) is the caller's
 * own object. A plain `JSON.stringify` of the result then runs on V8's fast path; a replacer
 * function instead is called for every value, and made a 100-id search reply cost 3 times as much
 * to encode. A `toJSON` method or a deeper nesting makes it give up with {@link NOT_LIFTED}, and
 * the caller encodes with the replacer, which sees what `toJSON` returns.
 */
function lift(value: unknown, out: Attachments, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (ArrayBuffer.isView(value)) {
    if (value instanceof DataView) return value;
    const tag = tagOf(value);
    if (tag === undefined) return value;
    return attach(value as TypedArray, tag, out);
  }
  if (depth > MAX_LIFT_DEPTH) return NOT_LIFTED;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return NOT_LIFTED;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item !== 'object' || item === null) continue;
      const lifted = lift(item, out, depth + 1);
      if (lifted === NOT_LIFTED) return NOT_LIFTED;
      if (lifted !== item) {
        copy ??= value.slice();
        copy[i] = lifted;
      }
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (typeof item !== 'object' || item === null) continue;
    const lifted = lift(item, out, depth + 1);
    if (lifted === NOT_LIFTED) return NOT_LIFTED;
    if (lifted !== item) {
      copy ??= { ...(value as Record<string, unknown>) };
      setOwn(copy, key, lifted);
    }
  }
  return copy ?? value;
}

function attach(view: TypedArray, tag: TypeTag, out: Attachments): Placeholder {
  const placeholder: Placeholder = { $bin: tag, o: out.bytes, n: view.length };
  out.list.push(view);
  out.bytes += padded(view.byteLength);
  return placeholder;
}

/** `record[key] = value`, except that a `__proto__` key stays a plain property, as JSON makes it. */
function setOwn(record: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(record, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    record[key] = value;
  }
}

/** Encodes a payload; `undefined` becomes an empty message. */
export function encode(value: unknown): Encoded {
  if (value === undefined) return { data: EMPTY, headers: {} };
  const attachments: Attachments = { list: [], bytes: 0 };
  const lifted = lift(value, attachments, 0);
  let json: string;
  if (lifted === NOT_LIFTED) {
    attachments.list.length = 0;
    attachments.bytes = 0;
    json = JSON.stringify(value, (_key, v: unknown) => {
      if (!ArrayBuffer.isView(v) || v instanceof DataView) return v;
      const tag = tagOf(v);
      return tag === undefined ? v : attach(v as TypedArray, tag, attachments);
    });
  } else {
    json = JSON.stringify(lifted);
  }
  // Buffer.from is several times faster than TextEncoder for the short strings of messages.
  if (attachments.list.length === 0) return { data: Buffer.from(json, 'utf8'), headers: {} };

  // The JSON is written straight into the frame: no intermediate copy. JSON.stringify never
  // leaves a lone surrogate, so its UTF-8 length is exact. Buffer.alloc zeroes the padding and
  // gives the frame a buffer of its own (not a slice of Node's shared pool).
  const jsonLength = Buffer.byteLength(json, 'utf8');
  const head = padded(4 + jsonLength);
  const out = Buffer.alloc(head + attachments.bytes);
  out.writeUInt32LE(jsonLength, 0);
  out.write(json, 4, 'utf8');
  let at = head;
  for (const a of attachments.list) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += padded(a.byteLength);
  }
  return { data: out, headers: { [ENCODING_HEADER]: FRAME } };
}

/** Decodes a payload; malformed input throws `BadRequestError` naming `payload`. */
export function decode(data: Uint8Array, headers: Headers = {}): unknown {
  if (data.length === 0) return undefined;
  if (headers[ENCODING_HEADER] === FRAME) return decodeFrame(data);
  if (headers[ENCODING_HEADER] !== undefined) {
    throw new BadRequestError('payload', `unknown encoding ${headers[ENCODING_HEADER]}`);
  }
  return parseJson(data);
}

function parseJson(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = textDecoder.decode(bytes);
  } catch (cause) {
    throw new BadRequestError('payload', 'is not valid UTF-8', { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new BadRequestError('payload', 'is not valid JSON', { cause });
  }
}

function decodeFrame(data: Uint8Array): unknown {
  if (data.length < 4) throw new BadRequestError('payload', 'frame is truncated');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const jsonLength = view.getUint32(0, true);
  if (4 + jsonLength > data.length) throw new BadRequestError('payload', 'frame is truncated');
  const body = data.subarray(padded(4 + jsonLength));
  // Placeholders are swapped for their arrays after the parse rather than by a reviver: V8 calls
  // a reviver for every value, which made a 100-id search reply cost 4 times as much to decode.
  const value = parseJson(data.subarray(4, 4 + jsonLength));
  try {
    return restore(value, body);
  } catch (cause) {
    if (cause instanceof BadRequestError) throw cause;
    // A nesting too deep for the walk, as for JSON.parse itself.
    throw new BadRequestError('payload', 'is not valid JSON', { cause });
  }
}

/** `value` with its placeholders replaced by copies of their attachments, in place. */
function restore(value: unknown, body: Uint8Array): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'object' && item !== null) value[i] = restore(item, body);
    }
    return value;
  }
  if (isPlaceholder(value)) return attachment(value, body);
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const item = record[key];
    if (typeof item !== 'object' || item === null) continue;
    const restored = restore(item, body);
    if (restored !== item) setOwn(record, key, restored);
  }
  return record;
}

function attachment(p: Placeholder, body: Uint8Array): TypedArray {
  const ctor = TYPES[p.$bin];
  const byteLength = p.n * ctor.BYTES_PER_ELEMENT;
  if (p.o + byteLength > body.length) {
    throw new BadRequestError('payload', 'attachment out of range');
  }
  // Copy into a fresh buffer: the transport may reuse the inbound buffer, a Node Buffer's
  // `slice` would only be a view of it, and the copy is aligned for the element type.
  const copy = new Uint8Array(byteLength);
  copy.set(body.subarray(p.o, p.o + byteLength));
  return new ctor(copy.buffer, 0, p.n);
}

function isPlaceholder(v: unknown): v is Placeholder {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  return (
    typeof p['$bin'] === 'string' &&
    p['$bin'] in TYPES &&
    Number.isInteger(p['o']) &&
    Number.isInteger(p['n']) &&
    (p['o'] as number) >= 0 &&
    (p['n'] as number) >= 0
  );
}
