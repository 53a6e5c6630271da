// The 10,000-frame memory soak (bench/pipeline-soak.ts) as a test: synthetic 640x480 YUYV frames as
// fast as possible through the native preprocessor, ONNX Runtime and postprocessing. What a
// week-long run would accumulate shows as growth between the sample after warm-up and the last one.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { REPO_ROOT } from '../helpers/paths.js';
import { buildTestModel, tempDir } from '../runtime/pipeline/fixtures/model.js';

const SOAK = join(REPO_ROOT, 'dist', 'bench', 'pipeline-soak.js');
const FRAMES = 10_000;
/** The README's target for 10,000 frames. */
const MAX_RSS_GROWTH_MB = 10;

interface SoakReport {
  frames: number;
  drops: { total: number };
  rss_growth_mb: number;
  resources_end: Record<string, number>;
  /** The first is taken before the pipeline starts. */
  samples: { frame: number; resources: Record<string, number> }[];
  gc_before_samples: boolean;
}

t.test(`${FRAMES} frames: no drop, RSS growth <= ${MAX_RSS_GROWTH_MB} MB, no leaked handle`, async (t) => {
  if (!existsSync(SOAK)) throw new Error(`${SOAK} is missing: run 'npm run build' first`);
  const tmp = tempDir('pipeline-soak');
  t.teardown(tmp.remove);
  const model = buildTestModel(join(tmp.dir, 'model'));
  const child = spawn(process.execPath, ['--expose-gc', SOAK, '--model', model, '--frames', String(FRAMES)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 0, err.slice(-3000));
  const report = JSON.parse(out) as SoakReport;
  t.equal(report.gc_before_samples, true, 'samples follow a full collection');
  t.equal(report.frames, FRAMES);
  t.equal(report.drops.total, 0);
  t.ok(report.rss_growth_mb <= MAX_RSS_GROWTH_MB, `RSS grew ${report.rss_growth_mb} MB after warm-up`);
  // While frames flow the pipeline holds timers and immediates; once it has finished, what is active
  // must be what was active before it started.
  t.equal(report.samples[0]?.frame, 0);
  t.same(report.resources_end, report.samples[0]?.resources, 'the same active handles and requests at the end as before the pipeline started');
  t.comment(`rss growth ${report.rss_growth_mb} MB; resources ${JSON.stringify(report.resources_end)}`);
});
