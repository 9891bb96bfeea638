import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type ValueInfo = onnxProto.onnx.IValueInfoProto;
type Attribute = onnxProto.onnx.IAttributeProto;
type GraphProto = onnxProto.onnx.IGraphProto;

export type ElementType = 'float32' | 'int64' | 'bool';
const ELEMENT_TYPES: Record<ElementType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

/** A dimension is fixed (number) or symbolic (a name such as "batch"). */
export type Dim = number | string;
export type AttributeValue =
  | number
  | string
  | number[]
  | { float: number }
  | { floats: number[] }
  | { graph: GraphProto }
  | TensorProto;

/** Where an initializer's bytes live in the external data file written beside the graph. */
export interface ExternalSlice {
  file: string;
  offset: number;
  length: number;
}

/**
 * A small, explicit ONNX graph builder: each call appends one node and returns the name of its output,
 * so graph code reads like the forward pass it encodes. Names are unique per builder.
 */
export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly used: Set<string>;
  private counter = 0;

  /** `enclosing`: the graph a subgraph belongs to; their value names are kept apart. */
  constructor(enclosing?: GraphBuilder) {
    this.used = enclosing?.used ?? new Set<string>();
  }

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    let name = prefix;
    while (this.used.has(name)) name = `${prefix}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  input(name: string, type: ElementType, shape: Dim[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  output(name: string, type: ElementType, shape: Dim[]): void {
    this.outputs.push(valueInfo(name, type, shape));
  }

  /** Appends a node; `outputName` fixes the output's name (hooks are named this way). */
  op(
    opType: string,
    inputs: string[],
    attributes: Record<string, AttributeValue> = {},
    outputName?: string,
  ): string {
    const output = outputName ?? this.fresh(opType.toLowerCase());
    if (outputName) this.used.add(outputName);
    this.nodes.push({
      opType,
      input: inputs,
      output: [output],
      name: output,
      attribute: toAttributes(attributes),
    });
    return output;
  }

  /** A node with several outputs (Split). */
  opMulti(
    opType: string,
    inputs: string[],
    outputs: number,
    attributes: Record<string, AttributeValue> = {},
  ): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()));
    return this.opNamed(opType, inputs, names, attributes);
  }

  /** A node whose several outputs are named by the caller (graph outputs, say). */
  opNamed(
    opType: string,
    inputs: string[],
    outputs: string[],
    attributes: Record<string, AttributeValue> = {},
  ): string[] {
    for (const name of outputs) this.used.add(name);
    this.nodes.push({
      opType,
      input: inputs,
      output: outputs,
      name: outputs[0],
      attribute: toAttributes(attributes),
    });
    return outputs;
  }

  constInt64(values: number[], dims: number[] = [values.length], prefix = 'const'): string {
    const name = this.fresh(prefix);
    this.initializers.push({ name, dataType: ELEMENT_TYPES.int64, dims, int64Data: values });
    return name;
  }

  constFloat(values: number[], dims: number[] = [values.length], prefix = 'const'): string {
    const name = this.fresh(prefix);
    this.initializers.push({ name, dataType: ELEMENT_TYPES.float32, dims, floatData: values });
    return name;
  }

  /** A float32 initializer whose bytes are stored in an external data file. */
  externalWeight(name: string, dims: number[], slice: ExternalSlice): string {
    this.used.add(name);
    this.initializers.push({
      name,
      dataType: ELEMENT_TYPES.float32,
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: slice.file },
        { key: 'offset', value: String(slice.offset) },
        { key: 'length', value: String(slice.length) },
      ],
    });
    return name;
  }

  /** A float32 initializer held inline (small or synthetic weights). */
  inlineWeight(name: string, dims: number[], data: Float32Array): string {
    this.used.add(name);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name, dataType: ELEMENT_TYPES.float32, dims, rawData: bytes });
    return name;
  }

  /**
   * This builder's nodes as a subgraph (an `If` branch, say): it has no inputs of its own and reads
   * the enclosing graph's values by name. Build it with `new GraphBuilder(outer)` so its names
   * cannot shadow the enclosing graph's.
   */
  subgraph(name: string): { graph: GraphProto } {
    return {
      graph: { name, node: this.nodes, initializer: this.initializers, input: [], output: this.outputs },
    };
  }

  /** Serialises the model. Opset and IR version are fixed project-wide. */
  encode(opts: {
    graphName: string;
    opset: number;
    docString?: string;
    metadata?: Record<string, string>;
  }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 9,
      producerName: 'loupe',
      opsetImport: [{ domain: '', version: opts.opset }],
      docString: opts.docString,
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, type: ElementType, shape: Dim[]): ValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEMENT_TYPES[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function toAttributes(attributes: Record<string, AttributeValue>): Attribute[] {
  const kinds = onnx.AttributeProto.AttributeType;
  return Object.entries(attributes).map(([name, value]): Attribute => {
    if (typeof value === 'number') return { name, type: kinds.INT, i: value };
    if (typeof value === 'string') return { name, type: kinds.STRING, s: new TextEncoder().encode(value) };
    if (Array.isArray(value)) return { name, type: kinds.INTS, ints: value };
    if ('float' in value) return { name, type: kinds.FLOAT, f: value.float };
    if ('floats' in value) return { name, type: kinds.FLOATS, floats: value.floats };
    if ('graph' in value) return { name, type: kinds.GRAPH, g: value.graph };
    return { name, type: kinds.TENSOR, t: value };
  });
}
