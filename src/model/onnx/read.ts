import type { Attribute, DataType, Graph, Model, Node, Tensor, ValueInfo } from '../ir.js';
import { asBytes, asFloat, asFloats, asInt, asInts, asString, readFields, type ProtoValue } from './protobuf.js';
import * as S from './schema.js';

export class OnnxReadError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: not a readable ONNX model (${reason})`);
    this.name = 'OnnxReadError';
  }
}

function typedFromBytes(type: DataType, raw: Uint8Array): Tensor['data'] {
  // Copy into an aligned buffer: raw_data inside the file is rarely aligned for its element size.
  const buf = new Uint8Array(raw).buffer;
  switch (type) {
    case 'float32':
      return new Float32Array(buf);
    case 'float16':
      return new Uint16Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'uint8':
      return new Uint8Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
  }
}

function readTensor(bytes: Uint8Array): { name: string; tensor: Tensor } {
  let name = '';
  let dims: number[] = [];
  let type: DataType = 'float32';
  let raw: Uint8Array | undefined;
  const floats: number[] = [];
  const int32s: number[] = [];
  const int64s: number[] = [];
  for (const { field, value } of readFields(bytes)) {
    switch (field) {
      case S.TensorF.dims:
        dims = dims.concat(asInts(value));
        break;
      case S.TensorF.dataType:
        type = S.dataTypeFromCode(asInt(value));
        break;
      case S.TensorF.name:
        name = asString(value);
        break;
      case S.TensorF.rawData:
        raw = asBytes(value);
        break;
      case S.TensorF.floatData:
        floats.push(...asFloats(value));
        break;
      case S.TensorF.int32Data:
        int32s.push(...asInts(value));
        break;
      case S.TensorF.int64Data:
        int64s.push(...asInts(value));
        break;
    }
  }
  const n = dims.reduce((a, b) => a * b, 1);
  let data: Tensor['data'];
  if (raw) {
    if (raw.length !== n * S.BYTES_PER_ELEMENT[type]) {
      throw new Error(`tensor '${name}' has ${raw.length} bytes of data for dims [${dims.join(', ')}] of ${type}`);
    }
    data = typedFromBytes(type, raw);
  } else if (type === 'float32') {
    data = Float32Array.from(floats);
  } else if (type === 'int64') {
    data = BigInt64Array.from(int64s.map((v) => BigInt(v)));
  } else if (type === 'int32') {
    data = Int32Array.from(int32s);
  } else if (type === 'int8') {
    data = Int8Array.from(int32s);
  } else if (type === 'uint8') {
    data = Uint8Array.from(int32s);
  } else {
    data = Uint16Array.from(int32s);
  }
  if (data.length !== n) throw new Error(`tensor '${name}' has ${data.length} values for dims [${dims.join(', ')}]`);
  return { name, tensor: { dataType: type, dims, data } };
}

function readAttribute(bytes: Uint8Array): Attribute {
  let name = '';
  let type = 0;
  const vals: Partial<Record<number, ProtoValue[]>> = {};
  for (const { field, value } of readFields(bytes)) {
    if (field === S.AttrF.name) name = asString(value);
    else if (field === S.AttrF.type) type = asInt(value);
    else (vals[field] ??= []).push(value);
  }
  const first = (f: number): ProtoValue => {
    const v = vals[f]?.[0];
    if (!v) throw new Error(`attribute '${name}' has no value`);
    return v;
  };
  switch (type) {
    case S.AttrType.FLOAT:
      return { name, type: 'float', value: asFloat(first(S.AttrF.f)) };
    case S.AttrType.INT:
      return { name, type: 'int', value: asInt(first(S.AttrF.i)) };
    case S.AttrType.STRING:
      return { name, type: 'string', value: asString(first(S.AttrF.s)) };
    case S.AttrType.FLOATS:
      return { name, type: 'floats', value: (vals[S.AttrF.floats] ?? []).flatMap(asFloats) };
    case S.AttrType.INTS:
      return { name, type: 'ints', value: (vals[S.AttrF.ints] ?? []).flatMap(asInts) };
    case S.AttrType.STRINGS:
      return { name, type: 'strings', value: (vals[S.AttrF.strings] ?? []).map(asString) };
    case S.AttrType.TENSOR:
      return { name, type: 'tensor', value: readTensor(asBytes(first(S.AttrF.t))).tensor };
    default:
      throw new Error(`attribute '${name}' has unsupported type ${type}`);
  }
}

function readNode(bytes: Uint8Array): Node {
  const inputs: string[] = [];
  const outputs: string[] = [];
  const attributes: Attribute[] = [];
  let name = '';
  let op = '';
  let domain = '';
  for (const { field, value } of readFields(bytes)) {
    if (field === S.NodeF.input) inputs.push(asString(value));
    else if (field === S.NodeF.output) outputs.push(asString(value));
    else if (field === S.NodeF.name) name = asString(value);
    else if (field === S.NodeF.opType) op = asString(value);
    else if (field === S.NodeF.attribute) attributes.push(readAttribute(asBytes(value)));
    else if (field === S.NodeF.domain) domain = asString(value);
  }
  return { op, name, inputs, outputs, attributes, ...(domain ? { domain } : {}) };
}

function readValueInfo(bytes: Uint8Array): ValueInfo {
  let name = '';
  let dataType: DataType = 'float32';
  const shape: (number | string)[] = [];
  for (const { field, value } of readFields(bytes)) {
    if (field === S.ValueInfoF.name) name = asString(value);
    if (field !== S.ValueInfoF.type) continue;
    for (const t of readFields(asBytes(value))) {
      if (t.field !== S.TypeF.tensorType) continue;
      for (const tt of readFields(asBytes(t.value))) {
        if (tt.field === S.TensorTypeF.elemType) dataType = S.dataTypeFromCode(asInt(tt.value));
        if (tt.field !== S.TensorTypeF.shape) continue;
        for (const d of readFields(asBytes(tt.value))) {
          let dim: number | string = '?';
          for (const dv of readFields(asBytes(d.value))) {
            if (dv.field === S.DimF.value) dim = asInt(dv.value);
            if (dv.field === S.DimF.param) dim = asString(dv.value);
          }
          shape.push(dim);
        }
      }
    }
  }
  return { name, dataType, shape };
}

function readGraph(bytes: Uint8Array): Graph {
  const nodes: Node[] = [];
  const initializers = new Map<string, Tensor>();
  const inputs: ValueInfo[] = [];
  const outputs: ValueInfo[] = [];
  let name = '';
  for (const { field, value } of readFields(bytes)) {
    if (field === S.GraphF.node) nodes.push(readNode(asBytes(value)));
    else if (field === S.GraphF.name) name = asString(value);
    else if (field === S.GraphF.initializer) {
      const t = readTensor(asBytes(value));
      initializers.set(t.name, t.tensor);
    } else if (field === S.GraphF.input) inputs.push(readValueInfo(asBytes(value)));
    else if (field === S.GraphF.output) outputs.push(readValueInfo(asBytes(value)));
  }
  // Older exporters list initializers among the inputs; they are not model inputs.
  return { name, nodes, initializers, inputs: inputs.filter((i) => !initializers.has(i.name)), outputs };
}

/** Parses ONNX ModelProto bytes; `file` names the source in every error. */
export function readOnnx(bytes: Uint8Array, file: string): Model {
  try {
    let irVersion = 0;
    let graph: Graph | undefined;
    let opset = 0;
    const producer = { name: '', version: '' };
    const metadata = new Map<string, string>();
    for (const { field, value } of readFields(bytes)) {
      if (field === S.Model.irVersion) irVersion = asInt(value);
      else if (field === S.Model.producerName) producer.name = asString(value);
      else if (field === S.Model.producerVersion) producer.version = asString(value);
      else if (field === S.Model.graph) graph = readGraph(asBytes(value));
      else if (field === S.Model.opsetImport) {
        let domain = '';
        let version = 0;
        for (const o of readFields(asBytes(value))) {
          if (o.field === S.OpsetId.domain) domain = asString(o.value);
          if (o.field === S.OpsetId.version) version = asInt(o.value);
        }
        if (domain === '' || domain === 'ai.onnx') opset = version;
      } else if (field === S.Model.metadataProps) {
        let k = '';
        let v = '';
        for (const e of readFields(asBytes(value))) {
          if (e.field === S.StringEntryF.key) k = asString(e.value);
          if (e.field === S.StringEntryF.value) v = asString(e.value);
        }
        metadata.set(k, v);
      }
    }
    if (!graph) throw new Error('no graph');
    if (irVersion <= 0) throw new Error('no IR version');
    if (opset <= 0) throw new Error('no default-domain opset import');
    return { graph, opset, irVersion, producer, metadata };
  } catch (err) {
    if (err instanceof OnnxReadError) throw err;
    throw new OnnxReadError(file, err instanceof Error ? err.message : String(err));
  }
}
