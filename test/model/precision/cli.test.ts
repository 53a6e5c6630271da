/** The precision CLI handlers on a seeded model directory (called directly, as main.ts will). */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FP16_FILE, INT8_FILE, modelCheck, modelFp16, modelQuantize } from '../../../src/cli/precision-commands.js';
import type { Command } from '../../../src/cli/command.js';
import { UsageError } from '../../../src/cli/errors.js';
import { buildModelDir, FP32_FILE, seededModelWeights } from '../../../src/model/build.js';
import type { Manifest } from '../../../src/model/manifest.js';
import { sha256 } from '../../../src/util/files.js';
import { KVASIR } from '../../helpers/paths.js';
import { requireShared } from '../../helpers/shared-data.js';

requireShared(KVASIR);

const dir = mkdtempSync(join(tmpdir(), 'lvunet-precision-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
buildModelDir(seededModelWeights(1), { height: 128, width: 128 }, dir);

const logs: string[] = [];
const printed: string[] = [];
const log = (l: string): void => void logs.push(l);
const print = (p: string): void => void printed.push(p);
// Keyed and called as main.ts dispatches them.
const commands: Record<string, Pick<Command, 'run'>> = {
  'model quantize': { run: (a) => modelQuantize(a, log) },
  'model fp16': { run: (a) => modelFp16(a, log) },
  'model check': { run: (a) => modelCheck(a, print, log) },
};
const manifest = (): Manifest => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;

t.test('model quantize --int8 writes the file and its manifest entry', async (t) => {
  await commands['model quantize'].run(['--int8', '--model', dir, '--calib', KVASIR, '--calib-count', '4', '--out', dir]);
  const bytes = readFileSync(join(dir, INT8_FILE));
  const entry = manifest().files.find((f) => f.file === INT8_FILE) as unknown as Record<string, unknown> & { calibration: { stems: string[]; count: number; method: string; dir: string } };
  t.ok(entry, 'manifest lists the int8 file');
  t.equal(entry.precision, 'int8');
  t.equal(entry.mode, 'deployment');
  t.equal(entry.sha256, sha256(bytes));
  t.equal(entry.calibration.count, 4);
  t.equal(entry.calibration.stems.length, 4);
  t.equal(entry.calibration.method, 'percentile', 'the release settings by default: percentile ranges');
  t.equal((entry.calibration as { percentile?: number }).percentile, 99.999);
  t.same((entry.quantization as { keepFloat: string[] }).keepFloat, ['firstconv', 'encoder1'], 'the release keeps firstconv and encoder1 float');
  t.ok(logs.some((l) => /^kept float: firstconv, encoder1 \(the release default: /.test(l)), 'the log says what stayed float and why');
  t.equal(entry.calibration.dir, KVASIR);
  t.match((entry.quantization as { weights: string }).weights, /^7-bit symmetric per-channel/, 'per-channel 7-bit weights by default');
  t.ok(manifest().files.some((f) => f.file === FP32_FILE), 'the fp32 entry is kept');
  t.ok(logs.some((l) => l.includes('calibration:')), 'progress goes to the log');
});

t.test('model fp16 writes the file and its manifest entry', async (t) => {
  await commands['model fp16'].run(['--model', dir, '--out', dir]);
  const entry = manifest().files.find((f) => f.file === FP16_FILE);
  t.equal(entry?.precision, 'fp16');
  t.equal(entry?.sha256, sha256(readFileSync(join(dir, FP16_FILE))));
});

t.test('model check --json reports agreement and Dice against the masks', async (t) => {
  printed.length = 0;
  await commands['model check'].run(['--model', join(dir, FP16_FILE), '--reference', join(dir, FP32_FILE), '--data', KVASIR, '--limit', '2', '--json']);
  const report = JSON.parse(printed.join('\n')) as { images: number; maskDiceAgreement: { mean: number }; diceVsTruth: { images: number } };
  t.equal(report.images, 2);
  t.ok(report.maskDiceAgreement.mean > 0.99);
  t.equal(report.diceVsTruth.images, 2);
});

t.test('usage errors', async (t) => {
  await t.rejects(async () => commands['model quantize'].run(['--model', dir, '--calib', KVASIR, '--out', dir]), UsageError, '--int8 is required');
  await t.rejects(async () => commands['model quantize'].run(['--int8', '--model', dir, '--calib', KVASIR, '--method', 'mse', '--out', dir]), /--method must be one of/);
  await t.rejects(async () => commands['model quantize'].run(['--int8', '--model', dir, '--calib', KVASIR, '--per-tensor', '--per-channel', '--out', dir]), /--per-tensor or --per-channel, not both/);
  await t.rejects(async () => commands['model quantize'].run(['--int8', '--model', dir, '--calib', KVASIR, '--method', 'minmax', '--percentile', '99.9', '--out', dir]), /--percentile applies to --method percentile, not minmax/);
  await t.rejects(async () => commands['model quantize'].run(['--int8', '--model', dir, '--calib', KVASIR, '--keep-float', ',', '--out', dir]), /--keep-float needs node names/);
  await t.rejects(async () => commands['model quantize'].run(['--int8', '--model', join(dir, 'nope'), '--calib', KVASIR, '--out', dir]), /no such file/);
  t.throws(() => commands['model fp16'].run(['--model', join(dir, INT8_FILE), '--out', dir]), /already int8/);
  t.ok(existsSync(join(dir, INT8_FILE)));
});
