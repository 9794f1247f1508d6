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
import { OnnxGraphBuilder, intAttr, valueInfo } from '../common/onnx-graph.js';
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

function param(g: OnnxGraphBuilder, p: DeepFmParam): string {
  return g.floatTensor(p.name, p.value, p.shape);
}

/** Serialises `model` to ONNX; `metadata` goes into the model's metadata properties. */
export function exportDeepFm(
  model: DeepFmModel,
  metadata: Record<string, string> = {},
): Uint8Array {
  const { layout, architecture } = model;
  const fn = layout.numeric.length;
  const fc = layout.categorical.length;
  const g = new OnnxGraphBuilder();
  // Constants are added on first use: onnxruntime warns about unused initializers.
  const constants = new Map<string, string>();
  const axis = (a: number): string => {
    const name = `const.axis${a}`;
    if (!constants.has(name)) constants.set(name, g.int64Tensor(name, [a], [1]));
    return name;
  };
  const reduce = (x: string, keep: 0 | 1): string =>
    g.node('ReduceSum', [x, axis(1)], [intAttr('keepdims', keep)]);

  // Without the FM and the MLP the embeddings are not read: leave them out of the graph.
  const embeddings = architecture.fm || architecture.mlp;
  const blocks: string[] = [];
  const firstOrder: string[] = [param(g, model.bias)];
  if (fn > 0) {
    const x = g.node(
      'Gather',
      [DEEPFM_INPUT, g.int64Tensor('numeric.columns', layout.numeric, [fn])],
      [intAttr('axis', 1)],
    );
    const nan = g.node('IsNaN', [x]);
    const standardised = g.node('Div', [
      g.node('Sub', [x, param(g, model.mean)]),
      param(g, model.std),
    ]);
    const z = g.node('Where', [nan, g.floatTensor('const.zero', [0], []), standardised]);
    const missing = g.node('Cast', [nan], [intAttr('to', onnx.TensorProto.DataType.FLOAT)]);
    if (embeddings) {
      blocks.push(
        g.node('Add', [
          g.node('Mul', [g.node('Unsqueeze', [z, axis(2)]), param(g, model.numericEmbedding)]),
          g.node('Mul', [
            g.node('Unsqueeze', [missing, axis(2)]),
            param(g, model.missingEmbedding),
          ]),
        ]),
      );
    }
    const w = g.floatTensor(model.numericWeight.name, model.numericWeight.value, [fn, 1]);
    const wm = g.floatTensor(model.missingWeight.name, model.missingWeight.value, [fn, 1]);
    firstOrder.push(g.node('MatMul', [z, w]), g.node('MatMul', [missing, wm]));
  }
  if (fc > 0) {
    const x = g.node(
      'Gather',
      [DEEPFM_INPUT, g.int64Tensor('categorical.columns', layout.categorical, [fc])],
      [intAttr('axis', 1)],
    );
    const known = g.node('And', [
      g.node('And', [
        g.node('Equal', [x, g.node('Floor', [x])]),
        g.node('GreaterOrEqual', [x, g.floatTensor('const.zero_id', [0], [])]),
      ]),
      g.node('Less', [x, g.floatTensor('categorical.cardinality', layout.cardinality, [fc])]),
    ]);
    const unknownRow = Array.from(layout.offset, (o, j) => o + (layout.cardinality[j] as number));
    const row = g.node('Where', [
      known,
      g.node('Add', [x, g.floatTensor('categorical.offset', layout.offset, [fc])]),
      g.floatTensor('categorical.unknown_row', unknownRow, [fc]),
    ]);
    const index = g.node('Cast', [row], [intAttr('to', onnx.TensorProto.DataType.INT64)]);
    if (embeddings) {
      blocks.push(
        g.node('Gather', [param(g, model.categoricalEmbedding), index], [intAttr('axis', 0)]),
      );
    }
    const weights = g.node(
      'Gather',
      [param(g, model.categoricalWeight), index],
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
        [e, g.int64Tensor('fields.order', position, [order.length])],
        [intAttr('axis', 1)],
      );
    }
    if (architecture.fm) {
      const sum = reduce(e, 0);
      const squares = reduce(g.node('Mul', [e, e]), 0);
      const pairs = reduce(g.node('Sub', [g.node('Mul', [sum, sum]), squares]), 1);
      parts.push(g.node('Mul', [pairs, g.floatTensor('const.half', [0.5], [])]));
    }
    if (architecture.mlp) {
      let h = g.node('Flatten', [e], [intAttr('axis', 1)]);
      for (const layer of model.layers) {
        h = g.node('Relu', [g.node('Gemm', [h, param(g, layer.weight), param(g, layer.bias)])]);
      }
      parts.push(g.node('MatMul', [h, param(g, model.outWeight)]));
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
