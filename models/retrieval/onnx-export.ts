/**
 * Writes the towers as ONNX graphs (opset 13) with onnx-proto, and checks them against the
 * TypeScript model with onnxruntime-node.
 *
 * Each tower becomes: Gather per lookup (a negative index reads the reserved last row, so -1 is
 * "unknown"); for a list, Mul by the mask, ReduceSum, and Div by Max(Σ mask, 1); Concat; Gemm →
 * Relu → Gemm; then Div by Max(ReduceL2, 1e-12). The signatures are in `signatures.ts`.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { OnnxGraphBuilder, intAttr, intsAttr, valueInfo } from '../common/onnx-graph.js';
import type { TwoTowerModel } from './model.js';
import { itemTowerSignature, userTowerSignature } from './signatures.js';
import type { TowerSignature } from './signatures.js';
import type { Tower } from './tower.js';
import { NORM_EPSILON } from './tower.js';

const { onnx } = onnxProto;

/** The opset the graphs use (ReduceSum and Unsqueeze take axes as inputs from 13 on). */
export const ONNX_OPSET = 13;
const IR_VERSION = 7;

/** Where a tower feature's indices come from in the graph's inputs. */
type Source =
  | { readonly kind: 'single'; readonly input: string }
  | { readonly kind: 'column'; readonly input: string; readonly column: number }
  | { readonly kind: 'pooled'; readonly input: string; readonly mask: string };

const USER_SOURCES: readonly Source[] = [
  { kind: 'single', input: 'user_index' },
  { kind: 'column', input: 'profile', column: 0 },
  { kind: 'column', input: 'profile', column: 1 },
  { kind: 'column', input: 'profile', column: 2 },
  { kind: 'pooled', input: 'history', mask: 'history_mask' },
];

const ITEM_SOURCES: readonly Source[] = [
  { kind: 'single', input: 'item_index' },
  { kind: 'single', input: 'category' },
  { kind: 'pooled', input: 'tags', mask: 'tags_mask' },
  { kind: 'single', input: 'age_bucket' },
  { kind: 'single', input: 'popularity_bucket' },
];

export interface ExportedTowers {
  readonly userTower: Uint8Array;
  readonly itemTower: Uint8Array;
  readonly userSignature: TowerSignature;
  readonly itemSignature: TowerSignature;
}

/** Serialises both towers of `model` to ONNX. */
export function exportTowers(
  model: TwoTowerModel,
  metadata: Record<string, string> = {},
): ExportedTowers {
  const userSignature = userTowerSignature(model.shape);
  const itemSignature = itemTowerSignature(model.shape);
  return {
    userTower: towerModel(model.user, userSignature, USER_SOURCES, metadata),
    itemTower: towerModel(model.item, itemSignature, ITEM_SOURCES, metadata),
    userSignature,
    itemSignature,
  };
}

function towerModel(
  tower: Tower,
  signature: TowerSignature,
  sources: readonly Source[],
  metadata: Record<string, string>,
): Uint8Array {
  const g = new OnnxGraphBuilder();
  const one = g.floatTensor('const.one', [1], []);
  const epsilon = g.floatTensor('const.norm_epsilon', [NORM_EPSILON], []);
  const axis1 = g.int64Tensor('const.axis1', [1], [1]);
  const axis2 = g.int64Tensor('const.axis2', [2], [1]);
  const parts: string[] = [];
  tower.features.forEach((feature, f) => {
    const table = tower.tables[f];
    const source = sources[f];
    if (table === undefined || source === undefined)
      throw new Error(`no source for ${feature.name}`);
    const weights = g.floatTensor(table.name, table.weights, [table.rows, table.dims]);
    if (source.kind === 'single') {
      parts.push(g.node('Gather', [weights, source.input], [intAttr('axis', 0)]));
    } else if (source.kind === 'column') {
      const col = g.int64Tensor(`const.column${source.column}`, [source.column], []);
      const indices = g.node('Gather', [source.input, col], [intAttr('axis', 1)]);
      parts.push(g.node('Gather', [weights, indices], [intAttr('axis', 0)]));
    } else {
      // Masked mean: Σ_i mask_i · e_i / max(Σ_i mask_i, 1).
      const rows = g.node('Gather', [weights, source.input], [intAttr('axis', 0)]);
      const mask3 = g.node('Unsqueeze', [source.mask, axis2]);
      const weighted = g.node('Mul', [rows, mask3]);
      const summed = g.node('ReduceSum', [weighted, axis1], [intAttr('keepdims', 0)]);
      const count = g.node('ReduceSum', [source.mask, axis1], [intAttr('keepdims', 1)]);
      const divisor = g.node('Max', [count, one]);
      parts.push(g.node('Div', [summed, divisor]));
    }
  });
  const x = g.node('Concat', parts, [intAttr('axis', 1)]);
  const w1 = g.floatTensor(tower.w1.name, tower.w1.value, tower.w1.shape);
  const b1 = g.floatTensor(tower.b1.name, tower.b1.value, tower.b1.shape);
  const w2 = g.floatTensor(tower.w2.name, tower.w2.value, tower.w2.shape);
  const b2 = g.floatTensor(tower.b2.name, tower.b2.value, tower.b2.shape);
  const h = g.node('Relu', [g.node('Gemm', [x, w1, b1])]);
  const z = g.node('Gemm', [h, w2, b2]);
  const norm = g.node('ReduceL2', [z], [intsAttr('axes', [1]), intAttr('keepdims', 1)]);
  const output = signature.outputs[0];
  if (output === undefined) throw new Error('a tower has one output');
  g.node('Div', [z, g.node('Max', [norm, epsilon])], [], output.name);

  const model: OnnxTypes.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'recsys',
    producerVersion: '1',
    docString: `Two-tower retrieval model: ${tower.name} tower.`,
    graph: {
      name: `${tower.name}_tower`,
      node: g.nodes,
      initializer: g.initializers,
      input: signature.inputs.map(valueInfo),
      output: signature.outputs.map(valueInfo),
    },
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(model).finish();
}

/** The float32 initializers of an ONNX model by name, with their dimensions. */
export function readInitializers(
  bytes: Uint8Array,
): Map<string, { dims: number[]; values: Float32Array }> {
  const model = onnx.ModelProto.decode(bytes);
  const out = new Map<string, { dims: number[]; values: Float32Array }>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT) continue;
    const dims = (t.dims ?? []).map(Number);
    let values: Float32Array;
    if (t.rawData !== null && t.rawData !== undefined && t.rawData.length > 0) {
      // Copy: the decoded bytes may sit at an offset that is not a multiple of 4.
      values = new Float32Array(Uint8Array.from(t.rawData).buffer);
    } else {
      values = Float32Array.from(t.floatData ?? []);
    }
    out.set(t.name ?? '', { dims, values });
  }
  return out;
}
