import t from 'tap';

import { letterboxGeometry } from '../../../src/image/preprocess.js';
import { COMPONENT_FIELDS as NATIVE_COMPONENT_FIELDS, type NativeBinding } from '../../../src/runtime/native/binding.js';
import {
  COMPONENT_FIELDS,
  labelComponents,
  probabilityToFrame,
  sigmoidInto,
  summarize,
  summarizeNative,
  summaryJson,
  thresholdMask,
} from '../../../src/runtime/postprocess/index.js';
import { native } from './fixtures/native.js';
import { same } from '../../helpers/same.js';

const { binding, skip } = native();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
}

/** Index of the first value whose bits differ (NaN compared by bits too), or -1. */
function firstBitDifference(a: Float64Array | Float32Array, b: Float64Array | Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return Math.floor(i / a.BYTES_PER_ELEMENT);
  return -1;
}

t.test('the component table layout is the same on both sides', async (t) => {
  t.equal(NATIVE_COMPONENT_FIELDS, COMPONENT_FIELDS);
});

t.test("native exp is V8's Math.exp, bit for bit", { skip }, async (t) => {
  const b = binding as NativeBinding;
  const edges = [
    0, -0, 1, -1, 0.5, -0.5, 2 ** -28, -(2 ** -28), 2 ** -29, -(2 ** -29), 2 ** -1074, -(2 ** -1074),
    0.5 * Math.LN2, -0.5 * Math.LN2, 1.5 * Math.LN2, -1.5 * Math.LN2, 0.34657359027997264, 1.0397207708399179,
    -1.0397207708399179, 707, -707, 708, -708, 709.782712893384, 709.79, -745.1332191019411, -745.14, -750, 800,
    Infinity, -Infinity, NaN, 1e-300, -1e-300, 88.7, -88.7, -103.9, -87.3,
  ];
  const r = rng(7);
  const values: number[] = [...edges];
  for (let i = 0; i < 400_000; i++) {
    const u = r();
    switch (i % 5) {
      case 0: values.push(-u * 800); break;
      case 1: values.push((u - 0.5) * 4); break;
      case 2: values.push(-u * 40); break;
      case 3: values.push((u - 0.5) * 2 ** -20); break;
      default: values.push((u - 0.5) * 1500);
    }
  }
  const x = Float64Array.from(values);
  const got = b.exp(x);
  const want = x.map((v) => Math.exp(v));
  const at = firstBitDifference(got, want);
  t.equal(at, -1, at < 0 ? `${x.length} values` : `exp(${x[at]}): native ${got[at]}, Math.exp ${want[at]}`);
});

t.test('native sigmoid equals the TS sigmoid on float32 logits, bit for bit', { skip }, async (t) => {
  const b = binding as NativeBinding;
  // A sweep over float32 bit patterns (every sign, exponent and many mantissas: NaN, infinities,
  // subnormals, both vector and scalar paths), then values around the path boundaries.
  const bits = new Uint32Array(1 << 20);
  for (let i = 0; i < bits.length; i++) bits[i] = Math.imul(i, 4099) >>> 0;
  const sweep = new Float32Array(bits.buffer);
  const around: number[] = [];
  for (const edge of [2 ** -28, 707, 0.34657359027997264, 1.0397207708399179, 1, 0, 16.6, 88.7, 103.9]) {
    let v = Math.fround(edge);
    for (let k = 0; k < 40; k++) {
      around.push(v, -v);
      v = nextUp(v);
    }
    v = Math.fround(edge);
    for (let k = 0; k < 40; k++) {
      v = nextDown(v);
      around.push(v, -v);
    }
  }
  const r = rng(11);
  const random = Float32Array.from({ length: 200_000 }, (_, i) => (r() - 0.5) * (i % 2 ? 20 : 1000));
  for (const [name, logits] of [
    ['float32 sweep', sweep],
    ['path boundaries', Float32Array.from(around)],
    ['random', random],
    ['odd length', Float32Array.from([0.25, -3, 7])],
  ] as const) {
    const got = b.sigmoid(logits);
    const want = sigmoidInto(logits);
    const at = firstBitDifference(got, want);
    t.equal(at, -1, at < 0 ? `${name}: ${logits.length} values` : `${name}: sigmoid(${logits[at]}): native ${got[at]}, TS ${want[at]}`);
  }
});

function nextUp(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  if (v === 0) u[0] = 1;
  else if (v > 0) u[0]++;
  else u[0]--;
  return f[0];
}

function nextDown(v: number): number {
  return -nextUp(-v);
}

/** Logits with structure (blobs, edges, noise, exact-threshold values) so masks have many components. */
function logitMap(w: number, h: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(w * h);
  const blobs = Array.from({ length: 6 }, () => ({ x: r() * w, y: r() * h, s: 2 + r() * w * 0.2 }));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = -2 + (r() - 0.5) * 3;
      for (const b of blobs) v += 5 * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.s * b.s));
      out[y * w + x] = v;
    }
  }
  // Values whose sigmoid is exactly 0.5 and near it, NaN and infinities.
  out[0] = 0;
  out[1] = NaN;
  out[2] = Infinity;
  out[3] = -Infinity;
  out[4] = -0;
  return out;
}

t.test('native postprocessing equals the TS reference: masks, raw components, summaries', { skip }, async (t) => {
  const b = binding as NativeBinding;
  const cases: { model: [number, number]; frame: [number, number]; fit: 'stretch' | 'letterbox'; threshold: number }[] = [
    { model: [64, 64], frame: [160, 120], fit: 'stretch', threshold: 0.5 },
    { model: [64, 64], frame: [160, 120], fit: 'letterbox', threshold: 0.5 },
    { model: [32, 48], frame: [17, 9], fit: 'stretch', threshold: 0.3 },
    { model: [32, 32], frame: [300, 40], fit: 'letterbox', threshold: 0.7 },
    { model: [40, 40], frame: [40, 40], fit: 'stretch', threshold: 0 },
    { model: [40, 40], frame: [41, 77], fit: 'stretch', threshold: 1 },
    { model: [256, 256], frame: [640, 480], fit: 'stretch', threshold: 0.5 },
    { model: [256, 256], frame: [640, 480], fit: 'letterbox', threshold: 0.45 },
  ];
  let seed = 1;
  for (const c of cases) {
    const [mw, mh] = c.model;
    const [fw, fh] = c.frame;
    const modelSize = { width: mw, height: mh };
    const frameSize = { width: fw, height: fh };
    const logits = logitMap(mw, mh, seed++);
    const g = c.fit === 'letterbox' ? letterboxGeometry(fw, fh, mw, mh) : undefined;
    const name = `${mw}x${mh} -> ${fw}x${fh} ${c.fit} t=${c.threshold}`;
    const got = b.postprocess(logits, mw, mh, fw, fh, g ? [g.newW, g.newH, g.ox, g.oy] : null, c.threshold);

    const prob = sigmoidInto(logits);
    const maskModel = thresholdMask(prob, mw, mh, c.threshold);
    const probFrame = probabilityToFrame(prob, modelSize, frameSize, g);
    const maskFrame = thresholdMask(probFrame, fw, fh, c.threshold);
    same(t, Buffer.from(got.maskModel), Buffer.from(maskModel.data), `${name}: model mask`);
    same(t, Buffer.from(got.maskFrame), Buffer.from(maskFrame.data), `${name}: frame mask`);
    const raw = labelComponents(maskFrame, probFrame);
    t.ok(raw.count > (c.threshold === 1 ? -1 : 0), `${name}: ${raw.count} components`);
    const at = firstBitDifference(got.components, raw.data);
    t.equal(at, -1, at < 0 ? `${name}: raw components equal` : `${name}: component value ${at} native ${got.components[at]} TS ${raw.data[at]}`);
    let fg = 0;
    for (const v of maskFrame.data) fg += v;
    t.equal(got.foreground, fg, `${name}: foreground`);

    const options = { threshold: c.threshold, letterbox: g, contours: true, rle: true, minArea: 2, maxComponents: 5 };
    const reference = summarize(logits, modelSize, frameSize, options);
    const fromNative = summarizeNative(got, modelSize, frameSize, options);
    t.equal(JSON.stringify(summaryJson(fromNative)), JSON.stringify(summaryJson(reference)), `${name}: summary`);
  }
});

t.test('far-background skipping: sparse foreground at the edges and near the threshold gives the reference exactly', { skip }, async (t) => {
  const b = binding as NativeBinding;
  const [mw, mh, fw, fh] = [64, 48, 150, 101];
  for (const threshold of [0.5, 0.2, 0.999, 0.001]) {
    const cut = Math.log(threshold / (1 - threshold));
    const logits = new Float32Array(mw * mh).fill(-30);
    // A near pixel in each corner, a 2x2 block on the right edge, a pixel just below the cut (near:
    // within the margin) and one just above it, a NaN, and a far pixel next to them.
    for (const [x, y, v] of [
      [0, 0, 5], [mw - 1, 0, cut + 1e-4], [0, mh - 1, NaN], [mw - 1, mh - 1, 2],
      [mw - 1, 20, 3], [mw - 2, 20, 3], [mw - 1, 21, 3], [mw - 2, 21, 3],
      [30, 30, cut - 5e-4], [31, 30, cut + 5e-4], [33, 30, cut - 0.01],
    ] as const) logits[y * mw + x] = v;
    for (const g of [undefined, letterboxGeometry(fw, fh, mw, mh)]) {
      const name = `t=${threshold}${g ? ' letterbox' : ''}`;
      const got = b.postprocess(logits, mw, mh, fw, fh, g ? [g.newW, g.newH, g.ox, g.oy] : null, threshold);
      const prob = sigmoidInto(logits);
      const probFrame = probabilityToFrame(prob, { width: mw, height: mh }, { width: fw, height: fh }, g);
      same(t, Buffer.from(got.maskModel), Buffer.from(thresholdMask(prob, mw, mh, threshold).data), `${name}: model mask`);
      const maskFrame = thresholdMask(probFrame, fw, fh, threshold);
      same(t, Buffer.from(got.maskFrame), Buffer.from(maskFrame.data), `${name}: frame mask`);
      const raw = labelComponents(maskFrame, probFrame);
      t.equal(firstBitDifference(got.components, raw.data), -1, `${name}: ${raw.count} components, equal`);
    }
  }
});

t.test('native postprocessing rejects bad input with ERR_INVALID_ARGUMENT', { skip }, async (t) => {
  const b = binding as NativeBinding;
  const logits = new Float32Array(16);
  t.throws(() => b.postprocess(logits, 4, 4, 8, 8, null, 1.5), { code: 'ERR_INVALID_ARGUMENT', message: /threshold/ });
  t.throws(() => b.postprocess(logits, 4, 4, 8, 8, null, NaN), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => b.postprocess(logits, 5, 4, 8, 8, null, 0.5), { code: 'ERR_INVALID_ARGUMENT', message: /logits have 16 values/ });
  t.throws(() => b.postprocess(logits, 4, 4, 8, 8, [4, 4, 1, 0], 0.5), { code: 'ERR_INVALID_ARGUMENT', message: /does not fit/ });
  t.throws(() => b.postprocess(logits, 4, 4, 0, 8, null, 0.5), { code: 'ERR_INVALID_ARGUMENT' });
});
