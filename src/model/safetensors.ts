/**
 * Reader and writer for the safetensors format (https://github.com/huggingface/safetensors), the
 * format users bring PyTorch weights in: an 8-byte little-endian u64 header length N, N bytes of
 * UTF-8 JSON describing each tensor, then the raw little-endian tensor data.
 *
 * The reader is format-level only: it knows nothing about LV-UNet. Whether the tensors are the
 * ones the model needs is `checkWeights` in weights-check.ts.
 */

/** Bytes per element of every dtype the reference implementation defines with whole-byte elements. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/**
 * The reference implementation refuses headers above this size; anything bigger is a corrupt or
 * hostile length field, and honouring it would make us allocate and decode garbage.
 */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

export interface SafetensorsTensor {
  readonly dtype: string;
  readonly shape: number[];
  /** A view into the bytes given to `readSafetensors` (no copy), little-endian, possibly unaligned. */
  readonly bytes: Uint8Array;
}

/** A tensor to write: any dtype, bytes already little-endian. */
export interface RawTensor {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

export interface SafetensorsFile {
  readonly tensors: Map<string, SafetensorsTensor>;
  readonly metadata: Record<string, string>;
}

export class SafetensorsError extends Error {
  readonly file: string;
  readonly problems: string[];

  constructor(file: string, problems: string[]) {
    super(`${file}: not a valid safetensors file:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'SafetensorsError';
    this.file = file;
    this.problems = problems;
  }
}

/** Which entry's bytes run from begin to end in the data buffer, kept for the overlap check. */
interface Span {
  name: string;
  begin: number;
  end: number;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses a safetensors file. `file` is only used to name the file in errors.
 * Tensor bytes are views into `bytes`, so they stay valid only as long as the caller does not
 * mutate `bytes`, and they may sit at any alignment: copy before viewing them as typed arrays.
 * Throws `SafetensorsError` listing every problem found; once the header parses as JSON, every
 * entry is checked before throwing so a user sees all the damage at once.
 */
export function readSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  if (bytes.length < 8) {
    throw new SafetensorsError(file, [
      `file is ${bytes.length} bytes, shorter than the 8-byte header length field`,
    ]);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // u64 can exceed 2^53, so compare as bigint before narrowing to a number.
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(file, [
      `header length ${headerLen64} is larger than the ${MAX_HEADER_BYTES}-byte limit: ` +
        'not a safetensors file, or corrupt',
    ]);
  }
  const headerLen = Number(headerLen64);
  if (8 + headerLen > bytes.length) {
    throw new SafetensorsError(file, [
      `header length ${headerLen} runs past the end of the file (${bytes.length} bytes): file truncated?`,
    ]);
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    throw new SafetensorsError(file, ['header is not valid UTF-8']);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new SafetensorsError(file, [`header is not valid JSON (${why})`]);
  }
  if (!isPlainObject(header)) {
    const what = header === null ? 'null' : Array.isArray(header) ? 'an array' : typeof header;
    throw new SafetensorsError(file, [`header JSON is ${what}, expected an object`]);
  }

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const problems: string[] = [];
  const tensors = new Map<string, SafetensorsTensor>();
  const spans: Span[] = [];
  const metadata = readMetadata(header[METADATA_KEY], problems);

  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const before = problems.length;
    if (!isPlainObject(entry)) {
      problems.push(`${name}: entry is not an object`);
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = entry;

    let okDtype: string | undefined;
    let elementSize: number | undefined;
    if (dtype === undefined) {
      problems.push(`${name}: missing "dtype"`);
    } else if (typeof dtype !== 'string') {
      problems.push(`${name}: "dtype" is not a string`);
    } else if (!Object.hasOwn(DTYPE_SIZES, dtype)) {
      problems.push(`${name}: unknown dtype ${JSON.stringify(dtype)}`);
    } else {
      okDtype = dtype;
      elementSize = DTYPE_SIZES[dtype];
    }

    let okShape: number[] | undefined;
    let elements: number | undefined;
    if (shape === undefined) {
      problems.push(`${name}: missing "shape"`);
    } else if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
      problems.push(`${name}: "shape" is not an array of non-negative integers`);
    } else {
      const product = shape.reduce((a: number, d: number) => a * d, 1);
      if (Number.isSafeInteger(product)) {
        okShape = shape;
        elements = product;
      } else {
        problems.push(`${name}: shape [${shape.join(', ')}] has too many elements`);
      }
    }

    let begin: number | undefined;
    let end: number | undefined;
    if (offsets === undefined) {
      problems.push(`${name}: missing "data_offsets"`);
    } else if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !isNonNegativeInteger(offsets[0]) ||
      !isNonNegativeInteger(offsets[1])
    ) {
      problems.push(`${name}: "data_offsets" is not a pair of non-negative integers`);
    } else if (offsets[0] > offsets[1]) {
      problems.push(`${name}: data_offsets [${offsets[0]}, ${offsets[1]}] end before they begin`);
    } else {
      begin = offsets[0];
      end = offsets[1];
      if (end > dataLen) {
        problems.push(
          `${name}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes): file truncated?`,
        );
      }
    }

    if (begin === undefined || end === undefined) continue;
    if (end <= dataLen) spans.push({ name, begin, end });
    if (okDtype === undefined || okShape === undefined || elementSize === undefined || elements === undefined) {
      continue;
    }
    const wanted = elements * elementSize;
    if (end - begin !== wanted) {
      problems.push(
        `${name}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, ` +
          `but ${okDtype} [${okShape.join(', ')}] needs ${wanted}`,
      );
    }
    if (problems.length === before) {
      tensors.set(name, {
        dtype: okDtype,
        shape: [...okShape],
        // A plain Uint8Array even when the input is a Buffer: Buffer#slice does not copy, which
        // would silently break the usual `bytes.slice().buffer` idiom for an aligned copy.
        bytes: new Uint8Array(bytes.buffer, bytes.byteOffset + dataStart + begin, end - begin),
      });
    }
  }

  problems.push(...findOverlaps(spans));
  if (problems.length > 0) throw new SafetensorsError(file, problems);
  return { tensors, metadata };
}

function readMetadata(raw: unknown, problems: string[]): Record<string, string> {
  const metadata: Record<string, string> = {};
  // The reference writer omits the key when there is no metadata; treat an explicit null the same.
  if (raw === undefined || raw === null) return metadata;
  if (!isPlainObject(raw)) {
    problems.push(`${METADATA_KEY}: is not an object`);
    return metadata;
  }
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string') metadata[k] = v;
    else problems.push(`${METADATA_KEY}: value of ${JSON.stringify(k)} is not a string`);
  }
  return metadata;
}

/**
 * Two tensors sharing bytes means a corrupt header (or a crafted one). Gaps between tensors are
 * not reported: they waste space but cannot make us return wrong numbers. Empty tensors own no
 * bytes, so they overlap nothing.
 */
function findOverlaps(spans: Span[]): string[] {
  const found: string[] = [];
  const sorted = spans.filter((s) => s.end > s.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  let furthest: Span | undefined;
  for (const s of sorted) {
    if (furthest !== undefined && s.begin < furthest.end) {
      found.push(
        `${s.name}: data_offsets [${s.begin}, ${s.end}] overlap ${furthest.name} [${furthest.begin}, ${furthest.end}]`,
      );
    }
    if (furthest === undefined || s.end > furthest.end) furthest = s;
  }
  return found;
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytewise (UTF-8) order, as the reference implementation sorts names, not UTF-16 code-unit order. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Serialises tensors of any dtype whose bytes are already little-endian. Exists beside
 * `writeSafetensors` so tests and converters can produce files with I64 counters, F16 weights and
 * other dtypes PyTorch writes; it checks the byte length of each tensor against its shape.
 */
export function writeSafetensorsRaw(
  tensors: ReadonlyMap<string, RawTensor>,
  metadata?: Readonly<Record<string, string>>,
): Buffer {
  const problems: string[] = [];
  const names = [...tensors.keys()].sort(compareNames);
  for (const name of names) {
    const t = tensors.get(name)!;
    if (name === METADATA_KEY) problems.push(`${name}: reserved name, cannot be a tensor`);
    if (!Object.hasOwn(DTYPE_SIZES, t.dtype)) problems.push(`${name}: unknown dtype ${JSON.stringify(t.dtype)}`);
    // JS callers can pass anything; a fractional or negative dimension would write an unreadable file.
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      problems.push(`${name}: shape [${t.shape.join(', ')}] is not non-negative integers`);
      continue;
    }
    const wanted = t.shape.reduce((a, d) => a * d, 1) * (DTYPE_SIZES[t.dtype] ?? 0);
    if (Object.hasOwn(DTYPE_SIZES, t.dtype) && t.bytes.length !== wanted) {
      problems.push(`${name}: ${t.bytes.length} bytes, but ${t.dtype} [${t.shape.join(', ')}] needs ${wanted}`);
    }
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') problems.push(`${METADATA_KEY}: value of ${JSON.stringify(k)} is not a string`);
    }
  }
  if (problems.length > 0) {
    throw new RangeError(`cannot write safetensors:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }

  // Built by hand rather than JSON.stringify(object) because JS objects put integer-like keys
  // ("0", "1") first, which would break the sorted order readers and diff tools expect.
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const end = offset + t.bytes.length;
    parts.push(
      `${JSON.stringify(name)}:${JSON.stringify({ dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] })}`,
    );
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  // Padding to 8 keeps the data buffer 8-byte aligned in the file, so a reader that maps the file
  // can view F64/I64 tensors in place; the reference implementation pads with spaces for this.
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + headerLen + offset, 0x20);
  out.writeBigUInt64LE(BigInt(headerLen), 0);
  json.copy(out, 8);
  let at = 8 + headerLen;
  for (const name of names) {
    const b = tensors.get(name)!.bytes;
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/**
 * Writes float32 tensors as F32 safetensors, in sorted name order as the reference writer does.
 * Data is copied element by element into the output, so any Float32Array view (shared buffers,
 * sub-arrays at odd offsets) is safe to pass, and the file is little-endian on any host.
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>,
  metadata?: Readonly<Record<string, string>>,
): Buffer {
  const raw = new Map<string, RawTensor>();
  for (const [name, t] of tensors) {
    const bytes = new Uint8Array(t.data.length * 4);
    if (HOST_IS_LITTLE_ENDIAN) {
      bytes.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    } else {
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < t.data.length; i++) dv.setFloat32(i * 4, t.data[i], true);
    }
    raw.set(name, { dtype: 'F32', shape: t.shape, bytes });
  }
  return writeSafetensorsRaw(raw, metadata);
}
