import t from 'tap';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import type { BenchPipelineReport } from '../../src/cli/bench-command.js';
import { runCli } from '../helpers/cli.js';
import { KVASIR } from '../helpers/paths.js';
import { buildTestModel, tempDir } from '../runtime/pipeline/fixtures/model.js';
import { requireShared } from '../helpers/shared-data.js';
import { same } from '../helpers/same.js';

requireShared(KVASIR);

const tmp = tempDir('bench-pipeline');
t.teardown(tmp.remove);
const modelDir = buildTestModel(join(tmp.dir, 'model'));

t.test('bench pipeline on a 640x480 YUYV replay made by frames make: fields exist and are sane', async (t) => {
  const file = join(tmp.dir, 'cam_640x480.yuyv');
  const made = runCli(['frames', 'make', '--from', KVASIR, '--count', '6', '--size', '640x480', '--format', 'yuyv', '--out', file]);
  t.equal(made.status, 0, made.stderr);
  t.equal(statSync(file).size, 6 * 640 * 480 * 2);

  const r = runCli(['bench', 'pipeline', '--model', modelDir, '--source', `file:${file}`, '--frames', '20', '--warmup', '2', '--threads', '1', '--json'], 300_000);
  t.equal(r.status, 0, r.stderr);
  const b = JSON.parse(r.stdout) as BenchPipelineReport;
  t.equal(b.schema, 'lvunet-edge/bench-pipeline@1');
  t.equal(b.provider, 'CPUExecutionProvider');
  t.equal(b.queue_mode, 'backpressure');
  t.equal(b.processed, 20, 'the 6-frame recording loops to give 20 frames');
  t.equal(b.drops.total, 0, 'replay as fast as possible waits instead of dropping');
  t.ok(b.inference_fps > 0 && Number.isFinite(b.inference_fps), `inference_fps ${b.inference_fps}`);
  t.ok(b.pipeline_fps > 0 && Number.isFinite(b.pipeline_fps), `pipeline_fps ${b.pipeline_fps}`);
  t.ok(b.inference_runs >= 50);
  for (const stage of ['preprocess', 'inference', 'postprocess', 'total'] as const) {
    const p = b.latency_ms[stage];
    t.ok(p.count >= 20 && p.p50 > 0 && p.p50 <= p.p95 && p.p95 <= p.p99 && p.p99 <= p.max, `${stage} ${JSON.stringify(p)}`);
  }
  t.ok(b.latency_ms.total.p50 >= b.latency_ms.inference.p50);
  t.ok(b.event_loop_lag_p99_ms >= 0 && b.event_loop_lag_p99_ms <= b.event_loop_lag_max_ms);
  t.ok(b.rss_before_mb > 10 && b.rss_after_mb > 10);
  t.equal(b.machine.cpus > 0, true);
  t.match(b.model, { precision: 'fp32', input: '1x3x256x256' });
});

t.test('bench pipeline prints a readable summary without --json', async (t) => {
  const r = runCli(['bench', 'pipeline', '--model', modelDir, '--source', 'synthetic', '--format', 'yuyv', '--frames', '5', '--warmup', '1', '--threads', '1']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /inference_fps [\d.]+[\s\S]*pipeline_fps +[\d.]+[\s\S]*event loop lag p99/);
});

t.test('bench pipeline: YUYV, NV12 and MJPEG replays report the same keys; decode time for MJPEG; paced capture->result', async (t) => {
  const keysOf = (o: object): string[] => Object.keys(o).sort();
  const reports: Record<string, BenchPipelineReport> = {};
  for (const format of ['yuyv', 'nv12', 'mjpeg'] as const) {
    const file = join(tmp.dir, format === 'mjpeg' ? 'cam.mjpeg' : `cam_640x480.${format}`);
    const made = runCli(['frames', 'make', '--from', KVASIR, '--count', '4', '--size', '640x480', '--format', format, '--out', file]);
    t.equal(made.status, 0, made.stderr);
    if (format === 'nv12') t.equal(statSync(file).size, 4 * 640 * 480 * 1.5);
    if (format === 'mjpeg') {
      t.match(made.stderr + made.stdout, /MJPEG \(quality 85, 422\)/);
      // Baseline SOF0 of the first frame: luma sampled 2x1 against chroma, i.e. 4:2:2 as UVC grabbers send.
      const bytes = readFileSync(file);
      const sof = bytes.indexOf(Buffer.from([0xff, 0xc0]));
      same(t, [bytes.readUInt16BE(sof + 5), bytes.readUInt16BE(sof + 7), bytes[sof + 11], bytes[sof + 14]], [480, 640, 0x21, 0x11]);
    }
    const paced = format === 'mjpeg' ? ['--fps', '30'] : [];
    const r = runCli(['bench', 'pipeline', '--model', modelDir, '--source', `file:${file}`, '--frames', '12', '--warmup', '2', '--threads', '1', ...paced, '--json'], 300_000);
    t.equal(r.status, 0, r.stderr);
    reports[format] = JSON.parse(r.stdout) as BenchPipelineReport;
  }
  const { yuyv, nv12, mjpeg } = reports;
  t.same(keysOf(nv12), keysOf(yuyv), 'NV12 and YUYV: same keys');
  t.same(keysOf(mjpeg), keysOf(yuyv), 'MJPEG and YUYV: same keys');
  t.same(keysOf(mjpeg.decode_ms), keysOf(yuyv.decode_ms));
  same(t, [yuyv.decode_ms.count, yuyv.decode_ms.max], [12, 0], 'raw frames: nothing to decode');
  t.ok(mjpeg.decode_ms.count === mjpeg.processed && mjpeg.decode_ms.p50 > 0, `MJPEG decode per frame ${JSON.stringify(mjpeg.decode_ms)}`);
  t.ok(mjpeg.decode_ms.p50 <= mjpeg.latency_ms.preprocess.p50 + 1e-3, 'the decode is part of preprocessing');
  t.equal(mjpeg.paced_fps, 30);
  t.equal(yuyv.paced_fps, null);
  t.equal(mjpeg.queue_mode, 'latest', 'paced like a camera: the newest frame wins');
  const c = mjpeg.capture_to_result_ms;
  t.ok(c.count > 0 && c.p50 > 0 && c.p50 <= c.p99, `capture->result ${JSON.stringify(c)}`);
  t.ok(c.p50 >= mjpeg.latency_ms.inference.p50, 'covers at least the inference');
  t.equal(mjpeg.capture_to_result_p99_vs_inference_p50, Math.round((c.p99 / mjpeg.inference_ms.p50) * 100) / 100);
});
