// Five live-view viewers on a `run` publishing to a real mosquitto, one of them stalled (connected,
// its socket never read): the four others keep getting fresh pictures, the supervisor's memory
// stays flat, and every result reaches the broker (counted by seq), the run ending with "all
// delivered". Long (600 frames at 20 fps): kept for `npm run test:soak`.
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';
import WebSocket from 'ws';

import { validateResult } from '../../src/fleet/schemas.js';
import { json, recorder } from '../fleet/mqtt-helpers.js';
import { findMosquitto, startBroker } from '../helpers/mosquitto.js';
import { KVASIR, REPO_ROOT } from '../helpers/paths.js';
import { ensureStopped, startRun, stateDir } from '../integration/run-helpers.js';
import { same } from '../helpers/same.js';

const DEVICE = 'cart-view';
const FRAMES = 600;
const MODEL = join(REPO_ROOT, 'models', 'lvunet-kvasir');
const IMAGES = join(KVASIR, 'images');

const skip = !findMosquitto()
  ? 'mosquitto is not installed (apt-get install mosquitto)'
  : !existsSync(IMAGES)
    ? `no Kvasir-SEG images at ${IMAGES}`
    : !existsSync(join(MODEL, 'manifest.json'))
      ? `no shipped model at ${MODEL}`
      : undefined;

t.test('5 viewers, 1 stalled: pictures keep flowing, memory flat, no MQTT result lost', { skip }, async (t) => {
  const broker = await startBroker({ t });
  const ops = await recorder(broker.url, [`lvunet/${DEVICE}/result`]);
  t.teardown(() => ops.close());
  const state = stateDir(t, 'live-view-soak');
  const frames = join(state, 'frames');
  mkdirSync(frames);
  for (const f of readdirSync(IMAGES).sort().slice(0, 10)) copyFileSync(join(IMAGES, f), join(frames, f));
  const run = startRun(
    ['--model', MODEL, '--source', `folder:${frames}`, '--loops', '1000', '--fps', '20', '--max-frames', String(FRAMES), '--sink', 'none', '--mqtt', broker.url, '--device-id', DEVICE, '--ui', '0'],
    { LVUNET_STATE_DIR: join(state, 'state') },
  );
  t.teardown(() => ensureStopped(run));
  const port = Number((await run.waitStderr(/live view on http:\/\/127\.0\.0\.1:(\d+)\//, 60_000))[1]);
  const base = `http://127.0.0.1:${port}`;

  const pictures = [0, 0, 0, 0, 0];
  const lastAt = [0, 0, 0, 0, 0];
  const sockets: WebSocket[] = [];
  for (let i = 0; i < 5; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/live`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    if (i === 0) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    ws.on('message', (d: Buffer) => {
      if (d.toString('utf8', 0, 16).includes('"frame"')) {
        pictures[i]++;
        lastAt[i] = Date.now();
      }
    });
    sockets.push(ws);
  }
  t.teardown(() => sockets.forEach((s) => s.terminate()));

  const rss: number[] = [];
  const started = Date.now();
  while (run.child.exitCode === null && Date.now() - started < 120_000) {
    try {
      const text = await (await fetch(`${base}/metrics`)).text();
      rss.push(Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1]) / 2 ** 20);
      const viewers = Number(/^lvunet_viewers (\S+)$/m.exec(text)?.[1]);
      if (viewers !== 5) t.fail(`lvunet_viewers ${viewers}`);
    } catch {
      break; // the run ended between two scrapes
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  t.equal(await run.exited, 0, run.stderr().slice(-3000));
  const end = Date.now();

  for (let i = 1; i < 5; i++) {
    t.ok(pictures[i] > 50, `reading viewer ${i}: ${pictures[i]} pictures`);
    t.ok(end - lastAt[i] < 3000, `reading viewer ${i} got pictures to the end`);
  }
  t.ok(rss.length >= 5, `${rss.length} memory samples`);
  const settled = rss.slice(2);
  const growth = Math.max(...settled) - settled[0];
  t.ok(growth < 40, `supervisor RSS ${rss.map((v) => v.toFixed(0)).join(', ')} MiB: ${growth.toFixed(1)} MiB growth after warm-up`);

  await ops.until((ms) => new Set(ms.map((m) => (json(m) as { seq: number }).seq)).size >= FRAMES, `${FRAMES} results`, 30_000);
  const seqs = new Set(
    ops.messages.map((m) => {
      const v = validateResult(json(m));
      if (!v.ok) throw new Error(v.errors.join('; '));
      return v.value.seq;
    }),
  );
  t.equal(seqs.size, FRAMES, 'every result once (by seq)');
  same(t, [...seqs].sort((a, b) => a - b), Array.from({ length: FRAMES }, (_, i) => i), 'no gap');
  t.match(run.stderr(), new RegExp(`mqtt: all ${FRAMES} result\\(s\\) delivered`));
});
