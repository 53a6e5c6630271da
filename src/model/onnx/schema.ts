/** Field numbers and enums from onnx.proto (ONNX IR), named so the codec reads like the schema. */
import type { DataType } from '../ir.js';

export const Model = { irVersion: 1, producerName: 2, producerVersion: 3, docString: 6, graph: 7, opsetImport: 8, metadataProps: 14 } as const;
export const OpsetId = { domain: 1, version: 2 } as const;
export const GraphF = { node: 1, name: 2, initializer: 5, docString: 10, input: 11, output: 12, valueInfo: 13 } as const;
export const NodeF = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, docString: 6, domain: 7 } as const;
export const AttrF = { name: 1, f: 2, i: 3, s: 4, t: 5, floats: 7, ints: 8, strings: 9, type: 20 } as const;
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;
export const TensorF = { dims: 1, dataType: 2, floatData: 4, int32Data: 5, int64Data: 7, name: 8, rawData: 9 } as const;
export const ValueInfoF = { name: 1, type: 2 } as const;
export const TypeF = { tensorType: 1 } as const;
export const TensorTypeF = { elemType: 1, shape: 2 } as const;
export const ShapeF = { dim: 1 } as const;
export const DimF = { value: 1, param: 2 } as const;
export const StringEntryF = { key: 1, value: 2 } as const;

const CODES: Record<DataType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, float16: 10 };

export function dataTypeCode(t: DataType): number {
  return CODES[t];
}

export function dataTypeFromCode(code: number): DataType {
  const found = (Object.keys(CODES) as DataType[]).find((k) => CODES[k] === code);
  if (!found) throw new Error(`unsupported ONNX tensor element type ${code}`);
  return found;
}

export const BYTES_PER_ELEMENT: Record<DataType, number> = {
  float32: 4,
  float16: 2,
  int8: 1,
  uint8: 1,
  int32: 4,
  int64: 8,
};
