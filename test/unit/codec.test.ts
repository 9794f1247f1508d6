import { describe, expect, it } from 'vitest';

import { decode, encode, ENCODING_HEADER } from '../../runtime/codec.js';
import { badRequest, prng } from '../helpers/assertions.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const FRAME = { [ENCODING_HEADER]: 'frame' };

/** The bytes a typed array views (only its own window of the buffer). */
const bytesOf = (view: ArrayBufferView): number[] =>
  Array.from(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));

/** A Float32Array holding exactly these bit patterns. */
function f32Bits(bits: number[]): Float32Array {
  const words = new Uint32Array(bits);
  return new Float32Array(words.buffer);
}

/** A Float64Array holding exactly these bit patterns. */
function f64Bits(bits: bigint[]): Float64Array {
  const words = new BigUint64Array(bits);
  return new Float64Array(words.buffer);
}

const roundTrip = (value: unknown): unknown => {
  const { data, headers } = encode(value);
  return decode(data, headers);
};

describe('codec', () => {
  it('sends plain payloads as JSON text, without an encoding header', () => {
    const value = {
      user_id: 'u1',
      k: 20,
      ratio: 0.25,
      flags: [true, false, null],
      nested: { name: 'café 中文 😀', empty: {}, list: [] },
    };
    const { data, headers } = encode(value);
    expect(headers).toEqual({});
    expect(new TextDecoder().decode(data)).toBe(JSON.stringify(value));
    expect(decode(data, headers)).toEqual(value);
    // What a shell user types with `nats req` decodes the same way.
    expect(decode(text('{"k": 3}'))).toEqual({ k: 3 });
    expect(roundTrip('a string')).toBe('a string');
    expect(roundTrip(0)).toBe(0);
    expect(roundTrip(null)).toBeNull();
  });

  it('maps undefined to an empty message and back', () => {
    const { data, headers } = encode(undefined);
    expect(data).toHaveLength(0);
    expect(headers).toEqual({});
    expect(decode(new Uint8Array(0))).toBeUndefined();
    expect(decode(new Uint8Array(0), FRAME)).toBeUndefined();
  });

  it('round-trips typed arrays nested in objects and arrays bit-exactly', () => {
    const random = prng(0x5eed);
    const randomBits = Array.from({ length: 257 }, () => Math.floor(random() * 2 ** 32));
    const specialF32 = f32Bits([
      0x7fc00000, // the canonical NaN
      0x7fc00001, // a quiet NaN with a payload
      0xffc12345, // a negative NaN with a payload
      0x7f800001, // a signalling NaN
      0x80000000, // -0
      0x7f800000, // +Infinity
      0xff800000, // -Infinity
      0x00000001, // the smallest subnormal
      0x807fffff, // the largest negative subnormal
      0x7f7fffff, // the largest finite value
      0x3f800000, // 1
    ]);
    const specialF64 = f64Bits([
      0x7ff8000000000000n,
      0x7ff8dead0000beefn, // NaN with a payload
      0xfff0000000000001n, // a negative signalling NaN
      0x8000000000000000n, // -0
      0x7ff0000000000000n,
      0xfff0000000000000n,
      0x0000000000000001n, // Number.MIN_VALUE, a subnormal
      0x000fffffffffffffn, // the largest subnormal
    ]);
    const randomF32 = f32Bits(randomBits);
    const randomF64 = new Float64Array(Array.from({ length: 33 }, () => (random() - 0.5) * 1e300));
    const value = {
      user: 'u1',
      embedding: specialF32,
      list: [
        new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31), 42]),
        // Odd byte length: the arrays after it must still land on their own bytes.
        new Uint8Array([1, 2, 3, 255, 0]),
        { deep: { f64: specialF64, note: 'between' } },
      ],
      random: { f32: randomF32, f64: randomF64 },
    };

    const { data, headers } = encode(value);
    expect(headers).toEqual(FRAME);
    const out = decode(data, headers) as {
      user: string;
      embedding: Float32Array;
      list: [Int32Array, Uint8Array, { deep: { f64: Float64Array; note: string } }];
      random: { f32: Float32Array; f64: Float64Array };
    };

    expect(out.user).toBe('u1');
    expect(out.list[2].deep.note).toBe('between');
    const pairs: Array<[ArrayBufferView, ArrayBufferView, unknown]> = [
      [out.embedding, specialF32, Float32Array],
      [out.list[0], value.list[0] as Int32Array, Int32Array],
      [out.list[1], value.list[1] as Uint8Array, Uint8Array],
      [out.list[2].deep.f64, specialF64, Float64Array],
      [out.random.f32, randomF32, Float32Array],
      [out.random.f64, randomF64, Float64Array],
    ];
    for (const [got, sent, ctor] of pairs) {
      expect(got.constructor).toBe(ctor);
      expect(got.byteLength).toBe(sent.byteLength);
      expect(bytesOf(got)).toEqual(bytesOf(sent));
    }
  });

  it('round-trips every typed array kind, including one sent as the whole payload', () => {
    const kinds = [
      new Float32Array([1.5, -2.25]),
      new Float64Array([Math.PI]),
      new Int32Array([-7]),
      new Uint32Array([2 ** 32 - 1]),
      new Int16Array([-32768, 32767]),
      new Uint16Array([65535]),
      new Int8Array([-128, 127, 0]),
      new Uint8Array([9]),
    ];
    const out = roundTrip(kinds) as ArrayBufferView[];
    expect(out).toHaveLength(kinds.length);
    kinds.forEach((sent, i) => {
      const got = out[i];
      expect(got?.constructor).toBe(sent.constructor);
      expect(got === undefined ? [] : bytesOf(got)).toEqual(bytesOf(sent));
    });

    const whole = roundTrip(new Float32Array([0.1, 0.2, 0.3]));
    expect(whole).toBeInstanceOf(Float32Array);
    expect(bytesOf(whole as Float32Array)).toEqual(bytesOf(new Float32Array([0.1, 0.2, 0.3])));
  });

  it('encodes only the bytes of a typed array that views part of a larger buffer', () => {
    const big = new Float32Array(100).map((_, i) => i);
    const window = big.subarray(10, 13);
    expect(window.byteOffset).toBe(40);

    const { data, headers } = encode({ v: window });
    const out = decode(data, headers) as { v: Float32Array };
    expect(Array.from(out.v)).toEqual([10, 11, 12]);

    // The frame holds the JSON and 12 attachment bytes (padded to 16), not the 400-byte buffer.
    const jsonLength = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
    expect(data.length).toBe(Math.ceil((4 + jsonLength) / 8) * 8 + 16);
  });

  it('round-trips empty typed arrays', () => {
    const out = roundTrip({ a: new Float32Array(0), b: [new Uint8Array(0), 1] }) as {
      a: Float32Array;
      b: [Uint8Array, number];
    };
    expect(out.a).toBeInstanceOf(Float32Array);
    expect(out.a).toHaveLength(0);
    expect(out.b[0]).toBeInstanceOf(Uint8Array);
    expect(out.b[0]).toHaveLength(0);
    expect(out.b[1]).toBe(1);
  });

  it('decodes into copies that do not alias the inbound buffer', () => {
    const sent = new Float32Array([1, 2, 3]);
    const { data, headers } = encode({ v: sent });
    const out = decode(data, headers) as { v: Float32Array };
    data.fill(0xff);
    expect(Array.from(out.v)).toEqual([1, 2, 3]);
    expect(out.v.byteOffset).toBe(0);
  });

  it('sends a vector as its bytes, far smaller than its JSON text', () => {
    const random = prng(7);
    const n = 1024;
    const vector = new Float32Array(n).map(() => random() * 2 - 1);
    const { data, headers } = encode({ user_id: 'u1', vector });
    expect(headers).toEqual(FRAME);

    const jsonLength = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
    // The JSON part only carries the placeholder, not the numbers.
    expect(jsonLength).toBeLessThan(100);
    expect(data.length).toBeLessThanOrEqual(4 * n + jsonLength + 4 + 7 + 7);
    expect(data.length).toBeGreaterThanOrEqual(4 * n + jsonLength + 4);
    const asText = JSON.stringify({ user_id: 'u1', vector: Array.from(vector) });
    expect(data.length * 4).toBeLessThan(asText.length);
  });

  it('decodes a frame that sits at an odd offset inside a larger buffer', () => {
    // Transports hand over messages as views into their read buffers.
    const sent = { v: new Float64Array([1 / 3, -0, Number.MAX_VALUE]), w: new Int16Array([-5]) };
    const { data, headers } = encode(sent);
    const buffer = new Uint8Array(data.length + 11);
    buffer.set(data, 3);
    const out = decode(buffer.subarray(3, 3 + data.length), headers) as typeof sent;
    expect(bytesOf(out.v)).toEqual(bytesOf(sent.v));
    expect(bytesOf(out.w)).toEqual(bytesOf(sent.w));
  });

  it('decodes a frame held in a Node Buffer carved from a shared pool', () => {
    // Small Buffers share one pooled ArrayBuffer, and a Buffer's `slice` is a view, not a copy.
    const sent = { v: new Float32Array([1.5, -2.5, 3.25]), u: new Uint8Array([7, 8]) };
    const { data, headers } = encode(sent);
    const pooled = Buffer.concat([Buffer.from([1, 2, 3]), Buffer.from(data)]).subarray(3);
    expect(pooled.byteOffset).toBeGreaterThan(0);
    const out = decode(pooled, headers) as typeof sent;
    expect(Array.from(out.v)).toEqual([1.5, -2.5, 3.25]);
    expect(Array.from(out.u)).toEqual([7, 8]);
    pooled.fill(0);
    expect(Array.from(out.v)).toEqual([1.5, -2.5, 3.25]);
  });

  it('encodes what toJSON returns, typed arrays included', () => {
    const value = {
      at: new Date(0),
      custom: { toJSON: () => ({ v: new Float32Array([1.5, 2.5]) }) },
    };
    const out = roundTrip(value) as { at: string; custom: { v: Float32Array } };
    expect(out.at).toBe('1970-01-01T00:00:00.000Z');
    expect(out.custom.v).toBeInstanceOf(Float32Array);
    expect(Array.from(out.custom.v)).toEqual([1.5, 2.5]);
  });

  it('keeps a __proto__ key a plain field, typed array or not', () => {
    const value = JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as Record<string, unknown>;
    value['v'] = new Float32Array([3]);
    const out = roundTrip(value) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__', 'y', 'v']);
    const frame = JSON.parse('{"__proto__": {"$bin": "f32", "o": 0, "n": 1}}') as object;
    const framed = encode({ pad: new Float32Array([7]) });
    const json = text(JSON.stringify(frame));
    const data = new Uint8Array(Math.ceil((4 + json.length) / 8) * 8 + 8);
    new DataView(data.buffer).setUint32(0, json.length, true);
    data.set(json, 4);
    data.set(framed.data.subarray(framed.data.length - 8), data.length - 8);
    const decoded = decode(data, FRAME) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Array.from(decoded['__proto__'] as Float32Array)).toEqual([7]);
  });

  it('leaves a placeholder-shaped object in a plain JSON message alone', () => {
    const value = { $bin: 'f32', o: 0, n: 4 };
    expect(decode(text(JSON.stringify(value)))).toEqual(value);
  });

  describe('refuses malformed input with a BadRequestError naming payload', () => {
    it('bad JSON', () => {
      const err = badRequest(() => decode(text('{"a":')));
      expect(err.field).toBe('payload');
      expect(err.code).toBe('bad_request');
      expect(err.data['field']).toBe('payload');
      expect(err.message).toMatch(/JSON/);
      expect(badRequest(() => decode(text('not json'))).field).toBe('payload');
    });

    it('bad UTF-8', () => {
      for (const bytes of [
        [0x7b, 0xff, 0x7d], // a byte that never occurs in UTF-8
        [0x22, 0xc3, 0x22], // a truncated two-byte sequence
        [0x22, 0xed, 0xa0, 0x80, 0x22], // an encoded surrogate
      ]) {
        const err = badRequest(() => decode(new Uint8Array(bytes)));
        expect(err.field).toBe('payload');
        expect(err.message).toMatch(/UTF-8/);
      }
    });

    it('a truncated frame', () => {
      expect(badRequest(() => decode(new Uint8Array([1, 0]), FRAME)).field).toBe('payload');
      // The length prefix claims more JSON than the frame holds.
      const frame = new Uint8Array(12);
      new DataView(frame.buffer).setUint32(0, 100, true);
      const err = badRequest(() => decode(frame, FRAME));
      expect(err.field).toBe('payload');
      expect(err.message).toMatch(/truncated/);
    });

    it('an attachment out of range', () => {
      const { data, headers } = encode({ v: new Float64Array([1, 2, 3, 4]) });
      const cut = data.subarray(0, data.length - 8);
      const err = badRequest(() => decode(cut, headers));
      expect(err.field).toBe('payload');
      expect(err.message).toMatch(/attachment out of range/);

      // A placeholder that points past the end, in an otherwise valid frame.
      const json = text('{"v":{"$bin":"f32","o":8,"n":2}}');
      const frame = new Uint8Array(Math.ceil((4 + json.length) / 8) * 8 + 8);
      new DataView(frame.buffer).setUint32(0, json.length, true);
      frame.set(json, 4);
      expect(badRequest(() => decode(frame, FRAME)).message).toMatch(/attachment out of range/);
    });

    it('bad JSON inside a frame', () => {
      const json = text('{"v":');
      const frame = new Uint8Array(16);
      new DataView(frame.buffer).setUint32(0, json.length, true);
      frame.set(json, 4);
      expect(badRequest(() => decode(frame, FRAME)).field).toBe('payload');
    });

    it('an unknown encoding header', () => {
      const err = badRequest(() => decode(text('{}'), { [ENCODING_HEADER]: 'gzip' }));
      expect(err.field).toBe('payload');
      expect(err.message).toMatch(/gzip/);
    });
  });
});
