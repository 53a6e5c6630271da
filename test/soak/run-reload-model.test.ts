// `reload-model` over MQTT against a live `lvunet-edge run` (supervisor + worker, real mosquitto):
// unsigned, tampered and self-test-failing bundles are refused while the old model keeps serving;
// good bundles switch the running worker (frames lost counted), survive a worker kill and a new
// run, and rollback returns to the previous bundle.
import t from 'tap';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { generateKeys, loadPrivateKey } from '../../src/fleet/bundles/keys.js';
import { signBundle } from '../../src/fleet/bundles/sign.js';
import type { RunModel } from '../../src/fleet/bundles/golden.js';
import { validateEvent, validateReply, validateResult, type ResultMessage } from '../../src/fleet/schemas.js';
import { buildModelDir, seededModelWeights } from '../../src/model/build.js';
import { goldenImages, ortRunner, serveDir } from '../fleet/bundles/fixtures.js';
import { json, recorder, type Received, type Recorder } from '../fleet/mqtt-helpers.js';
import { findMosquitto, startBroker } from '../helpers/mosquitto.js';
import { KVASIR, REPO_ROOT } from '../helpers/paths.js';
import { ensureStopped, startRun, stateDir } from '../integration/run-helpers.js';
import { requireShared } from '../helpers/shared-data.js';

requireShared(KVASIR);

const CRASH_HOOK = pathToFileURL(join(REPO_ROOT, 'test', 'helpers', 'worker-crash-hook.mjs')).href;

const DEVICE = 'cart-9';

if (!findMosquitto()) {
  // A plan of 0 with a reason is tap's file-level skip: reported as skipped, never as a pass.
  t.plan(0, 'mosquitto is not installed (apt-get install mosquitto)');
} else {
  t.test('reload-model: refusals keep the old model, good bundles switch, survive restarts, roll back', async (t) => {
    const work = stateDir(t, 'reload-work');
    const keys = generateKeys(join(work, 'keys'));
    const otherKeys = generateKeys(join(work, 'other-keys'));
    const images = goldenImages(join(work, 'images'));
    const runner = ortRunner();
    // The demo model is 256x256 from seed 1; these are other models of the same size.
    const mA = join(work, 'mA');
    const mB = join(work, 'mB');
    const mC = join(work, 'mC');
    buildModelDir(seededModelWeights(2), { height: 256, width: 256 }, mA);
    buildModelDir(seededModelWeights(3), { height: 256, width: 256 }, mB);
    // Another input size: frames already preprocessed for the old model cannot go to this one.
    buildModelDir(seededModelWeights(4), { height: 128, width: 128 }, mC);
    const privateKey = loadPrivateKey(keys.privatePath);
    const sign = (modelDir: string, outDir: string, key = privateKey, runModel: RunModel = runner.run) =>
      signBundle({ modelDir, privateKey: key, outDir, goldenDir: images, goldenCount: 2, runModel });
    const bA = join(work, 'bundle-a');
    const bB = join(work, 'bundle-b');
    const vA = (await sign(mA, bA)).version;
    const vB = (await sign(mB, bB)).version;
    const bC = join(work, 'bundle-c');
    const vC = (await sign(mC, bC)).version;
    const fp32Sha = (dir: string): string => {
      const files = (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { files: { file: string; sha256: string }[] }).files;
      const f = files.find((x) => x.file === 'lvunet.fp32.onnx');
      if (!f) throw new Error(`${dir}/manifest.json lists no lvunet.fp32.onnx`);
      return f.sha256;
    };
    const shaA = fp32Sha(mA);
    const shaB = fp32Sha(mB);
    const shaC = fp32Sha(mC);

    const unsigned = join(work, 'unsigned');
    cpSync(bA, unsigned, { recursive: true });
    rmSync(join(unsigned, 'manifest.sig'));
    const tampered = join(work, 'tampered');
    cpSync(bA, tampered, { recursive: true });
    const onnx = readFileSync(join(tampered, 'lvunet.fp32.onnx'));
    onnx[onnx.length - 100] ^= 0xff;
    writeFileSync(join(tampered, 'lvunet.fp32.onnx'), onnx);
    const wrongKey = join(work, 'wrong-key');
    await sign(mA, wrongKey, loadPrivateKey(otherKeys.privatePath));
    // Model A's files, properly signed, with the inverse of its masks as the expected ones: only running it tells.
    const badGolden = join(work, 'bad-golden');
    const inverted: RunModel = async (path, frames, info) =>
      (await runner.run(path, frames, info)).map((m) => ({ ...m, data: m.data.map((v) => (v ? 0 : 1)) }));
    await sign(mA, badGolden, privateKey, inverted);

    const broker = await startBroker({ t });
    const ops = await recorder(broker.url, [`lvunet/${DEVICE}/#`]);
    t.teardown(() => ops.close());
    const state = stateDir(t, 'run-reload');
    const crashFile = join(work, 'crash-drill');
    const p = startRun(['--demo', '--mqtt', broker.url, '--device-id', DEVICE, '--fps', '10', '--bundle-key', keys.publicPath], {
      LVUNET_STATE_DIR: state,
      // The crash drill is a test-only preload (test/helpers/worker-crash-hook.mjs), never in production code.
      LVUNET_TEST_WORKER_CRASH: crashFile,
      NODE_OPTIONS: `--import ${CRASH_HOOK}`,
    });
    t.teardown(() => ensureStopped(p));
    await p.waitStderr(/worker pid (\d+) ready/, 90_000);

    const results = (ms: Received[] = ops.messages): ResultMessage[] =>
      ms.filter((m) => m.topic === `lvunet/${DEVICE}/result`).map((m) => {
        const v = validateResult(json(m));
        if (!v.ok) throw new Error(`invalid result: ${v.errors.join('; ')}`);
        return v.value;
      });
    await ops.until((ms) => results(ms).length >= 3, 'first results', 60_000);
    const demoSha = results()[0].model.sha256;

    const events = (): Record<string, unknown>[] => ops.messages.filter((m) => m.topic === `lvunet/${DEVICE}/event`).map((m) => json(m));
    const reload = async (rec: Recorder, payload: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const id = payload.id as string;
      rec.client.publish(`lvunet/${DEVICE}/cmd/reload-model`, JSON.stringify(payload), { qos: 1 });
      const isReply = (m: Received): boolean => m.topic === `lvunet/${DEVICE}/cmd/reload-model/reply` && json(m).id === id;
      await rec.until((ms) => ms.some(isReply), `reply to ${id}`, 120_000);
      const reply = json(rec.messages.find(isReply) as Received);
      t.ok(validateReply(reply).ok, `${id}: the reply follows its schema`);
      return reply;
    };
    // Results computed after `since` with the given model: the pipeline is serving it.
    const servingAfter = async (since: number, sha: string, what: string): Promise<void> => {
      await ops.until((ms) => results(ms.filter((m) => m.at > since)).some((r) => r.model.sha256 === sha), what, 60_000);
    };

    for (const [id, source, step] of [
      ['bad-unsigned', unsigned, /failed at signature/],
      ['bad-tampered', tampered, /failed at hash \(lvunet\.fp32\.onnx\)/],
      ['bad-key', wrongKey, /failed at signature/],
      ['bad-golden', badGolden, /failed at self-test \(lvunet\.fp32\.onnx\): mean Dice 0\.0000/],
      ['bad-missing', join(work, 'no-such-bundle'), /failed at fetch/],
    ] as const) {
      const sent = Date.now();
      const reply = await reload(ops, { id, path: source });
      t.equal(reply.ok, false, `${id} is refused`);
      t.match(String(reply.error), step, `${id}: the error names the step: ${String(reply.error)}`);
      t.match(String(reply.error), /still serving/, `${id}: and says the old model serves`);
      const ev = events().find((e) => (e.details as { id?: string } | undefined)?.id === id);
      t.ok(ev && validateEvent(ev).ok && ev.type === 'fault' && (ev.details as { kind: string }).kind === 'model-update-failed', `${id}: a fault event says why`);
      await servingAfter(sent, demoSha, `results of the old model after ${id}`);
    }
    t.equal(String(p.stderr().match(/worker pid (\d+) ready/g)?.length), '1', 'the worker survived every refusal');

    // The worker dies (as in a native crash) while self-testing a good bundle: the supervisor
    // answers with an error, restarts the worker on the old model and keeps running.
    writeFileSync(crashFile, 'self-test-model');
    const crashed = await reload(ops, { id: 'crash', path: bA });
    t.equal(crashed.ok, false, 'a worker crash during the self-test fails the update');
    t.match(String(crashed.error), /failed at self-test: the worker exited \(signal SIGKILL\) before answering self-test-model; still serving/);
    const second = await p.waitStderr(/worker pid (\d+) ready[\s\S]*worker pid (\d+) ready/, 60_000);
    const restartedAt = Date.now();
    await servingAfter(restartedAt, demoSha, 'results of the old model from the restarted worker');
    const worker = Number(second[2]);

    // A good bundle switches the running worker: no restart, frames lost counted.
    const sentA = Date.now();
    const okA = await reload(ops, { id: 'good-a', path: bA, sha256: shaA });
    t.equal(okA.ok, true, String(okA.error));
    if (okA.ok !== true) return;
    const rA = okA.result as { version: string; changed: boolean; framesLost: number; model: { sha256: string }; selfTest: { meanDice: number } };
    t.equal(rA.version, vA);
    t.equal(rA.changed, true);
    t.equal(rA.model.sha256, shaA);
    t.equal(rA.selfTest.meanDice, 1, 'the golden frames agree on this device');
    // The worker runs the fused native path: raw frames wait for inference, none is preprocessed for the old model.
    t.equal(rA.framesLost, 0, 'no frame lost during the switch');
    t.comment(`frames lost switching to bundle A: ${rA.framesLost}`);
    const changed = events().find((e) => e.type === 'model-changed' && (e.details as { id?: string }).id === 'good-a');
    t.ok(changed && validateEvent(changed).ok, 'a model-changed event');
    t.equal((changed?.details as { framesLost?: number } | undefined)?.framesLost, rA.framesLost, 'the event carries the frames lost');
    await servingAfter(sentA, shaA, 'results of bundle A');
    t.equal(String(p.stderr().match(/worker pid (\d+) ready/g)?.length), '2', 'switched without restarting the worker');

    // From a URL this time, as a fleet server would offer it.
    const server = await serveDir(bB);
    t.teardown(() => server.close());
    const sentB = Date.now();
    const okB = await reload(ops, { id: 'good-b', url: server.url });
    t.equal(okB.ok, true, String(okB.error));
    t.ok(server.requests.includes('/bundles/b1/lvunet.fp32.onnx'), 'the model file came over HTTP');
    t.equal((okB.result as { version: string }).version, vB);
    t.equal((okB.result as { previous: string }).previous, vA);
    await servingAfter(sentB, shaB, 'results of bundle B');

    // Rollback: back to A, self-tested again.
    const sentBack = Date.now();
    const back = await reload(ops, { id: 'back', rollback: true });
    t.equal(back.ok, true, String(back.error));
    t.equal((back.result as { version: string }).version, vA);
    t.equal((back.result as { cause: string }).cause, 'rollback');
    await servingAfter(sentBack, shaA, 'results of bundle A after the rollback');

    // A crashed worker comes back on the model it was switched to, not the configured one.
    const killedAt = Date.now();
    process.kill(worker, 'SIGKILL');
    await p.waitStderr(/worker pid (\d+) ready[\s\S]*worker pid (\d+) ready[\s\S]*worker pid (\d+) ready/, 60_000);
    await ops.until((ms) => results(ms.filter((m) => m.at > killedAt)).length >= 3, 'results from the restarted worker', 60_000);
    t.ok(results(ops.messages.filter((m) => m.at > killedAt)).every((r) => r.model.sha256 === shaA), 'the restarted worker serves bundle A');

    // A model with another input size, switched while frames flow.
    const sentC = Date.now();
    const okC = await reload(ops, { id: 'good-c', path: bC, precision: 'fp32' });
    t.equal(okC.ok, true, String(okC.error));
    const rC = okC.result as { version: string; framesLost: number };
    t.equal(rC.version, vC);
    t.equal(rC.framesLost, 0, 'no frame lost switching from 256x256 to 128x128');
    t.comment(`frames lost switching to bundle C (another input size): ${rC.framesLost}`);
    await servingAfter(sentC, shaC, 'results of bundle C');

    p.child.kill('SIGTERM');
    t.equal(await p.exited, 0, p.stderr());

    // A new run from the same state serves the installed bundle too.
    const again = startRun(['--demo', '--max-frames', '3'], { LVUNET_STATE_DIR: state });
    t.teardown(() => ensureStopped(again));
    t.equal(await again.exited, 0, again.stderr());
    t.match(again.stderr(), new RegExp(`models: serving installed bundle ${vC}`));
    const lines = again.stdout().trim().split('\n').map((l) => JSON.parse(l) as { model: { sha256: string } });
    t.same(lines.map((l) => l.model.sha256), [shaC, shaC, shaC], 'after a restart the new model serves');
  });
}
