// Who can reach the live view of a real `run`: a bare port is bound to loopback only (another
// address of this machine is refused); a non-loopback address without a token does not start;
// with a token, a missing or wrong one gets 401 on every route but /healthz and no picture over
// the WebSocket, the right one gets pictures.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';

import puppeteer, { type Browser } from 'puppeteer-core';
import t from 'tap';
import WebSocket from 'ws';

import { startRun } from '../integration/run-helpers.js';
import { REPO_ROOT } from '../helpers/paths.js';

const MODEL = join(REPO_ROOT, 'models', 'lvunet-kvasir');
const skip = existsSync(join(MODEL, 'manifest.json')) ? undefined : `no shipped model at ${MODEL}`;
const TOKEN = 'tok-3f9a1c-live-view';
const CHROMIUM = process.env.LVUNET_CHROMIUM ?? '/usr/bin/chromium';

/** An IPv4 address of this machine that is not loopback, if it has one. */
function otherAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

function run(t: { teardown: (f: () => Promise<void>) => void }, ui: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): ReturnType<typeof startRun> {
  const state = mkdtempSync(join(tmpdir(), 'lvunet-view-access-'));
  const r = startRun(['--model', MODEL, '--source', 'synthetic', '--fps', '10', '--sink', 'none', '--ui', ui, ...extra], { LVUNET_STATE_DIR: state, ...env });
  t.teardown(async () => {
    if (r.child.exitCode === null) r.child.kill('SIGTERM');
    await r.exited;
    rmSync(state, { recursive: true, force: true });
  });
  return r;
}

/** The first WebSocket message of a type, or why there was none. */
function firstMessage(url: string, type: string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const done = (v: string): void => {
      clearTimeout(timer);
      ws.terminate();
      resolve(v);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    ws.on('unexpected-response', (_req, res) => done(`HTTP ${res.statusCode ?? '?'}`));
    ws.on('error', (err) => done(`error ${err.message}`));
    ws.on('message', (d: Buffer) => {
      if ((JSON.parse(d.toString('utf8')) as { type: string }).type === type) done(type);
    });
  });
}

t.test('a bare port listens on loopback only', { skip }, async (t) => {
  const r = run(t, '0');
  const port = Number((await r.waitStderr(/live view on http:\/\/127\.0\.0\.1:(\d+)\//, 60_000))[1]);
  t.equal((await fetch(`http://127.0.0.1:${port}/api/state`)).status, 200, 'loopback, no token needed');
  // No broker here: results are made but none counts as published.
  const end = Date.now() + 30_000;
  let s = { results: 0, published: -1 };
  while (Date.now() < end && s.results === 0) {
    s = (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as typeof s;
    if (s.results === 0) await new Promise((res) => setTimeout(res, 200));
  }
  t.ok(s.results > 0, `${s.results} results`);
  t.equal(s.published, 0, 'nothing published without an MQTT link');
  // fetch() cannot set Host: a plain request can.
  const foreign = await new Promise<number>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/api/state', headers: { Host: 'evil.example' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
  t.equal(foreign, 401, 'a foreign Host (DNS rebinding) is refused');
  const other = otherAddress();
  if (!other) {
    t.comment('no non-loopback IPv4 address on this machine: reachability from another address not checked');
    return;
  }
  const refused = await new Promise<string>((resolve) => {
    const s = connect(port, other);
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  t.equal(refused, 'ECONNREFUSED', `${other}:${port} refuses`);
});

t.test('a non-loopback address without a token does not start', { skip }, async (t) => {
  const r = run(t, '0.0.0.0:0');
  t.not(await r.exited, 0);
  t.match(r.stderr(), /reachable from other machines, without a token: set ui\.token_file/);
});

t.test('with a token: 401 and no picture without it, pictures with it', { skip }, async (t) => {
  const r = run(t, '0.0.0.0:0', ['--ui-token', TOKEN]);
  const port = Number((await r.waitStderr(/live view on http:\/\/0\.0\.0\.0:(\d+)\/ \(token required\)/, 60_000))[1]);
  const base = `http://127.0.0.1:${port}`;
  for (const path of ['/', '/app.js', '/metrics', '/api/state']) {
    t.equal((await fetch(`${base}${path}`)).status, 401, `${path} without a token`);
    t.equal((await fetch(`${base}${path}?token=wrong`)).status, 401, `${path} with a wrong token`);
    t.equal((await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${TOKEN}x` } })).status, 401, `${path} with a longer token`);
  }
  const posted = await fetch(`${base}/api/threshold`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"value":0.2}' });
  t.equal(posted.status, 401, 'no threshold change without the token');
  t.equal((await fetch(`${base}/healthz`)).status === 401, false, '/healthz stays open (it says only live/ready)');
  t.equal(await firstMessage(`ws://127.0.0.1:${port}/live`, 'frame'), 'HTTP 401', 'WebSocket without a token: 401');
  t.equal(await firstMessage(`ws://127.0.0.1:${port}/live?token=nope`, 'frame'), 'HTTP 401', 'WebSocket with a wrong token: 401');
  t.equal((await fetch(`${base}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200, 'the right token in a header');
  t.equal(await firstMessage(`ws://127.0.0.1:${port}/live?token=${TOKEN}`, 'frame'), 'frame', 'the right token: pictures');
  t.notMatch(r.stderr(), new RegExp(TOKEN), 'the token never appears in the log');

  await t.test('the page in chromium, opened once with ?token=', { skip: existsSync(CHROMIUM) ? undefined : `no chromium at ${CHROMIUM}` }, async (t) => {
    const browser: Browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    t.teardown(() => browser.close());
    const page = await browser.newPage();
    const statuses: number[] = [];
    page.on('response', (res) => statuses.push(res.status()));
    await page.goto(`${base}/?token=${TOKEN}`, { waitUntil: 'load' });
    t.equal(page.url(), `${base}/`, 'redirected: the token is no longer in the address');
    const cookies = await page.cookies();
    t.match(cookies, [{ name: 'lvunet_view_token', httpOnly: true, sameSite: 'Strict' }], 'an HttpOnly, SameSite=Strict cookie');
    const frame = async (): Promise<string> => (await page.evaluate(`document.getElementById('view').dataset.frame || ''`)) as string;
    const end = Date.now() + 20_000;
    let first = '';
    let next = '';
    while (Date.now() < end && !(first && next && next !== first)) {
      const f = await frame();
      if (!first) first = f;
      else next = f;
      await new Promise((res) => setTimeout(res, 100));
    }
    t.ok(first && next && next !== first, `frames arrive and change with the cookie (${first}, then ${next})`);
    t.notOk(statuses.includes(401), `no request of the page refused (${statuses.join(' ')})`);
    const fresh = await browser.createBrowserContext();
    const other = await fresh.newPage();
    t.equal((await other.goto(`${base}/app.js`))?.status(), 401, 'a browser without the cookie: the page\'s script is refused');
  });
});
