/**
 * Trainable parameters and their Adagrad state: dense tensors (the tower layers) with an
 * accumulator per weight, and embedding tables with sparse row updates and one accumulator per
 * row (row-wise Adagrad, as large recommenders use: half the optimiser memory of a per-weight
 * accumulator, and only the rows a batch touched are read or written).
 */
import type { Rng } from './rng.js';
import type { Vec, VecConstructor } from './linalg.js';

/** Adagrad: `acc += g²; w -= lr · g / (√acc + ε)`. */
export interface AdagradOptions {
  /** @default 0.1 */
  learningRate: number;
  /** Starting value of every accumulator, which bounds the first steps. @default 0.1 */
  initialAccumulator: number;
  /** @default 1e-10 */
  epsilon: number;
}

/** A dense parameter tensor with its gradient and accumulator. */
export class DenseParam {
  readonly value: Vec;
  readonly grad: Vec;
  private accum: Vec | undefined;

  constructor(
    readonly name: string,
    readonly shape: readonly number[],
    Ctor: VecConstructor,
  ) {
    const size = shape.reduce((a, b) => a * b, 1);
    this.value = new Ctor(size);
    this.grad = new Ctor(size);
  }

  /** Glorot-style normal initialisation with standard deviation `std`. */
  initNormal(rng: Rng, std: number): void {
    for (let i = 0; i < this.value.length; i++) this.value[i] = rng.normal() * std;
  }

  zeroGrad(): void {
    this.grad.fill(0);
  }

  step(opt: AdagradOptions): void {
    const { value, grad } = this;
    let accum = this.accum;
    if (accum === undefined) {
      accum = new Float32Array(value.length).fill(opt.initialAccumulator);
      this.accum = accum;
    }
    const lr = opt.learningRate;
    const eps = opt.epsilon;
    for (let i = 0; i < value.length; i++) {
      const g = grad[i] as number;
      if (g === 0) continue;
      const a = (accum[i] as number) + g * g;
      accum[i] = a;
      value[i] = (value[i] as number) - (lr * g) / (Math.sqrt(a) + eps);
    }
  }
}

/**
 * An embedding table of `vocab + 1` rows: rows `0 .. vocab-1` for the known values and the last
 * row reserved for "unknown" (index -1, as ONNX `Gather` reads a negative index from the end).
 * Gradients are collected per touched row and applied with row-wise Adagrad.
 */
export class EmbeddingTable {
  readonly rows: number;
  readonly weights: Vec;
  private readonly accum: Float32Array;
  /** Slot in `gradRows`/`grads` of each row touched since the last step, else -1. */
  private readonly slotOf: Int32Array;
  private gradRows: Int32Array;
  private grads: Vec;
  private touched = 0;
  private readonly Ctor: VecConstructor;

  constructor(
    readonly name: string,
    /** Known values; the table has one more row, for unknown. */
    readonly vocab: number,
    readonly dims: number,
    Ctor: VecConstructor,
    initialAccumulator = 0.1,
  ) {
    this.rows = vocab + 1;
    this.Ctor = Ctor;
    this.weights = new Ctor(this.rows * dims);
    this.accum = new Float32Array(this.rows).fill(initialAccumulator);
    this.slotOf = new Int32Array(this.rows).fill(-1);
    this.gradRows = new Int32Array(64);
    this.grads = new Ctor(64 * dims);
  }

  /** The row of a value: -1 and anything outside `[0, vocab)` read the unknown row. */
  row(index: number): number {
    return index >= 0 && index < this.vocab ? index : this.vocab;
  }

  initNormal(rng: Rng, std: number): void {
    for (let i = 0; i < this.weights.length; i++) this.weights[i] = rng.normal() * std;
  }

  /** Adds `scale · g[go .. go+dims)` to the gradient of `row`. */
  addGrad(row: number, g: Vec, go: number, scale: number): void {
    let slot = this.slotOf[row] as number;
    const d = this.dims;
    if (slot < 0) {
      slot = this.touched++;
      if (slot >= this.gradRows.length) this.grow();
      this.slotOf[row] = slot;
      this.gradRows[slot] = row;
      this.grads.fill(0, slot * d, slot * d + d);
    }
    const o = slot * d;
    const grads = this.grads;
    for (let j = 0; j < d; j++)
      grads[o + j] = (grads[o + j] as number) + scale * (g[go + j] as number);
  }

  /** The gradient collected for `row` since the last step (zeros when untouched); for tests. */
  gradOf(row: number): Float64Array {
    const out = new Float64Array(this.dims);
    const slot = this.slotOf[row] as number;
    if (slot >= 0) {
      for (let j = 0; j < this.dims; j++) out[j] = this.grads[slot * this.dims + j] as number;
    }
    return out;
  }

  /** Drops the collected gradients without applying them. */
  zeroGrad(): void {
    for (let s = 0; s < this.touched; s++) this.slotOf[this.gradRows[s] as number] = -1;
    this.touched = 0;
  }

  /** Row-wise Adagrad on the touched rows: `acc_r += mean(g_r²); w_r -= lr · g_r / (√acc_r + ε)`. */
  step(opt: AdagradOptions): void {
    const d = this.dims;
    const { weights, grads, accum } = this;
    for (let s = 0; s < this.touched; s++) {
      const row = this.gradRows[s] as number;
      const go = s * d;
      let sq = 0;
      for (let j = 0; j < d; j++) {
        const g = grads[go + j] as number;
        sq += g * g;
      }
      const a = (accum[row] as number) + sq / d;
      accum[row] = a;
      const rate = opt.learningRate / (Math.sqrt(a) + opt.epsilon);
      const wo = row * d;
      for (let j = 0; j < d; j++) {
        weights[wo + j] = (weights[wo + j] as number) - rate * (grads[go + j] as number);
      }
    }
    this.zeroGrad();
  }

  /** Copies row `from` over row `to`. */
  copyRow(from: number, to: number): void {
    const d = this.dims;
    this.weights.copyWithin(to * d, from * d, from * d + d);
  }

  private grow(): void {
    const rows = new Int32Array(this.gradRows.length * 2);
    rows.set(this.gradRows);
    const grads = new this.Ctor(rows.length * this.dims);
    grads.set(this.grads);
    this.gradRows = rows;
    this.grads = grads;
  }
}
