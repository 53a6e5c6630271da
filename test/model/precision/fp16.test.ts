/**
 * f32→f16 rounding against the IEEE 754 rules, and an LV-UNet converted to fp16 (both forms) run in
 * onnxruntime-node against its float32 original on real Kvasir-SEG images.
 */
import t from 'tap';
import { buildModels } from '../../../src/model/export.js';
import { seededWeights } from '../../../src/model/init.js';
import { checkAgainstReference, checkModelsAgainstReference } from '../../../src/model/precision/check.js';
import { f16BitsToF32, f32ToF16Bits, toFp16 } from '../../../src/model/precision/fp16.js';
import { listPairs } from '../../../src/data/dataset.js';
import { spreadSample } from '../../../src/model/precision/images.js';
import { writeOnnx } from '../../../src/model/onnx/write.js';
import { KVASIR } from '../../helpers/paths.js';
import { requireShared } from '../../helpers/shared-data.js';
import { same } from '../../helpers/same.js';

requireShared(KVASIR);

t.test('f32ToF16Bits: exact values, limits, subnormals, specials', async (t) => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite half
    [65519.99, 0x7bff], // below the midpoint to 65536: rounds down
    [65520, 0x7c00], // the midpoint ties to even, which is Inf
    [1e10, 0x7c00],
    [-1e10, 0xfc00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // exactly half of it: tie to even → 0
    [2 ** -25 * 1.0001, 0x0001], // just above the tie rounds up
    [3 * 2 ** -25, 0x0002], // 1.5 ulp ties to even (2)
    [2 ** -14 - 2 ** -25, 0x0400], // largest subnormal + half ulp rounds up into the normals
    [1e-10, 0x0000],
    [1 / 3, 0x3555],
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10 → even (1)
    [1 + 3 * 2 ** -11, 0x3c02], // tie → even mantissa 2
  ];
  for (const [v, bits] of cases) t.equal(f32ToF16Bits(v), bits, `${v} → 0x${bits.toString(16)}`);
  const nan = f32ToF16Bits(NaN);
  t.ok((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0, 'NaN stays NaN');
});

t.test('every half value round-trips, and every midpoint between neighbours ties to even', async (t) => {
  let bad = 0;
  for (let h = 0; h < 0x10000; h++) {
    const v = f16BitsToF32(h);
    if (Number.isNaN(v)) continue;
    if (f32ToF16Bits(v) !== h) bad++;
  }
  t.equal(bad, 0, 'f32ToF16Bits(f16BitsToF32(h)) = h for all non-NaN h');
  let tieErrors = 0;
  for (let h = 0; h < 0x7bff; h++) {
    const mid = (f16BitsToF32(h) + f16BitsToF32(h + 1)) / 2; // exact in float32: one extra bit
    const expected = h % 2 === 0 ? h : h + 1;
    if (f32ToF16Bits(mid) !== expected) tieErrors++;
  }
  t.equal(tieErrors, 0, 'positive midpoints round to the even neighbour');
});

const SIZE = 128;
const models = buildModels({ height: SIZE, width: SIZE, lambda: 1 }, seededWeights({ seed: 11, randomBatchNorm: true, gain: 2 }), {
  weights: 'seed:11',
  lambda: 1,
});
const pairs = spreadSample(listPairs(KVASIR), 4);

for (const mode of ['weights', 'full'] as const) {
  t.test(`fp16 (${mode}) runs in onnxruntime-node and agrees with fp32 on real images`, async (t) => {
    const fp16 = toFp16(models.deployment, mode);
    const bytes = writeOnnx(fp16);
    t.ok(bytes.length < 0.52 * writeOnnx(models.deployment).length, `file is about half the size (${bytes.length} bytes)`);
    same(t, fp16.graph.inputs.map((i) => i.dataType), ['float32'], 'input stays float32');
    same(t, fp16.graph.outputs.map((o) => o.dataType), ['float32'], 'output stays float32');
    const r = await checkAgainstReference(bytes, models.deployment, pairs, { threads: 1 });
    t.ok(Number.isFinite(r.logitMaxAbsError), 'finite output');
    t.ok(r.logitMaxAbsError < 2e-2, `logit max |error| ${r.logitMaxAbsError}`);
    t.ok(r.maskDiceAgreement.mean > 0.99, `mask Dice agreement ${r.maskDiceAgreement.mean}`);
  });
}

t.test('several models checked in one pass report what one check each reports', async (t) => {
  const weightsOnly = writeOnnx(toFp16(models.deployment, 'weights'));
  const full = writeOnnx(toFp16(models.deployment, 'full'));
  const labelled = pairs.slice(0, 2);
  const together = await checkModelsAgainstReference([weightsOnly, full], models.deployment, labelled, { threads: 1 });
  same(t, together, [await checkAgainstReference(weightsOnly, models.deployment, labelled, { threads: 1 }), await checkAgainstReference(full, models.deployment, labelled, { threads: 1 })]);
  t.ok(together[0].diceVsTruth !== null && together[0].diceVsTruth.images === 2, 'the truth is compared for each model');
  await t.rejects(checkModelsAgainstReference([], models.deployment, labelled), /no models given/);
  await t.rejects(checkModelsAgainstReference([full], models.deployment, []), /no images given/);
});

t.test('toFp16 refuses a model that already holds float16', async (t) => {
  t.throws(() => toFp16(toFp16(models.deployment)), /already holds float16/);
});
