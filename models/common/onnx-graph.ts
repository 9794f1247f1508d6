/**
 * Building ONNX graphs with onnx-proto: the pieces every exporter of this project shares (the
 * two towers, DeepFM). Tensors are raw little-endian bytes; intermediate values get unique names.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;

/** An input or output of a graph, as the exporters document it. */
export interface GraphTensorSignature {
  readonly name: string;
  readonly dtype: 'float32' | 'int64';
  /** Dimensions: a number is fixed, a string is symbolic (dynamic). */
  readonly shape: readonly (number | string)[];
  readonly description: string;
}

/** Builds the nodes and initializers of a graph, naming intermediate values uniquely. */
export class OnnxGraphBuilder {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];
  private counter = 0;

  floatTensor(name: string, values: ArrayLike<number>, dims: readonly number[]): string {
    const data = Float32Array.from(values);
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  int64Tensor(name: string, values: ArrayLike<number>, dims: readonly number[]): string {
    const data = BigInt64Array.from(Array.from(values), (v) => BigInt(v));
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
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

export function intAttr(name: string, i: number): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

export function intsAttr(name: string, ints: readonly number[]): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...ints] };
}

export function valueInfo(sig: GraphTensorSignature): OnnxTypes.IValueInfoProto {
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
