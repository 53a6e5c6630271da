/** Pipeline figures: camera-like 640x480 YUYV replay through the whole runtime, via the real CLI. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchPipelineReport } from '../src/cli/bench-command.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
const DATASETS = join(process.cwd(), '..', 'shared', 'datasets');

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`lvunet-edge ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

export async function benchPipelineRuns(log: (s: string) => void, quick: boolean): Promise<Record<string, BenchPipelineReport>> {
  if (!existsSync(join(DATASETS, 'kvasir-seg'))) throw new Error(`${DATASETS}/kvasir-seg is missing`);
  const dir = mkdtempSync(join(tmpdir(), 'lvunet-bench-'));
  try {
    const frames = quick ? 100 : 300;
    cli(['model', 'build', '--seed', '1', '--out', join(dir, 'model')]);
    const recording = join(dir, 'camera_640x480.yuyv');
    log(`pipeline: making ${frames} camera-like 640x480 YUYV frames from Kvasir-SEG images…`);
    cli(['frames', 'make', '--from', join(DATASETS, 'kvasir-seg', 'images'), '--count', String(frames), '--size', '640x480', '--format', 'yuyv', '--out', recording]);
    const out: Record<string, BenchPipelineReport> = {};
    for (const threads of [1, 2]) {
      log(`pipeline: YUYV replay, ${threads} intra-op thread(s)…`);
      out[`${threads}_threads`] = JSON.parse(
        cli(['bench', 'pipeline', '--model', join(dir, 'model'), '--source', `file:${recording}`, '--threads', String(threads), '--json']),
      ) as BenchPipelineReport;
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
