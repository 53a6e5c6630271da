/**
 * A failing data-parallel worker stops train() with an error naming the worker and the step, for
 * each way a worker can fail: an exception in the step, an exception outside any handler while the
 * step waits, and the thread exiting. The file ending at all shows no worker was left running.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initTrainBackend } from '../../../src/train/backend.js';
import { train, type TrainOptions } from '../../../src/train/trainer.js';
import { KVASIR } from '../../helpers/paths.js';
import { requireShared } from '../../helpers/shared-data.js';

requireShared(KVASIR);

const dir = mkdtempSync(join(tmpdir(), 'lvunet-parallel-fault-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
t.before(async () => {
  await initTrainBackend({ preferNative: false });
});

const base: TrainOptions = { data: KVASIR, out: '', epochs: 2, batch: 2, size: 128, seed: 7, resume: false, limit: 2, wasm: true, progressEvery: 0 };

t.test('a failing worker stops training with an error naming the worker and the step', async (t) => {
  const cases = [
    { kind: 'throw', worker: 1, step: 2, pattern: /^training worker 2 of 2 \(thread \d+\) failed: injected fault \(throw\).* during epoch 2 step 1$/ },
    { kind: 'uncaught', worker: 0, step: 1, pattern: /^training worker 1 of 2 \(thread \d+\) threw injected fault \(uncaught\).* during epoch 1 step 1$/ },
    { kind: 'exit', worker: 1, step: 1, pattern: /^training worker 2 of 2 \(thread \d+\) exited with code 3 during epoch 1 step 1$/ },
  ] as const;
  for (const { kind, worker, step, pattern } of cases) {
    const started = performance.now();
    await t.rejects(
      train({ ...base, out: join(dir, `fault-${kind}`), workers: 2, workerFault: { worker, step, kind } }, () => {}),
      { message: pattern },
      `${kind} in worker ${worker + 1} at its step ${step}`,
    );
    t.comment(`${kind}: stopped after ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
});
