// The broker goes away for ~5 s in the middle of a run and the worker is killed once in the same
// run: every result the run produced still reaches the operator (QoS 1 through the disk queue),
// counted by seq, none lost.
import t from 'tap';

import { validateResult } from '../../src/fleet/schemas.js';
import { json, recorder, sleep } from '../fleet/mqtt-helpers.js';
import { findMosquitto, startBroker } from '../helpers/mosquitto.js';
import { ensureStopped, startRun, stateDir } from './run-helpers.js';

const DEVICE = 'cart-7';
const FRAMES = 150;

if (!findMosquitto()) {
  t.comment('skipped: mosquitto is not installed');
  t.pass('nothing to test without a broker');
} else {
  t.test('broker outage + worker kill: every result delivered', async (t) => {
    const broker = await startBroker({ t });
    // A persistent session, so what the broker takes while this subscriber is reconnecting is kept for it.
    const ops = await recorder(broker.url, [`lvunet/${DEVICE}/result`, `lvunet/${DEVICE}/event`], { clean: false, clientId: 'ops-outage' });
    t.teardown(() => ops.close());
    const state = stateDir(t, 'run-outage');
    const p = startRun(['--demo', '--mqtt', broker.url, '--device-id', DEVICE, '--fps', '15', '--max-frames', String(FRAMES)], { LVUNET_STATE_DIR: state });
    t.teardown(() => ensureStopped(p));
    const ready = await p.waitStderr(/worker pid (\d+) ready/, 60_000);
    const results = (): number[] => ops.messages.filter((m) => m.topic.endsWith('/result')).map((m) => json(m).seq as number);
    await ops.until(() => results().length >= 20, '20 results before the outage');

    await broker.stop();
    await sleep(1500);
    process.kill(Number(ready[1]), 'SIGKILL');
    await sleep(3500);
    await broker.start();

    t.equal(await p.exited, 0, p.stderr());
    const lines = p.stdout().trim().split('\n').filter((l) => l.length > 0);
    t.equal(lines.length, FRAMES, 'the run produced every frame despite the restart');
    t.match(p.stderr(), /worker died \(signal SIGKILL\)/);
    await ops.until(() => new Set(results()).size >= FRAMES, `all ${FRAMES} results`, 30_000);
    const seqs = [...new Set(results())].sort((a, b) => a - b);
    t.same(seqs, Array.from({ length: FRAMES }, (_, i) => i), 'every seq from 0, none lost');
    const bad = ops.messages.filter((m) => m.topic.endsWith('/result')).map((m) => validateResult(json(m))).filter((v) => !v.ok);
    t.equal(bad.length, 0, 'every result valid');
    await ops.until((ms) => ms.some((m) => m.topic.endsWith('/event') && json(m).type === 'restart'), 'the restart event, queued through the outage');
  });
}
