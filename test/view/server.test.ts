// The view server in this process, with the figures fed by hand: routes, token, Host check,
// threshold path, viewer counting, the newest-only slot for a stalled viewer, and /metrics
// against an independent parser. The browser and real-process tests are live-view-*.test.ts.
import { get } from 'node:http';
import { connect } from 'node:net';

import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import t from 'tap';
import WebSocket from 'ws';

import type { ResultV1 } from '../../src/runtime/sinks/index.js';
import type { StartupReport } from '../../src/supervisor/ipc.js';
import { isLoopback, parseListen } from '../../src/view/listen.js';
import { LiveFigures, RateMeter } from '../../src/view/live-figures.js';
import { createMetrics } from '../../src/view/metrics.js';
import { ViewServer, type ViewServerOptions } from '../../src/view/server.js';
import { sampleBody, SHA } from '../fleet/fixtures.js';
import { same } from '../helpers/same.js';

const REPORT: StartupReport = {
  ortVersion: '1.30.0',
  ortLibrary: '/x/libonnxruntime.so',
  providers: { requested: [], active: ['CPUExecutionProvider'], fallbacks: [] },
  plan: [],
  model: { path: '/m/lvunet.fp32.onnx', name: 'lvunet-kvasir', sha256: SHA, precision: 'fp32', inputSize: [256, 256] },
  source: 'synthetic',
};

interface Harness {
  figures: LiveFigures;
  server: ViewServer;
  base: string;
  port: number;
  thresholds: number[];
  viewerCounts: number[];
  worker: { state: string; pid: number | undefined; restarts: number };
  /** What serving.report holds (a reload-model replaces it without a new ready). */
  serving: { report: StartupReport | undefined };
  /** The worker reports ready with this report. */
  ready: (report: StartupReport) => void;
}

async function harness(t: { teardown: (f: () => Promise<void>) => void }, extra: Partial<ViewServerOptions> = {}): Promise<Harness> {
  const worker = { state: 'running', pid: 4242 as number | undefined, restarts: 0 };
  const later: { server?: ViewServer } = {};
  const serving: { report: StartupReport | undefined } = { report: undefined };
  const figures = new LiveFigures({ worker: () => worker, version: () => undefined, report: () => serving.report, link: () => undefined, viewers: () => later.server?.viewerCount ?? 0 });
  const thresholds: number[] = [];
  const viewerCounts: number[] = [];
  const server = new ViewServer({
    listen: { host: '127.0.0.1', port: 0 },
    figures,
    metrics: createMetrics(figures),
    setThreshold: async (v) => {
      if (v === 0.77) throw new Error('worker not running');
      thresholds.push(v);
      return { threshold: v };
    },
    onViewers: (n) => viewerCounts.push(n),
    log: () => {},
    stateIntervalMs: 50,
    ...extra,
  });
  later.server = server;
  const address = await server.start();
  t.teardown(async () => {
    await server.close();
    figures.close();
  });
  const ready = (report: StartupReport): void => {
    serving.report = report;
    figures.onReady();
  };
  return { figures, server, base: `http://127.0.0.1:${address.port}`, port: address.port, thresholds, viewerCounts, worker, serving, ready };
}

/** Polls (every 10 ms, 10 s at most) until `done` holds, instead of a fixed sleep. */
async function until(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const result = (seq: number): ResultV1 => sampleBody(seq) as unknown as ResultV1;

t.test('listen specs: a bare port is loopback; malformed ones name themselves', async (t) => {
  t.same(parseListen('8080'), { host: '127.0.0.1', port: 8080 });
  t.same(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
  t.same(parseListen('[::1]:9'), { host: '::1', port: 9 });
  t.throws(() => parseListen('host:99999'), /port 99999 in "host:99999" is over 65535/);
  t.throws(() => parseListen('http://x'), /"http:\/\/x" is not \[HOST:\]PORT/);
  t.ok(isLoopback('127.0.0.2') && isLoopback('::1') && isLoopback('localhost'));
  t.notOk(isLoopback('0.0.0.0') || isLoopback('10.0.0.1') || isLoopback('::'));
});

t.test('RateMeter: a rate over the last 5 s, 0 when idle', async (t) => {
  let now = 0;
  const m = new RateMeter(() => now);
  t.equal(m.rate(), 0);
  for (let i = 0; i < 11; i++) {
    m.add();
    now += 100;
  }
  t.equal(m.rate(), 10);
  now += 10_000;
  t.equal(m.rate(), 0, 'nothing recent');
  t.equal(m.total, 11);
});

t.test('routes, health, threshold and the figures', async (t) => {
  const h = await harness(t);
  t.equal((await fetch(`${h.base}/healthz`)).status, 503, 'no worker report yet: not ready');
  h.ready(REPORT);
  t.same(await (await fetch(`${h.base}/healthz`)).json(), { live: true, ready: true });
  const page = await fetch(`${h.base}/`);
  t.equal(page.status, 200);
  t.match(await page.text(), /<canvas id="view"/);
  t.match(await (await fetch(`${h.base}/app.js`)).text(), /new WebSocket/);
  t.match((await fetch(`${h.base}/style.css`)).headers.get('content-type'), /text\/css/);
  t.equal((await fetch(`${h.base}/../package.json`)).status, 404, 'only the page files');
  t.equal((await fetch(`${h.base}/api/state`, { method: 'DELETE' })).status, 404);

  h.figures.onStats({ frames: 10, captured: 10, dropsByReason: { 'source:truncated': 2 }, loopLagMs: { p50: 1, p99: 3, max: 4 }, threshold: 0.5, previews: 3 });
  for (let i = 0; i < 4; i++) h.figures.onResult(result(i));
  h.figures.onPublished();
  h.figures.onEvent({ type: 'config', severity: 'info', message: 'hello' });
  const s = (await (await fetch(`${h.base}/api/state`)).json()) as ReturnType<LiveFigures['state']>;
  t.match(s, { model: { name: 'lvunet-kvasir', sha256: SHA, precision: 'fp32', version: null }, provider: 'CPUExecutionProvider', worker: { state: 'running', pid: 4242, ready: true, restarts: 0 } });
  t.same(s.drops, { total: 2, byReason: { 'source:truncated': 2 } });
  t.equal(s.results, 4);
  t.equal(s.published, 1);
  t.equal(s.latencyMs.inference.p50, 20);
  t.same(s.loopLagMs.worker, { p50: 1, p99: 3, max: 4 });
  t.equal(s.events[0].message, 'hello');
  t.equal(s.mqtt, null);

  const post = (body: string, type = 'application/json'): Promise<Response> => fetch(`${h.base}/api/threshold`, { method: 'POST', headers: { 'Content-Type': type }, body });
  t.equal((await post('{"value":0.3}')).status, 200);
  t.same(h.thresholds, [0.3]);
  t.equal(h.figures.state().threshold, 0.3);
  t.equal((await post('value=0.3', 'application/x-www-form-urlencoded')).status, 415, 'no form posts');
  t.equal((await post('{"value":3}')).status, 400);
  t.equal((await post('{nope')).status, 400);
  t.equal((await post(JSON.stringify({ value: 0.1, pad: 'x'.repeat(2000) }))).status, 413, 'a body over 1 KiB');
  const refused = await post('{"value":0.77}');
  t.equal(refused.status, 503);
  t.match(await refused.text(), /threshold not applied: worker not running/);

  // A worker restart: counters keep the exited worker's drops; not ready until the next report.
  h.figures.onWorkerExit();
  h.worker.restarts = 1;
  t.equal((await fetch(`${h.base}/healthz`)).status, 503);
  h.ready(REPORT);
  h.figures.onStats({ frames: 0, dropsByReason: { 'source:truncated': 1 } });
  t.same(h.figures.dropsByReason(), { 'source:truncated': 3 });
  h.worker.state = 'restarting';
  t.equal((await fetch(`${h.base}/healthz`)).status, 503, 'supervisor not running the worker: not ready');
  // reload-model: serving.report gets the new model without a new ready; the view follows it.
  const SHA2 = 'b'.repeat(64);
  h.serving.report = { ...REPORT, model: { ...REPORT.model, path: '/m/lvunet.fp16.onnx', sha256: SHA2, precision: 'fp16' } };
  t.match(((await (await fetch(`${h.base}/api/state`)).json()) as ReturnType<LiveFigures['state']>).model, { sha256: SHA2, precision: 'fp16', path: '/m/lvunet.fp16.onnx' }, 'the reloaded model, not a copy of the first report');
});

t.test('/metrics: the same figures, read by an independent parser', async (t) => {
  const h = await harness(t);
  h.ready(REPORT);
  h.figures.onStats({ frames: 7, dropsByReason: { 'preprocess:ERR_FRAME_SIZE': 5 }, loopLagMs: { p50: 1, p99: 2, max: 3 }, threshold: 0.4 });
  for (let i = 0; i < 7; i++) h.figures.onResult(result(i));
  const text = await (await fetch(`${h.base}/metrics`)).text();
  const families = parsePrometheusTextFormat(text) as { name: string; type: string; metrics: { value?: string; labels?: Record<string, string> }[] }[];
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => {
    const f = families.find((x) => x.name === name);
    const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
    return m?.value === undefined ? undefined : Number(m.value);
  };
  t.equal(value('lvunet_results_total'), 7);
  t.equal(value('lvunet_frames_dropped_total', { reason: 'preprocess:ERR_FRAME_SIZE' }), 5);
  t.equal(value('lvunet_threshold'), 0.4);
  t.equal(value('lvunet_worker_ready'), 1);
  t.equal(value('lvunet_event_loop_lag_seconds', { process: 'worker', quantile: '0.99' }), 0.002);
  t.equal(value('lvunet_model_info', { sha256: SHA, name: 'lvunet-kvasir' }), 1);
  t.equal(families.find((f) => f.name === 'lvunet_results_total')?.type, 'COUNTER');
  t.equal(families.find((f) => f.name === 'lvunet_stage_latency_seconds')?.type, 'SUMMARY');
  t.match(text, /^lvunet_stage_latency_seconds_count\{stage="inference"\} 7$/m, 'one latency sample per result');
  t.match(text, /^lvunet_stage_latency_seconds_sum\{stage="inference"\} 0\.14$/m, '7 x 20 ms');
});

t.test('viewers: counted, sent figures and pictures; a stalled one keeps only the newest', async (t) => {
  const h = await harness(t);
  h.ready(REPORT);
  const reader = new WebSocket(`ws://127.0.0.1:${h.port}/live`);
  const got: string[] = [];
  reader.on('message', (d: Buffer) => got.push((JSON.parse(d.toString('utf8')) as { type: string; frame?: string }).frame ?? 'state'));
  await new Promise((r) => reader.once('open', r));
  const stalled = new WebSocket(`ws://127.0.0.1:${h.port}/live`);
  await new Promise((r) => stalled.once('open', r));
  (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
  await until('two viewers counted', () => h.viewerCounts.length >= 2);
  same(t, h.viewerCounts, [1, 2]);
  // 200 pictures of 256 KiB: far more than the socket buffers of a viewer that reads nothing.
  const big = 'A'.repeat(256 * 1024);
  for (let i = 0; i < 200; i++) {
    h.server.onPreview({ type: 'preview', frame: `f${i}`, width: 2, height: 2, jpeg: big, overlay: '' });
    await new Promise((r) => setImmediate(r));
  }
  await until('the reading viewer gets the newest picture', () => got.includes('f199'));
  const [readerStats, stalledStats] = h.server.viewerStats();
  t.ok(got.includes('f199'), 'the reading viewer got the newest picture');
  t.ok(got.filter((x) => x !== 'state').length > 1, `the reading viewer got ${got.length} messages`);
  t.ok(stalledStats.replaced > 100, `the stalled viewer's slot replaced ${stalledStats.replaced} pictures`);
  // At most the message in the socket's buffer plus the two slots, whatever was offered.
  t.ok(stalledStats.heldBytes <= 3 * (big.length + 1024), `stalled viewer holds ${stalledStats.heldBytes} bytes in this process`);
  t.ok(readerStats.replaced < stalledStats.replaced, `the reading viewer's slot replaced fewer (${readerStats.replaced}) than the stalled one's`);
  reader.close();
  stalled.terminate();
  await until('both viewers gone', () => h.viewerCounts.at(-1) === 0);
  same(t, h.viewerCounts.at(-1), 0, 'both gone');
  t.equal((await new Promise<number>((resolve) => get(`http://127.0.0.1:${h.port}/live`, (res) => resolve(res.statusCode ?? 0)))), 404, 'plain GET of /live');
});

t.test('a token: required everywhere but /healthz, compared whole', async (t) => {
  const h = await harness(t, { token: 'secret-1' });
  t.equal((await fetch(`${h.base}/api/state`)).status, 401);
  t.equal((await fetch(`${h.base}/api/state?token=secret-12`)).status, 401);
  t.equal((await fetch(`${h.base}/api/state?token=secret-1`)).status, 200);
  t.equal((await fetch(`${h.base}/metrics`, { headers: { Authorization: 'Bearer secret-1' } })).status, 200);
  t.equal((await fetch(`${h.base}/metrics`, { headers: { Authorization: 'Basic secret-1' } })).status, 401);
  t.equal((await fetch(`${h.base}/healthz`)).status, 503, 'open, and honest');
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}/live?token=nope`);
    ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(-1));
  });
  t.equal(refused, 401);
  same(t, h.viewerCounts, [], 'never counted as a viewer');
});

t.test('a token: the page trades ?token= for an HttpOnly cookie that opens its files and WebSocket', async (t) => {
  const h = await harness(t, { token: 'secret-1' });
  for (const path of ['/', '/app.js', '/style.css']) t.equal((await fetch(`${h.base}${path}`)).status, 401, `${path} without a token or cookie`);
  t.equal((await fetch(`${h.base}/?token=nope`, { redirect: 'manual' })).status, 401, 'a wrong token gets no cookie');
  const entry = await fetch(`${h.base}/?token=secret-1`, { redirect: 'manual' });
  t.equal(entry.status, 303);
  t.equal(entry.headers.get('location'), '/', 'the token leaves the address bar');
  const setCookie = entry.headers.get('set-cookie') ?? '';
  t.match(setCookie, /^lvunet_view_token=secret-1; /);
  t.match(setCookie, /HttpOnly/);
  t.match(setCookie, /SameSite=Strict/);
  t.match(setCookie, /Path=\//);
  const jar = setCookie.split(';')[0];
  for (const path of ['/', '/app.js', '/style.css', '/api/state']) t.equal((await fetch(`${h.base}${path}`, { headers: { Cookie: `a=b; ${jar}` } })).status, 200, `${path} with the cookie`);
  t.equal((await fetch(`${h.base}/app.js`, { headers: { Cookie: 'lvunet_view_token=secret-12' } })).status, 401, 'a wrong cookie');
  t.equal((await fetch(`${h.base}/api/threshold`, { method: 'POST', headers: { Cookie: jar, 'Content-Type': 'application/json' }, body: '{"value":0.4}' })).status, 200, 'the slider with the cookie');
  t.equal((await wsOutcome(`ws://127.0.0.1:${h.port}/live`, { Cookie: jar, Origin: h.base })).outcome, 'open', 'the WebSocket with the cookie');
  t.equal((await wsOutcome(`ws://127.0.0.1:${h.port}/live`, { Cookie: 'lvunet_view_token=x', Origin: h.base })).outcome, 'HTTP 401', 'the WebSocket with a wrong cookie');
  t.equal((await fetch(`${h.base}/metrics`, { headers: { Authorization: 'Bearer secret-1' } })).status, 200, 'scripts keep the header');
});

/** What a WebSocket to the view gets: 'open', the refusing status, or an error. */
function wsOutcome(url: string, headers: Record<string, string> = {}): Promise<{ outcome: string; frames: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    let frames = 0;
    ws.on('message', (d: Buffer) => {
      if ((JSON.parse(d.toString('utf8')) as { type: string }).type === 'frame') frames++;
    });
    ws.on('open', () => setTimeout(() => {
      ws.terminate();
      resolve({ outcome: 'open', frames });
    }, 300));
    ws.on('unexpected-response', (_q, res) => resolve({ outcome: `HTTP ${res.statusCode ?? '?'}`, frames }));
    ws.on('error', (err) => resolve({ outcome: `error ${err.message}`, frames }));
  });
}

t.test('the WebSocket refuses a foreign Origin (cross-site WebSocket hijacking)', async (t) => {
  const h = await harness(t);
  h.ready(REPORT);
  const pictures = setInterval(() => h.server.onPreview({ type: 'preview', frame: 'f', width: 2, height: 2, jpeg: 'AA', overlay: '' }), 20);
  t.teardown(() => clearInterval(pictures));
  const evil = await wsOutcome(`ws://127.0.0.1:${h.port}/live`, { Origin: 'http://evil.example' });
  same(t, evil, { outcome: 'HTTP 403', frames: 0 }, 'a page elsewhere: 403, no picture');
  t.same((await wsOutcome(`ws://127.0.0.1:${h.port}/live`, { Origin: `http://127.0.0.1:${h.port + 1}` })).outcome, 'HTTP 403', 'another port is another origin');
  t.same((await wsOutcome(`ws://127.0.0.1:${h.port}/live`, { Origin: 'null' })).outcome, 'HTTP 403', 'an opaque origin');
  same(t, h.viewerCounts, [], 'never counted as a viewer');
  const own = await wsOutcome(`ws://127.0.0.1:${h.port}/live`, { Origin: `http://127.0.0.1:${h.port}` });
  t.equal(own.outcome, 'open', 'the view\'s own page');
  t.ok(own.frames > 0, `${own.frames} pictures to the same origin`);
  t.equal((await wsOutcome(`ws://127.0.0.1:${h.port}/live`)).outcome, 'open', 'no Origin (not a browser)');
});

t.test('a client that resets a refused upgrade does not take the server down', async (t) => {
  const h = await harness(t, { token: 'secret-1' });
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve) => {
      const s = connect(h.port, '127.0.0.1', () => {
        s.write(`GET /live HTTP/1.1\r\nHost: 127.0.0.1:${h.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        // RST instead of FIN, while the server writes its 401.
        s.resetAndDestroy();
        resolve();
      });
      s.on('error', () => resolve());
    });
  }
  await new Promise((r) => setTimeout(r, 100));
  t.equal((await fetch(`${h.base}/healthz`)).status, 503, 'still answering');
});

t.test('off loopback without a token it will not start', async (t) => {
  const figures = new LiveFigures({ worker: () => ({ state: 'idle', pid: undefined, restarts: 0 }), version: () => undefined, report: () => undefined, link: () => undefined, viewers: () => 0 });
  t.teardown(() => figures.close());
  t.throws(
    () => new ViewServer({ listen: { host: '0.0.0.0', port: 0 }, figures, metrics: createMetrics(figures), setThreshold: async () => null, onViewers: () => {}, log: () => {} }),
    /listen on 0\.0\.0\.0:0, reachable from other machines, without a token/,
  );
});
