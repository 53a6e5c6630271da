/**
 * What the live view costs the pipeline: one `lvunet-edge run` (supervisor + worker, shipped model,
 * Kvasir-SEG JPEGs) measured in alternating windows without a viewer and with one viewer reading
 * every picture, so both conditions share the process, its warm state and whatever else the
 * machine is doing at that minute (the order alternates A B B A ..., cancelling drift). Once as
 * fast as the pipeline goes (the fps ratio) and once at a camera's 30 fps (lag with headroom, as on
 * a cart). Then five viewers, one stalled (connected, its socket never read): fps, lag and the
 * supervisor's memory.
 * pipeline fps: results counted from /metrics over each window; event-loop lag: the worker's
 * per-second p99 as /metrics reports it (median over the condition's seconds, and the worst).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import WebSocket from 'ws';

import { drawOverlay, encodeOverlayPng } from '../src/image/overlay.js';
import { jpegSize } from '../src/image/jpeg-header.js';
import { loadNativeBinding } from '../src/runtime/native/binding.js';
import { modelMaskToFrame } from '../src/runtime/postprocess/model-mask.js';
import { previewSize } from '../src/supervisor/worker/preview.js';

const ROOT = process.cwd();
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const MODEL = join(ROOT, 'models', 'lvunet-kvasir');
const IMAGES = join(ROOT, '..', 'shared', 'datasets', 'kvasir-seg', 'images');

export interface LiveViewCondition {
  viewers: number;
  stalled: number;
  /** Source pacing: 0 as fast as the pipeline goes, else frames a second. */
  paced_fps: number;
  seconds: number;
  pipeline_fps: number;
  /** The worker's per-second event-loop lag p99: median over the seconds measured, and the worst. */
  worker_lag_p99_ms: number;
  worker_lag_p99_worst_ms: number;
  supervisor_lag_p99_worst_ms: number;
  rss_mb_max: number;
  pictures_received: number;
}

export interface LiveViewBench {
  /**
   * CPU time one picture costs the worker (process.cpuUsage: the JS thread and the libuv threads),
   * measured in this process on the same frames: a figure the machine's other load does not move
   * the way it moves fps. At 10 pictures a second, 10x this is the share of a core.
   */
  cpu_ms_per_picture: number;
  conditions: LiveViewCondition[];
  /** Pipeline fps with one viewer / without, as fast as it goes, over the alternating windows. */
  fps_ratio_one_viewer: number;
  /** The same per window pair, to show the spread. */
  fps_ratio_pairs: number[];
  window_seconds: number;
}

interface Scrape {
  results: number;
  workerLag: number;
  supervisorLag: number;
  rss: number;
}

async function scrape(base: string): Promise<Scrape> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  return {
    results: value(/^lvunet_results_total (\S+)$/m),
    workerLag: value(/^lvunet_event_loop_lag_seconds\{process="worker",quantile="0.99"\} (\S+)$/m) * 1000,
    supervisorLag: value(/^lvunet_event_loop_lag_seconds\{process="supervisor",quantile="0.99"\} (\S+)$/m) * 1000,
    rss: value(/^process_resident_memory_bytes (\S+)$/m) / 2 ** 20,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const r2 = (v: number): number => Math.round(v * 100) / 100;

/** Accumulates one condition's windows. */
class Tally {
  seconds = 0;
  results = 0;
  lags: number[] = [];
  supervisorLag = 0;
  rss = 0;
  pictures = 0;

  constructor(
    readonly viewers: number,
    readonly stalled: number,
    readonly paced: number,
  ) {}

  report(): LiveViewCondition {
    return {
      viewers: this.viewers,
      stalled: this.stalled,
      paced_fps: this.paced,
      seconds: this.seconds,
      pipeline_fps: Math.round((this.results / this.seconds) * 10) / 10,
      worker_lag_p99_ms: r2(median(this.lags)),
      worker_lag_p99_worst_ms: r2(Math.max(...this.lags)),
      supervisor_lag_p99_worst_ms: r2(this.supervisorLag),
      rss_mb_max: Math.round(this.rss),
      pictures_received: this.pictures,
    };
  }
}

/** A running `run` with its view, and viewers to connect and drop. */
class Session {
  private constructor(
    private readonly child: ReturnType<typeof spawn>,
    readonly port: number,
    private readonly state: string,
  ) {}

  static async start(frames: string, paced: number): Promise<Session> {
    const state = mkdtempSync(join(tmpdir(), 'lvunet-bench-view-'));
    const pacing = paced > 0 ? ['--fps', String(paced)] : [];
    const child = spawn(process.execPath, [CLI, 'run', '--model', MODEL, '--source', `folder:${frames}`, '--loops', '1000000', '--sink', 'none', '--ui', '0', '--threads', '1', ...pacing], {
      env: { ...process.env, LVUNET_STATE_DIR: state },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
    let port = 0;
    for (let i = 0; i < 600 && !port; i++) {
      port = Number(/live view on http:\/\/127\.0\.0\.1:(\d+)\//.exec(err)?.[1] ?? 0);
      if (!port) await sleep(100);
    }
    const session = new Session(child, port, state);
    if (!port) {
      await session.stop();
      throw new Error(`run did not start its view:\n${err.slice(-2000)}`);
    }
    while ((await fetch(`${session.base}/healthz`)).status !== 200) await sleep(200);
    return session;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async viewer(stalled: boolean, onPicture: () => void): Promise<WebSocket> {
    const ws = new WebSocket(`ws://127.0.0.1:${this.port}/live`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    if (stalled) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    else ws.on('message', (d: Buffer) => d.toString('utf8', 0, 20).includes('"frame"') && onPicture());
    return ws;
  }

  /** `seconds` of measurement into `tally`, after a second for the change to settle. */
  async measure(tally: Tally, seconds: number): Promise<void> {
    await sleep(1000);
    const before = await scrape(this.base);
    for (let s = 0; s < seconds; s++) {
      await sleep(1000);
      const now = await scrape(this.base);
      tally.lags.push(now.workerLag);
      tally.supervisorLag = Math.max(tally.supervisorLag, now.supervisorLag);
      tally.rss = Math.max(tally.rss, now.rss);
    }
    const after = await scrape(this.base);
    tally.results += after.results - before.results;
    tally.seconds += seconds;
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    if (this.child.exitCode === null) await new Promise((r) => this.child.once('exit', r));
    rmSync(this.state, { recursive: true, force: true });
  }
}

/** Alternating windows without and with one viewer; returns both tallies and the per-pair ratios. */
async function alternate(frames: string, paced: number, pairs: number, window: number, log: (s: string) => void): Promise<{ none: Tally; one: Tally; ratios: number[] }> {
  const session = await Session.start(frames, paced);
  const none = new Tally(0, 0, paced);
  const one = new Tally(1, 0, paced);
  const ratios: number[] = [];
  try {
    await sleep(3000); // the session's first runs
    for (let p = 0; p < pairs; p++) {
      const order = p % 2 === 0 ? [false, true] : [true, false];
      const fps = { with: 0, without: 0 };
      for (const withViewer of order) {
        const tally = withViewer ? one : none;
        const before = tally.results;
        const ws = withViewer ? await session.viewer(false, () => one.pictures++) : undefined;
        await session.measure(tally, window);
        ws?.close();
        fps[withViewer ? 'with' : 'without'] = (tally.results - before) / window;
      }
      ratios.push(Math.round((fps.with / fps.without) * 1000) / 1000);
      log(`live view${paced ? ` at ${paced} fps` : ''}: pair ${p + 1}/${pairs}: ${fps.without.toFixed(1)} fps without a viewer, ${fps.with.toFixed(1)} with one`);
    }
  } finally {
    await session.stop();
  }
  return { none, one, ratios };
}

/** CPU ms per live-view picture: native shrink + JPEG, the overlay layer and its PNG, as the worker makes them. */
async function pictureCost(frames: string): Promise<number> {
  const binding = loadNativeBinding();
  const files = readdirSync(frames).map((f) => readFileSync(join(frames, f)));
  const mask = { width: 256, height: 256, data: new Uint8Array(256 * 256) };
  for (let i = 0; i < mask.data.length; i++) mask.data[i] = i % 256 > 60 && i % 256 < 180 && i > 15_000 && i < 50_000 ? 1 : 0;
  const one = async (bytes: Buffer): Promise<void> => {
    const { width, height } = jpegSize(bytes, 'frame');
    const size = previewSize({ width, height }, 640);
    const jpeg = binding.previewJpeg(bytes, width, height, 'MJPEG', size.width, size.height, 75);
    const layer = drawOverlay({ mask: modelMaskToFrame(mask, mask), boxes: [{ x: 10, y: 10, width: 200, height: 150 }], frame: { width, height } });
    await Promise.all([jpeg, encodeOverlayPng(layer)]);
  };
  for (const f of files) await one(f); // warm-up
  const n = 200;
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) await one(files[i % files.length]);
  const used = process.cpuUsage(start);
  return Math.round(((used.user + used.system) / 1000 / n) * 100) / 100;
}

export async function benchLiveView(log: (s: string) => void, quick: boolean): Promise<LiveViewBench | undefined> {
  if (!existsSync(IMAGES) || !existsSync(join(MODEL, 'manifest.json'))) {
    log(`live view: skipped (needs ${IMAGES} and ${MODEL})`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-bench-frames-'));
  try {
    const frames = join(dir, 'frames');
    mkdirSync(frames);
    for (const f of readdirSync(IMAGES).sort().slice(0, 20)) copyFileSync(join(IMAGES, f), join(frames, f));
    const cpu = await pictureCost(frames);
    log(`live view: one picture costs ${cpu} ms of CPU (native shrink + JPEG, overlay layer + PNG)`);
    const window = quick ? 3 : 6;
    const pairs = quick ? 2 : 6;
    const flat = await alternate(frames, 0, pairs, window, log);
    const paced = await alternate(frames, 30, quick ? 1 : 3, window, log);
    // Five viewers, one of them stalled, as fast as it goes.
    const five = new Tally(5, 1, 0);
    const session = await Session.start(frames, 0);
    try {
      const sockets: WebSocket[] = [];
      for (let i = 0; i < 5; i++) sockets.push(await session.viewer(i === 0, () => five.pictures++));
      await session.measure(five, window * 3);
      for (const ws of sockets) ws.terminate();
    } finally {
      await session.stop();
    }
    const conditions = [flat.none, flat.one, paced.none, paced.one, five].map((t) => t.report());
    for (const c of conditions) {
      log(`live view: ${c.viewers} viewer(s)${c.stalled ? ` (${c.stalled} stalled)` : ''}${c.paced_fps ? ` at ${c.paced_fps} fps` : ''}: ${c.pipeline_fps} fps, worker lag p99 ${c.worker_lag_p99_ms} ms (worst second ${c.worker_lag_p99_worst_ms}), RSS ${c.rss_mb_max} MiB`);
    }
    return {
      cpu_ms_per_picture: cpu,
      conditions,
      fps_ratio_one_viewer: Math.round((flat.one.results / flat.one.seconds / (flat.none.results / flat.none.seconds)) * 1000) / 1000,
      fps_ratio_pairs: flat.ratios,
      window_seconds: window,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function liveViewTable(b: LiveViewBench): string[] {
  return [
    '',
    `| live view (one run per source pacing, Kvasir-SEG JPEGs, ${b.window_seconds} s windows alternating) | source | seconds | pipeline fps | worker lag p99 ms (median second / worst) | supervisor lag p99 ms (worst) | supervisor RSS MiB (max) | pictures received |`,
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...b.conditions.map(
      (c) =>
        `| ${c.viewers} viewer(s)${c.stalled ? `, ${c.stalled} stalled` : ''} | ${c.paced_fps ? `${c.paced_fps} fps` : 'as fast as it goes'} | ${c.seconds} | ${c.pipeline_fps} | ${c.worker_lag_p99_ms} / ${c.worker_lag_p99_worst_ms} | ${c.supervisor_lag_p99_worst_ms} | ${c.rss_mb_max} | ${c.pictures_received} |`,
    ),
    '',
    `pipeline fps with one viewer / without (as fast as it goes): **${b.fps_ratio_one_viewer}** (target ≥ 0.95); per window pair ${b.fps_ratio_pairs.join(', ')}.`,
    `One picture costs ${b.cpu_ms_per_picture} ms of CPU (native shrink and JPEG, overlay layer and PNG; measured in-process): at 10 pictures a second, ${Math.round(b.cpu_ms_per_picture) / 100} of a core.`,
  ];
}
