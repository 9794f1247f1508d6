/**
 * The pair loop of LambdaRank (`objectives.ts`) in WebAssembly: for one query in rank order, every
 * pair of different labels with a document in the top `truncationLevel` adds its lambda and
 * hessian to both documents. It is the objective's whole cost (about 1.7 million pairs per
 * iteration on the reference set) and runs about twice as fast here as in JavaScript, with the
 * same operations in the same order, so both give the same gradients to the bit.
 *
 * The query's arrays live in the kernel's memory; the objective fills them through the views.
 */
import {
  assembleModule,
  at,
  compileModule,
  F64,
  f64,
  get,
  I32,
  i32,
  ifElse,
  instantiate,
  memarg,
  Op,
  op2,
  set,
  until,
} from './wasm-assembler.js';
import type { WasmMemory } from './wasm-assembler.js';

/** LightGBM's `0.01f`, promoted to double in the score-distance normalisation. */
export const DISTANCE_FLOOR = Math.fround(0.01);

// Parameters of `pairs(cnt, top, inverseMaxDcg, sigmoid, scale, score, label, gain, exp, lambda,
// hessian, discount) -> sumLambdas`: the last seven are byte addresses of per-rank arrays.
const CNT = 0;
const TOP = 1;
const INV = 2;
const SIGMOID = 3;
const SCALE = 4;
const SCORE = 5;
const LABEL = 6;
const GAIN = 7;
const EXP = 8;
const LAMBDA = 9;
const HESSIAN = 10;
const DISCOUNT = 11;
// Locals: i32 then f64.
const I = 12;
const J = 13;
const LI = 14;
const LJ = 15;
const HIGHER = 16;
const SI = 17;
const GI = 18;
const DI = 19;
const EI = 20;
const LAMBDA_I = 21;
const HESSIAN_I = 22;
const SUM = 23;
const DS = 24;
const GAP = 25;
const DN = 26;
const EJ = 27;
const P = 28;
const PL = 29;
const PH = 30;
const SIGMOID2 = 31;
const NEG_SIGMOID = 32;
const SJ = 33;
const GJ = 34;
const SPL = 35;

/** `condition ? x : y` without a branch (both evaluated). */
const select = (x: number[], y: number[], condition: number[]): number[] => [
  ...x,
  ...y,
  ...condition,
  Op.select,
];

const loadF64 = (base: number, index: number): number[] => [
  ...at(get(base), get(index), 3),
  Op.f64Load,
  ...memarg(3),
];
const loadI32 = (base: number, index: number): number[] => [
  ...at(get(base), get(index), 2),
  Op.i32Load,
  ...memarg(2),
];
/** `base[index] = base[index] (+|-) value` on f64 arrays. */
const addToF64 = (base: number, index: number, opcode: number, value: number[]): number[] => [
  ...at(get(base), get(index), 3),
  ...op2(opcode, loadF64(base, index), value),
  Op.f64Store,
  ...memarg(3),
];

const code = [
  ...set(SIGMOID2, op2(Op.f64Mul, get(SIGMOID), get(SIGMOID))),
  ...set(NEG_SIGMOID, [...get(SIGMOID), Op.f64Neg]),
  ...set(SUM, f64(0)),
  ...set(I, i32(0)),
  ...until(
    op2(Op.i32GeS, get(I), get(TOP)),
    set(LI, loadI32(LABEL, I)),
    set(SI, loadF64(SCORE, I)),
    set(GI, loadF64(GAIN, I)),
    set(DI, loadF64(DISCOUNT, I)),
    set(EI, loadF64(EXP, I)),
    set(LAMBDA_I, f64(0)),
    set(HESSIAN_I, f64(0)),
    set(J, op2(Op.i32Add, get(I), i32(1))),
    until(
      op2(Op.i32GeS, get(J), get(CNT)),
      set(LJ, loadI32(LABEL, J)),
      ifElse(op2(Op.i32Ne, get(LI), get(LJ)), [
        // Selects rather than branches: which of the two ranks the higher label is, is a coin
        // toss for the branch predictor.
        ...set(HIGHER, op2(Op.i32GtS, get(LI), get(LJ))),
        ...set(SJ, loadF64(SCORE, J)),
        ...set(GJ, loadF64(GAIN, J)),
        ...set(
          DS,
          select(op2(Op.f64Sub, get(SI), get(SJ)), op2(Op.f64Sub, get(SJ), get(SI)), get(HIGHER)),
        ),
        ...set(
          GAP,
          select(op2(Op.f64Sub, get(GI), get(GJ)), op2(Op.f64Sub, get(GJ), get(GI)), get(HIGHER)),
        ),
        // dn = gap * (d_i - d_j) * inverseMaxDcg, then / (0.01f + |ds|) when scaling
        ...set(
          DN,
          op2(
            Op.f64Mul,
            op2(Op.f64Mul, get(GAP), op2(Op.f64Sub, get(DI), loadF64(DISCOUNT, J))),
            get(INV),
          ),
        ),
        ...ifElse(
          get(SCALE),
          set(
            DN,
            op2(Op.f64Div, get(DN), op2(Op.f64Add, f64(DISTANCE_FLOOR), [...get(DS), Op.f64Abs])),
          ),
        ),
        ...set(EJ, loadF64(EXP, J)),
        // e_low / (e_i + e_j) (IEEE addition commutes: the same bits as either order).
        ...set(
          P,
          op2(Op.f64Div, select(get(EJ), get(EI), get(HIGHER)), op2(Op.f64Add, get(EI), get(EJ))),
        ),
        ...set(PL, op2(Op.f64Mul, op2(Op.f64Mul, get(NEG_SIGMOID), get(DN)), get(P))),
        ...set(
          PH,
          op2(
            Op.f64Mul,
            op2(Op.f64Mul, op2(Op.f64Mul, get(SIGMOID2), get(DN)), get(P)),
            op2(Op.f64Sub, f64(1), get(P)),
          ),
        ),
        // x - y is x + (-y) to the bit: the signed lambda goes to i, its negation to j.
        ...set(SPL, select(get(PL), [...get(PL), Op.f64Neg], get(HIGHER))),
        ...set(LAMBDA_I, op2(Op.f64Add, get(LAMBDA_I), get(SPL))),
        ...addToF64(LAMBDA, J, Op.f64Sub, get(SPL)),
        ...set(HESSIAN_I, op2(Op.f64Add, get(HESSIAN_I), get(PH))),
        ...addToF64(HESSIAN, J, Op.f64Add, get(PH)),
        ...set(SUM, op2(Op.f64Sub, get(SUM), op2(Op.f64Mul, f64(2), get(PL)))),
      ]),
      set(J, op2(Op.i32Add, get(J), i32(1))),
    ),
    addToF64(LAMBDA, I, Op.f64Add, get(LAMBDA_I)),
    addToF64(HESSIAN, I, Op.f64Add, get(HESSIAN_I)),
    set(I, op2(Op.i32Add, get(I), i32(1))),
  ),
  ...get(SUM),
];

const compiled = compileModule(
  assembleModule([
    {
      name: 'pairs',
      params: [I32, I32, F64, F64, I32, I32, I32, I32, I32, I32, I32, I32],
      results: [F64],
      locals: [
        [5, I32],
        [19, F64],
      ],
      code,
    },
  ]),
);

/** Whether the WebAssembly pair loop is available in this runtime. */
export const wasmLambdarankAvailable = compiled !== undefined;

interface PairExports {
  pairs(
    cnt: number,
    top: number,
    inverseMaxDcg: number,
    sigmoid: number,
    scale: number,
    score: number,
    label: number,
    gain: number,
    exp: number,
    lambda: number,
    hessian: number,
    discount: number,
  ): number;
  memory: WasmMemory;
}

/** One query's arrays, by rank, in a kernel's memory, and the pair loop over them. */
export class LambdarankPairKernel {
  readonly score: Float64Array;
  readonly gain: Float64Array;
  readonly exp: Float64Array;
  readonly lambda: Float64Array;
  readonly hessian: Float64Array;
  readonly discount: Float64Array;
  readonly label: Int32Array;
  private readonly exports: PairExports;
  private readonly addresses: number[];

  /** For queries of at most `longest` documents; `discount[r]` is copied in. */
  constructor(longest: number, discount: Float64Array) {
    if (compiled === undefined) throw new Error('WebAssembly is not available');
    const n = Math.max(1, longest, discount.length);
    const arrays = 7;
    this.exports = instantiate<PairExports>(compiled, arrays * n * 8);
    const buffer = this.exports.memory.buffer;
    this.addresses = Array.from({ length: arrays }, (_, i) => i * n * 8);
    const view = (i: number): Float64Array => new Float64Array(buffer, this.addresses[i], n);
    this.score = view(0);
    this.gain = view(1);
    this.exp = view(2);
    this.lambda = view(3);
    this.hessian = view(4);
    this.discount = view(5);
    this.label = new Int32Array(buffer, this.addresses[6], n);
    this.discount.set(discount.subarray(0, Math.min(n, discount.length)));
  }

  /**
   * Adds the lambdas and hessians of the query's pairs (ranks `0..cnt`, pairs with a rank below
   * `top`) to `lambda` and `hessian`; returns the sum of |lambda| over pairs, twice.
   */
  pairs(cnt: number, top: number, inverseMaxDcg: number, sigmoid: number, scale: boolean): number {
    const a = this.addresses as [number, number, number, number, number, number, number];
    return this.exports.pairs(
      cnt,
      top,
      inverseMaxDcg,
      sigmoid,
      scale ? 1 : 0,
      a[0],
      a[6],
      a[1],
      a[2],
      a[3],
      a[4],
      a[5],
    );
  }
}
