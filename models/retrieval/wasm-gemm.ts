/**
 * A WebAssembly SIMD matrix multiply for the float32 training path: `C (+)= A · B` with 4×4
 * blocks of f32x4 accumulators, about four times the throughput of the blocked JavaScript loops
 * in `linalg.ts`. The module is assembled here from its instructions (a few hundred bytes), so
 * nothing is fetched or built at install time; where WebAssembly SIMD is missing, callers fall
 * back to the JavaScript kernels.
 *
 * Operands are copied into the module's memory for each call (O(m·k + k·n + m·n) against the
 * O(m·k·n) product), which keeps the parameters in ordinary Float32Arrays everywhere else.
 */

// Opcodes (WebAssembly core spec 2.0; SIMD opcodes follow the 0xfd prefix as LEB128).
const I32 = 0x7f;
const V128 = 0x7b;
const BLOCK = 0x02;
const LOOP = 0x03;
const IF = 0x04;
const ELSE = 0x05;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const VOID = 0x40;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const I32_CONST = 0x41;
const I32_ADD = 0x6a;
const I32_MUL = 0x6c;
const I32_SHL = 0x74;
const I32_GE_S = 0x4e;
const I32_GT_S = 0x4a;
const F32_LOAD = 0x2a;
const SIMD = 0xfd;
const V128_LOAD = [SIMD, 0x00];
const V128_STORE = [SIMD, 0x0b];
const V128_CONST = [SIMD, 0x0c];
const F32X4_SPLAT = [SIMD, 0x13];
const F32X4_ADD = [SIMD, 0xe4, 0x01];
const F32X4_MUL = [SIMD, 0xe6, 0x01];

function uleb(value: number): number[] {
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

function sleb(value: number): number[] {
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

// Parameters and locals of `gemm(a, b, c, m, k, n, accumulate)`; addresses in bytes.
const A = 0;
const B = 1;
const C = 2;
const M = 3;
const K = 4;
const N = 5;
const ACC = 6;
const ROW = 7; // i: first row of the block
const COL = 8; // j: byte offset of the column block in a row of B and C
const P = 9; // inner index
const PA = 10; // &A[i, p]
const PB = 11; // &B[p, j]
const STRIDE_A = 12; // k * 4
const STRIDE_C = 13; // n * 4
const PC = 14; // &C[i, j]
const ACC0 = 15; // v128 accumulators of rows i .. i+3
const BV = 19; // v128: B[p, j .. j+4)

const get = (l: number): number[] => [LOCAL_GET, l];
const i32 = (v: number): number[] => [I32_CONST, ...sleb(v)];
const memarg = (align: number): number[] => [align, 0];
/** `local = value` */
const assign = (l: number, value: number[]): number[] => [...value, LOCAL_SET, l];
/** `local += value` for an i32 local. */
const addTo = (l: number, value: number[]): number[] => assign(l, [...get(l), ...value, I32_ADD]);
/** `x + y`, `x * y` on i32 operands. */
const add = (...terms: number[][]): number[] => [
  ...(terms[0] ?? []),
  ...terms.slice(1).flatMap((t) => [...t, I32_ADD]),
];
const mul = (x: number[], y: number[]): number[] => [...x, ...y, I32_MUL];
/** `while (!exit) { body }` */
const until = (exit: number[], ...body: number[][]): number[] => [
  BLOCK,
  VOID,
  LOOP,
  VOID,
  ...exit,
  BR_IF,
  1,
  ...body.flat(),
  BR,
  0,
  END,
  END,
];
const ifElse = (cond: number[], then: number[], otherwise: number[]): number[] => [
  ...cond,
  IF,
  VOID,
  ...then,
  ELSE,
  ...otherwise,
  END,
];

/** The loops over blocks of `rows` rows (4, then 1 for the remainder) of C. */
function rowBlock(rows: number): number[] {
  const rowAddress = (base: number, stride: number, r: number): number[] =>
    r === 0 ? get(base) : add(get(base), mul(get(stride), i32(r)));
  const loadAcc: number[] = [];
  const zeroAcc: number[] = [];
  const madd: number[] = [];
  const store: number[] = [];
  for (let r = 0; r < rows; r++) {
    const accumulator = ACC0 + r;
    loadAcc.push(
      ...assign(accumulator, [...rowAddress(PC, STRIDE_C, r), ...V128_LOAD, ...memarg(0)]),
    );
    zeroAcc.push(...assign(accumulator, [...V128_CONST, ...new Array<number>(16).fill(0)]));
    // acc_r += splat(A[row + r, p]) * B[p, col .. col+4)
    madd.push(
      ...assign(accumulator, [
        ...get(accumulator),
        ...rowAddress(PA, STRIDE_A, r),
        ...[F32_LOAD, ...memarg(2)],
        ...F32X4_SPLAT,
        ...get(BV),
        ...F32X4_MUL,
        ...F32X4_ADD,
      ]),
    );
    store.push(...rowAddress(PC, STRIDE_C, r), ...get(accumulator), ...V128_STORE, ...memarg(0));
  }
  return until(
    [...add(get(ROW), i32(rows)), ...get(M), I32_GT_S],
    assign(COL, i32(0)),
    until(
      [...get(COL), ...get(STRIDE_C), I32_GE_S],
      assign(PC, add(get(C), mul(get(ROW), get(STRIDE_C)), get(COL))),
      ifElse(get(ACC), loadAcc, zeroAcc),
      assign(PA, add(get(A), mul(get(ROW), get(STRIDE_A)))),
      assign(PB, add(get(B), get(COL))),
      assign(P, i32(0)),
      until(
        [...get(P), ...get(K), I32_GE_S],
        assign(BV, [...get(PB), ...V128_LOAD, ...memarg(0)]),
        madd,
        addTo(PA, i32(4)),
        addTo(PB, get(STRIDE_C)),
        addTo(P, i32(1)),
      ),
      store,
      addTo(COL, i32(16)),
    ),
    addTo(ROW, i32(rows)),
  );
}

function assemble(): Uint8Array {
  const locals = vec([
    [8, I32],
    [5, V128],
  ]);
  const body = [
    ...locals,
    ...assign(ROW, i32(0)),
    ...assign(STRIDE_A, [...get(K), ...i32(2), I32_SHL]),
    ...assign(STRIDE_C, [...get(N), ...i32(2), I32_SHL]),
    ...rowBlock(4),
    ...rowBlock(1),
    END,
  ];
  const gemmType = [0x60, ...vec(new Array<number[]>(7).fill([I32])), ...vec([])];
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  return Uint8Array.from([
    ...header,
    ...section(1, vec([gemmType])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x00, 1]])),
    ...section(
      7,
      vec([
        [...name('gemm'), 0x00, 0],
        [...name('memory'), 0x02, 0],
      ]),
    ),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ]);
}

/** The little of the WebAssembly JS API used here (the project's type libraries omit it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: unknown };
}

interface GemmExports {
  gemm(a: number, b: number, c: number, m: number, k: number, n: number, acc: number): void;
  memory: WasmMemory;
}

function instantiate(): GemmExports | undefined {
  const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined) return undefined;
  try {
    const bytes = assemble();
    if (!wasm.validate(bytes)) return undefined;
    return new wasm.Instance(new wasm.Module(bytes)).exports as GemmExports;
  } catch {
    return undefined;
  }
}

const kernel = instantiate();

/** Whether the SIMD kernel is available in this runtime. */
export const wasmGemmAvailable = kernel !== undefined;

let heap = new Float32Array(0);

/** A float32 view of the module memory with room for `floats` values. */
function memory(floats: number): Float32Array {
  const k = kernel as GemmExports;
  const bytes = floats * 4;
  const have = k.memory.buffer.byteLength;
  if (bytes > have) k.memory.grow(Math.ceil((bytes - have) / 65_536));
  if (heap.buffer !== k.memory.buffer) heap = new Float32Array(k.memory.buffer);
  return heap;
}

const round4 = (n: number): number => (n + 3) & ~3;

/**
 * `c[m×n] = a[m×k] · b[k×n]` (+ `bias` on every row, or + the old `c` when `accumulate`).
 * `aTransposed`: `a` is stored as `[k×m]`; `bTransposed`: `b` is stored as `[n×k]`.
 */
export function wasmGemm(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  k: number,
  n: number,
  options: {
    bias?: Float32Array | undefined;
    accumulate?: boolean;
    aTransposed?: boolean;
    bTransposed?: boolean;
  } = {},
): void {
  const n4 = round4(n);
  const offA = 0;
  const offB = round4(m * k);
  const offC = offB + round4(k * n4);
  const mem = memory(offC + m * n4);
  if (options.aTransposed === true) {
    for (let p = 0; p < k; p++) {
      const src = p * m;
      for (let r = 0; r < m; r++) mem[offA + r * k + p] = a[src + r] as number;
    }
  } else {
    mem.set(a.subarray(0, m * k), offA);
  }
  if (options.bTransposed === true) {
    for (let j = 0; j < n; j++) {
      const src = j * k;
      for (let p = 0; p < k; p++) mem[offB + p * n4 + j] = b[src + p] as number;
    }
    if (n4 !== n) for (let p = 0; p < k; p++) mem.fill(0, offB + p * n4 + n, offB + p * n4 + n4);
  } else if (n4 === n) {
    mem.set(b.subarray(0, k * n), offB);
  } else {
    for (let p = 0; p < k; p++) {
      mem.set(b.subarray(p * n, p * n + n), offB + p * n4);
      mem.fill(0, offB + p * n4 + n, offB + p * n4 + n4);
    }
  }
  const bias = options.bias;
  const accumulate = options.accumulate === true;
  if (accumulate || bias !== undefined) {
    for (let r = 0; r < m; r++) {
      const row = offC + r * n4;
      if (accumulate) mem.set(c.subarray(r * n, r * n + n), row);
      else mem.set((bias as Float32Array).subarray(0, n), row);
      if (n4 !== n) mem.fill(0, row + n, row + n4);
    }
  }
  (kernel as GemmExports).gemm(
    offA * 4,
    offB * 4,
    offC * 4,
    m,
    k,
    n4,
    accumulate || bias !== undefined ? 1 : 0,
  );
  const out = heap;
  if (n4 === n) {
    c.set(out.subarray(offC, offC + m * n));
  } else {
    for (let r = 0; r < m; r++) c.set(out.subarray(offC + r * n4, offC + r * n4 + n), r * n);
  }
}
