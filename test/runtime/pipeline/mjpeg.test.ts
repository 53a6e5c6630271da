/**
 * MJPEG frames through the native fused path (libjpeg-turbo decode with DCT scaling, then the native
 * preprocessing, inference and postprocessing in one job off the JS thread) against the reference
 * path: the same decode step (JPEG_DECODE, run through decodeJpegFrame: jpeg-js cannot produce
 * libjpeg-turbo's DCT-scaled output), then the TypeScript preprocessing, onnxruntime-node's JS API
 * and the TypeScript postprocessing. What is compared: the frame-size and model-size masks pixel for
 * pixel, and coverage, components, contours and RLE as JSON; tolerance: none (bit-equal).
 * Corrupt and cut-off frames must be dropped, counted and named.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import ort from 'onnxruntime-node';

import { resizeRgbBilinear } from '../../../src/cli/frames-command.js';
import { decodeImage } from '../../../src/image/decode.js';
import { letterboxGeometry, preprocessRgb } from '../../../src/image/preprocess.js';
import { jpegDecodedSize, jpegDecodeScale } from '../../../src/model/preprocessing.js';
import { decodeJpegFrame, OrtSession } from '../../../src/runtime/native/runtime.js';
import { loadModel, type LoadedModel } from '../../../src/runtime/model-loader.js';
import { openSession, Pipeline } from '../../../src/runtime/pipeline/index.js';
import { summarize, summaryJson, type ReferenceSummary, type Summary } from '../../../src/runtime/postprocess/index.js';
import type { ResultSink, SinkItem } from '../../../src/runtime/sinks/index.js';
import { createReplaySource } from '../../../src/runtime/sources/index.js';
import { KVASIR, REPO_ROOT } from '../../helpers/paths.js';
import { native } from '../native/fixtures/native.js';
import { tempDir } from './fixtures/model.js';
import { same } from '../../helpers/same.js';

const { binding, skip: nativeSkip } = native();
const MODEL_DIR = join(REPO_ROOT, 'models', 'lvunet-kvasir');
const skip =
  nativeSkip ||
  (!existsSync(join(KVASIR, 'images')) ? `Kvasir-SEG images not found at ${KVASIR}` : false) ||
  (!existsSync(join(MODEL_DIR, 'manifest.json')) ? `the shipped model is not in ${MODEL_DIR}` : false);

const tmp = tempDir('mjpeg');
t.teardown(tmp.remove);

/** Frame sizes: 1366x768 decodes at 3/8 (ceil on an odd product), 640x360 at 6/8, 320x240 at 8/8 (smaller than the model). */
const SIZES: [number, number][] = [
  [1366, 768],
  [640, 360],
  [320, 240],
];

function encodeJpeg(rgb: Uint8Array, width: number, height: number, quality = 85): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba[i * 4] = rgb[i * 3];
    rgba[i * 4 + 1] = rgb[i * 3 + 1];
    rgba[i * 4 + 2] = rgb[i * 3 + 2];
    rgba[i * 4 + 3] = 255;
  }
  return jpeg.encode({ width, height, data: rgba }, quality).data;
}

/** Start of the entropy-coded data: just after the SOS segment. */
function scanStart(j: Uint8Array): number {
  let i = 2;
  for (;;) {
    const m = j[i + 1];
    const len = (j[i + 2] << 8) | j[i + 3];
    if (m === 0xda) return i + 2 + len;
    i += 2 + len;
  }
}

class MemorySink implements ResultSink {
  readonly description = 'memory';
  readonly needsMask = true;
  readonly items: Required<SinkItem>[] = [];
  async open(): Promise<void> {}
  async write(item: SinkItem): Promise<void> {
    if (!item.mask) throw new Error(`frame ${item.result.frame.id}: a sink that needsMask got none`);
    this.items.push({ result: item.result, mask: item.mask });
  }
  async close(): Promise<void> {}
}

async function reference(session: ort.InferenceSession, model: LoadedModel, id: string, bytes: Uint8Array, width: number, height: number, fit: 'stretch' | 'letterbox'): Promise<ReferenceSummary> {
  const decoded = decodeJpegFrame({ id, data: bytes, width, height }, model);
  const x = preprocessRgb(decoded, { width: model.width, height: model.height }, fit);
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, model.height, model.width]) });
  return summarize(out[session.outputNames[0]].data as Float32Array, model, { width, height }, {
    threshold: model.threshold,
    contours: true,
    rle: true,
    letterbox: fit === 'letterbox' ? letterboxGeometry(decoded.width, decoded.height, model.width, model.height) : undefined,
  });
}

t.test('the decode scale: TS definition, native decoder and the examples agree', { skip: nativeSkip }, async (t) => {
  t.equal(jpegDecodeScale(1920, 1080, 256, 256), 2, '1080p -> 480x270 for a 256x256 model');
  t.same(jpegDecodedSize(1920, 1080, 256, 256), { width: 480, height: 270 });
  t.same(jpegDecodedSize(1366, 768, 256, 256), { width: 513, height: 288 }, '3/8, rounded up as TJSCALED does');
  t.same(jpegDecodedSize(200, 100, 256, 256), { width: 200, height: 100 }, 'smaller than the model: full size');
  for (const [w, h] of [...SIZES, [1920, 1080], [97, 301]] as [number, number][]) {
    const j = encodeJpeg(new Uint8Array(w * h * 3).fill(128), w, h);
    const d = binding!.decodeJpeg(j, w, h, 256, 256);
    same(t, [d.width, d.height], Object.values(jpegDecodedSize(w, h, 256, 256)), `${w}x${h}`);
    t.equal(d.data.length, d.width * d.height * 3);
  }
});

t.test('native decode errors: corrupt, cut off, wrong size, not a JPEG', { skip: nativeSkip }, async (t) => {
  const w = 64, h = 48;
  const rgb = new Uint8Array(w * h * 3).map((_, i) => (i * 37) & 255);
  const good = encodeJpeg(rgb, w, h);
  t.throws(() => binding!.decodeJpeg(good.subarray(0, Math.floor(good.length * 0.6)), w, h, 32, 32), { code: 'ERR_JPEG_TRUNCATED', message: /Premature end of JPEG file/ });
  t.throws(() => binding!.decodeJpeg(good, w + 2, h, 32, 32), { code: 'ERR_FRAME_SIZE', message: /announced as 66x48 but its JPEG header says 64x48/ });
  t.throws(() => binding!.decodeJpeg(new Uint8Array([1, 2, 3, 4, 5]), w, h, 32, 32), { code: 'ERR_JPEG_CORRUPT', message: /no SOI marker/ });
  t.throws(() => decodeJpegFrame({ id: 'cam#7', data: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), width: w, height: h }, { width: 32, height: 32 }), { code: 'ERR_JPEG_CORRUPT', frameId: 'cam#7', message: /^frame cam#7: / });
});

t.test('MJPEG file through the fused native path equals the reference path; bad frames are dropped and counted', { skip }, async (t) => {
  const model = loadModel(MODEL_DIR);
  const names = readdirSync(join(KVASIR, 'images')).filter((n) => /\.jpe?g$/i.test(n)).sort().slice(0, SIZES.length);
  const jpegs: { bytes: Uint8Array; width: number; height: number }[] = names.map((n, i) => {
    const [w, h] = SIZES[i];
    const img = resizeRgbBilinear(decodeImage(readFileSync(join(KVASIR, 'images', n)), n), w, h);
    // Chroma 4:4:4 (jpeg-js), 4:2:2 as UVC grabbers send it, and 4:2:0 (libjpeg-turbo).
    const bytes = i === 0 ? encodeJpeg(img.data, w, h) : binding!.encodeJpeg(img.data, w, h, 85, i === 1 ? 422 : 420);
    return { bytes, width: w, height: h };
  });
  // Frame 1: entropy data overwritten with a marker the scan cannot hold; frame 3: cut in the scan
  // and closed with EOI (the reader splits on EOI, so the decoder meets the end mid-scan).
  const corrupt = Uint8Array.from(jpegs[0].bytes);
  const s = scanStart(corrupt);
  corrupt.set([0xff, 0xd3, 0xff, 0xd5, 0x12, 0x34], s + 200);
  const cut = jpegs[1].bytes;
  const truncated = new Uint8Array([...cut.subarray(0, scanStart(cut) + 300), 0xff, 0xd9]);
  const stream = [jpegs[0].bytes, corrupt, jpegs[1].bytes, truncated, jpegs[2].bytes];
  const file = join(tmp.dir, 'kvasir.mjpeg');
  writeFileSync(file, Buffer.concat(stream));

  const refSession = await ort.InferenceSession.create(model.path, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  t.teardown(() => refSession.release());
  for (const fit of ['stretch', 'letterbox'] as const) {
    const { session } = await openSession(model, { threads: 1 });
    t.ok(session instanceof OrtSession, 'the native session: the fused path');
    const sink = new MemorySink();
    const logs: string[] = [];
    const summaries: Summary[] = [];
    const pipeline = new Pipeline({
      createSource: (onDrop) => createReplaySource({ kind: 'file', path: file }, { onDrop }),
      session,
      model,
      sinks: [sink],
      mode: 'backpressure',
      fit,
      postprocess: { contours: true, rle: true },
      log: (l) => logs.push(l),
      onResult: (_r, summary) => summaries.push(summary),
    });
    const report = await pipeline.run();
    session.release();
    t.equal(report.drops.total, 2, `${fit}: two frames dropped ${JSON.stringify(report.drops)}`);
    t.equal(report.drops.byStage.preprocess, 2, 'in the native decode');
    t.ok(Object.keys(report.drops.byReason).every((r) => /^preprocess:ERR_JPEG_(CORRUPT|TRUNCATED)$/.test(r)), JSON.stringify(report.drops.byReason));
    t.match(logs.join('\n'), new RegExp(`drop file:${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}#1 at preprocess \\(ERR_JPEG_`), 'the log names the frame');
    same(t, sink.items.map((i) => i.result.frame.seq), [0, 2, 4], `${fit}: the good frames, in order`);
    for (let k = 0; k < sink.items.length; k++) {
      const { result, mask } = sink.items[k];
      const j = stream[result.frame.seq];
      same(t, [result.frame.format, result.frame.width, result.frame.height], ['MJPEG', SIZES[k][0], SIZES[k][1]]);
      const ref = await reference(refSession, model, result.frame.id, j, result.frame.width, result.frame.height, fit);
      let differ = 0;
      for (let i = 0; i < ref.maskFrame.data.length; i++) if (ref.maskFrame.data[i] !== mask.data[i]) differ++;
      t.equal(differ, 0, `${fit} ${result.frame.width}x${result.frame.height}: frame mask equals the reference pixel for pixel`);
      t.ok(Buffer.from(summaries[k].maskModel.data).equals(Buffer.from(ref.maskModel.data)), `${fit}: model mask equals the reference`);
      t.equal(
        JSON.stringify({ coverage: result.coverage, components: result.components, droppedComponents: result.droppedComponents, contours: result.contours, rle: result.rle }),
        JSON.stringify(summaryJson(ref)),
        `${fit} ${result.frame.width}x${result.frame.height}: coverage ${result.coverage}, components, contours and RLE equal the reference`,
      );
    }
  }
});
