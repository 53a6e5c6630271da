/**
 * Just enough of the protobuf wire format to write and read ONNX ModelProto. A hand-written codec
 * keeps the toolchain free of generated code and of a protobuf runtime dependency, and ONNX's schema
 * is small and stable (field numbers are fixed by onnx.proto).
 */

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  private length = 0;

  private flushScratch(): void {
    if (this.scratch.length > 0) {
      this.chunks.push(Uint8Array.from(this.scratch));
      this.length += this.scratch.length;
      this.scratch = [];
    }
  }

  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(value.length);
    this.flushScratch();
    this.chunks.push(value);
    this.length += value.length;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  /** Packed repeated varints (proto3 default for repeated scalars). */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    this.flushScratch();
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

export type ProtoValue =
  | { wire: 'varint'; value: bigint }
  | { wire: 'i64'; bytes: Uint8Array }
  | { wire: 'len'; bytes: Uint8Array }
  | { wire: 'i32'; bytes: Uint8Array };

export class ProtoError extends Error {}

/** Splits a message into its fields; repeated fields appear as repeated entries. */
export function readFields(buf: Uint8Array): Array<{ field: number; value: ProtoValue }> {
  const out: Array<{ field: number; value: ProtoValue }> = [];
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new ProtoError(`truncated varint at byte ${pos}`);
      const b = buf[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new ProtoError(`varint too long at byte ${pos}`);
    }
  };
  const take = (n: number): Uint8Array => {
    if (n < 0 || pos + n > buf.length) {
      throw new ProtoError(`field of ${n} bytes at byte ${pos} runs past the end (${buf.length} bytes)`);
    }
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  while (pos < buf.length) {
    const key = Number(readVarint());
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 0) throw new ProtoError(`invalid field number 0 at byte ${pos}`);
    switch (wire) {
      case WIRE_VARINT:
        out.push({ field, value: { wire: 'varint', value: readVarint() } });
        break;
      case WIRE_I64:
        out.push({ field, value: { wire: 'i64', bytes: take(8) } });
        break;
      case WIRE_LEN:
        out.push({ field, value: { wire: 'len', bytes: take(Number(readVarint())) } });
        break;
      case WIRE_I32:
        out.push({ field, value: { wire: 'i32', bytes: take(4) } });
        break;
      default:
        throw new ProtoError(`unsupported wire type ${wire} for field ${field} at byte ${pos}`);
    }
  }
  return out;
}

export function asInt(v: ProtoValue): number {
  if (v.wire !== 'varint') throw new ProtoError(`expected a varint, found ${v.wire}`);
  return Number(BigInt.asIntN(64, v.value));
}

export function asBytes(v: ProtoValue): Uint8Array {
  if (v.wire !== 'len') throw new ProtoError(`expected length-delimited bytes, found ${v.wire}`);
  return v.bytes;
}

export function asString(v: ProtoValue): string {
  return new TextDecoder().decode(asBytes(v));
}

export function asFloat(v: ProtoValue): number {
  if (v.wire !== 'i32') throw new ProtoError(`expected a 32-bit float, found ${v.wire}`);
  return new DataView(v.bytes.buffer, v.bytes.byteOffset, 4).getFloat32(0, true);
}

/** Repeated int64/int32 fields may be packed (one len field) or not (several varints). */
export function asInts(v: ProtoValue): number[] {
  if (v.wire === 'varint') return [asInt(v)];
  const vals: number[] = [];
  const b = asBytes(v);
  let pos = 0;
  while (pos < b.length) {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = b[pos++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
    }
    vals.push(Number(BigInt.asIntN(64, result)));
  }
  return vals;
}

export function asFloats(v: ProtoValue): number[] {
  if (v.wire === 'i32') return [asFloat(v)];
  const b = asBytes(v);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const vals: number[] = [];
  for (let i = 0; i + 4 <= b.length; i += 4) vals.push(dv.getFloat32(i, true));
  return vals;
}
