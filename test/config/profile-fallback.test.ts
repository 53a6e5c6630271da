/**
 * Every shipped provider profile, applied for real on this machine (onnxruntime-node's CPU build:
 * TensorRT and CUDA are listed but their libraries are absent; QNN, VSINPU, ACL and OpenVINO are not
 * in the build): the session still starts on CPU with each missing provider in the fallback report,
 * and strict mode refuses instead of crashing.
 */
import t from 'tap';
import { join } from 'node:path';
import { listProfiles, loadConfig, sessionOptionsFromConfig } from '../../src/config/index.js';
import { buildModelDir, seededModelWeights } from '../../src/model/build.js';
import { loadNativeBinding } from '../../src/runtime/native/binding.js';
import { OnnxRuntime } from '../../src/runtime/native/runtime.js';

let runtime: OnnxRuntime;
try {
  loadNativeBinding();
  runtime = OnnxRuntime.load();
} catch (err) {
  t.fail(`native addon or ONNX Runtime unavailable: ${(err as Error).message}`);
  process.exit(1);
}

const dir = t.testdir();
const { dir: modelDir } = buildModelDir(seededModelWeights(3), { height: 128, width: 128 }, join(dir, 'm'));
const model = join(modelDir, 'lvunet.fp32.onnx');

for (const profile of listProfiles()) {
  t.test(`profile ${profile}: falls back to CPU with reasons, strict refuses`, async (t) => {
    const { config } = loadConfig({ path: null, optional: true, env: {}, cli: { runtime: { profile }, state_dir: join(dir, 'state') } });
    const options = sessionOptionsFromConfig(config, { modelSha256: 'ab'.repeat(32), ortVersion: runtime.info.version });
    const wanted = (options.providers ?? []).map((p) => (typeof p === 'string' ? p : p.name)).filter((n) => n !== 'CPU');
    const session = await runtime.createSession(model, { ...options, strict: false });
    try {
      t.match(session.providers.active.at(-1), /^CPU/, `CPU serves as the last resort (active: ${session.providers.active.join(', ')})`);
      for (const name of wanted) {
        const fb = session.providers.fallbacks.find((f) => f.provider === name);
        t.ok(fb, `${name} is reported as a fallback`);
        t.ok((fb?.reason ?? '').length > 10, `${name}: a reason is given (${(fb?.reason ?? '').slice(0, 80)}…)`);
      }
      const out = await session.run(new Float32Array(3 * 128 * 128), [1, 3, 128, 128]);
      t.equal(out.data.length, 128 * 128, 'the model runs');
    } finally {
      session.release();
    }
    if (wanted.length > 0) {
      await t.rejects(runtime.createSession(model, { ...options, strict: true }), 'strict mode refuses to start without the first provider');
    }
  });
}
