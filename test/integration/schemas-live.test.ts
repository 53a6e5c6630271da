// The published JSON Schema files (docs/schemas/) validate what a real `lvunet-edge run --demo
// --mqtt` puts on a real mosquitto and on stdout, checked by an independent validator (Ajv, strict
// mode) rather than the device's own TypeBox code: what a fleet consumer would do.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { json, recorder, type Received } from '../fleet/mqtt-helpers.js';
import { findMosquitto, startBroker } from '../helpers/mosquitto.js';
import { ensureStopped, startRun, stateDir } from './run-helpers.js';
import { same } from '../helpers/same.js';
import { REPO_ROOT } from '../helpers/paths.js';

const DEVICE = 'cart-schema';
const SCHEMAS = join(REPO_ROOT, 'docs', 'schemas');

if (!findMosquitto()) {
  t.plan(0, 'mosquitto is not installed (apt-get install mosquitto)');
} else {
  const ajv = new Ajv({ strict: true, allErrors: true });
  const published = (file: string): ValidateFunction => ajv.compile(JSON.parse(readFileSync(join(SCHEMAS, file), 'utf8')) as object);
  const byTopic: Record<string, ValidateFunction> = {
    result: published('result-message.json'),
    telemetry: published('telemetry.json'),
    status: published('status.json'),
    event: published('event.json'),
  };
  const reply = published('reply.json');
  const line = published('result.json');

  /** The Ajv verdict on one message, with its errors when it fails. */
  const check = (validate: ValidateFunction, value: unknown): string => (validate(value) ? 'ok' : ajv.errorsText(validate.errors));

  t.test('results, status, telemetry, events and command replies of a live run match docs/schemas/', async (t) => {
    const broker = await startBroker({ t });
    const ops = await recorder(broker.url, [`lvunet/${DEVICE}/#`]);
    t.teardown(() => ops.close());
    const p = startRun(['--demo', '--mqtt', broker.url, '--device-id', DEVICE, '--fps', '20', '--rle', '--contours'], {
      LVUNET_STATE_DIR: stateDir(t, 'schemas-live'),
      LVUNET_TELEMETRY_INTERVAL_S: '1',
    });
    t.teardown(() => ensureStopped(p));
    await p.waitStderr(/worker pid (\d+) ready/, 60_000);
    const on = (ms: Received[], kind: string): Received[] => ms.filter((m) => m.topic === `lvunet/${DEVICE}/${kind}`);
    await ops
      .until((ms) => on(ms, 'result').length >= 5 && on(ms, 'telemetry').length >= 1, 'results and telemetry', 30_000)
      .catch((err: Error) => {
        const topics = new Map<string, number>();
        for (const m of ops.messages) topics.set(m.topic, (topics.get(m.topic) ?? 0) + 1);
        throw new Error(`${err.message}; received ${JSON.stringify(Object.fromEntries(topics))}; stderr: ${p.stderr().slice(-2000)}`);
      });

    const commands: Array<[string, object, boolean]> = [
      ['status', { id: 's-1' }, true],
      ['set-threshold', { id: 't-1', value: 0.4 }, true],
      ['set-threshold', { id: 't-2', value: 'high' }, false],
      ['reload-model', { id: 'r-1', rollback: true, path: '/x' }, false],
    ];
    for (const [name, payload] of commands) ops.client.publish(`lvunet/${DEVICE}/cmd/${name}`, JSON.stringify(payload), { qos: 1 });
    await ops.until((ms) => ms.filter((m) => m.topic.endsWith('/reply')).length >= commands.length, 'every reply');

    // A worker killed with SIGKILL is replaced and the supervisor publishes a `restart` event.
    const status = json(ops.messages.find((m) => m.topic === `lvunet/${DEVICE}/cmd/status/reply`) as Received);
    process.kill((status.result as { worker: { pid: number } }).worker.pid, 'SIGKILL');
    await ops.until((ms) => on(ms, 'event').some((m) => json(m).type === 'restart'), 'a restart event', 30_000);

    p.child.kill('SIGTERM');
    t.equal(await p.exited, 0, p.stderr());
    await ops.until((ms) => on(ms, 'status').some((m) => json(m).state === 'offline'), 'offline status');

    for (const kind of Object.keys(byTopic)) {
      const messages = on(ops.messages, kind);
      t.ok(messages.length > 0, `${kind}: ${messages.length} message(s) received`);
      const failures = messages.map((m) => check(byTopic[kind], json(m))).filter((v) => v !== 'ok');
      t.same(failures, [], `every ${kind} message matches ${kind === 'result' ? 'result-message' : kind}.json`);
    }
    const replies = ops.messages.filter((m) => m.topic.endsWith('/reply')).map((m) => json(m));
    for (const [name, payload, ok] of commands) {
      const r = replies.find((x) => x.id === (payload as { id: string }).id);
      t.ok(r, `a reply to ${name}`);
      if (!r) continue;
      t.equal(r.ok, ok, `${name} ${JSON.stringify(payload)}: ${String(r.error ?? 'ok')}`);
      t.equal(check(reply, r), 'ok', `the ${name} reply matches reply.json`);
    }
    t.match(String(replies.find((x) => x.id === 't-2')?.error), /value: expected a finite number >= 0 and <= 1, got "high"/);
    t.match(String(replies.find((x) => x.id === 'r-1')?.error), /exactly one of path, url or rollback is required \(got path, rollback\)/);

    const lines = p.stdout().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
    t.ok(lines.length >= 5, `${lines.length} result lines on stdout`);
    t.same(lines.map((l) => check(line, l)).filter((v) => v !== 'ok'), [], 'every stdout line matches result.json');

    // The RLE is COCO's: size [height, width] of the frame, runs covering it.
    const first = json(on(ops.messages, 'result')[0]) as { frame: { width: number; height: number }; rle: { size: [number, number]; counts: number[] | string } };
    same(t, first.rle.size, [first.frame.height, first.frame.width], 'rle.size is [height, width]');
    if (Array.isArray(first.rle.counts)) t.equal(first.rle.counts.reduce((a, b) => a + b, 0), first.frame.width * first.frame.height);

    // And the files are not vacuous: a result with a mistyped field fails them.
    t.not(check(byTopic.result, { ...first, coverage: 'most' }), 'ok');
    t.not(check(byTopic.result, { ...first, rle: { ...first.rle, size: [first.frame.width] } }), 'ok');
  });
}
