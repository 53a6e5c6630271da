/**
 * The `model release` job: a finished training run → a model directory a device can be given.
 *
 *   run/lvunet.safetensors (the λ = 1 epoch with the best validation Dice)
 *     → lvunet.train.onnx + lvunet.fp32.onnx             (model build)
 *     → evaluation on the run's held-out test split       (eval, per image, model and native size)
 *     → lvunet.fp16.onnx, lvunet.int8.onnx                (calibrated on train images only)
 *     → each checked against fp32 on the test split, and shipped only if it passes its gate
 *     → manifest.json: files, data provenance and terms, split, schedule, metric table, agreement.
 *
 * A precision that fails its gate is not written: it is listed under `rejected` with its figures, so
 * a device can never pick up a quantised model that silently lost accuracy.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import { listPairs, readSplitFile, selectPairs, type Pair, type SplitFile } from '../data/dataset.js';
import { evaluate, type ResolutionSummary } from '../eval/evaluate.js';
import { describeAugmentation } from '../train/data.js';
import { FINAL_WEIGHTS, LOG_FILE, readLog, SPLIT_FILE, STATE_FILE, type EpochRecord, type RunState } from '../train/trainer.js';
import { DEFAULT_LR, DEFAULT_RAMP_FRACTION, floorLr } from '../train/schedule.js';
import { sha256, writeFileAtomic } from '../util/files.js';
import { readSafetensors } from './safetensors.js';
import { buildModelDir, describeFile, FP16_FILE, FP32_FILE, INT8_FILE, loadWeightsFile } from './build.js';
import { MANIFEST_FILE, type Manifest, type ManifestFile, type Precision } from './manifest.js';
import { readOnnx } from './onnx/read.js';
import { writeOnnx } from './onnx/write.js';
import { checkAgainstReference, type CheckReport } from './precision/check.js';
import { toFp16 } from './precision/fp16.js';
import { preprocessRgb } from '../image/preprocess.js';
import { readImageFile } from '../image/decode.js';
import { spreadSample } from './precision/images.js';
import { quantizeInt8 } from './precision/quantize.js';
import { GATES, RELEASE_INT8 } from './release-gates.js';
import type { Model } from './ir.js';
import { runStress, type StressReport } from '../eval/stress-report.js';
import { detectModality } from '../data/modality.js';
import { shiftsFor } from '../eval/stress.js';

export { FP16_FILE, INT8_FILE };

/** Issue-level gates: what a converted precision must show against fp32 before it ships. */
export { GATES };

export type ConvertedPrecision = Exclude<Precision, 'fp32'>;

export interface ReleaseOptions {
  /** A training run folder written by `lvunet-edge train`. */
  readonly runDir: string;
  /** The dataset folder the run trained on (images/ + masks/, optional SOURCE.md). */
  readonly dataDir: string;
  readonly outDir: string;
  /** Weights to release (default: the run's lvunet.safetensors). */
  readonly weights?: string;
  readonly precisions?: readonly ConvertedPrecision[];
  /** Train-split images to calibrate INT8 on (spread over the split, default 64). */
  readonly calibCount?: number;
  /** Evaluate and check on at most this many test images (default: all). */
  readonly limit?: number;
  /** Run the stress tests (default true): recorded in the manifest, and converted precisions gated on the worst shift. */
  readonly stress?: boolean;
  /** Stress-test on at most this many of the evaluated test images (default: all of them). */
  readonly stressLimit?: number;
  readonly threads?: number;
  readonly name?: string;
  /** Agreement gates (default GATES). */
  readonly gates?: { readonly fp16: Readonly<Record<string, number>>; readonly int8: Readonly<Record<string, number>> };
  readonly log?: (line: string) => void;
}

export interface PrecisionOutcome {
  readonly precision: ConvertedPrecision;
  readonly shipped: boolean;
  readonly file: string;
  readonly agreement: AgreementRecord;
  readonly reason?: string;
  /**
   * For a rejected precision: the sha256 of the file that was made and not written, and how it was
   * made (quantization, calibration), so anyone can reproduce it (`model quantize` with the same
   * images) and see it is the file the figures belong to.
   */
  readonly made?: { readonly sha256: string } & Readonly<Record<string, unknown>>;
}

export interface AgreementRecord {
  readonly reference: string;
  readonly split: 'test';
  readonly images: number;
  readonly maskDiceAgreement: { readonly mean: number; readonly min: number };
  readonly logitMaxAbsError: number;
  readonly logitMeanAbsError: number;
  readonly diceVsTruth: { readonly model: number; readonly reference: number; readonly drop: number } | null;
  /** The stress shift with the lowest mean mask Dice vs fp32 (null when stress tests were off). */
  readonly stress: { readonly shift: string; readonly mean: number } | null;
  readonly gate: Readonly<Record<string, number>>;
  readonly passed: boolean;
}

export interface ReleaseResult {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly outcomes: readonly PrecisionOutcome[];
}

export class ReleaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReleaseError';
  }
}

interface RunInfo {
  readonly state: RunState;
  readonly split: SplitFile;
  readonly splitSha256: string;
  readonly records: EpochRecord[];
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ReleaseError(`${path}: cannot read: ${(err as Error).message}`);
  }
}

function readRun(runDir: string): RunInfo {
  for (const f of [STATE_FILE, SPLIT_FILE, LOG_FILE]) {
    if (!existsSync(join(runDir, f))) throw new ReleaseError(`${runDir} is not a training run folder: ${f} is missing (written by 'lvunet-edge train')`);
  }
  const state = readJson(join(runDir, STATE_FILE)) as RunInfo['state'];
  for (const k of ['epochs', 'batch', 'size', 'seed', 'epochsDone', 'bestDice', 'bestEpoch'] as const) {
    if (typeof state[k] !== 'number') throw new ReleaseError(`${join(runDir, STATE_FILE)}: '${k}' is missing or not a number`);
  }
  const splitPath = join(runDir, SPLIT_FILE);
  return { state, split: readSplitFile(splitPath), splitSha256: sha256(readFileSync(splitPath)), records: readLog(join(runDir, LOG_FILE)) };
}

/** The run's peak learning rate: recorded in state.json since --init; older runs' first logged epoch has it. */
function peakLr(run: RunInfo): number {
  return run.state.lr ?? run.records.find((r) => r.epoch === 1)?.lr ?? DEFAULT_LR;
}

/**
 * Where a fine-tuned model started: the file by its model directory and name (not the training
 * machine's absolute path), its sha256, and what made it: the starting model's own name, epochs and
 * augmentation when a manifest.json beside it lists that file (null when none does), or, for a
 * training run's checkpoint that is still the file it was, that run's schedule and its own start
 * (a chain of fine-tuning runs is recorded back to where it began, `depth` links at most).
 */
/** Epoch and validation Dice a trainer checkpoint records in its metadata (null for other files). */
function checkpointMeta(file: string): { epoch: number | null; valDice: number | null } | null {
  if (!file.endsWith('.safetensors')) return null;
  try {
    const meta = readSafetensors(readFileSync(file), file).metadata;
    const num = (v: string | undefined): number | null => (v !== undefined && Number.isFinite(Number(v)) ? Number(v) : null);
    return { epoch: num(meta.epoch), valDice: num(meta.val_dice) };
  } catch {
    return null;
  }
}

function initRecord(init: NonNullable<RunState['init']>, depth = 8): Record<string, unknown> {
  const dir = dirname(init.file);
  const record: Record<string, unknown> = { file: `${basename(dir)}/${basename(init.file)}`, sha256: init.sha256 };
  if (init.weightsSha256 !== undefined) record.weightsSha256 = init.weightsSha256;
  // The file may have changed since (a directory re-released, a run continued): describe it only if it has not.
  const unchanged = existsSync(init.file) && sha256(readFileSync(init.file)) === init.sha256;
  const manifestPath = join(dir, MANIFEST_FILE);
  const statePath = join(dir, STATE_FILE);
  if (existsSync(manifestPath)) {
    try {
      const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as { name?: unknown; files?: unknown; training?: { epochs?: unknown; schedule?: { augmentation?: unknown } } };
      const lists = Array.isArray(m.files) && m.files.some((f) => (f as { sha256?: unknown } | null)?.sha256 === init.sha256);
      record.model = lists && unchanged ? { name: m.name ?? null, epochs: m.training?.epochs ?? null, augmentation: m.training?.schedule?.augmentation ?? null } : null;
    } catch {
      // A damaged manifest beside the weights does not stop a release; the sha256 above identifies them.
      record.model = null;
    }
  } else if (existsSync(statePath)) {
    try {
      const run = JSON.parse(readFileSync(statePath, 'utf8')) as RunState;
      record.run = unchanged
        ? {
            // The checkpoint's own epoch and validation Dice (metadata), not the run's best: the start may be last.safetensors.
            checkpoint: checkpointMeta(init.file),
            epochs: { planned: run.epochs, done: run.epochsDone },
            bestEpoch: run.bestEpoch,
            bestValDice: run.bestDice,
            seed: run.seed,
            augment: run.augment ?? 'basic',
            lr: run.lr ?? null,
            // Past the depth limit a link is named by its sha256 alone.
            init: run.init === undefined ? null : depth > 1 ? initRecord(run.init, depth - 1) : { sha256: run.init.sha256 },
          }
        : null;
    } catch {
      record.run = null;
    }
  }
  return record;
}

/** SOURCE.md beside the data travels with the model: where the images came from and on what terms. */
function provenance(dataDir: string): { name: string; sourceFile: string | null; sha256: string | null; notes: string | null } {
  const path = join(dataDir, 'SOURCE.md');
  if (!existsSync(path)) return { name: basename(resolve(dataDir)), sourceFile: null, sha256: null, notes: null };
  const bytes = readFileSync(path);
  return { name: basename(resolve(dataDir)), sourceFile: 'SOURCE.md', sha256: sha256(bytes), notes: bytes.toString('utf8').trim() };
}

/** The summary without per-image rows: mean ± std over images, HD95, pooled scores, empty-mask counts. */
function metricTable(s: ResolutionSummary): ResolutionSummary {
  const { resolution, size, images, perImage, hd95, pooled, empty } = s;
  return { resolution, size, images, perImage, hd95, pooled, empty };
}

function agreementOf(report: CheckReport, gate: Readonly<Record<string, number>>, stress: { readonly shift: string; readonly mean: number } | null): AgreementRecord {
  const truth = report.diceVsTruth;
  const diceVsTruth = truth ? { model: truth.model.mean, reference: truth.reference.mean, drop: truth.reference.mean - truth.model.mean } : null;
  let passed = report.maskDiceAgreement.mean >= (gate.minMeanMaskDice ?? 0);
  if (gate.maxTruthDiceDrop !== undefined && diceVsTruth) passed &&= diceVsTruth.drop <= gate.maxTruthDiceDrop;
  if (gate.minStressMaskDice !== undefined && stress) passed &&= stress.mean >= gate.minStressMaskDice;
  return {
    reference: FP32_FILE,
    split: 'test',
    images: report.images,
    maskDiceAgreement: { mean: report.maskDiceAgreement.mean, min: report.maskDiceAgreement.min },
    logitMaxAbsError: report.logitMaxAbsError,
    logitMeanAbsError: report.logitMeanAbsError,
    diceVsTruth,
    stress,
    gate,
    passed,
  };
}

function gateFailure(a: AgreementRecord): string {
  const parts = [`mean mask Dice vs fp32 ${a.maskDiceAgreement.mean.toFixed(4)} (gate ≥ ${a.gate.minMeanMaskDice})`];
  if (a.diceVsTruth && a.gate.maxTruthDiceDrop !== undefined) {
    parts.push(`Dice vs truth drop ${a.diceVsTruth.drop.toFixed(4)} (gate ≤ ${a.gate.maxTruthDiceDrop})`);
  }
  if (a.stress && a.gate.minStressMaskDice !== undefined) {
    parts.push(`mask Dice vs fp32 under stress shift ${a.stress.shift} ${a.stress.mean.toFixed(4)} (gate ≥ ${a.gate.minStressMaskDice})`);
  }
  return parts.join(', ');
}

export async function releaseModel(o: ReleaseOptions): Promise<ReleaseResult> {
  const log = o.log ?? (() => {});
  const threads = o.threads ?? 2;
  const run = readRun(o.runDir);
  const weightsPath = o.weights ?? join(o.runDir, FINAL_WEIGHTS);
  if (!existsSync(weightsPath)) {
    throw new ReleaseError(
      `${weightsPath} does not exist: the run has ${run.state.epochsDone}/${run.state.epochs} epochs and writes it only from the first λ = 1 epoch on ` +
        `(the last ${Math.round((1 - DEFAULT_RAMP_FRACTION) * 100)} %); continue it with 'lvunet-edge train --resume'`,
    );
  }
  const weights = loadWeightsFile(weightsPath);
  if (weights.lambda !== 1) throw new ReleaseError(`${weightsPath}: λ = ${weights.lambda}; only a λ = 1 model can be fused and released`);

  const pairs = listPairs(o.dataDir);
  const test = selectPairs(pairs, run.split.test);
  const train = selectPairs(pairs, run.split.train);
  if (test.length === 0) throw new ReleaseError(`${join(o.runDir, SPLIT_FILE)}: the test split is empty; nothing to evaluate the release on`);
  const evalPairs: Pair[] = o.limit === undefined ? test : spreadSample(test, o.limit);

  const size = { height: run.state.size, width: run.state.size };
  // Before the build: releasing into the directory the run started from replaces the file init names.
  const init = run.state.init ? initRecord(run.state.init) : undefined;
  const built = buildModelDir(weights, size, o.outDir, log);
  const fp32Path = join(o.outDir, FP32_FILE);
  const fp32Bytes = readFileSync(fp32Path);
  const fp32 = readOnnx(fp32Bytes, fp32Path);

  log(`evaluating ${FP32_FILE} on ${evalPairs.length} test images`);
  const evaluation = await evaluate(fp32Path, evalPairs, {
    threads,
    onProgress: (done, total) => {
      if (done % 25 === 0 || done === total) log(`eval: ${done}/${total}`);
    },
  });
  log(`test Dice (mean over images): ${evaluation.summary.native.perImage.dice.mean.toFixed(4)} native, ${evaluation.summary.model.perImage.dice.mean.toFixed(4)} at ${size.width}x${size.height}`);

  const candidates: { precision: ConvertedPrecision; file: string; model: Model; bytes: Uint8Array; extra: Record<string, unknown>; report: CheckReport }[] = [];
  const source = { file: FP32_FILE, sha256: sha256(fp32Bytes) };
  for (const precision of o.precisions ?? ['fp16', 'int8']) {
    let model;
    let extra: Record<string, unknown>;
    let file: string;
    if (precision === 'fp16') {
      file = FP16_FILE;
      model = toFp16(fp32, 'weights');
      extra = { fp16: { mode: 'weights', io: 'float32' } };
    } else {
      file = INT8_FILE;
      const calib = spreadSample(train, Math.min(o.calibCount ?? 64, train.length));
      log(`calibrating INT8 on ${calib.length} train-split images (disjoint from the ${evalPairs.length} test images)`);
      const inputs: Float32Array[] = [];
      for (const p of calib) inputs.push(preprocessRgb(await readImageFile(p.image), size, 'stretch'));
      const q = await quantizeInt8(fp32, inputs, { ...RELEASE_INT8, threads, log });
      model = q.model;
      extra = {
        quantization: {
          format: 'QDQ',
          weights: '7-bit symmetric per-channel (axis 0)',
          activations: 'uint8 asymmetric',
          keepFloat: RELEASE_INT8.keepFloat,
          floatNodes: q.report.floatNodes,
          widenedWeightScales: q.report.widenedWeightScales,
        },
        calibration: { split: 'train', splitSha256: run.splitSha256, count: calib.length, stems: calib.map((p) => p.stem), method: RELEASE_INT8.method, percentile: RELEASE_INT8.percentile },
      };
    }
    const bytes = writeOnnx(model);
    log(`checking ${file} against ${FP32_FILE} on ${evalPairs.length} test images`);
    const report = await checkAgainstReference(bytes, fp32Bytes, evalPairs, { threads, optimization: 'all' });
    candidates.push({ precision, file, model, bytes, extra, report });
  }

  // Stress tests: the test split under shifts standing for other sites' equipment (src/eval/stress.ts).
  const modality = await detectModality(evalPairs);
  let stress: StressReport | null = null;
  if (o.stress !== false) {
    const stressPairs = o.stressLimit === undefined ? evalPairs : spreadSample(evalPairs, o.stressLimit);
    const shifts = shiftsFor(modality.modality);
    log(`stress tests: ${shifts.length} shifts for ${modality.modality} data on ${stressPairs.length} test images`);
    const baseline = { native: evaluation.summary.native.perImage.dice.mean, model: evaluation.summary.model.perImage.dice.mean };
    stress = await runStress({ path: fp32Path, bytes: fp32Bytes }, candidates.map((c) => ({ precision: c.precision, bytes: c.bytes })), stressPairs, shifts, baseline, { threads, log });
  }

  const outcomes: PrecisionOutcome[] = [];
  const extraFiles: ManifestFile[] = [];
  for (const c of candidates) {
    const agreement = agreementOf(c.report, (o.gates ?? GATES)[c.precision], stress?.worstAgreement[c.precision] ?? null);
    const path = join(o.outDir, c.file);
    if (agreement.passed) {
      writeFileAtomic(path, c.bytes);
      extraFiles.push({ ...describeFile(c.file, c.model, c.bytes), precision: c.precision, source, ...c.extra, agreement } as ManifestFile);
      outcomes.push({ precision: c.precision, shipped: true, file: c.file, agreement });
      log(`${c.file}: shipped (mask Dice vs fp32 ${agreement.maskDiceAgreement.mean.toFixed(4)}${agreement.stress ? `, worst stress shift ${agreement.stress.shift} ${agreement.stress.mean.toFixed(4)}` : ''})`);
    } else {
      // A stale file from an earlier release would otherwise sit beside a manifest that rejects it.
      rmSync(path, { force: true });
      const reason = gateFailure(agreement);
      outcomes.push({ precision: c.precision, shipped: false, file: c.file, agreement, reason, made: { sha256: sha256(c.bytes), ...c.extra } });
      log(`${c.file}: NOT shipped: ${reason}`);
    }
  }

  const last = run.records.at(-1);
  const manifest: Manifest = {
    ...built.manifest,
    name: o.name ?? built.manifest.name,
    files: [...built.manifest.files, ...extraFiles],
    training: {
      // --weights may come from anywhere (another run, another trainer): say so rather than credit this run.
      trainer: o.weights ? 'unknown: weights given with --weights; the run supplied only the split, schedule and log' : 'lvunet-edge train',
      weights: o.weights
        ? { file: basename(weightsPath), sha256: weights.sha256, epoch: null, selectedBy: 'given with --weights' }
        : { file: basename(weightsPath), sha256: weights.sha256, epoch: run.state.bestEpoch, selectedBy: 'best validation Dice among λ = 1 epochs' },
      data: { ...provenance(o.dataDir), images: pairs.length, modality },
      split: { file: SPLIT_FILE, sha256: run.splitSha256, seed: run.split.seed, fractions: run.split.fractions, train: run.split.train.length, val: run.split.val.length, test: run.split.test.length },
      epochs: { planned: run.state.epochs, done: run.state.epochsDone },
      batch: run.state.batch,
      size: run.state.size,
      seed: run.state.seed,
      ...(init ? { init } : {}),
      schedule: {
        optimizer: `Adam, weight decay 1e-4, lr ${peakLr(run)} cosine to ${floorLr({ lr: peakLr(run) })}`,
        lambda: run.state.init
          ? 'exactly 1 for every epoch (fine-tuned from λ = 1 weights, see init)'
          : `1 − cos(π/2 · e/ramp), ramp = ${DEFAULT_RAMP_FRACTION} of the epochs, then exactly 1`,
        loss: '0.5 · BCE-with-logits + (1 − soft Dice)',
        augmentation: describeAugmentation(run.state.augment ?? 'basic'),
      },
      bestValDice: run.state.bestDice,
      lastEpoch: last ? { epoch: last.epoch, lambda: last.lambda, trainLoss: last.trainLoss, valDice: last.valDice } : null,
    },
    evaluation: {
      split: 'test',
      images: evaluation.images,
      threshold: evaluation.threshold,
      emptyMaskRule: evaluation.emptyMaskRule,
      std: evaluation.std,
      hd95Units: evaluation.hd95Units,
      model: metricTable(evaluation.summary.model),
      native: metricTable(evaluation.summary.native),
      stress: stress ? { ...stress, note: 'fp32 Dice vs truth under each shift (mean over images, native size unless stated) and each shipped or rejected precision\'s mask Dice vs fp32 under the same shift' } : null,
    },
    rejected: outcomes.filter((x) => !x.shipped).map((x) => ({ precision: x.precision, file: x.file, reason: x.reason, agreement: x.agreement, ...x.made })),
  };
  writeFileAtomic(join(o.outDir, SPLIT_FILE), readFileSync(join(o.runDir, SPLIT_FILE)));
  writeFileAtomic(join(o.outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`wrote ${join(o.outDir, MANIFEST_FILE)}`);
  return { dir: o.outDir, manifest, outcomes };
}
