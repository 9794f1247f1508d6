/**
 * The DeepFM graph on onnxruntime-node, and the export check: onnxruntime's scores against the
 * TypeScript forward pass on sample rows plus rows made to hit every special case (all missing,
 * unknown categories of each kind).
 *
 * Load onnxruntime-node on the main thread only: the native addon has crashed processes when
 * loaded in several worker threads at once.
 */
import * as ort from 'onnxruntime-node';
import type { DeepFmModel } from './model.js';
import { DEEPFM_INPUT, DEEPFM_OUTPUT } from './onnx-export.js';
import { rowCount } from './schema.js';

export interface OnnxDeepFmOptions {
  /** Threads of one scoring call (onnxruntime's intra-op threads). @default 1 */
  intraOpNumThreads?: number;
}

/** A DeepFM graph loaded in onnxruntime. */
export class OnnxDeepFm {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** F, the width of a feature row. */
    readonly fields: number,
  ) {}

  /**
   * @param model path of `deepfm.onnx`, or its bytes
   * @param fields F, the width of a feature row (the manifest's schema length)
   */
  static async load(
    model: string | Uint8Array,
    fields: number,
    options: OnnxDeepFmOptions = {},
  ): Promise<OnnxDeepFm> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: options.intraOpNumThreads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    };
    const session =
      typeof model === 'string'
        ? await ort.InferenceSession.create(model, sessionOptions)
        : await ort.InferenceSession.create(model, sessionOptions);
    return new OnnxDeepFm(session, fields);
  }

  /**
   * Logits of rows of features (`n × F` values, schema order). A length that is not a multiple of
   * F rejects with a `BadRequestError` naming `features`.
   */
  async score(features: Float32Array): Promise<Float32Array> {
    const n = rowCount(features, this.fields);
    const results = await this.session.run({
      [DEEPFM_INPUT]: new ort.Tensor('float32', features, [n, this.fields]),
    });
    const out = results[DEEPFM_OUTPUT];
    if (out === undefined || !(out.data instanceof Float32Array)) {
      throw new TypeError(`the DeepFM graph returned no float32 output ${DEEPFM_OUTPUT}`);
    }
    return out.data;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** Outcome of comparing onnxruntime's scores with the TypeScript model. */
export interface DeepFmExportCheck {
  readonly passed: boolean;
  readonly tolerance: number;
  readonly rows: number;
  readonly maxAbsDiff: number;
}

/**
 * Rows that reach every special case of the input contract, for a schema of `layout.fields`
 * columns: everything missing or unknown (NaN), then for categorical fields −1, the cardinality,
 * a fractional id and +∞, each in a copy of `base` (one row of F values).
 */
export function edgeCaseRows(model: DeepFmModel, base: Float32Array): Float32Array {
  const { fields, categorical, cardinality } = model.layout;
  const rows: number[][] = [new Array<number>(fields).fill(NaN)];
  categorical.forEach((f, j) => {
    for (const id of [-1, cardinality[j] as number, 0.5, Infinity]) {
      const row = Array.from(base.subarray(0, fields));
      row[f] = id;
      rows.push(row);
    }
  });
  return Float32Array.from(rows.flat());
}

/**
 * Runs the exported graph on onnxruntime over `features` plus {@link edgeCaseRows} and compares
 * the scores with `model.score`.
 */
export async function checkDeepFmExport(input: {
  readonly model: DeepFmModel;
  readonly onnx: Uint8Array;
  /** Sample rows (`n × F`); at least one. */
  readonly features: Float32Array;
  /** @default 1e-5 */
  readonly tolerance?: number;
}): Promise<DeepFmExportCheck> {
  const tolerance = input.tolerance ?? 1e-5;
  const { model } = input;
  const fields = model.layout.fields;
  rowCount(input.features, fields);
  const edges = edgeCaseRows(model, input.features.subarray(0, fields));
  const rows = new Float32Array(input.features.length + edges.length);
  rows.set(input.features);
  rows.set(edges, input.features.length);
  const session = await OnnxDeepFm.load(input.onnx, fields);
  try {
    const onnxScores = await session.score(rows);
    const tsScores = model.score(rows);
    let max = 0;
    for (let i = 0; i < tsScores.length; i++) {
      const d = Math.abs((onnxScores[i] as number) - (tsScores[i] as number));
      if (!(d <= max)) max = d;
    }
    if (onnxScores.length !== tsScores.length) max = Infinity;
    return {
      passed: max <= tolerance,
      tolerance,
      rows: rows.length / fields,
      maxAbsDiff: max,
    };
  } finally {
    await session.close();
  }
}
