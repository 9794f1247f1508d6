/**
 * DeepFM (Guo et al. 2017): a factorisation machine and an MLP that share the field embeddings,
 * summed into one logit, so pairwise feature interactions are learned both explicitly (the FM's
 * inner products) and implicitly (the MLP) from the same k-dimensional vectors.
 *
 *   numeric field f:      z_f = (x_f − mean_f) / std_f (0 when missing), e_f = z_f·v_f + miss_f·m_f
 *   categorical field f:  e_f = T[row_f] (the field's unknown row for an unknown id)
 *   first order:          Σ_numeric (w_f·z_f + w'_f·miss_f) + Σ_categorical t[row_f]
 *   FM:                   ½ Σ_k ((Σ_f e_fk)² − Σ_f e_fk²)
 *   MLP:                  ReLU layers over [e_1 … e_F] (schema order), then a linear unit
 *   logit:                bias + first order + FM + MLP
 *
 * The forward pass keeps in its workspace what the backward pass needs; backward adds gradients
 * to every parameter (the categorical tables densely, at the rows the batch read). The same
 * forward pass scores rows at serving time and is what the ONNX graph reproduces.
 */
import { ConfigError } from '../../runtime/errors.js';
import { addColumnSums, gemm, gemmAtAdd, gemmBt } from '../retrieval/linalg.js';
import type { Vec, VecConstructor } from '../retrieval/linalg.js';
import { Rng } from '../retrieval/rng.js';
import { allocateEncoded, encodeRows, rowCount, schemaLayout } from './schema.js';
import type { EncodedRows, FeatureSchema, SchemaLayout } from './schema.js';

/** Training objectives. */
export const DeepFmLoss = {
  /** Binary log loss of each row, the label read as clicked when > 0. */
  Pointwise: 'pointwise',
  /**
   * Softmax cross-entropy over each query group against the target distribution
   * (2^label − 1) / Σ (2^label − 1); groups without a positive label are skipped.
   */
  Listwise: 'listwise',
} as const;
export type DeepFmLoss = (typeof DeepFmLoss)[keyof typeof DeepFmLoss];

/** The recipe of a DeepFM ranker: its architecture and its training. */
export interface DeepFmOptions {
  /** k, the size of every field embedding. @default 8 */
  embeddingDims?: number;
  /** Widths of the MLP's ReLU layers; empty for a linear unit over the embeddings. @default [64, 32] */
  hiddenLayers?: readonly number[];
  /** Include the FM second-order term. @default true */
  fm?: boolean;
  /** Include the MLP. @default true */
  mlp?: boolean;
  /** Share of MLP hidden units dropped in each training step (inverted dropout). @default 0 */
  dropout?: number;
  /** Adam step size. @default 0.002 */
  learningRate?: number;
  /** Passes over the training rows (fewer when early stopping ends training). @default 20 */
  epochs?: number;
  /**
   * Rows per step. The listwise loss packs whole query groups until a batch holds at least this
   * many rows. @default 512
   */
  batchSize?: number;
  /**
   * L2 penalty `l2 · w` added to the gradient of every weight a step updates (biases excluded;
   * categorical rows only when the batch read them). @default 0
   */
  l2?: number;
  /** Seeds initialisation, shuffling and dropout: the same seed gives the same model. @default 42 */
  seed?: number;
  /** @default 'listwise' */
  loss?: DeepFmLoss;
  /**
   * Stop when validation NDCG@`ndcgAt` has not improved for this many epochs, and keep the best
   * epoch's parameters. 0 trains every epoch (the best epoch is still kept). Needs validation
   * data. @default 3
   */
  earlyStoppingRounds?: number;
  /** The cut-off of the validation NDCG. @default 10 */
  ndcgAt?: number;
  /** Parameter storage: float32 to train and serve, float64 for gradient checks. @default 'float32' */
  precision?: 'float32' | 'float64';
}

export interface ResolvedDeepFmOptions {
  readonly embeddingDims: number;
  readonly hiddenLayers: readonly number[];
  readonly fm: boolean;
  readonly mlp: boolean;
  readonly dropout: number;
  readonly learningRate: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly l2: number;
  readonly seed: number;
  readonly loss: DeepFmLoss;
  readonly earlyStoppingRounds: number;
  readonly ndcgAt: number;
  readonly precision: 'float32' | 'float64';
}

/** What fixes the parameter shapes besides the schema. */
export type DeepFmArchitecture = Pick<
  ResolvedDeepFmOptions,
  'embeddingDims' | 'hiddenLayers' | 'fm' | 'mlp'
>;

/** Applies the defaults and checks every option; a bad one throws a `ConfigError` naming it. */
export function resolveDeepFmOptions(options: DeepFmOptions = {}): ResolvedDeepFmOptions {
  const int = (
    name: string,
    value: unknown,
    min: number,
    max = Number.MAX_SAFE_INTEGER,
  ): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(name, `must be an integer in [${min}, ${max}], got ${String(value)}`);
    }
    return value;
  };
  const positive = (name: string, value: unknown): number => {
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
      throw new ConfigError(name, `must be a positive number, got ${String(value)}`);
    }
    return value;
  };
  const bool = (name: string, value: unknown): boolean => {
    if (typeof value !== 'boolean') throw new ConfigError(name, 'must be true or false');
    return value;
  };
  const hidden = options.hiddenLayers ?? [64, 32];
  if (!Array.isArray(hidden)) throw new ConfigError('hiddenLayers', 'must be a list of widths');
  const hiddenLayers = hidden.map((w, i) => int(`hiddenLayers[${i}]`, w, 1, 65_536));
  const dropout = options.dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
    throw new ConfigError('dropout', `must be in [0, 1), got ${String(dropout)}`);
  }
  const l2 = options.l2 ?? 0;
  if (typeof l2 !== 'number' || !(l2 >= 0) || !Number.isFinite(l2)) {
    throw new ConfigError('l2', `must be a non-negative number, got ${String(l2)}`);
  }
  const loss = options.loss ?? DeepFmLoss.Listwise;
  if (!Object.values<string>(DeepFmLoss).includes(loss)) {
    throw new ConfigError('loss', `must be one of ${Object.values(DeepFmLoss).join(', ')}`);
  }
  const precision = options.precision ?? 'float32';
  if (precision !== 'float32' && precision !== 'float64') {
    throw new ConfigError('precision', "must be 'float32' or 'float64'");
  }
  return {
    embeddingDims: int('embeddingDims', options.embeddingDims ?? 8, 1, 1024),
    hiddenLayers,
    fm: bool('fm', options.fm ?? true),
    mlp: bool('mlp', options.mlp ?? true),
    dropout,
    learningRate: positive('learningRate', options.learningRate ?? 0.002),
    epochs: int('epochs', options.epochs ?? 20, 1),
    batchSize: int('batchSize', options.batchSize ?? 512, 1),
    l2,
    seed: int('seed', options.seed ?? 42, 0, 0xffffffff),
    loss,
    earlyStoppingRounds: int('earlyStoppingRounds', options.earlyStoppingRounds ?? 3, 0),
    ndcgAt: int('ndcgAt', options.ndcgAt ?? 10, 1),
    precision,
  };
}

/** A parameter tensor and its gradient. */
export interface DeepFmParam {
  /** Also the ONNX initializer's name and the artifact file's stem. */
  readonly name: string;
  readonly shape: readonly number[];
  readonly value: Vec;
  readonly grad: Vec;
  /** Excluded from the L2 penalty. */
  readonly isBias: boolean;
  /** Rows of a categorical table: only the rows a batch read have a gradient. */
  readonly sparseRows: boolean;
}

function param(
  Ctor: VecConstructor,
  name: string,
  shape: readonly number[],
  flags: { isBias?: boolean; sparseRows?: boolean } = {},
): DeepFmParam {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    name,
    shape,
    value: new Ctor(size),
    grad: new Ctor(size),
    isBias: flags.isBias ?? false,
    sparseRows: flags.sparseRows ?? false,
  };
}

/** One ReLU layer of the MLP. */
export interface DeepFmLayer {
  readonly inputs: number;
  readonly outputs: number;
  readonly weight: DeepFmParam;
  readonly bias: DeepFmParam;
}

/** Buffers of one forward pass, kept for the backward pass. Grown on demand, reused. */
export class DeepFmWorkspace {
  capacity = 0;
  size = 0;
  /** Concatenated embeddings `[B × F·k]`. */
  x: Vec;
  /** Σ_f e_f per row `[B × k]`. */
  sum: Vec;
  /** Outputs of the hidden layers (after ReLU and dropout), `[B × width]` each. */
  hidden: Vec[];
  logits: Vec;
  /** Gradients scratch. */
  dx: Vec;
  dHidden: Vec[];
  /** Inverted-dropout scale of the last pass (1 when no dropout). */
  dropScale = 1;
  batch: EncodedRows | undefined;

  constructor(private readonly Ctor: VecConstructor) {
    this.x = new Ctor(0);
    this.sum = new Ctor(0);
    this.hidden = [];
    this.logits = new Ctor(0);
    this.dx = new Ctor(0);
    this.dHidden = [];
  }

  ensure(size: number, model: DeepFmModel): void {
    if (size <= this.capacity) return;
    const C = this.Ctor;
    const cap = Math.max(size, this.capacity * 2);
    const width = model.layout.fields * model.dims;
    this.x = new C(cap * width);
    this.dx = new C(cap * width);
    this.sum = new C(cap * model.dims);
    this.hidden = model.layers.map((l) => new C(cap * l.outputs));
    this.dHidden = model.layers.map((l) => new C(cap * l.outputs));
    this.logits = new C(cap);
    this.capacity = cap;
  }
}

export interface DeepFmModelOptions {
  /** @default 'float32' */
  precision?: 'float32' | 'float64';
  /** Seeds the initial weights. @default 42 */
  seed?: number;
}

/** Rows scored per forward pass by {@link DeepFmModel.score}. */
const SCORE_CHUNK = 1024;

export class DeepFmModel {
  /** The columns of a feature row (name, kind, cardinality). */
  readonly schema: FeatureSchema;
  readonly layout: SchemaLayout;
  /** k. */
  readonly dims: number;
  readonly architecture: DeepFmArchitecture;
  /** Standardisation of the numeric fields (fixed from the training data, not trained). */
  readonly mean: DeepFmParam;
  readonly std: DeepFmParam;
  readonly bias: DeepFmParam;
  readonly numericWeight: DeepFmParam;
  readonly missingWeight: DeepFmParam;
  readonly numericEmbedding: DeepFmParam;
  readonly missingEmbedding: DeepFmParam;
  readonly categoricalWeight: DeepFmParam;
  readonly categoricalEmbedding: DeepFmParam;
  readonly layers: readonly DeepFmLayer[];
  /** The MLP's output unit `[last width × 1]`. */
  readonly outWeight: DeepFmParam;
  private readonly Ctor: VecConstructor;
  private scoring: DeepFmWorkspace | undefined;
  private scoringRows: EncodedRows | undefined;

  constructor(
    schema: FeatureSchema,
    architecture: DeepFmArchitecture,
    options: DeepFmModelOptions = {},
  ) {
    this.layout = schemaLayout(schema);
    this.schema = this.layout.schema;
    const Ctor: VecConstructor = options.precision === 'float64' ? Float64Array : Float32Array;
    this.Ctor = Ctor;
    const k = architecture.embeddingDims;
    this.dims = k;
    this.architecture = {
      embeddingDims: k,
      hiddenLayers: [...architecture.hiddenLayers],
      fm: architecture.fm,
      mlp: architecture.mlp,
    };
    const fn = this.layout.numeric.length;
    const rows = this.layout.categoricalRows;
    this.mean = param(Ctor, 'numeric.mean', [fn], { isBias: true });
    this.std = param(Ctor, 'numeric.std', [fn], { isBias: true });
    this.std.value.fill(1);
    this.bias = param(Ctor, 'bias', [1], { isBias: true });
    this.numericWeight = param(Ctor, 'numeric.weight', [fn]);
    this.missingWeight = param(Ctor, 'numeric.missing_weight', [fn]);
    this.numericEmbedding = param(Ctor, 'numeric.embedding', [fn, k]);
    this.missingEmbedding = param(Ctor, 'numeric.missing_embedding', [fn, k]);
    this.categoricalWeight = param(Ctor, 'categorical.weight', [rows], { sparseRows: true });
    this.categoricalEmbedding = param(Ctor, 'categorical.embedding', [rows, k], {
      sparseRows: true,
    });
    const layers: DeepFmLayer[] = [];
    let width = this.layout.fields * k;
    if (architecture.mlp) {
      architecture.hiddenLayers.forEach((outputs, l) => {
        layers.push({
          inputs: width,
          outputs,
          weight: param(Ctor, `mlp.${l}.weight`, [width, outputs]),
          bias: param(Ctor, `mlp.${l}.bias`, [outputs], { isBias: true }),
        });
        width = outputs;
      });
    }
    this.layers = layers;
    this.outWeight = param(Ctor, 'mlp.out.weight', [architecture.mlp ? width : 0, 1]);
    this.init(new Rng(options.seed ?? 42));
  }

  /** The trained parameters (standardisation excluded), in a fixed order. */
  get trainable(): readonly DeepFmParam[] {
    return [
      this.bias,
      this.numericWeight,
      this.missingWeight,
      this.numericEmbedding,
      this.missingEmbedding,
      this.categoricalWeight,
      this.categoricalEmbedding,
      ...this.layers.flatMap((l) => [l.weight, l.bias]),
      this.outWeight,
    ];
  }

  /** Every stored tensor: the standardisation, then {@link trainable}. */
  get parameters(): readonly DeepFmParam[] {
    return [this.mean, this.std, ...this.trainable];
  }

  /**
   * First-order weights and biases start at 0; embeddings N(0, 0.05²) (small, so the FM term
   * starts near 0 but its gradient, which is linear in the other embeddings, does not vanish);
   * He initialisation for the ReLU layers and Glorot for the output unit.
   */
  private init(rng: Rng): void {
    const normal = (p: DeepFmParam, std: number): void => {
      for (let i = 0; i < p.value.length; i++) p.value[i] = rng.normal() * std;
    };
    normal(this.numericEmbedding, 0.05);
    normal(this.missingEmbedding, 0.05);
    normal(this.categoricalEmbedding, 0.05);
    for (const l of this.layers) normal(l.weight, Math.sqrt(2 / l.inputs));
    const last = this.outWeight.shape[0] as number;
    if (last > 0) normal(this.outWeight, Math.sqrt(2 / (last + 1)));
  }

  /** A workspace in this model's precision. */
  workspace(): DeepFmWorkspace {
    return new DeepFmWorkspace(this.Ctor);
  }

  /** Encodes `n` rows of `features` from row `from` with this model's standardisation. */
  encode(features: Float32Array, from: number, n: number, out: EncodedRows): void {
    encodeRows(this.layout, this.mean.value, this.std.value, features, from, n, out);
  }

  /**
   * Logits of the encoded rows `batch` (its first `size` rows) into `ws.logits`. With `dropout`
   * (a share and a random source) the hidden units are dropped as in training.
   */
  forward(
    batch: EncodedRows,
    size: number,
    ws: DeepFmWorkspace,
    dropout?: { readonly rate: number; readonly rng: Rng },
  ): Vec {
    ws.ensure(size, this);
    ws.size = size;
    ws.batch = batch;
    const { layout, dims: k } = this;
    const fn = layout.numeric.length;
    const fc = layout.categorical.length;
    const width = layout.fields * k;
    const { x, sum, logits } = ws;
    const bias = this.bias.value[0] as number;
    const w = this.numericWeight.value;
    const wm = this.missingWeight.value;
    const v = this.numericEmbedding.value;
    const m = this.missingEmbedding.value;
    const t = this.categoricalWeight.value;
    const table = this.categoricalEmbedding.value;
    const { z, missing, rows } = batch;
    for (let b = 0; b < size; b++) {
      let out = bias;
      const xb = b * width;
      for (let j = 0; j < fn; j++) {
        const zv = z[b * fn + j] as number;
        const ms = missing[b * fn + j] as number;
        out += (w[j] as number) * zv + (wm[j] as number) * ms;
        const xo = xb + (layout.numeric[j] as number) * k;
        const vo = j * k;
        if (ms === 0) {
          for (let d = 0; d < k; d++) x[xo + d] = zv * (v[vo + d] as number);
        } else {
          for (let d = 0; d < k; d++) x[xo + d] = m[vo + d] as number;
        }
      }
      for (let j = 0; j < fc; j++) {
        const row = rows[b * fc + j] as number;
        out += t[row] as number;
        const xo = xb + (layout.categorical[j] as number) * k;
        const to = row * k;
        for (let d = 0; d < k; d++) x[xo + d] = table[to + d] as number;
      }
      if (this.architecture.fm) {
        const so = b * k;
        let fm = 0;
        for (let d = 0; d < k; d++) {
          let s = 0;
          let sq = 0;
          for (let f = 0; f < layout.fields; f++) {
            const e = x[xb + f * k + d] as number;
            s += e;
            sq += e * e;
          }
          sum[so + d] = s;
          fm += s * s - sq;
        }
        out += 0.5 * fm;
      }
      logits[b] = out;
    }
    if (this.architecture.mlp) {
      const rate = dropout?.rate ?? 0;
      const scale = rate > 0 ? 1 / (1 - rate) : 1;
      ws.dropScale = scale;
      let input: Vec = x;
      this.layers.forEach((layer, l) => {
        const h = ws.hidden[l] as Vec;
        gemm(input, layer.weight.value, h, size, layer.inputs, layer.outputs, layer.bias.value);
        const n = size * layer.outputs;
        if (rate > 0 && dropout !== undefined) {
          for (let i = 0; i < n; i++) {
            const a = h[i] as number;
            h[i] = a > 0 && dropout.rng.next() >= rate ? a * scale : 0;
          }
        } else {
          for (let i = 0; i < n; i++) if ((h[i] as number) < 0) h[i] = 0;
        }
        input = h;
      });
      const last = this.outWeight.shape[0] as number;
      const wo = this.outWeight.value;
      for (let b = 0; b < size; b++) {
        let s = 0;
        const o = b * last;
        for (let j = 0; j < last; j++) s += (input[o + j] as number) * (wo[j] as number);
        logits[b] = (logits[b] as number) + s;
      }
    }
    return logits;
  }

  /**
   * Adds to every parameter's gradient the gradient of a loss whose derivative with respect to
   * the logits of the last {@link forward} in `ws` is `dLogits`.
   */
  backward(ws: DeepFmWorkspace, dLogits: Vec): void {
    const batch = ws.batch;
    if (batch === undefined) throw new Error('backward needs a forward pass first');
    const { layout, dims: k } = this;
    const size = ws.size;
    const fn = layout.numeric.length;
    const fc = layout.categorical.length;
    const width = layout.fields * k;
    const { x, dx, sum } = ws;
    const { z, missing, rows } = batch;

    let gBias = 0;
    for (let b = 0; b < size; b++) gBias += dLogits[b] as number;
    this.bias.grad[0] = (this.bias.grad[0] as number) + gBias;

    // dL/dx: from the MLP (or zeros), then the FM term's ∂/∂e_fd = Σ_f' e_f'd − e_fd.
    if (this.architecture.mlp) {
      this.mlpBackward(ws, dLogits);
    } else {
      dx.fill(0, 0, size * width);
    }
    if (this.architecture.fm) {
      for (let b = 0; b < size; b++) {
        const g = dLogits[b] as number;
        if (g === 0) continue;
        const xb = b * width;
        const so = b * k;
        for (let f = 0; f < layout.fields; f++) {
          const o = xb + f * k;
          for (let d = 0; d < k; d++) {
            dx[o + d] =
              (dx[o + d] as number) + g * ((sum[so + d] as number) - (x[o + d] as number));
          }
        }
      }
    }

    const gw = this.numericWeight.grad;
    const gwm = this.missingWeight.grad;
    const gv = this.numericEmbedding.grad;
    const gm = this.missingEmbedding.grad;
    const gt = this.categoricalWeight.grad;
    const gtable = this.categoricalEmbedding.grad;
    for (let b = 0; b < size; b++) {
      const g = dLogits[b] as number;
      const xb = b * width;
      for (let j = 0; j < fn; j++) {
        const zv = z[b * fn + j] as number;
        const xo = xb + (layout.numeric[j] as number) * k;
        const vo = j * k;
        if ((missing[b * fn + j] as number) === 0) {
          gw[j] = (gw[j] as number) + g * zv;
          for (let d = 0; d < k; d++)
            gv[vo + d] = (gv[vo + d] as number) + zv * (dx[xo + d] as number);
        } else {
          gwm[j] = (gwm[j] as number) + g;
          for (let d = 0; d < k; d++) gm[vo + d] = (gm[vo + d] as number) + (dx[xo + d] as number);
        }
      }
      for (let j = 0; j < fc; j++) {
        const row = rows[b * fc + j] as number;
        gt[row] = (gt[row] as number) + g;
        const xo = xb + (layout.categorical[j] as number) * k;
        const to = row * k;
        for (let d = 0; d < k; d++) {
          gtable[to + d] = (gtable[to + d] as number) + (dx[xo + d] as number);
        }
      }
    }
  }

  /** The MLP's share of the backward pass; leaves dL/dx in `ws.dx`. */
  private mlpBackward(ws: DeepFmWorkspace, dLogits: Vec): void {
    const size = ws.size;
    const layers = this.layers;
    const last = this.outWeight.shape[0] as number;
    const top: Vec = layers.length > 0 ? (ws.hidden[layers.length - 1] as Vec) : ws.x;
    const wo = this.outWeight.value;
    const gwo = this.outWeight.grad;
    let dTop: Vec = layers.length > 0 ? (ws.dHidden[layers.length - 1] as Vec) : ws.dx;
    for (let b = 0; b < size; b++) {
      const g = dLogits[b] as number;
      const o = b * last;
      for (let j = 0; j < last; j++) {
        gwo[j] = (gwo[j] as number) + g * (top[o + j] as number);
        dTop[o + j] = g * (wo[j] as number);
      }
    }
    const scale = ws.dropScale;
    for (let l = layers.length - 1; l >= 0; l--) {
      const layer = layers[l] as DeepFmLayer;
      const h = ws.hidden[l] as Vec;
      const n = size * layer.outputs;
      // Through ReLU and dropout: h > 0 exactly where the unit was active and kept.
      for (let i = 0; i < n; i++) dTop[i] = (h[i] as number) > 0 ? (dTop[i] as number) * scale : 0;
      const input: Vec = l > 0 ? (ws.hidden[l - 1] as Vec) : ws.x;
      gemmAtAdd(input, dTop, layer.weight.grad, size, layer.inputs, layer.outputs);
      addColumnSums(dTop, layer.bias.grad, size, layer.outputs);
      const dInput: Vec = l > 0 ? (ws.dHidden[l - 1] as Vec) : ws.dx;
      gemmBt(dTop, layer.weight.value, dInput, size, layer.outputs, layer.inputs);
      dTop = dInput;
    }
  }

  /** Sets every gradient to zero. */
  zeroGrad(): void {
    for (const p of this.trainable) p.grad.fill(0);
  }

  /**
   * Logits of rows of features (`n × F` values, schema order): the serving path in TypeScript.
   * A length that is not a multiple of F throws a `BadRequestError` naming `features`.
   */
  score(features: Float32Array): Float32Array {
    const n = rowCount(features, this.layout.fields);
    const out = new Float32Array(n);
    this.scoring ??= this.workspace();
    this.scoringRows ??= allocateEncoded(this.layout, SCORE_CHUNK);
    for (let from = 0; from < n; from += SCORE_CHUNK) {
      const size = Math.min(SCORE_CHUNK, n - from);
      this.encode(features, from, size, this.scoringRows);
      const logits = this.forward(this.scoringRows, size, this.scoring);
      for (let b = 0; b < size; b++) out[from + b] = logits[b] as number;
    }
    return out;
  }

  /** Copies of every stored tensor's values, by name (to keep the best epoch). */
  snapshot(): Map<string, Vec> {
    return new Map(this.parameters.map((p) => [p.name, p.value.slice()]));
  }

  /** Restores values taken by {@link snapshot}. */
  restore(snapshot: ReadonlyMap<string, Vec>): void {
    for (const p of this.parameters) {
      const saved = snapshot.get(p.name);
      if (saved !== undefined) p.value.set(saved);
    }
  }
}
