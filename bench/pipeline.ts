/**
 * Pipeline figures through the whole runtime, via the real CLI: camera-like replays made from
 * Kvasir-SEG images by `frames make` — 640x480 YUYV, and what HD grabbers deliver: 1920x1080 MJPEG
 * (JPEG quality 85), YUYV and NV12 — at 1 and 2 ONNX Runtime threads, and 1080p MJPEG paced at
 * camera rate (30 and 60 fps) for the capture->result latency. The shipped model when present (else
 * a seeded one of the same graph).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchPipelineReport } from '../src/cli/bench-command.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
const DATASETS = join(process.cwd(), '..', 'shared', 'datasets');
const SHIPPED_MODEL = join(process.cwd(), 'models', 'lvunet-kvasir');

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`lvunet-edge ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

interface Recording {
  label: string;
  size: string;
  format: 'yuyv' | 'nv12' | 'mjpeg';
  file: string;
}

/** One row: a recording replayed at `threads` threads, as fast as possible or paced at `fps`. */
export interface PipelineRow {
  source: string;
  threads: number;
  fps?: number;
}

export function pipelineRows(): PipelineRow[] {
  const rows: PipelineRow[] = [];
  for (const source of ['640x480 YUYV', '1920x1080 MJPEG q85', '1920x1080 YUYV', '1920x1080 NV12']) {
    for (const threads of [1, 2]) rows.push({ source, threads });
  }
  for (const fps of [30, 60]) rows.push({ source: '1920x1080 MJPEG q85', threads: 1, fps });
  return rows;
}

export function rowName(r: PipelineRow): string {
  return `${r.source}, ${r.threads} thread${r.threads > 1 ? 's' : ''}${r.fps ? `, paced ${r.fps} fps` : ''}`;
}

export async function benchPipelineRuns(log: (s: string) => void, quick: boolean): Promise<Record<string, BenchPipelineReport>> {
  if (!existsSync(join(DATASETS, 'kvasir-seg'))) throw new Error(`${DATASETS}/kvasir-seg is missing`);
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-bench-'));
  try {
    const frames = quick ? 100 : 300;
    let model = SHIPPED_MODEL;
    if (!existsSync(join(SHIPPED_MODEL, 'manifest.json'))) {
      model = join(dir, 'model');
      cli(['model', 'build', '--seed', '1', '--out', model]);
    }
    // 1080p raw recordings are 3-4 MB a frame: record fewer distinct frames; bench pipeline loops them.
    const recordings: Recording[] = [
      { label: '640x480 YUYV', size: '640x480', format: 'yuyv', file: join(dir, 'camera_640x480.yuyv') },
      { label: '1920x1080 MJPEG q85', size: '1920x1080', format: 'mjpeg', file: join(dir, 'camera_1920x1080.mjpeg') },
      { label: '1920x1080 YUYV', size: '1920x1080', format: 'yuyv', file: join(dir, 'camera_1920x1080.yuyv') },
      { label: '1920x1080 NV12', size: '1920x1080', format: 'nv12', file: join(dir, 'camera_1920x1080.nv12') },
    ];
    for (const r of recordings) {
      const count = r.size === '640x480' ? frames : quick ? 20 : 60;
      log(`pipeline: making ${count} camera-like ${r.label} frames from Kvasir-SEG images…`);
      cli(['frames', 'make', '--from', join(DATASETS, 'kvasir-seg', 'images'), '--count', String(count), '--size', r.size, '--format', r.format, ...(r.format === 'mjpeg' ? ['--quality', '85'] : []), '--out', r.file]);
    }
    const out: Record<string, BenchPipelineReport> = {};
    for (const row of pipelineRows()) {
      const rec = recordings.find((r) => r.label === row.source) as Recording;
      log(`pipeline: ${rowName(row)}…`);
      const paced = row.fps ? ['--fps', String(row.fps), '--frames', String(quick ? 60 : 300)] : ['--frames', String(frames)];
      out[rowName(row)] = JSON.parse(
        cli(['bench', 'pipeline', '--model', model, '--source', `file:${rec.file}`, '--threads', String(row.threads), ...paced, '--json']),
      ) as BenchPipelineReport;
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
