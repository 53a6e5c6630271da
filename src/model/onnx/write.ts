import type { Attribute, Model, Node, Tensor, ValueInfo } from '../ir.js';
import { ProtoWriter } from './protobuf.js';
import * as S from './schema.js';

function tensorBytes(t: Tensor): Uint8Array {
  // Copy so that a view into a larger buffer never leaks neighbouring bytes into the file.
  const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return new Uint8Array(src);
}

function writeTensor(w: ProtoWriter, name: string, t: Tensor): void {
  if (t.dims.length > 0) w.packedInts(S.TensorF.dims, t.dims);
  w.int(S.TensorF.dataType, S.dataTypeCode(t.dataType));
  if (name) w.string(S.TensorF.name, name);
  w.bytes(S.TensorF.rawData, tensorBytes(t));
}

function writeAttribute(w: ProtoWriter, a: Attribute): void {
  w.string(S.AttrF.name, a.name);
  switch (a.type) {
    case 'float':
      w.float(S.AttrF.f, a.value as number).int(S.AttrF.type, S.AttrType.FLOAT);
      break;
    case 'int':
      w.int(S.AttrF.i, a.value as number).int(S.AttrF.type, S.AttrType.INT);
      break;
    case 'string':
      w.string(S.AttrF.s, a.value as string).int(S.AttrF.type, S.AttrType.STRING);
      break;
    case 'floats':
      w.packedFloats(S.AttrF.floats, a.value as number[]).int(S.AttrF.type, S.AttrType.FLOATS);
      break;
    case 'ints':
      w.packedInts(S.AttrF.ints, a.value as number[]).int(S.AttrF.type, S.AttrType.INTS);
      break;
    case 'strings':
      for (const s of a.value as string[]) w.string(S.AttrF.strings, s);
      w.int(S.AttrF.type, S.AttrType.STRINGS);
      break;
    case 'tensor':
      w.message(S.AttrF.t, (tw) => writeTensor(tw, '', a.value as Tensor)).int(S.AttrF.type, S.AttrType.TENSOR);
      break;
  }
}

function writeNode(w: ProtoWriter, n: Node): void {
  for (const i of n.inputs) w.string(S.NodeF.input, i);
  for (const o of n.outputs) w.string(S.NodeF.output, o);
  w.string(S.NodeF.name, n.name);
  w.string(S.NodeF.opType, n.op);
  for (const a of n.attributes) w.message(S.NodeF.attribute, (aw) => writeAttribute(aw, a));
  if (n.domain) w.string(S.NodeF.domain, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(S.ValueInfoF.name, v.name);
  w.message(S.ValueInfoF.type, (tw) =>
    tw.message(S.TypeF.tensorType, (tt) => {
      tt.int(S.TensorTypeF.elemType, S.dataTypeCode(v.dataType));
      tt.message(S.TensorTypeF.shape, (sw) => {
        for (const d of v.shape) {
          sw.message(S.ShapeF.dim, (dw) => (typeof d === 'number' ? dw.int(S.DimF.value, d) : dw.string(S.DimF.param, d)));
        }
      });
    }),
  );
}

/** Serialises a model to ONNX ModelProto bytes. */
export function writeOnnx(model: Model): Uint8Array {
  const w = new ProtoWriter();
  w.int(S.Model.irVersion, model.irVersion);
  w.string(S.Model.producerName, model.producer.name);
  w.string(S.Model.producerVersion, model.producer.version);
  w.message(S.Model.graph, (g) => {
    for (const n of model.graph.nodes) g.message(S.GraphF.node, (nw) => writeNode(nw, n));
    g.string(S.GraphF.name, model.graph.name);
    for (const [name, t] of model.graph.initializers) g.message(S.GraphF.initializer, (tw) => writeTensor(tw, name, t));
    for (const v of model.graph.inputs) g.message(S.GraphF.input, (vw) => writeValueInfo(vw, v));
    for (const v of model.graph.outputs) g.message(S.GraphF.output, (vw) => writeValueInfo(vw, v));
  });
  w.message(S.Model.opsetImport, (o) => o.string(S.OpsetId.domain, '').int(S.OpsetId.version, model.opset));
  for (const [k, v] of model.metadata) {
    w.message(S.Model.metadataProps, (m) => m.string(S.StringEntryF.key, k).string(S.StringEntryF.value, v));
  }
  return w.finish();
}
