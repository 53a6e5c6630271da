/**
 * What the live view costs the pipeline: `lvunet-edge run` (supervisor + worker, shipped model,
 * Kvasir-SEG JPEGs replayed as fast as the pipeline goes) measured side by side without a viewer,
 * with one viewer reading every picture, and with five viewers of which one has stopped reading
 * (its socket paused). Unpaced runs alternate (none, one, none, one) so load drifts hit both; two
 * runs at a camera's 30 fps measure lag where the pipeline has headroom, as on a cart.
 * pipeline fps: results counted from /metrics over a fixed window after warm-up; event-loop lag: the
 * worker's p99 as /metrics reports it each second (median and worst second), the supervisor's
 * (worst 5 s window); memory: the supervisor's RSS before and after the window.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import WebSocket from 'ws';

const ROOT = process.cwd();
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const MODEL = join(ROOT, 'models', 'lvunet-kvasir');
const IMAGES = join(ROOT, '..', 'shared', 'datasets', 'kvasir-seg', 'images');

export interface LiveViewRun {
  viewers: number;
  stalled: number;
  /** Source pacing: 0 as fast as the pipeline goes, else frames a second (a camera). */
  paced_fps: number;
  pipeline_fps: number;
  /** The worker's per-second event-loop lag p99: median over the window's seconds, and the worst second. */
  worker_lag_p99_ms: number;
  worker_lag_p99_worst_ms: number;
  supervisor_lag_p99_ms: number;
  rss_mb_before: number;
  rss_mb_after: number;
  pictures_received: number;
}

export interface LiveViewBench {
  runs: LiveViewRun[];
  /** Mean pipeline fps with one viewer / without, over the paired unpaced runs. */
  fps_ratio_one_viewer: number;
  seconds: number;
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

async function oneRun(frames: string, viewers: number, stalled: number, paced: number, seconds: number, log: (s: string) => void): Promise<LiveViewRun> {
  const state = mkdtempSync(join(tmpdir(), 'lvunet-bench-view-'));
  const pacing = paced > 0 ? ['--fps', String(paced)] : [];
  const child = spawn(process.execPath, [CLI, 'run', '--model', MODEL, '--source', `folder:${frames}`, '--loops', '1000000', '--sink', 'none', '--ui', '0', '--threads', '1', ...pacing], {
    env: { ...process.env, LVUNET_STATE_DIR: state },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  const sockets: WebSocket[] = [];
  try {
    let port = 0;
    for (let i = 0; i < 600 && !port; i++) {
      port = Number(/live view on http:\/\/127\.0\.0\.1:(\d+)\//.exec(err)?.[1] ?? 0);
      if (!port) await sleep(100);
    }
    if (!port) throw new Error(`run did not start its view:\n${err.slice(-2000)}`);
    const base = `http://127.0.0.1:${port}`;
    while ((await fetch(`${base}/healthz`)).status !== 200) await sleep(200);
    let pictures = 0;
    for (let i = 0; i < viewers; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/live`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      // A stalled viewer: connected, but its socket never read again (the kernel buffers fill).
      if (i < stalled) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      else ws.on('message', (d: Buffer) => (pictures += d.toString('utf8', 0, 20).includes('"frame"') ? 1 : 0));
      sockets.push(ws);
    }
    await sleep(3000); // warm-up: the session's first runs, the viewers' first pictures
    const before = await scrape(base);
    const workerLags: number[] = [];
    let supervisorLag = 0;
    for (let s = 0; s < seconds; s++) {
      await sleep(1000);
      const now = await scrape(base);
      workerLags.push(now.workerLag);
      supervisorLag = Math.max(supervisorLag, now.supervisorLag);
    }
    const sorted = [...workerLags].sort((a, b) => a - b);
    const after = await scrape(base);
    const r: LiveViewRun = {
      viewers,
      stalled,
      paced_fps: paced,
      pipeline_fps: Math.round(((after.results - before.results) / seconds) * 10) / 10,
      worker_lag_p99_ms: Math.round(sorted[Math.floor(sorted.length / 2)] * 100) / 100,
      worker_lag_p99_worst_ms: Math.round(sorted[sorted.length - 1] * 100) / 100,
      supervisor_lag_p99_ms: Math.round(supervisorLag * 100) / 100,
      rss_mb_before: Math.round(before.rss),
      rss_mb_after: Math.round(after.rss),
      pictures_received: pictures,
    };
    log(`live view: ${viewers} viewer(s) (${stalled} stalled)${paced ? ` at ${paced} fps` : ''}: ${r.pipeline_fps} fps, worker lag p99 ${r.worker_lag_p99_ms} ms (worst second ${r.worker_lag_p99_worst_ms}), supervisor ${r.supervisor_lag_p99_ms} ms, RSS ${r.rss_mb_before} -> ${r.rss_mb_after} MiB`);
    return r;
  } finally {
    for (const ws of sockets) ws.terminate();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(state, { recursive: true, force: true });
  }
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
    const seconds = quick ? 5 : 15;
    // [viewers, stalled, paced fps]: as fast as it goes for the fps ratio, at camera pace for lag.
    const plan: [number, number, number][] = [[0, 0, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 30], [1, 0, 30], [5, 1, 0]];
    const runs: LiveViewRun[] = [];
    for (const [viewers, stalled, paced] of plan) runs.push(await oneRun(frames, viewers, stalled, paced, seconds, log));
    const mean = (v: number): number => {
      const xs = runs.filter((r) => r.viewers === v && r.paced_fps === 0).map((r) => r.pipeline_fps);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    return { runs, fps_ratio_one_viewer: Math.round((mean(1) / mean(0)) * 1000) / 1000, seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function liveViewTable(b: LiveViewBench): string[] {
  return [
    '',
    `| live view (run, Kvasir-SEG JPEGs, ${b.seconds} s a run) | source | pipeline fps | worker lag p99 ms (median second / worst) | supervisor lag p99 ms (worst) | supervisor RSS MiB before → after | pictures received |`,
    '|---|---|---:|---:|---:|---:|---:|',
    ...b.runs.map(
      (r) =>
        `| ${r.viewers} viewer(s)${r.stalled ? `, ${r.stalled} stalled` : ''} | ${r.paced_fps ? `${r.paced_fps} fps` : 'as fast as it goes'} | ${r.pipeline_fps} | ${r.worker_lag_p99_ms} / ${r.worker_lag_p99_worst_ms} | ${r.supervisor_lag_p99_ms} | ${r.rss_mb_before} → ${r.rss_mb_after} | ${r.pictures_received} |`,
    ),
    '',
    `pipeline fps with one viewer / without (as fast as it goes, paired runs): **${b.fps_ratio_one_viewer}** (target ≥ 0.95).`,
  ];
}
