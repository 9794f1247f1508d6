/**
 * Scores batches of rows with a tree ensemble, on whichever path is faster for the batch: the
 * TypeScript evaluator for small batches (no call overhead, nothing allocated), onnxruntime-node
 * for large ones (native tree walks, optionally on several intra-op threads). Both decide every
 * float32 input the same way; their scores differ by onnxruntime's float32 sum (about 1e-6).
 *
 * onnxruntime-node is loaded by this module: use it on one thread of the process (the main
 * thread). The native addon has crashed processes when loaded in several worker threads; for
 * parallelism use `intraOpThreads`.
 */
import * as ort from 'onnxruntime-node';
import { BadRequestError, ConfigError, UnavailableError } from '../../runtime/errors.js';
import type { GbdtModel } from './model.js';
import { GBDT_ONNX_INPUT, GBDT_ONNX_OUTPUT, exportGbdtOnnx } from './onnx-export.js';
import { compileGbdt, OutputTransform, predict, predictRaw, transformScore } from './predict.js';
import type { CompiledGbdt } from './predict.js';

/**
 * The batch size from which onnxruntime beats the TypeScript evaluator: measured with
 * `npm run bench -- gbdt-serve` (300 trees of 31 leaves, 40 features, 2 shared cores), where
 * onnxruntime on one thread was ahead at the median from 2 rows (by 5 %) and clearly from 3 (by
 * 16 %), and the TypeScript walk kept the lower p99 up to 3 rows: one row costs about 15 µs
 * on either path (18 µs on onnxruntime), each further row about 13 µs in TypeScript and 6-8 µs on
 * onnxruntime.
 */
export const DEFAULT_ONNX_MIN_ROWS = 3;

/** What a scorer returns. */
export const GbdtOutput = {
  /** The sum of the trees (what ranking needs: the order is the same). */
  Raw: 'raw',
  /** LightGBM's prediction: averaged in random forest mode, through the objective's transform. */
  Prediction: 'prediction',
} as const;
export type GbdtOutput = (typeof GbdtOutput)[keyof typeof GbdtOutput];

/** Which evaluator scores a batch. */
export const GbdtPath = {
  TypeScript: 'typescript',
  Onnx: 'onnx',
} as const;
export type GbdtPath = (typeof GbdtPath)[keyof typeof GbdtPath];

export interface GbdtScorerOptions {
  /**
   * Batches of at least this many rows run on onnxruntime, smaller ones on the TypeScript
   * evaluator. `Infinity` never loads onnxruntime; 1 sends every batch to it.
   * @default DEFAULT_ONNX_MIN_ROWS (3)
   */
  readonly onnxMinRows?: number;
  /** onnxruntime's intra-op threads. @default 1 */
  readonly intraOpThreads?: number;
  /**
   * Values per row; columns past the model's features are ignored.
   * @default the model's `maxFeatureIdx + 1`
   */
  readonly width?: number;
  /** @default 'raw' */
  readonly output?: GbdtOutput;
}

export interface ResolvedGbdtScorerOptions {
  readonly onnxMinRows: number;
  readonly intraOpThreads: number;
  readonly width: number;
  readonly output: GbdtOutput;
}

/**
 * The serving options every scorer shares (which path a batch takes, onnxruntime's threads), with
 * their defaults; throws `ConfigError` naming a bad one.
 */
export function resolveServingOptions(
  options: Pick<GbdtScorerOptions, 'onnxMinRows' | 'intraOpThreads'> = {},
): { onnxMinRows: number; intraOpThreads: number } {
  const onnxMinRows = options.onnxMinRows ?? DEFAULT_ONNX_MIN_ROWS;
  if (!(onnxMinRows === Infinity || (Number.isInteger(onnxMinRows) && onnxMinRows >= 1))) {
    throw new ConfigError('onnxMinRows', 'must be a positive integer or Infinity');
  }
  const intraOpThreads = options.intraOpThreads ?? 1;
  if (!Number.isInteger(intraOpThreads) || intraOpThreads < 1 || intraOpThreads > 64) {
    throw new ConfigError('intraOpThreads', 'must be an integer from 1 to 64');
  }
  return { onnxMinRows, intraOpThreads };
}

/** Applies defaults and checks the options against the model; throws `ConfigError`. */
export function resolveGbdtScorerOptions(
  model: GbdtModel,
  options: GbdtScorerOptions = {},
): ResolvedGbdtScorerOptions {
  const { onnxMinRows, intraOpThreads } = resolveServingOptions(options);
  const features = model.maxFeatureIdx + 1;
  const width = options.width ?? features;
  if (!Number.isInteger(width) || width < features) {
    throw new ConfigError(
      'width',
      `must be an integer of at least ${features} (the model's features)`,
    );
  }
  const output = options.output ?? GbdtOutput.Raw;
  if (output !== GbdtOutput.Raw && output !== GbdtOutput.Prediction) {
    throw new ConfigError('output', `must be 'raw' or 'prediction', got ${String(output)}`);
  }
  return { onnxMinRows, intraOpThreads, width, output };
}

/** Scores batches of float32 rows with one model. Create with {@link GbdtScorer.create}. */
export class GbdtScorer {
  private closed = false;

  private constructor(
    readonly options: ResolvedGbdtScorerOptions,
    private readonly compiled: CompiledGbdt,
    private readonly session: ort.InferenceSession | undefined,
  ) {}

  /** Compiles the model and, unless `onnxMinRows` is Infinity, loads it into onnxruntime. */
  static async create(model: GbdtModel, options: GbdtScorerOptions = {}): Promise<GbdtScorer> {
    const resolved = resolveGbdtScorerOptions(model, options);
    const compiled = compileGbdt(model);
    let session: ort.InferenceSession | undefined;
    if (resolved.onnxMinRows !== Infinity) {
      session = await ort.InferenceSession.create(
        exportGbdtOnnx(model, { width: resolved.width }),
        {
          intraOpNumThreads: resolved.intraOpThreads,
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: 'all',
        },
      );
    }
    return new GbdtScorer(resolved, compiled, session);
  }

  /** Values per row. */
  get width(): number {
    return this.options.width;
  }

  /** The evaluator a batch of `rows` rows goes to. */
  pathFor(rows: number): GbdtPath {
    return this.session !== undefined && rows >= this.options.onnxMinRows
      ? GbdtPath.Onnx
      : GbdtPath.TypeScript;
  }

  /**
   * Scores `rows` (row-major float32, `n × width`): raw scores, or LightGBM's predictions when the
   * scorer was made with `output: 'prediction'`.
   *
   * @param out where the scores go (at least `n` long); allocated when omitted
   */
  async score(rows: Float32Array, out?: Float64Array): Promise<Float64Array> {
    if (this.closed) throw new UnavailableError('the GBDT scorer is closed');
    if (!(rows instanceof Float32Array)) {
      throw new BadRequestError('rows', 'must be a Float32Array');
    }
    const width = this.options.width;
    if (rows.length % width !== 0) {
      throw new BadRequestError(
        'rows',
        `length ${rows.length} is not a multiple of width ${width}`,
      );
    }
    const n = rows.length / width;
    if (out !== undefined && out.length < n) {
      throw new BadRequestError(
        'out',
        `has room for ${out.length} scores, the batch has ${n} rows`,
      );
    }
    const result = out ?? new Float64Array(n);
    const prediction = this.options.output === GbdtOutput.Prediction;
    if (this.pathFor(n) === GbdtPath.TypeScript || this.session === undefined) {
      return prediction
        ? predict(this.compiled, rows, width, result)
        : predictRaw(this.compiled, rows, width, result);
    }
    const outputs = await this.session.run({
      [GBDT_ONNX_INPUT]: new ort.Tensor('float32', rows, [n, width]),
    });
    const scores = outputs[GBDT_ONNX_OUTPUT]?.data;
    if (!(scores instanceof Float32Array) || scores.length !== n) {
      throw new TypeError(`onnxruntime returned no float32 ${GBDT_ONNX_OUTPUT} of ${n} scores`);
    }
    const c = this.compiled;
    const divisor = prediction && c.averageOutput ? c.numTrees : 1;
    const transform = prediction && c.output.transform !== OutputTransform.Identity;
    for (let i = 0; i < n; i++) {
      const raw = (scores[i] as number) / divisor;
      result[i] = transform ? transformScore(c.output, raw) : raw;
    }
    return result;
  }

  /** Releases the onnxruntime session; later calls to `score` reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session?.release();
  }
}
