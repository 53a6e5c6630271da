/** A training run folder as `lvunet-edge train` leaves it, with seeded weights standing in for trained ones (release tests). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listPairs, writeSplitFile } from '../../src/data/dataset.js';
import { parameterSpecs } from '../../src/model/architecture.js';
import { seededWeights } from '../../src/model/init.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { KVASIR } from './paths.js';

export const stems = (): string[] => listPairs(KVASIR).map((p) => p.stem);

export function fakeRun(dir: string, withWeights = true): void {
  const all = stems();
  writeSplitFile(join(dir, 'split.json'), {
    seed: 42,
    fractions: { train: 0.64, val: 0.16, test: 0.2 },
    train: all.slice(0, 6).sort(),
    val: all.slice(6, 8).sort(),
    test: all.slice(8, 12).sort(),
  });
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ epochs: 10, batch: 2, size: 256, seed: 42, epochsDone: 10, bestDice: 0.5, bestEpoch: 10 }));
  writeFileSync(
    join(dir, 'log.csv'),
    'epoch,lambda,lr,train_loss,val_loss,val_dice,val_dice_std,images_per_s,seconds\n10,1,0.00001,0.4,0.45,0.5,0.1,3,120\n',
  );
  if (!withWeights) return;
  const provider = seededWeights({ seed: 5, randomBatchNorm: true });
  const tensors = new Map(parameterSpecs().map((s) => [s.name, { shape: s.shape, data: provider(s) }]));
  writeFileSync(join(dir, 'lvunet.safetensors'), writeSafetensors(tensors, { lambda: '1', epoch: '10' }));
}

