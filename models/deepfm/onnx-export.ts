/**
 * Writes a DeepFM ranker as one ONNX graph (opset 13, standard operators only) with onnx-proto:
 * input `features` float32 [batch, F] in schema order, output `score` float32 [batch, 1], the
 * logit. The graph is the forward pass of `model.ts`, op for op:
 *
 *   numeric:      Gather the numeric columns; Where(IsNaN(x), 0, (x − mean) / std);
 *                 e = Unsqueeze(z)·V + Unsqueeze(Cast(IsNaN(x)))·M; first order by MatMul
 *   categorical:  Gather the categorical columns; known = (x = Floor(x)) ∧ x ≥ 0 ∧ x < cardinality
 *                 (NaN fails all three); row = Where(known, x + offset, unknown row), Cast to int64;
 *                 Gather the shared embedding and first-order tables
 *   both:         Concat and Gather back into schema order → E [batch, F, k]
 *   FM:           ½ ReduceSum((ReduceSum_f E)² − ReduceSum_f E²)
 *   MLP:          Flatten(E) → (Gemm → Relu)* → MatMul
 *   score:        bias + first order + FM + MLP
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { TensorSignature } from '../retrieval/index.js';
import type { DeepFmModel, DeepFmParam } from './model.js';
import type { FeatureSchema } from './schema.js';

const { onnx } = onnxProto;

/** The opset the graph uses (ReduceSum takes its axes as an input from 13 on). */
export const DEEPFM_ONNX_OPSET = 13;
const IR_VERSION = 7;

export const DEEPFM_ONNX_FILE = 'deepfm.onnx';
export const DEEPFM_INPUT = 'features';
export const DEEPFM_OUTPUT = 'score';

/** The graph's inputs and outputs, as the manifest records them. */
export interface DeepFmSignature {
  readonly file: string;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
}

export function deepFmSignature(schema: FeatureSchema): DeepFmSignature {
  return {
    file: DEEPFM_ONNX_FILE,
    inputs: [
      {
        name: DEEPFM_INPUT,
        dtype: 'float32',
        shape: ['batch', schema.length],
        description: `One row per candidate, columns in schema order (${schema.map((f) => f.name).join(', ')}). Numeric: NaN when missing. Categorical: the id as a float; NaN, negative, fractional or ≥ cardinality reads the unknown row.`,
      },
    ],
    outputs: [
      {
        name: DEEPFM_OUTPUT,
        dtype: 'float32',
        shape: ['batch', 1],
        description:
          'The ranking logit (higher ranks first); σ(score) is a click probability for a pointwise-trained model.',
      },
    ],
  };
}

/** Builds the nodes and initializers of a graph, naming intermediate values uniquely. */
class Graph {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];
  private counter = 0;

  float(name: string, values: ArrayLike<number>, dims: readonly number[]): string {
    const data = Float32Array.from(values);
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  int64(name: string, values: ArrayLike<number>, dims: readonly number[]): string {
    const data = BigInt64Array.from(Array.from(values), (v) => BigInt(v));
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  param(p: DeepFmParam): string {
    return this.float(p.name, p.value, p.shape);
  }

  node(
    opType: string,
    inputs: readonly string[],
    attributes: OnnxTypes.IAttributeProto[] = [],
    output?: string,
  ): string {
    const out = output ?? `${opType.toLowerCase()}_${this.counter++}`;
    this.nodes.push({
      opType,
      name: `${opType}_${this.nodes.length}`,
      input: [...inputs],
      output: [out],
      attribute: attributes,
    });
    return out;
  }
}

function intAttr(name: string, i: number): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

function valueInfo(sig: TensorSignature): OnnxTypes.IValueInfoProto {
  return {
    name: sig.name,
    docString: sig.description,
    type: {
      tensorType: {
        elemType:
          sig.dtype === 'int64' ? onnx.TensorProto.DataType.INT64 : onnx.TensorProto.DataType.FLOAT,
        shape: {
          dim: sig.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

/** Serialises `model` to ONNX; `metadata` goes into the model's metadata properties. */
export function exportDeepFm(
  model: DeepFmModel,
  metadata: Record<string, string> = {},
): Uint8Array {
  const { layout, architecture } = model;
  const fn = layout.numeric.length;
  const fc = layout.categorical.length;
  const g = new Graph();
  // Constants are added on first use: onnxruntime warns about unused initializers.
  const constants = new Map<string, string>();
  const axis = (a: number): string => {
    const name = `const.axis${a}`;
    if (!constants.has(name)) constants.set(name, g.int64(name, [a], [1]));
    return name;
  };
  const reduce = (x: string, keep: 0 | 1): string =>
    g.node('ReduceSum', [x, axis(1)], [intAttr('keepdims', keep)]);

  // Without the FM and the MLP the embeddings are not read: leave them out of the graph.
  const embeddings = architecture.fm || architecture.mlp;
  const blocks: string[] = [];
  const firstOrder: string[] = [g.param(model.bias)];
  if (fn > 0) {
    const x = g.node(
      'Gather',
      [DEEPFM_INPUT, g.int64('numeric.columns', layout.numeric, [fn])],
      [intAttr('axis', 1)],
    );
    const nan = g.node('IsNaN', [x]);
    const standardised = g.node('Div', [
      g.node('Sub', [x, g.param(model.mean)]),
      g.param(model.std),
    ]);
    const z = g.node('Where', [nan, g.float('const.zero', [0], []), standardised]);
    const missing = g.node('Cast', [nan], [intAttr('to', onnx.TensorProto.DataType.FLOAT)]);
    if (embeddings) {
      blocks.push(
        g.node('Add', [
          g.node('Mul', [g.node('Unsqueeze', [z, axis(2)]), g.param(model.numericEmbedding)]),
          g.node('Mul', [g.node('Unsqueeze', [missing, axis(2)]), g.param(model.missingEmbedding)]),
        ]),
      );
    }
    const w = g.float(model.numericWeight.name, model.numericWeight.value, [fn, 1]);
    const wm = g.float(model.missingWeight.name, model.missingWeight.value, [fn, 1]);
    firstOrder.push(g.node('MatMul', [z, w]), g.node('MatMul', [missing, wm]));
  }
  if (fc > 0) {
    const x = g.node(
      'Gather',
      [DEEPFM_INPUT, g.int64('categorical.columns', layout.categorical, [fc])],
      [intAttr('axis', 1)],
    );
    const known = g.node('And', [
      g.node('And', [
        g.node('Equal', [x, g.node('Floor', [x])]),
        g.node('GreaterOrEqual', [x, g.float('const.zero_id', [0], [])]),
      ]),
      g.node('Less', [x, g.float('categorical.cardinality', layout.cardinality, [fc])]),
    ]);
    const unknownRow = Array.from(layout.offset, (o, j) => o + (layout.cardinality[j] as number));
    const row = g.node('Where', [
      known,
      g.node('Add', [x, g.float('categorical.offset', layout.offset, [fc])]),
      g.float('categorical.unknown_row', unknownRow, [fc]),
    ]);
    const index = g.node('Cast', [row], [intAttr('to', onnx.TensorProto.DataType.INT64)]);
    if (embeddings) {
      blocks.push(
        g.node('Gather', [g.param(model.categoricalEmbedding), index], [intAttr('axis', 0)]),
      );
    }
    const weights = g.node(
      'Gather',
      [g.param(model.categoricalWeight), index],
      [intAttr('axis', 0)],
    );
    firstOrder.push(reduce(weights, 1));
  }

  const parts = [...firstOrder];
  if (embeddings) {
    let e =
      blocks.length === 1 ? (blocks[0] as string) : g.node('Concat', blocks, [intAttr('axis', 1)]);
    // Concat put the numeric fields first; the MLP reads the fields in schema order.
    const order = [...layout.numeric, ...layout.categorical];
    if (order.some((f, i) => f !== i)) {
      const position = new Array<number>(order.length);
      order.forEach((f, i) => (position[f] = i));
      e = g.node(
        'Gather',
        [e, g.int64('fields.order', position, [order.length])],
        [intAttr('axis', 1)],
      );
    }
    if (architecture.fm) {
      const sum = reduce(e, 0);
      const squares = reduce(g.node('Mul', [e, e]), 0);
      const pairs = reduce(g.node('Sub', [g.node('Mul', [sum, sum]), squares]), 1);
      parts.push(g.node('Mul', [pairs, g.float('const.half', [0.5], [])]));
    }
    if (architecture.mlp) {
      let h = g.node('Flatten', [e], [intAttr('axis', 1)]);
      for (const layer of model.layers) {
        h = g.node('Relu', [g.node('Gemm', [h, g.param(layer.weight), g.param(layer.bias)])]);
      }
      parts.push(g.node('MatMul', [h, g.param(model.outWeight)]));
    }
  }
  let score = parts[0] as string;
  parts.slice(1).forEach((part, i) => {
    score = g.node('Add', [score, part], [], i === parts.length - 2 ? DEEPFM_OUTPUT : undefined);
  });

  const signature = deepFmSignature(model.schema);
  const proto: OnnxTypes.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: DEEPFM_ONNX_OPSET }],
    producerName: 'recsys',
    producerVersion: '1',
    docString: 'DeepFM ranker: logit = bias + first order + FM + MLP over shared field embeddings.',
    graph: {
      name: 'deepfm',
      node: g.nodes,
      initializer: g.initializers,
      input: signature.inputs.map(valueInfo),
      output: signature.outputs.map(valueInfo),
    },
    metadataProps: Object.entries({
      'recsys.schema': JSON.stringify(model.schema),
      ...metadata,
    }).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(proto).finish();
}
