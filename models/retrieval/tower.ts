/**
 * One tower: embedding lookups (single, or a masked mean over a list) concatenated, then
 * dense(hidden, ReLU) → dense(dims) → L2 normalisation. Both towers of the model are instances;
 * only their feature lists differ. Forward keeps what backward needs; backward adds gradients to
 * the layers and, sparsely, to the embedding rows that were read.
 */
import { addColumnSums, gemm, gemmAtAdd, gemmBt } from './linalg.js';
import type { Vec, VecConstructor } from './linalg.js';
import { DenseParam, EmbeddingTable } from './params.js';
import type { AdagradOptions } from './params.js';
import type { Rng } from './rng.js';

/** Guards the normalisation of an all-zero vector (the ONNX graph uses the same floor). */
export const NORM_EPSILON = 1e-12;

/** An input of a tower: one embedding lookup per row, or a masked mean over `width` lookups. */
export interface FeatureSpec {
  readonly name: string;
  /** Known values; the table gets one more row for unknown (-1). */
  readonly vocab: number;
  readonly dims: number;
  /** 0 for one value per row; otherwise the list length of a masked mean. */
  readonly width: number;
}

/** Values of one feature for a batch: `index[B]`, or `index[B×width]` with `mask[B×width]`. */
export interface FeatureValues {
  readonly index: Int32Array;
  readonly mask?: Float32Array;
}

/** What the forward pass keeps for the backward pass. */
export interface TowerActivations {
  readonly size: number;
  readonly inputs: readonly FeatureValues[];
  /** Concatenated embeddings `[B × inputDims]`. */
  readonly x: Vec;
  /** Hidden layer after ReLU `[B × hidden]`. */
  readonly h: Vec;
  /** Norms of the pre-normalisation outputs `[B]`. */
  readonly norm: Vec;
  /** The L2-normalised embeddings `[B × dims]`: the tower's output. */
  readonly out: Vec;
}

export class Tower {
  readonly tables: readonly EmbeddingTable[];
  readonly inputDims: number;
  readonly w1: DenseParam;
  readonly b1: DenseParam;
  readonly w2: DenseParam;
  readonly b2: DenseParam;
  private readonly Ctor: VecConstructor;

  constructor(
    readonly name: string,
    readonly features: readonly FeatureSpec[],
    readonly hidden: number,
    readonly dims: number,
    Ctor: VecConstructor,
  ) {
    this.Ctor = Ctor;
    this.tables = features.map(
      (f) => new EmbeddingTable(`${name}.${f.name}`, f.vocab, f.dims, Ctor),
    );
    this.inputDims = features.reduce((sum, f) => sum + f.dims, 0);
    this.w1 = new DenseParam(`${name}.dense1.weight`, [this.inputDims, hidden], Ctor);
    this.b1 = new DenseParam(`${name}.dense1.bias`, [hidden], Ctor);
    this.w2 = new DenseParam(`${name}.dense2.weight`, [hidden, dims], Ctor);
    this.b2 = new DenseParam(`${name}.dense2.bias`, [dims], Ctor);
  }

  /**
   * Embeddings N(0, 1/√dims), the unknown rows too: an all-zero input (no id, no profile, no
   * history) would put the ReLU exactly on its kink and the output at the zero vector, where the
   * normalisation's gradient explodes. He init for the ReLU layer, Glorot for the output layer.
   */
  init(rng: Rng): void {
    for (const table of this.tables) table.initNormal(rng, 1 / Math.sqrt(table.dims));
    this.w1.initNormal(rng, Math.sqrt(2 / this.inputDims));
    this.w2.initNormal(rng, Math.sqrt(2 / (this.hidden + this.dims)));
  }

  get denseParams(): readonly DenseParam[] {
    return [this.w1, this.b1, this.w2, this.b2];
  }

  forward(inputs: readonly FeatureValues[], size: number): TowerActivations {
    const { inputDims, hidden, dims } = this;
    const x = new this.Ctor(size * inputDims);
    let offset = 0;
    this.features.forEach((feature, f) => {
      const table = this.tables[f] as EmbeddingTable;
      const values = inputs[f];
      if (values === undefined) throw new RangeError(`${this.name}: missing input ${feature.name}`);
      lookup(table, feature, values, size, x, offset, inputDims);
      offset += feature.dims;
    });
    const h = new this.Ctor(size * hidden);
    gemm(x, this.w1.value, h, size, inputDims, hidden, this.b1.value);
    for (let i = 0; i < h.length; i++) if ((h[i] as number) < 0) h[i] = 0;
    const out = new this.Ctor(size * dims);
    gemm(h, this.w2.value, out, size, hidden, dims, this.b2.value);
    const norm = new this.Ctor(size);
    for (let r = 0; r < size; r++) {
      const o = r * dims;
      let sq = 0;
      for (let j = 0; j < dims; j++) sq += (out[o + j] as number) ** 2;
      const n = Math.max(Math.sqrt(sq), NORM_EPSILON);
      norm[r] = n;
      for (let j = 0; j < dims; j++) out[o + j] = (out[o + j] as number) / n;
    }
    return { size, inputs, x, h, norm, out };
  }

  /** Adds the gradients of a loss whose gradient w.r.t. the tower's output is `dOut[B × dims]`. */
  backward(act: TowerActivations, dOut: Vec): void {
    const { inputDims, hidden, dims } = this;
    const { size, x, h, norm, out } = act;
    // Through y = z / |z|: dz = (dy - y (y · dy)) / |z|.
    const dz = new this.Ctor(size * dims);
    for (let r = 0; r < size; r++) {
      const o = r * dims;
      let proj = 0;
      for (let j = 0; j < dims; j++) proj += (out[o + j] as number) * (dOut[o + j] as number);
      const inv = 1 / (norm[r] as number);
      for (let j = 0; j < dims; j++) {
        dz[o + j] = ((dOut[o + j] as number) - (out[o + j] as number) * proj) * inv;
      }
    }
    gemmAtAdd(h, dz, this.w2.grad, size, hidden, dims);
    addColumnSums(dz, this.b2.grad, size, dims);
    const dh = new this.Ctor(size * hidden);
    gemmBt(dz, this.w2.value, dh, size, dims, hidden);
    for (let i = 0; i < dh.length; i++) if ((h[i] as number) <= 0) dh[i] = 0;
    gemmAtAdd(x, dh, this.w1.grad, size, inputDims, hidden);
    addColumnSums(dh, this.b1.grad, size, hidden);
    const dx = new this.Ctor(size * inputDims);
    gemmBt(dh, this.w1.value, dx, size, hidden, inputDims);
    let offset = 0;
    this.features.forEach((feature, f) => {
      const table = this.tables[f] as EmbeddingTable;
      scatter(table, feature, act.inputs[f] as FeatureValues, size, dx, offset, inputDims);
      offset += feature.dims;
    });
  }

  zeroGrad(): void {
    for (const p of this.denseParams) p.zeroGrad();
    for (const t of this.tables) t.zeroGrad();
  }

  step(opt: AdagradOptions): void {
    for (const p of this.denseParams) p.step(opt);
    for (const t of this.tables) t.step(opt);
  }
}

/** Writes feature `spec` of every row into `x[r, offset .. offset+dims)`. */
function lookup(
  table: EmbeddingTable,
  spec: FeatureSpec,
  values: FeatureValues,
  size: number,
  x: Vec,
  offset: number,
  stride: number,
): void {
  const d = spec.dims;
  const w = table.weights;
  if (spec.width === 0) {
    for (let r = 0; r < size; r++) {
      const wo = table.row(values.index[r] as number) * d;
      const xo = r * stride + offset;
      for (let j = 0; j < d; j++) x[xo + j] = w[wo + j] as number;
    }
    return;
  }
  const mask = values.mask;
  if (mask === undefined) throw new RangeError(`${table.name}: a pooled feature needs a mask`);
  const width = spec.width;
  for (let r = 0; r < size; r++) {
    const xo = r * stride + offset;
    let total = 0;
    for (let i = 0; i < width; i++) {
      const m = mask[r * width + i] as number;
      if (m === 0) continue;
      total += m;
      const wo = table.row(values.index[r * width + i] as number) * d;
      for (let j = 0; j < d; j++) x[xo + j] = (x[xo + j] as number) + m * (w[wo + j] as number);
    }
    // Masked mean; an empty list pools to zeros (the divisor never drops below 1).
    const inv = 1 / Math.max(total, 1);
    for (let j = 0; j < d; j++) x[xo + j] = (x[xo + j] as number) * inv;
  }
}

/** The inverse of {@link lookup}: gradient of each row read, from `dx[r, offset .. +dims)`. */
function scatter(
  table: EmbeddingTable,
  spec: FeatureSpec,
  values: FeatureValues,
  size: number,
  dx: Vec,
  offset: number,
  stride: number,
): void {
  if (spec.width === 0) {
    for (let r = 0; r < size; r++) {
      table.addGrad(table.row(values.index[r] as number), dx, r * stride + offset, 1);
    }
    return;
  }
  const mask = values.mask as Float32Array;
  const width = spec.width;
  for (let r = 0; r < size; r++) {
    let total = 0;
    for (let i = 0; i < width; i++) total += mask[r * width + i] as number;
    const inv = 1 / Math.max(total, 1);
    for (let i = 0; i < width; i++) {
      const m = mask[r * width + i] as number;
      if (m === 0) continue;
      table.addGrad(
        table.row(values.index[r * width + i] as number),
        dx,
        r * stride + offset,
        m * inv,
      );
    }
  }
}
