// Runs inside the arm64 Node (under qemu, or on a real board): the project's own TS runtime layer
// (compiled), the arm64 addon and onnxruntime-node's arm64 library. Reads raw frames, writes logits.
//   node test/arm64/infer.mjs MODEL.onnx OUT_DIR FRAME.rgb:W:H ...
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { OnnxRuntime, preprocessFrame } from '../../dist/src/runtime/native/runtime.js';

const [model, outDir, ...frames] = process.argv.slice(2);
const ort = OnnxRuntime.load();
console.log(`arch ${process.arch}, node ${process.version}, ONNX Runtime ${ort.info.version} from ${ort.info.path}`);
console.log(`providers: ${ort.availableProviders().join(', ')}`);
const session = await ort.createSession(model, { intraOpThreads: 1 });
for (const spec of frames) {
  const [file, w, h] = spec.split(':');
  const rgb = new Uint8Array(readFileSync(file));
  const input = preprocessFrame(rgb, { format: 'RGB24', width: Number(w), height: Number(h) }, { width: 256, height: 256 }, 'stretch');
  writeFileSync(join(outDir, `${basename(file)}.input.f32`), Buffer.from(input.buffer));
  const t0 = Date.now();
  const out = await session.run(input, [1, 3, 256, 256]);
  writeFileSync(join(outDir, `${basename(file)}.logits.f32`), Buffer.from(out.data.buffer));
  console.log(`${basename(file)}: ${Date.now() - t0} ms`);
}
session.release();
