// `lvunet-edge run` against real mosquitto brokers configured like deploy/ (issue 18, findings 1
// and 2): a snapshot of 1280x720 frames under the 1 MiB limit, and a device id that is not the
// certificate's.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { json, recorder } from '../fleet/mqtt-helpers.js';
import { findMosquitto, startBroker, startDeployTlsBroker } from '../helpers/mosquitto.js';
import { ensureStopped, startRun, stateDir } from '../integration/run-helpers.js';

const LIMIT = 1048576;

if (!findMosquitto()) {
  t.plan(0, 'skipped: mosquitto is not installed');
} else {
  t.test('a snapshot of 1280x720 frames fits the 1 MiB broker limit and results keep flowing (finding 1)', async (t) => {
    const broker = await startBroker({ t, extraConfig: `message_size_limit ${LIMIT}` });
    const device = 'cart-snap';
    const ops = await recorder(broker.url, [`lvunet/${device}/#`], { protocolVersion: 5 });
    t.teardown(() => ops.close());
    const state = stateDir(t, 'run-snap');
    // Camera noise does not compress: 4 raw 1280x720 RGB frames of it, looped. As PNG base64 one is
    // 3.7 MB, the figure.
    const frames = path.join(state, 'noise.rgb');
    writeFileSync(frames, randomBytes(4 * 1280 * 720 * 3));
    const p = startRun(
      ['--demo', '--source', `file:${frames}`, '--width', '1280', '--height', '720', '--format', 'rgb24', '--loops', '1000', '--fps', '8', '--mqtt', broker.url, '--device-id', device, '--sink', 'none'],
      { LVUNET_STATE_DIR: state },
    );
    t.teardown(() => ensureStopped(p));
    const results = (): number => ops.messages.filter((m) => m.topic.endsWith('/result')).length;
    await ops.until(() => results() >= 5, '5 results', 90_000);
    await ops.client.publishAsync(`lvunet/${device}/cmd/snapshot`, JSON.stringify({ id: 'snap-1' }), { qos: 1 });
    await ops.until((m) => m.some((x) => x.topic.endsWith('/snapshot/reply')), 'the snapshot reply', 30_000);
    const reply = ops.messages.find((x) => x.topic.endsWith('/snapshot/reply'))!;
    const body = json(reply);
    t.equal(body.ok, true, String(body.error ?? ''));
    const result = body.result as Record<string, unknown>;
    t.ok(reply.payload.length + reply.topic.length <= LIMIT, `reply of ${reply.payload.length} bytes fits ${LIMIT}`);
    t.equal(result.sourceWidth, 1280);
    t.equal(result.sourceHeight, 720);
    t.ok(typeof result.scale === 'number' && result.scale < 1, `scaled by ${String(result.scale)}`);
    t.ok(Buffer.from(String(result.png), 'base64').subarray(1, 4).toString() === 'PNG', 'a PNG');
    // Before the fix the 3.7 MB reply made the broker drop the connection and the client resend it
    // forever: no result got through after it.
    const after = results();
    await ops.until(() => results() >= after + 20, '20 more results after the snapshot', 30_000);
    p.child.kill('SIGTERM');
    t.equal(await p.exited, 0, p.stderr().slice(-3000));
    t.match(p.stderr(), /mqtt: all \d+ result\(s\) delivered/);
    t.notMatch(p.stderr(), /mqtt: offline/, 'never disconnected');
  });

  t.test('deploy mTLS broker: a device id that is not the certificate CN stops the run at start, naming both (finding 2)', async (t) => {
    const tmp = stateDir(t, 'run-mtls');
    const { broker, pki } = await startDeployTlsBroker(t, tmp, ['cart-a'], `message_size_limit ${LIMIT}\nuse_username_as_clientid true`);
    const env = {
      LVUNET_STATE_DIR: path.join(tmp, 'state'),
      LVUNET_MQTT_TLS_CA: pki('cart-a').ca,
      LVUNET_MQTT_TLS_CERT: pki('cart-a').cert,
      LVUNET_MQTT_TLS_KEY: pki('cart-a').key,
    };
    const wrong = startRun(['--demo', '--max-frames', '30', '--mqtt', broker.url, '--device-id', 'cart-b', '--sink', 'none'], env);
    t.teardown(() => ensureStopped(wrong));
    t.not(await wrong.exited, 0, 'the run fails instead of "delivering" into refusals');
    t.match(wrong.stderr(), /device id "cart-b" does not match the client certificate .*cart-a\.crt \(CN "cart-a"\)/);
    t.notMatch(wrong.stderr(), /all \d+ result\(s\) delivered/);

    // Without device.id the certificate names the device, said out loud; all 30 results arrive.
    const ops = await recorder(broker.url, ['lvunet/#'], {
      ca: readFileSync(pki('operator').ca),
      cert: readFileSync(pki('operator').cert),
      key: readFileSync(pki('operator').key),
      protocolVersion: 5,
    });
    t.teardown(() => ops.close());
    const right = startRun(['--demo', '--max-frames', '30', '--mqtt', broker.url, '--sink', 'none'], env);
    t.teardown(() => ensureStopped(right));
    t.equal(await right.exited, 0, right.stderr().slice(-3000));
    t.match(right.stderr(), /device\.id is not set: using "cart-a", the CN of the client certificate/);
    await ops.until((m) => m.filter((x) => x.topic === 'lvunet/cart-a/result').length >= 30, '30 results', 20_000);
    t.match(right.stderr(), /mqtt: all 30 result\(s\) delivered/);
  });

  t.test('results the broker refuses are never reported delivered: they stay queued and go out on the next start (finding 2)', async (t) => {
    const tmp = stateDir(t, 'run-refused');
    const acl = path.join(tmp, 'acl');
    const device = 'cart-denied';
    const allow = (result: boolean): void =>
      writeFileSync(acl, [`topic ${result ? 'readwrite' : 'read'} lvunet/${device}/result`, 'topic readwrite lvunet/+/status', 'topic readwrite lvunet/+/event', 'topic readwrite lvunet/+/telemetry', 'topic readwrite lvunet/+/cmd/#', 'user ops', 'topic read lvunet/#', ''].join('\n'));
    allow(false);
    const broker = await startBroker({ t, aclFile: acl });
    const env = { LVUNET_STATE_DIR: path.join(tmp, 'state') };
    const first = startRun(['--demo', '--max-frames', '30', '--mqtt', broker.url, '--device-id', device, '--sink', 'none'], env);
    t.teardown(() => ensureStopped(first));
    t.equal(await first.exited, 0, first.stderr().slice(-3000));
    t.notMatch(first.stderr(), /all \d+ result\(s\) delivered/, 'before the fix: "all 30 result(s) delivered"');
    t.match(first.stderr(), /REFUSED by the broker: message \d+ on lvunet\/cart-denied\/result .*0x87/);
    t.match(first.stderr(), /mqtt: NOT all results delivered: .* 30 still queued for the next start/);
    t.match(first.stderr(), /the broker refused \d+ publish/);

    // The operator fixes the ACL: the next start delivers the 30 queued results first.
    allow(true);
    process.kill(broker.pid!, 'SIGHUP');
    const ops = await recorder(broker.url, [`lvunet/${device}/result`], { username: 'ops' });
    t.teardown(() => ops.close());
    const second = startRun(['--demo', '--max-frames', '5', '--mqtt', broker.url, '--device-id', device, '--sink', 'none'], env);
    t.teardown(() => ensureStopped(second));
    t.equal(await second.exited, 0, second.stderr().slice(-3000));
    await ops.until((m) => new Set(m.map((x) => json(x).seq)).size >= 35, '30 + 5 results', 20_000);
    t.match(second.stderr(), /mqtt: all 5 result\(s\) delivered/);
  });

  t.test('a full disk while the broker is away: the run never crashes, every loss is counted (finding 3)', async (t) => {
    if (process.getuid?.() !== 0) {
      t.plan(0, 'skipped: needs root to mount a small tmpfs');
      return;
    }
    const state = stateDir(t, 'run-full');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', state]);
    } catch (err) {
      t.plan(0, `skipped: cannot mount a tmpfs: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    t.teardown(() => execFileSync('umount', [state]));
    const broker = await startBroker({ t });
    await broker.stop();
    const device = 'cart-full';
    const frames = 400;
    const p = startRun(['--demo', '--max-frames', String(frames), '--rle', '--contours', '--fps', '60', '--mqtt', broker.url, '--device-id', device, '--sink', 'none'], { LVUNET_STATE_DIR: state });
    t.teardown(() => ensureStopped(p));
    // Generous: the disk fills after ~100 results, which takes 10-30 s alone but minutes on a loaded 2-core machine.
    await p.waitStderr(/mqtt queue: LOST 1 message\(s\): queue write failed .*ENOSPC/, 200_000);
    await broker.start();
    const ops = await recorder(broker.url, [`lvunet/${device}/result`]);
    t.teardown(() => ops.close());
    t.equal(await p.exited, 0, `the run finishes normally:\n${p.stderr().slice(-3000)}`);
    t.notMatch(p.stderr(), /ENOSPC[^\n]*\n\s+at /, 'no stack trace: nothing escaped');
    const summary = /LOST (\d+) message\(s\): 0 over the broker size limit, (\d+) dropped by the queue \(bounds or disk writes\), 0 damaged on disk, (\d+) without a seq number/.exec(p.stderr());
    t.ok(summary, `the summary counts the losses:\n${p.stderr().slice(-1500)}`);
    const lost = Number(summary?.[1] ?? NaN);
    await ops.until((m) => new Set(m.map((x) => json(x).seq)).size + lost >= frames, `${frames} results, delivered or counted lost`, 30_000);
    const delivered = new Set(ops.messages.map((x) => json(x).seq)).size;
    t.equal(delivered + lost, frames, `${delivered} delivered + ${lost} counted lost = ${frames}`);
  });
}
