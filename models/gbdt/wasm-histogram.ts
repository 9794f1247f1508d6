/**
 * The histogram pass of the tree grower in WebAssembly: for each row of a leaf, its (gradient,
 * hessian) pair is added to the bin of every feature with one f64x2 add, and the bin's count goes
 * up by one. It is most of a tree's work, and without the bounds checks and with the paired add it
 * runs three to four times as fast as the same loop in JavaScript (`wasm-assembler.ts` builds the
 * module). Without WebAssembly SIMD the grower runs the JavaScript loop, which adds in the same
 * order and gives the same sums to the bit.
 *
 * Each {@link HistogramKernel} owns one module memory holding the arrays the pass reads and writes:
 * the row-major bins, the interleaved gradients and hessians, the leaf row indices, and the
 * histogram slots; the grower works on typed-array views of it.
 */

import {
  assembleModule,
  at,
  compileModule,
  F64X2_ADD,
  get,
  I32,
  i32,
  instantiate,
  memarg,
  Op,
  op2,
  set,
  uleb,
  until,
  V128,
  V128_LOAD,
  V128_STORE,
} from './wasm-assembler.js';
import type { WasmFunction, WasmMemory } from './wasm-assembler.js';

// Parameters of `hist(rows, begin, end, bins, features, gh, hist, counts, stride, identity)`:
// byte addresses except `begin`/`end` (positions in `rows`), `features`, `stride` (entries per
// feature) and `identity` (1: row k is row k, `rows` unused).
const ROWS = 0;
const BEGIN = 1;
const END = 2;
const BINS = 3;
const FEATURES = 4;
const GH = 5;
const HIST = 6;
const COUNTS = 7;
const STRIDE = 8;
const IDENTITY = 9;
// Locals.
const K = 10;
const ROW = 11;
const ROW_BINS = 12;
const F = 13;
const ENTRY = 14;
const INDEX = 15;
const ADDRESS = 16;
const STRIDE2 = 17;
const STRIDE3 = 18;
const UNROLLED_END = 19;
const PAIR = 20; // v128

/**
 * `hist8` (one-byte bins) or `hist16`. The feature loop goes four features a step (then one at a
 * time for the rest): fewer loop tests, and four independent read-modify-writes in flight.
 */
function histFunction(wide: boolean): WasmFunction {
  /** Bin of feature `F + k` of the row. */
  const binOf = (k: number): number[] =>
    wide
      ? [...at(get(ROW_BINS), get(F), 1), Op.i32Load16U, 1, ...uleb(2 * k)]
      : [...at(get(ROW_BINS), get(F), 0), Op.i32Load8U, 0, ...uleb(k)];
  /** `hist[entry + bin] += pair; counts[entry + bin] += 1` for feature `F + k`. */
  const add = (k: number, entry: number[]): number[] => [
    ...set(INDEX, op2(Op.i32Add, entry, binOf(k))),
    ...set(ADDRESS, at(get(HIST), get(INDEX), 4)),
    ...get(ADDRESS),
    ...get(ADDRESS),
    ...V128_LOAD,
    ...memarg(3),
    ...get(PAIR),
    ...F64X2_ADD,
    ...V128_STORE,
    ...memarg(3),
    ...set(ADDRESS, at(get(COUNTS), get(INDEX), 2)),
    ...get(ADDRESS),
    ...get(ADDRESS),
    Op.i32Load,
    ...memarg(2),
    ...i32(1),
    Op.i32Add,
    Op.i32Store,
    ...memarg(2),
  ];
  const rowOffset = op2(Op.i32Mul, get(ROW), get(FEATURES));
  const code = [
    ...set(STRIDE2, op2(Op.i32Add, get(STRIDE), get(STRIDE))),
    ...set(STRIDE3, op2(Op.i32Add, get(STRIDE2), get(STRIDE))),
    ...set(UNROLLED_END, op2(Op.i32Sub, get(FEATURES), i32(3))),
    ...set(K, get(BEGIN)),
    ...until(
      op2(Op.i32GeU, get(K), get(END)),
      // row = identity ? k : rows[k]
      [
        ...get(IDENTITY),
        Op.if,
        I32,
        ...get(K),
        Op.else,
        ...at(get(ROWS), get(K), 2),
        Op.i32Load,
        ...memarg(2),
        Op.end,
        Op.localSet,
        ROW,
      ],
      set(PAIR, [...at(get(GH), get(ROW), 4), ...V128_LOAD, ...memarg(3)]),
      set(ROW_BINS, at(get(BINS), rowOffset, wide ? 1 : 0)),
      set(F, i32(0)),
      set(ENTRY, i32(0)),
      until(
        op2(Op.i32GeS, get(F), get(UNROLLED_END)),
        add(0, get(ENTRY)),
        add(1, op2(Op.i32Add, get(ENTRY), get(STRIDE))),
        add(2, op2(Op.i32Add, get(ENTRY), get(STRIDE2))),
        add(3, op2(Op.i32Add, get(ENTRY), get(STRIDE3))),
        set(F, op2(Op.i32Add, get(F), i32(4))),
        set(ENTRY, op2(Op.i32Add, get(ENTRY), op2(Op.i32Add, get(STRIDE2), get(STRIDE2)))),
      ),
      until(
        op2(Op.i32GeU, get(F), get(FEATURES)),
        add(0, get(ENTRY)),
        set(F, op2(Op.i32Add, get(F), i32(1))),
        set(ENTRY, op2(Op.i32Add, get(ENTRY), get(STRIDE))),
      ),
      set(K, op2(Op.i32Add, get(K), i32(1))),
    ),
  ];
  return {
    name: wide ? 'hist16' : 'hist8',
    params: new Array<number>(10).fill(I32),
    results: [],
    locals: [
      [10, I32],
      [1, V128],
    ],
    code,
  };
}

type HistFunction = (
  rows: number,
  begin: number,
  end: number,
  bins: number,
  features: number,
  gh: number,
  hist: number,
  counts: number,
  stride: number,
  identity: number,
) => void;

interface HistExports {
  hist8: HistFunction;
  hist16: HistFunction;
  memory: WasmMemory;
}

const compiled = compileModule(assembleModule([histFunction(false), histFunction(true)]));

/** Whether the WebAssembly SIMD histogram pass is available in this runtime. */
export const wasmHistogramAvailable = compiled !== undefined;

/** Sizes of the arrays a kernel holds. */
export interface HistogramLayout {
  readonly rows: number;
  readonly features: number;
  /** Histogram entries per feature. */
  readonly stride: number;
  /** Histogram slots (one per leaf). */
  readonly slots: number;
  /** Two-byte bins (some feature has more than 256 bins). */
  readonly wide: boolean;
}

/**
 * The arrays of a tree grower in one module memory (or in ordinary buffers when WebAssembly SIMD
 * is missing), and the histogram pass over them.
 */
export class HistogramKernel {
  /** `rows × features` bins, row-major. */
  readonly bins: Uint8Array | Uint16Array;
  /** Gradient and hessian of row `r` at `[2r]` and `[2r + 1]`. */
  readonly gradHess: Float64Array;
  /** Row indices of the leaves (the grower's data partition). */
  readonly indices: Int32Array;
  /** Per slot, feature and bin: gradient and hessian sums at `[2e]`, `[2e + 1]`. */
  readonly hist: Float64Array;
  /** Per slot, feature and bin: the row count at `[e]`. */
  readonly counts: Int32Array;
  /** Entries (feature bins) of one slot. */
  readonly slotEntries: number;
  private readonly exports: HistExports | undefined;
  private readonly offsets: {
    bins: number;
    gradHess: number;
    indices: number;
    hist: number;
    counts: number;
  };

  constructor(
    private readonly layout: HistogramLayout,
    useWasm = wasmHistogramAvailable,
  ) {
    const { rows, features, stride, slots, wide } = layout;
    this.slotEntries = features * stride;
    const align = (n: number): number => Math.ceil(n / 16) * 16;
    const gradHessBytes = rows * 16;
    const histBytes = slots * this.slotEntries * 16;
    const indicesBytes = align(rows * 4);
    const countsBytes = align(slots * this.slotEntries * 4);
    const binsBytes = align(rows * features * (wide ? 2 : 1));
    // 16-byte values first, so every array is aligned to its element size.
    this.offsets = {
      gradHess: 0,
      hist: gradHessBytes,
      indices: gradHessBytes + histBytes,
      counts: gradHessBytes + histBytes + indicesBytes,
      bins: gradHessBytes + histBytes + indicesBytes + countsBytes,
    };
    const total = this.offsets.bins + binsBytes;
    let buffer: ArrayBuffer;
    if (useWasm && compiled !== undefined) {
      this.exports = instantiate<HistExports>(compiled, total);
      buffer = this.exports.memory.buffer;
    } else {
      this.exports = undefined;
      buffer = new ArrayBuffer(total);
    }
    const o = this.offsets;
    this.gradHess = new Float64Array(buffer, o.gradHess, rows * 2);
    this.hist = new Float64Array(buffer, o.hist, slots * this.slotEntries * 2);
    this.indices = new Int32Array(buffer, o.indices, rows);
    this.counts = new Int32Array(buffer, o.counts, slots * this.slotEntries);
    this.bins = wide
      ? new Uint16Array(buffer, o.bins, rows * features)
      : new Uint8Array(buffer, o.bins, rows * features);
  }

  /** Whether the pass runs in WebAssembly. */
  get usesWasm(): boolean {
    return this.exports !== undefined;
  }

  /**
   * Zeroes slot `slot` and adds to it the rows `indices[begin..end)` (or rows `begin..end` when
   * `identity`).
   */
  build(slot: number, begin: number, end: number, identity: boolean): void {
    const entries = this.slotEntries;
    this.hist.fill(0, 2 * slot * entries, 2 * (slot + 1) * entries);
    this.counts.fill(0, slot * entries, (slot + 1) * entries);
    const { features, stride, wide } = this.layout;
    if (this.exports !== undefined) {
      const o = this.offsets;
      (wide ? this.exports.hist16 : this.exports.hist8)(
        o.indices,
        begin,
        end,
        o.bins,
        features,
        o.gradHess,
        o.hist + slot * entries * 16,
        o.counts + slot * entries * 4,
        stride,
        identity ? 1 : 0,
      );
      return;
    }
    accumulate(
      this.bins,
      this.gradHess,
      this.indices,
      this.hist,
      this.counts,
      slot * entries,
      begin,
      end,
      features,
      stride,
      identity,
    );
  }
}

/** The pass in JavaScript: the same additions in the same order as the WebAssembly one. */
function accumulate(
  bins: Uint8Array | Uint16Array,
  gradHess: Float64Array,
  indices: Int32Array,
  hist: Float64Array,
  counts: Int32Array,
  base: number,
  begin: number,
  end: number,
  features: number,
  stride: number,
  identity: boolean,
): void {
  for (let k = begin; k < end; k++) {
    const row = identity ? k : (indices[k] as number);
    const g = gradHess[2 * row] as number;
    const h = gradHess[2 * row + 1] as number;
    const rowBase = row * features;
    for (let f = 0, entry = base; f < features; f++, entry += stride) {
      const e = entry + (bins[rowBase + f] as number);
      hist[2 * e] = (hist[2 * e] as number) + g;
      hist[2 * e + 1] = (hist[2 * e + 1] as number) + h;
      counts[e] = (counts[e] as number) + 1;
    }
  }
}
