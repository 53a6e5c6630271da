// WorkerStats: the pipeline part of the fleet telemetry, from the worker's stats and results.
import t from 'tap';

import type { StartupReport } from '../../src/supervisor/ipc.js';
import { ServingState } from '../../src/supervisor/serving.js';
import { percentiles, WorkerStats } from '../../src/supervisor/worker-stats.js';
import { same } from '../helpers/same.js';

const REPORT: StartupReport = {
  ortVersion: '1.20.0',
  ortLibrary: '/lib/libonnxruntime.so',
  providers: { requested: ['CUDA'], active: ['CUDA', 'CPU'], fallbacks: [] },
  plan: [],
  model: { path: '/m/lvunet.fp16.onnx', sha256: 'ab'.repeat(32), precision: 'fp16', inputSize: [256, 256] },
  source: 'demo',
};

t.test('percentiles: nearest-rank on a sorted copy; empty is all zero', async (t) => {
  t.same(percentiles([]), { p50: 0, p95: 0, p99: 0 });
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  same(t, percentiles(values), { p50: 51, p95: 96, p99: 100 });
  t.equal(values[0], 100, 'the input is not reordered');
  t.same(percentiles([7]), { p50: 7, p95: 7, p99: 7 });
});

t.test('before a worker is ready: no provider, no model', async (t) => {
  const s = new WorkerStats(new ServingState({ model: '/m/x.onnx' }));
  t.same(s.telemetry(), { fps: 0, latency_ms: { p50: 0, p95: 0, p99: 0 }, drops: 0, provider: 'none', model: null });
});

t.test('stats messages update fps and drops; fields they lack keep their value', async (t) => {
  const serving = new ServingState({ model: '/m/x.onnx' });
  serving.report = REPORT;
  const s = new WorkerStats(serving);
  s.onStats({ frames: 10, fps: 24.5 });
  s.onStats({ frames: 20, drops: 3 });
  s.onStats({ fps: 'fast', drops: null });
  for (const ms of [10, 20, 30]) s.onLatency(ms);
  t.same(s.telemetry(), { fps: 24.5, latency_ms: { p50: 20, p95: 30, p99: 30 }, drops: 3, provider: 'CUDA', model: { sha256: REPORT.model.sha256, precision: 'fp16' } });
});

t.test('latencies: only the last 500 results count', async (t) => {
  const s = new WorkerStats(new ServingState({ model: '/m/x.onnx' }));
  for (let i = 0; i < 500; i++) s.onLatency(1000);
  for (let i = 0; i < 500; i++) s.onLatency(5);
  t.same(s.telemetry().latency_ms, { p50: 5, p95: 5, p99: 5 });
});
