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

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });
const EMPTY = new Uint8Array(0);

export interface Encoded {
  data: Uint8Array;
  /** Headers the receiver needs to decode (empty for plain JSON). */
  headers: Headers;
}

const padded = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/**
 * Whether a payload holds a typed array anywhere. Scanning first lets the common case (plain JSON)
 * skip `JSON.stringify`'s replacer, which costs about as much as the stringify itself.
 */
function hasTypedArray(value: unknown, depth = 0): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (ArrayBuffer.isView(value)) return !(value instanceof DataView);
  // Deeper than any message of ours; the replacer path handles such a payload correctly anyway.
  if (depth > 32) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (hasTypedArray(item, depth + 1)) return true;
    return false;
  }
  for (const key in value) {
    if (hasTypedArray((value as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}

/** Encodes a payload; `undefined` becomes an empty message. */
export function encode(value: unknown): Encoded {
  if (value === undefined) return { data: EMPTY, headers: {} };
  // Buffer.from is several times faster than TextEncoder for the short strings of messages.
  if (!hasTypedArray(value))
    return { data: Buffer.from(JSON.stringify(value), 'utf8'), headers: {} };
  const attachments: TypedArray[] = [];
  let offset = 0;
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const tag = tagOf(v);
      if (tag === undefined) return v;
      const placeholder: Placeholder = { $bin: tag, o: offset, n: (v as TypedArray).length };
      attachments.push(v as TypedArray);
      offset += padded(v.byteLength);
      return placeholder;
    }
    return v;
  });
  const jsonBytes = textEncoder.encode(json);
  if (attachments.length === 0) return { data: jsonBytes, headers: {} };

  const head = padded(4 + jsonBytes.length);
  const out = new Uint8Array(head + offset);
  new DataView(out.buffer).setUint32(0, jsonBytes.length, true);
  out.set(jsonBytes, 4);
  let at = head;
  for (const a of attachments) {
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

function parseJson(bytes: Uint8Array, reviver?: (key: string, value: unknown) => unknown): unknown {
  let text: string;
  try {
    text = textDecoder.decode(bytes);
  } catch (cause) {
    throw new BadRequestError('payload', 'is not valid UTF-8', { cause });
  }
  try {
    return JSON.parse(text, reviver);
  } catch (cause) {
    if (cause instanceof BadRequestError) throw cause;
    throw new BadRequestError('payload', 'is not valid JSON', { cause });
  }
}

function decodeFrame(data: Uint8Array): unknown {
  if (data.length < 4) throw new BadRequestError('payload', 'frame is truncated');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const jsonLength = view.getUint32(0, true);
  if (4 + jsonLength > data.length) throw new BadRequestError('payload', 'frame is truncated');
  const body = data.subarray(padded(4 + jsonLength));
  return parseJson(data.subarray(4, 4 + jsonLength), (_key, v) => {
    if (!isPlaceholder(v)) return v;
    const ctor = TYPES[v.$bin];
    const byteLength = v.n * ctor.BYTES_PER_ELEMENT;
    if (v.o + byteLength > body.length)
      throw new BadRequestError('payload', 'attachment out of range');
    // Copy into a fresh buffer: the transport may reuse the inbound buffer, a Node Buffer's
    // `slice` would only be a view of it, and the copy is aligned for the element type.
    const copy = new Uint8Array(byteLength);
    copy.set(body.subarray(v.o, v.o + byteLength));
    return new ctor(copy.buffer, 0, v.n);
  });
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
