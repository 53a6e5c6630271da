import t from 'tap';
import { resolve } from 'node:path';
import { UsageError } from '../../src/cli/errors.js';
import { parseTrainArgs } from '../../src/cli/train-command.js';

t.test('defaults follow the paper recipe', async (t) => {
  const o = parseTrainArgs(['--data', 'd', '--out', 'o']);
  t.match(o, { data: resolve('d'), out: resolve('o'), epochs: 300, batch: 8, size: 256, seed: 42, resume: false, wasm: false, workers: 1 });
  t.equal(o.limit, undefined);
  t.equal(o.split, undefined);
});

t.test('options', async (t) => {
  const o = parseTrainArgs(['--data', 'd', '--out', 'o', '--epochs', '3', '--batch', '2', '--size', '128', '--seed', '7', '--split', 's.json', '--resume', '--limit', '5', '--stop-after', '2', '--lr', '0.01']);
  t.match(o, { stopAfter: 2, epochs: 3, batch: 2, size: 128, seed: 7, split: resolve('s.json'), resume: true, limit: 5, lr: 0.01 });
  t.equal(parseTrainArgs(['--data', 'd', '--out', 'o', '--workers', '2']).workers, 2);
  t.equal(parseTrainArgs(['--data', 'd', '--out', 'o', '--init', 'models/x']).init, resolve('models/x'), '--init is resolved like the other paths');
  t.equal(parseTrainArgs(['--data', 'd', '--out', 'o']).init, undefined);
});

t.test('bad arguments are usage errors', async (t) => {
  for (const argv of [
    ['--out', 'o'],
    ['--data', 'd'],
    ['--data', 'd', '--out', 'o', '--size', '200'],
    ['--data', 'd', '--out', 'o', '--epochs', '0'],
    ['--data', 'd', '--out', 'o', '--batch', 'x'],
    ['--data', 'd', '--out', 'o', '--seed', '1.5'],
    ['--data', 'd', '--out', 'o', '--lr', '-1'],
    ['--data', 'd', '--out', 'o', 'extra'],
    ['--data', 'd', '--out', 'o', '--workers', '0'],
    ['--data', 'd', '--out', 'o', '--workers', '3', '--batch', '2'],
  ]) {
    t.throws(() => parseTrainArgs(argv), UsageError, argv.join(' '));
  }
});
