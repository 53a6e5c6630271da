import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';

import type { BenchPipelineReport } from '../../src/cli/bench-command.js';
import { runCli } from '../helpers/cli.js';
import { KVASIR } from '../helpers/paths.js';
import { buildTestModel, tempDir } from '../runtime/pipeline/fixtures/model.js';

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
