/**
 * A staged rollout of a real signed bundle to 20 devices on a real mosquitto. Each device is a real
 * FleetLink with the supervisor's real ModelUpdater and its own ModelStore (signature, release
 * policy, hashes, current/previous pointers); only its worker process is stood in for, and one
 * device's worker fails the golden-frame self-test. The rollout halts after that device's wave,
 * the device keeps its old model (nothing installed), later waves get nothing, `fleet status`,
 * `fleet status --json` and the fleet page (fed by an in-process ingest) show all of it; the CLI's
 * `--resume` finishes it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { FleetDb } from '../../src/fleet-ops/db/fleet-db.js';
import { openSqlite } from '../../src/fleet-ops/db/sqlite.js';
import { MqttIngest } from '../../src/fleet-ops/ingest/mqtt-ingest.js';
import { IngestWriter } from '../../src/fleet-ops/ingest/writer.js';
import { abortRollout, createRollout, failedStep, runRollout } from '../../src/fleet-ops/rollout/runner.js';
import { parseWaves, planWaves } from '../../src/fleet-ops/rollout/waves.js';
import { CommandClient } from '../../src/fleet-ops/send.js';
import { escapeHtml } from '../../src/fleet-ops/page.js';
import { serveFleet } from '../../src/fleet-ops/serve.js';
import { fleetStatus, statusTable } from '../../src/fleet-ops/status.js';
import { FleetLink } from '../../src/fleet/publisher.js';
import { generateKeys, loadPrivateKey } from '../../src/fleet/bundles/keys.js';
import { signBundle } from '../../src/fleet/bundles/sign.js';
import { ModelStore } from '../../src/fleet/bundles/store.js';
import { buildModelDir, seededModelWeights } from '../../src/model/build.js';
import { ModelUpdater } from '../../src/supervisor/model-update.js';
import { ServingState } from '../../src/supervisor/serving.js';
import { MemoryStore } from '../../src/fleet/queue/memory.js';
import { runCli } from '../helpers/cli.js';
import { CLI } from '../helpers/paths.js';
import { findMosquitto, startBroker } from '../helpers/mosquitto.js';

const OLD = { sha256: 'a'.repeat(64), precision: 'fp32' };
const FAILING = 'sim-03';
const CONFIGURED_MODEL = '/opt/lvunet-edge/models/lvunet.fp32.onnx';

/**
 * One device: a real FleetLink, the supervisor's real ModelUpdater and a real ModelStore (state dir
 * of its own, the bundle's signing key trusted), so reload-model verifies the signature, policy and
 * hashes and installs or keeps pointers exactly as on a device. Only the worker process is stood
 * in for: it "loads" the model, answers the golden-frame self-test (FAILING's fails, as a worker
 * reports a BundleError: details.step 'self-test') and "switches".
 */
async function simulatedDevice(url: string, device: string, stateDir: string, publicKey: string): Promise<{ link: FleetLink; store: ModelStore }> {
  const store = await ModelStore.open({ stateDir, trustedKeys: [publicKey], runModel: () => Promise.reject(new Error('models run in the worker')) });
  const serving = new ServingState({ model: CONFIGURED_MODEL, precision: 'fp32' });
  let model = OLD;
  let loading: { path: string; sha256: string } | undefined;
  const worker = (name: string, args: unknown): Promise<unknown> => {
    const a = args as { path?: string };
    switch (name) {
      case 'prepare-model':
        loading = { path: a.path ?? '', sha256: createHash('sha256').update(readFileSync(a.path ?? '')).digest('hex') };
        return Promise.resolve({});
      case 'self-test-model':
        if (device === FAILING) {
          return Promise.reject(Object.assign(new Error("mean Dice 0.412 is below the bundle's 0.950"), { details: { step: 'self-test', file: 'golden/frame-002.png' } }));
        }
        return Promise.resolve({ meanDice: 0.991, threshold: 0.95, perFrame: [{ image: 'golden/frame-001.png', dice: 0.991 }] });
      case 'commit-model':
        model = { sha256: loading?.sha256 ?? '', precision: 'fp32' };
        return Promise.resolve({ framesLost: 0, switchMs: 2, model: { path: loading?.path, ...model, inputSize: [128, 128], threshold: 0.5 }, providers: { requested: [], active: ['CPUExecutionProvider'], fallbacks: [] }, plan: [] });
      default:
        return Promise.resolve({});
    }
  };
  const link = new FleetLink({
    url,
    device,
    queue: new MemoryStore(),
    versions: { 'lvunet-edge': 'test' },
    reconnectMinMs: 200,
    telemetry: { intervalMs: 200, source: () => ({ fps: 25, latency_ms: { p50: 30, p95: 35, p99: 40 }, drops: 0, provider: 'CPUExecutionProvider', model }) },
  });
  const updater = new ModelUpdater({
    store,
    stateDir,
    trustedKeys: [publicKey],
    serving,
    ask: worker,
    killWorker: () => false,
    log: () => {},
    emitEvent: (type, severity, message, details) => link.publishEvent(type, severity, message, details),
  });
  link.onCommand('reload-model', (c) => updater.reload(c), { timeoutMs: 60_000 });
  link.start();
  return { link, store };
}

/** A signed bundle (release 2.0.0) of a seeded 128x128 LV-UNet, and the public key to trust. */
async function signedBundle(dir: string): Promise<{ bundle: string; publicKey: string }> {
  const modelDir = path.join(dir, 'model');
  buildModelDir(seededModelWeights(1), { height: 128, width: 128 }, modelDir);
  const keys = generateKeys(await mkdtemp(path.join(dir, 'keys-')));
  const bundle = path.join(dir, 'bundle-2.0.0');
  await signBundle({ modelDir, privateKey: loadPrivateKey(keys.privatePath), outDir: bundle, release: { version: '2.0.0' } });
  return { bundle, publicKey: keys.publicPath };
}

t.test('waves: cumulative shares of the sorted group', async (t) => {
  t.same(parseWaves('1,10,50,100%'), [0.01, 0.1, 0.5, 1]);
  t.throws(() => parseWaves('10,5,100'), /must grow/);
  t.throws(() => parseWaves('10,50'), /last wave must be 100/);
  t.throws(() => parseWaves('0,100'), /not a percentage/);
  const plan = planWaves(Array.from({ length: 20 }, (_, i) => `d${String(i).padStart(2, '0')}`), [0.01, 0.1, 0.5, 1]);
  t.same([0, 1, 2, 3].map((w) => plan.filter((p) => p.wave === w).length), [1, 1, 8, 10], '20 devices at 1,10,50,100%');
  t.equal(failedStep('model install x failed at self-test (a): b'), 'self-test');
  // The step is read from the device's own error text (src/supervisor/model-update.ts).
  const updater = new ModelUpdater({
    store: undefined,
    stateDir: '/var/lib/lvunet-edge',
    trustedKeys: [],
    serving: new ServingState({ model: '/opt/m.onnx' }),
    ask: () => Promise.reject(new Error('no worker')),
    killWorker: () => false,
    log: () => {},
    emitEvent: () => {},
  });
  const refused = await updater.reload({ id: 'r1', url: 'https://b.example/' }).then(
    () => '',
    (err: Error) => err.message,
  );
  t.equal(failedStep(refused), 'unavailable', `parsed from the supervisor's message: ${refused}`);
});

t.test('rollout to 20 devices halts at the wave where one fails its self-test', { skip: findMosquitto() ? undefined : 'mosquitto not installed' }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lvunet-rollout-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const broker = await startBroker({ t, persistence: false });
  const dbFile = path.join(dir, 'fleet.db');
  const db = await FleetDb.open(openSqlite(dbFile));
  t.teardown(() => db.close());
  const writer = new IngestWriter(db, { maxDelayMs: 10 });
  const ingest = new MqttIngest({ url: broker.url, clientId: 'ingest-test', writer });
  await ingest.start();
  t.teardown(() => ingest.close());
  const devices = Array.from({ length: 20 }, (_, i) => `sim-${String(i).padStart(2, '0')}`);
  const { bundle, publicKey } = await signedBundle(dir);
  const sims = await Promise.all(devices.map((d) => simulatedDevice(broker.url, d, path.join(dir, 'state', d), publicKey)));
  const links = sims.map((s) => s.link);
  t.teardown(() => Promise.all(links.map((l) => l.close(0))));
  await Promise.all(links.map((l) => l.waitFor('online', 20_000)));
  await db.addToGroup('ward-3', devices);
  const client = await CommandClient.connect({ url: broker.url, clientId: 'operator-test' }, { db });
  t.teardown(() => client.close());

  // 5,25,100%: waves of 1, 4 and 15 devices; sim-03 is in wave 2.
  const id = await createRollout(db, { bundle, group: 'ward-3', waves: parseWaves('5,25,100'), maxFailures: 0.5, replyTimeoutMs: 30_000 });
  const lines: string[] = [];
  const halted = await runRollout(db, client, id, (l) => lines.push(l));
  t.equal(halted.state, 'halted', 'halted');
  t.equal(halted.wave, 1, 'at wave 2');
  t.match(halted.reason, /self-test failed on sim-03 in wave 2/);
  const states = new Map((await db.rolloutDevices(id)).map((d) => [d.device, d]));
  t.same(['sim-00', 'sim-01', 'sim-02', 'sim-04'].map((d) => states.get(d)?.state), ['ok', 'ok', 'ok', 'ok'], 'waves 1-2 switched');
  t.equal(states.get(FAILING)?.state, 'failed');
  t.match(states.get(FAILING)?.detail, /^model install .* failed at self-test \(golden\/frame-002\.png\): mean Dice 0\.412 .*; still serving \/opt\/lvunet-edge\/models\/lvunet\.fp32\.onnx$/);
  t.equal(sims[3].store.current(), undefined, 'the failing device installed nothing: its store has no current bundle');
  t.equal(sims[1].store.current()?.manifest.release?.version, '2.0.0', 'a device of wave 2 serves the bundle');
  t.equal(sims[10].store.current(), undefined, 'wave 3 untouched');
  const modelSha = createHash('sha256')
    .update(readFileSync(sims[1].store.current()?.modelPath ?? ''))
    .digest('hex');
  t.ok(devices.slice(5).every((d) => states.get(d)?.state === 'pending'), 'wave 3 never sent');
  const sentCommands = await db.sql.all<{ n: number }>("SELECT COUNT(*) AS n FROM commands WHERE name = 'reload-model'");
  t.equal(Number(sentCommands[0].n), 5, 'reload-model went to the 5 devices of waves 1-2 only');

  // What `fleet status` shows once the ingest has the devices' telemetry and events.
  const deadline = Date.now() + 15_000;
  let status = await fleetStatus(db);
  const switched = (s: typeof status): boolean => s.filter((r) => r.model.sha256 === modelSha).length === 4 && s.some((r) => r.lastError !== null);
  while (!switched(status) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    status = await fleetStatus(db);
  }
  const row = new Map(status.map((r) => [r.device, r]));
  t.equal(status.length, 20);
  t.ok(status.every((r) => r.state === 'online'), 'every device online (birth)');
  t.match(row.get('sim-01')?.model, { version: '2.0.0', sha256: modelSha, precision: 'fp32' }, 'switched device on the new model');
  t.same(row.get(FAILING)?.model, { name: null, version: null, sha256: OLD.sha256, precision: 'fp32' }, 'the failing device stays on its old model');
  t.match(row.get(FAILING)?.lastError?.message, /failed at self-test/);
  t.same(row.get(FAILING)?.rollout, { id, wave: 1, state: 'failed', detail: states.get(FAILING)?.detail ?? null });
  t.equal(row.get('sim-10')?.model.sha256, OLD.sha256, 'later waves untouched');
  t.equal(row.get('sim-10')?.rollout?.state, 'pending');
  t.match(statusTable(status), /sim-03 +online .*failed at self-test/);
  await writer.flush();
  const cli = runCli(['fleet', 'status', '--db', `sqlite:${dbFile}`, '--json'], 30_000);
  t.equal(cli.status, 0, cli.stderr);
  const shown = JSON.parse(cli.stdout) as { devices: { device: string; rollout: { state: string } | null }[]; rollouts: { id: string; state: string; reason: string }[] };
  t.equal(shown.devices.find((d) => d.device === FAILING)?.rollout?.state, 'failed', 'fleet status --json: the failed device');
  t.match(shown.rollouts.find((r) => r.id === id), { state: 'halted', reason: /self-test failed on sim-03/ }, 'fleet status --json: the halted rollout');

  // The CLI on the same database and broker (spawned asynchronously: the devices live in this process).
  const cliAsync = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const r = await promisify(execFile)(process.execPath, [CLI, ...args], { timeout: 60_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  const db2 = `sqlite:${dbFile}`;
  const groups = await cliAsync(['fleet', 'group', 'list', '--db', db2]);
  t.match(groups.stdout, /^ward-3: sim-00 sim-01 .* sim-19$/m, 'fleet group list');
  const sent = await cliAsync(['fleet', 'send', 'status', '--group', 'ward-3', '--mqtt', broker.url, '--client-id', 'operator-cli', '--db', db2, '--timeout-s', '20', '--json']);
  t.equal(sent.code, 0, sent.stderr);
  const replies = JSON.parse(sent.stdout) as { device: string; reply?: { ok: boolean; result?: { state?: string } } }[];
  t.equal(replies.length, 20);
  t.ok(replies.every((r) => r.reply?.ok === true && r.reply.result?.state === 'online'), 'fleet send status: every device of the group replied');
  const missing = await cliAsync(['fleet', 'send', 'status', '--device', 'sim-404', '--mqtt', broker.url, '--client-id', 'operator-cli', '--db', db2, '--timeout-s', '1']);
  t.equal(missing.code, 1);
  t.match(missing.stdout, /sim-404: TIMEOUT no reply/);
  t.match(missing.stderr, /1 device\(s\) failed, refused or did not answer/);
  const list = await cliAsync(['fleet', 'rollout', '--list', '--db', db2]);
  t.match(list.stdout, new RegExp(`${id}  halted  group ward-3  wave 2/3`));

  // The fleet page shows the same.
  const server = await serveFleet(db, { port: 0 });
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const html = await (await fetch(`${base}/`)).text();
  t.match(html, /Fleet: 20 device\(s\), 20 online/);
  t.match(html, new RegExp(`${id}: halted`));
  t.match(html, /<li class="failed">sim-03: failed – model install .* failed at self-test/);
  t.match(html, /<li class="pending">sim-19: pending<\/li>/);
  const json = (await (await fetch(`${base}/status.json`)).json()) as { devices: unknown[]; rollouts: { rollout: { state: string } }[] };
  t.equal(json.devices.length, 20);
  t.equal(json.rollouts[0].rollout.state, 'halted');
  t.equal((await fetch(`${base}/nope`)).status, 404);
  t.equal(escapeHtml(`<script>alert("x")</script>&'`), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;', 'device text is escaped');

  // --resume: the failed device stays failed, wave 3 goes out, the rollout completes.
  const resumed = await cliAsync(['fleet', 'rollout', '--resume', id, '--mqtt', broker.url, '--client-id', 'operator-cli', '--db', db2]);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stderr, /resuming at wave 2 \(halted: self-test failed on sim-03/);
  t.match(resumed.stdout, new RegExp(`rollout ${id}: done`));
  t.equal((await db.rollout(id))?.state, 'done');
  const after = await db.rolloutDevices(id);
  t.equal(after.filter((d) => d.state === 'ok').length, 19);
  t.equal(after.find((d) => d.device === FAILING)?.state, 'failed', 'not retried on resume');

  // --abort: a rollout marked aborted sends nothing.
  const other = await createRollout(db, { bundle: '/opt/bundles/3.0.0', group: 'ward-3', waves: [1], maxFailures: 0, replyTimeoutMs: 5_000 });
  await abortRollout(db, other);
  t.equal((await runRollout(db, client, other)).state, 'aborted');
  t.ok((await db.rolloutDevices(other)).every((d) => d.state === 'pending'), 'nothing sent after abort');
  await t.rejects(abortRollout(db, id), /already done/);
});
