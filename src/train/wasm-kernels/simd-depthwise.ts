/**
 * Hand-assembled WebAssembly SIMD kernels for the depthwise filter and input gradients, run in
 * place on the wasm backend's heap (they import its WebAssembly.Memory, so nothing is copied).
 *
 * No C-to-wasm toolchain is available here, hence the bytes below; the functions are small:
 *
 *   dwf(x, dy, acc, N, H, W, C, Ho, Wo, k, s, pt, pl)   // byte pointers and sizes; C % 8 == 0
 *     for n, oh, i (rows inside x only), j, c8 (8 channels at a time):
 *       v0, v1 = acc[i][j][c8..c8+8]
 *       for ow with ow·s+j-pl inside x: v0,v1 += x[n][oh·s+i-pt][ow·s+j-pl][c8..] · dy[n][oh][ow][c8..]
 *       acc[i][j][c8..c8+8] = v0, v1
 *
 *   dwi(dx, dy, w, N, H, W, C, Ho, Wo, k, s, pt, pl): the same loops, scattering
 *       dx[n][oh·s+i-pt][ow·s+j-pl][c8..] += dy[n][oh][ow][c8..] · w[i][j][c8..]
 *
 * Padding is handled by the loop bounds, so x is read unpadded, and stride 2 needs no
 * zero-stuffing. dwf's innermost loop keeps two independent accumulators in registers (two
 * dependency chains hide the add latency).
 */

// Opcodes (WebAssembly core + SIMD).
const I32 = 0x7f;
const V128 = 0x7b;
const BLOCK = 0x02;
const LOOP = 0x03;
const VOID = 0x40;
const BR = 0x0c;
const BR_IF = 0x0d;
const END = 0x0b;
const SELECT = 0x1b;
const GET = 0x20;
const SET = 0x21;
const CONST = 0x41;
const LT_S = 0x48;
const GT_S = 0x4a;
const GE_S = 0x4e;
const ADD = 0x6a;
const SUB = 0x6b;
const MUL = 0x6c;
const DIV_S = 0x6d;
const SIMD = 0xfd;
const load = (offset: number): number[] => [SIMD, 0x00, 0x00, ...uleb(offset)]; // memarg: align 2^0
const store = (offset: number): number[] => [SIMD, 0x0b, 0x00, ...uleb(offset)];
const F32X4_ADD = [SIMD, 0xe4, 0x01];
const F32X4_MUL = [SIMD, 0xe6, 0x01];

// Locals: the 13 parameters, then scratch (i32), then two v128 accumulators.
const [X, DY, ACC, N, H, W, C, HO, WO, K, S, PT, PL] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const PARAMS = 13;
const [n, oh, i, j, cb, ow, C4, XROW, DROW, XBASE, DBASE, ABASE, XQ, DQ, XSTEP, IH, OWS, CNT, T] = Array.from(
  { length: 19 },
  (_, idx) => PARAMS + idx,
);
const SCRATCH = 19;
const [V0, V1] = [PARAMS + SCRATCH, PARAMS + SCRATCH + 1];

function leb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (true) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const uleb = (value: number): number[] => {
  const out: number[] = [];
  let v = value;
  do {
    const byte = v & 0x7f;
    v >>>= 7;
    out.push(v === 0 ? byte : byte | 0x80);
  } while (v !== 0);
  return out;
};

const get = (l: number): number[] => [GET, l];
const set = (l: number): number[] => [SET, l];
const i32 = (c: number): number[] => [CONST, ...leb(c)];

/** for (v = 0; v < limit; v += step) body */
function forLoop(v: number, limit: number, step: number[], body: number[]): number[] {
  return [
    ...i32(0), ...set(v),
    BLOCK, VOID, LOOP, VOID,
    ...get(v), ...get(limit), GE_S, BR_IF, 1,
    ...body,
    ...get(v), ...step, ADD, ...set(v),
    BR, 0, END, END,
  ];
}

/** dwf's per-8-channel step: accumulators in registers, summed over ow. */
function filterGradPerC8(): number[] {
  const fma = (acc: number, offset: number): number[] => [
    ...get(acc), ...get(XQ), ...load(offset), ...get(DQ), ...load(offset), ...F32X4_MUL, ...F32X4_ADD, ...set(acc),
  ];
  const innermost = [
    ...fma(V0, 0), ...fma(V1, 16),
    ...get(XQ), ...get(XSTEP), ADD, ...set(XQ),
    ...get(DQ), ...get(C4), ADD, ...set(DQ),
  ];
  return [
    ...get(ABASE), ...get(cb), ADD, ...set(T),
    ...get(T), ...load(0), ...set(V0),
    ...get(T), ...load(16), ...set(V1),
    ...get(XBASE), ...get(cb), ADD, ...set(XQ),
    ...get(DBASE), ...get(cb), ADD, ...set(DQ),
    ...forLoop(ow, CNT, i32(1), innermost),
    ...get(T), ...get(V0), ...store(0),
    ...get(T), ...get(V1), ...store(16),
  ];
}

/** dwi's per-8-channel step: the 8 filter taps in registers, scattered into dx over ow. */
function inputGradPerC8(): number[] {
  const scatter = (w: number, offset: number): number[] => [
    ...get(XQ), ...get(XQ), ...load(offset), ...get(DQ), ...load(offset), ...get(w), ...F32X4_MUL, ...F32X4_ADD, ...store(offset),
  ];
  const innermost = [
    ...scatter(V0, 0), ...scatter(V1, 16),
    ...get(XQ), ...get(XSTEP), ADD, ...set(XQ),
    ...get(DQ), ...get(C4), ADD, ...set(DQ),
  ];
  return [
    ...get(ABASE), ...get(cb), ADD, ...set(T),
    ...get(T), ...load(0), ...set(V0),
    ...get(T), ...load(16), ...set(V1),
    ...get(XBASE), ...get(cb), ADD, ...set(XQ),
    ...get(DBASE), ...get(cb), ADD, ...set(DQ),
    ...forLoop(ow, CNT, i32(1), innermost),
  ];
}

/**
 * The loop nest both functions share: n, oh, i (rows inside x), j (columns inside x as an ow
 * range), then 8 channels at a time. Parameter 2 (ACC) is dW for dwf and the filter for dwi.
 */
function body(perC8: number[]): number[] {
  const perJ = [
    // first ow: max(0, ceil((pl - j) / s)); t = pl - j + s - 1
    ...get(PL), ...get(j), SUB, ...get(S), ADD, ...i32(1), SUB, ...set(T),
    ...get(T), ...get(S), DIV_S, ...i32(0), ...get(T), ...i32(0), GT_S, SELECT, ...set(OWS),
    // end ow: u = W - 1 + pl - j; u < 0 ? 0 : min(Wo, u / s + 1); cnt = end - first
    ...get(W), ...i32(1), SUB, ...get(PL), ADD, ...get(j), SUB, ...set(T),
    ...get(T), ...get(S), DIV_S, ...i32(1), ADD, ...i32(0), ...get(T), ...i32(0), GE_S, SELECT, ...set(T),
    ...get(T), ...get(WO), ...get(T), ...get(WO), LT_S, SELECT, ...get(OWS), SUB, ...set(CNT),
    // xBase = xRow + (first·s + j - pl)·C4; dBase = dRow + first·C4; aBase = acc + (i·k + j)·C4
    ...get(XROW), ...get(OWS), ...get(S), MUL, ...get(j), ADD, ...get(PL), SUB, ...get(C4), MUL, ADD, ...set(XBASE),
    ...get(DROW), ...get(OWS), ...get(C4), MUL, ADD, ...set(DBASE),
    ...get(ACC), ...get(i), ...get(K), MUL, ...get(j), ADD, ...get(C4), MUL, ADD, ...set(ABASE),
    ...forLoop(cb, C4, i32(32), perC8),
  ];
  const perI = [
    // ih = oh·s + i - pt; rows outside x (padding) contribute nothing
    ...get(oh), ...get(S), MUL, ...get(i), ADD, ...get(PT), SUB, ...set(IH),
    BLOCK, VOID,
    ...get(IH), ...i32(0), LT_S, BR_IF, 0,
    ...get(IH), ...get(H), GE_S, BR_IF, 0,
    // xRow = x + ((n·H + ih)·W)·C4
    ...get(X), ...get(n), ...get(H), MUL, ...get(IH), ADD, ...get(W), MUL, ...get(C4), MUL, ADD, ...set(XROW),
    ...forLoop(j, K, i32(1), perJ),
    END,
  ];
  const perOh = [
    // dRow = dy + ((n·Ho + oh)·Wo)·C4
    ...get(DY), ...get(n), ...get(HO), MUL, ...get(oh), ADD, ...get(WO), MUL, ...get(C4), MUL, ADD, ...set(DROW),
    ...forLoop(i, K, i32(1), perI),
  ];
  return [
    ...get(C), ...i32(4), MUL, ...set(C4),
    ...get(S), ...get(C4), MUL, ...set(XSTEP),
    ...forLoop(n, N, i32(1), forLoop(oh, HO, i32(1), perOh)),
    END,
  ];
}

const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];

function moduleBytes(): Uint8Array {
  const locals = [...uleb(2), ...uleb(SCRATCH), I32, ...uleb(2), V128];
  const dwf = [...locals, ...body(filterGradPerC8())];
  const dwi = [...locals, ...body(inputGradPerC8())];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, PARAMS, ...Array<number>(PARAMS).fill(I32), 0]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x00, 0x00]), // memory, min 0 pages, no max
    ...section(3, [2, 0, 0]),
    ...section(7, [2, ...name('dwf'), 0x00, 0, ...name('dwi'), 0x00, 1]),
    ...section(10, [2, ...uleb(dwf.length), ...dwf, ...uleb(dwi.length), ...dwi]),
  ]);
}

/**
 * dwf(x, dy, dW, ...) accumulates into dW; dwi(dx, dy, filter, ...) accumulates into dx. Both
 * take byte offsets into the heap and expect the output zeroed.
 */
export type DepthwiseGradFn = (
  x: number, dy: number, acc: number, n: number, h: number, w: number, c: number,
  ho: number, wo: number, k: number, s: number, pt: number, pl: number,
) => void;

export interface DepthwiseGradKernels {
  filterGrad: DepthwiseGradFn;
  inputGrad: DepthwiseGradFn;
}

/** The part of the WebAssembly API used here (the project's lib settings do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | null | undefined;
const instances = new WeakMap<object, DepthwiseGradKernels | null>();

/**
 * The kernels bound to `memory` (a WebAssembly.Memory), or null where this engine lacks wasm SIMD
 * or the memory cannot be imported (a shared memory, as the threaded build would use).
 */
export function simdDepthwiseKernels(memory: object): DepthwiseGradKernels | null {
  if (compiled === undefined) {
    const bytes = moduleBytes();
    compiled = wasmApi.validate(bytes) ? new wasmApi.Module(bytes) : null;
  }
  if (compiled === null) return null;
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    try {
      const { exports } = new wasmApi.Instance(compiled, { env: { memory } });
      kernels = { filterGrad: exports.dwf as DepthwiseGradFn, inputGrad: exports.dwi as DepthwiseGradFn };
    } catch {
      kernels = null;
    }
    instances.set(memory, kernels);
  }
  return kernels;
}
