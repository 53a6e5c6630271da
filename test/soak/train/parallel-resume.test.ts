/**
 * A run started with 1 worker (the in-thread path) resumes with 2 (parallel.ts), on real Kvasir
 * images; the other direction and 2-worker determinism are in parallel-train.test.ts.
 */
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initTrainBackend } from '../../../src/train/backend.js';
import { readWeightsCheckpoint } from '../../../src/train/checkpoint.js';
import { FINAL_WEIGHTS, LAST_WEIGHTS, LOG_FILE, readLog, train } from '../../../src/train/trainer.js';
import { KVASIR } from '../../helpers/paths.js';
import { requireShared } from '../../helpers/shared-data.js';

requireShared(KVASIR);

const dir = mkdtempSync(join(tmpdir(), 'lvunet-parallel-resume-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
t.before(async () => {
  await initTrainBackend({ preferNative: false });
});

const base = { data: KVASIR, epochs: 2, batch: 2, size: 128, seed: 7, resume: false, limit: 2, wasm: true, progressEvery: 0 };

t.test('a 1-worker run resumes with 2 workers', async (t) => {
  const out = join(dir, 'one-then-two');
  await train({ ...base, out, workers: 1, stopAfter: 1 }, () => {});
  const second = await train({ ...base, out, workers: 2, resume: true }, () => {});
  t.same(second.records.map((r) => r.epoch), [2]);
  t.same(readLog(join(out, LOG_FILE)).map((r) => r.epoch), [1, 2], 'one log across both');
  t.equal(readWeightsCheckpoint(join(out, LAST_WEIGHTS)).batchesTracked, 2);
  t.ok([...readWeightsCheckpoint(join(out, LAST_WEIGHTS)).tensors.values()].every((d) => d.every(Number.isFinite)) && existsSync(join(out, FINAL_WEIGHTS)));
});
