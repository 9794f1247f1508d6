/**
 * Just enough of a WebAssembly assembler for the trainer's two kernels (`wasm-histogram.ts`,
 * `wasm-lambdarank.ts`): opcodes, LEB128, structured loops, and a module of functions sharing one
 * exported memory. The kernels are written as instruction lists in TypeScript, so nothing is
 * fetched or built at install time (the approach of `models/retrieval/wasm-gemm.ts`).
 */

/** Value types. */
export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;

/** Opcodes used by the kernels (WebAssembly core 2.0; SIMD ones after the 0xfd prefix). */
export const Op = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  void: 0x40,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  i32Const: 0x41,
  f64Const: 0x44,
  i32Load: 0x28,
  f64Load: 0x2b,
  i32Load8U: 0x2d,
  i32Load16U: 0x2f,
  i32Store: 0x36,
  f64Store: 0x39,
  i32Eq: 0x46,
  i32Ne: 0x47,
  i32GtS: 0x4a,
  i32GeS: 0x4e,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32Shl: 0x74,
  f64Abs: 0x99,
  f64Neg: 0x9a,
  f64Add: 0xa0,
  f64Sub: 0xa1,
  f64Mul: 0xa2,
  f64Div: 0xa3,
} as const;

export const V128_LOAD = [0xfd, 0x00];
export const V128_STORE = [0xfd, 0x0b];
export const F64X2_ADD = [0xfd, 0xf0, 0x01];

export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

export function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

export const get = (local: number): number[] => [Op.localGet, local];
export const set = (local: number, value: number[]): number[] => [...value, Op.localSet, local];
export const i32 = (v: number): number[] => [Op.i32Const, ...sleb(v)];
export const f64 = (v: number): number[] => {
  const bytes = new Uint8Array(new Float64Array([v]).buffer);
  return [Op.f64Const, ...bytes];
};
/** A memory access immediate: alignment exponent, offset 0. */
export const memarg = (align: number): number[] => [align, 0];
/** Binary operation on two operand lists. */
export const op2 = (code: number | number[], x: number[], y: number[]): number[] => [
  ...x,
  ...y,
  ...(typeof code === 'number' ? [code] : code),
];
/** `base + (index << shift)`: the byte address of element `index` of `1 << shift` bytes. */
export const at = (base: number[], index: number[], shift: number): number[] =>
  op2(Op.i32Add, base, shift === 0 ? index : op2(Op.i32Shl, index, i32(shift)));
/** `while (!exit) { body }` */
export const until = (exit: number[], ...body: number[][]): number[] => [
  Op.block,
  Op.void,
  Op.loop,
  Op.void,
  ...exit,
  Op.brIf,
  1,
  ...body.flat(),
  Op.br,
  0,
  Op.end,
  Op.end,
];
/** `if (cond) { then } else { otherwise }` without a result. */
export const ifElse = (cond: number[], then: number[], otherwise: number[] = []): number[] => [
  ...cond,
  Op.if,
  Op.void,
  ...then,
  ...(otherwise.length > 0 ? [Op.else, ...otherwise] : []),
  Op.end,
];

/** One exported function: its type (parameter and result value types), locals and code. */
export interface WasmFunction {
  readonly name: string;
  readonly params: readonly number[];
  readonly results: readonly number[];
  /** Groups of locals after the parameters: `[count, type]`. */
  readonly locals: ReadonlyArray<readonly [number, number]>;
  readonly code: readonly number[];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(text: string): number[] {
  const bytes = [...Buffer.from(text, 'utf8')];
  return [...uleb(bytes.length), ...bytes];
}

/** A module of `functions` (one type each) and an exported memory named `memory`. */
export function assembleModule(functions: readonly WasmFunction[]): Uint8Array {
  const types = functions.map((f) => [
    0x60,
    ...vec(f.params.map((t) => [t])),
    ...vec(f.results.map((t) => [t])),
  ]);
  const bodies = functions.map((f) => {
    const body = [
      ...vec(f.locals.map(([count, type]) => [...uleb(count), type])),
      ...f.code,
      Op.end,
    ];
    return [...uleb(body.length), ...body];
  });
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(5, vec([[0x00, 1]])),
    ...section(
      7,
      vec([
        ...functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]),
        [...name('memory'), 0x02, 0],
      ]),
    ),
    ...section(10, vec(bodies)),
  ]);
}

/** The little of the WebAssembly JS API used here (the project's type libraries omit it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: unknown };
}

const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** Compiles a module, or undefined when this runtime cannot (no WebAssembly, no SIMD). */
export function compileModule(bytes: Uint8Array): object | undefined {
  if (wasm === undefined) return undefined;
  try {
    return wasm.validate(bytes) ? new wasm.Module(bytes) : undefined;
  } catch {
    return undefined;
  }
}

/** A new instance of a compiled module (its own memory), grown to at least `bytes`. */
export function instantiate<T extends { memory: WasmMemory }>(module: object, bytes: number): T {
  const exports = new (wasm as WasmApi).Instance(module).exports as T;
  const have = exports.memory.buffer.byteLength;
  if (bytes > have) exports.memory.grow(Math.ceil((bytes - have) / 65_536));
  return exports;
}
