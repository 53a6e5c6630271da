/** `lvunet-edge eval`: Dice, IoU, precision, recall, specificity and HD95 of a model on a labelled dataset. */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { listPairs, readSplitFile, selectPairs, type Pair } from '../data/dataset.js';
import { evaluate, type EvaluationReport, type ImageRow, type ResolutionSummary } from '../eval/evaluate.js';
import { METRIC_NAMES } from '../eval/metrics.js';
import { runStress, type StressReport } from '../eval/stress-report.js';
import { detectModality } from '../data/modality.js';
import { shiftsFor } from '../eval/stress.js';
import { FP16_FILE, INT8_FILE } from '../model/build.js';
import { UsageError } from './errors.js';
import { EVAL_USAGE } from './usage.js';

const SUBSETS = ['train', 'val', 'test'] as const;
type Subset = (typeof SUBSETS)[number];

function parseCount(flag: string, text: string, min: number): number {
  const v = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(v) || v < min) {
    throw new UsageError(`${flag} ${JSON.stringify(text)} is not an integer >= ${min}`, EVAL_USAGE);
  }
  return v;
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_HEADER = ['stem', 'dice', 'iou', 'precision', 'recall', 'specificity', 'hd95', 'dice_model'] as const;

/** Full float precision, so a CSV row can be checked against the JSON report bit for bit. */
export function toCsv(rows: readonly ImageRow[]): string {
  const lines = [CSV_HEADER.join(',')];
  for (const r of rows) {
    const n = r.native;
    lines.push(
      [csvField(r.stem), n.dice, n.iou, n.precision, n.recall, n.specificity, n.hd95 === null ? '' : n.hd95, r.model.dice]
        .map(String)
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

function fmt(v: number): string {
  return Number.isFinite(v) ? v.toFixed(4) : 'n/a';
}

function describe(s: ResolutionSummary): string[] {
  const where = s.size ? `model size ${s.size.width}x${s.size.height}` : 'native size';
  const lines = [`${s.resolution} resolution (${where}), ${s.images} images:`];
  lines.push(`  ${'metric'.padEnd(12)} ${'mean ± std over images'.padEnd(24)} pooled`);
  for (const m of METRIC_NAMES) {
    const st = s.perImage[m];
    lines.push(`  ${m.padEnd(12)} ${`${fmt(st.mean)} ± ${fmt(st.std)}`.padEnd(24)} ${fmt(s.pooled[m])}`);
  }
  lines.push(`  ${'hd95 (px)'.padEnd(12)} ${`${fmt(s.hd95.mean)} ± ${fmt(s.hd95.std)}`.padEnd(24)} n/a (over ${s.hd95.n} images; undefined for ${s.hd95.undefined})`);
  lines.push(`  empty masks: truth ${s.empty.truth}, prediction ${s.empty.prediction}, both ${s.empty.both}`);
  return lines;
}

export function formatReport(r: EvaluationReport): string {
  return [
    `model ${r.model.path} (sha256 ${r.model.sha256.slice(0, 12)}…, input ${r.model.width}x${r.model.height}); foreground: sigmoid > ${r.threshold.probability}`,
    ...describe(r.summary.model),
    ...describe(r.summary.native),
    `std: population (over images). empty-mask rule: ${r.emptyMaskRule}.`,
  ].join('\n');
}

export async function evalCommand(argv: string[], log: (line: string) => void, print: (text: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      split: { type: 'string' },
      subset: { type: 'string' },
      limit: { type: 'string' },
      'save-masks': { type: 'string' },
      'save-overlays': { type: 'string' },
      csv: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean', default: false },
      stress: { type: 'boolean', default: false },
      'stress-set': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, EVAL_USAGE);
  if (!values.model) throw new UsageError('--model FILE.onnx is required', EVAL_USAGE);
  if (!values.data) throw new UsageError('--data DIR is required', EVAL_USAGE);
  if (values.subset !== undefined && values.split === undefined) throw new UsageError('--subset needs --split FILE', EVAL_USAGE);
  const subset = (values.subset ?? 'test') as Subset;
  if (!SUBSETS.includes(subset)) throw new UsageError(`--subset must be one of ${SUBSETS.join(', ')}, got ${JSON.stringify(values.subset)}`, EVAL_USAGE);
  const limit = values.limit === undefined ? undefined : parseCount('--limit', values.limit, 1);
  const threads = values.threads === undefined ? 1 : parseCount('--threads', values.threads, 0);

  let pairs: Pair[] = listPairs(values.data);
  let what = `${pairs.length} pairs in ${values.data}`;
  if (values.split !== undefined) {
    pairs = selectPairs(pairs, readSplitFile(values.split)[subset]);
    what = `${pairs.length} ${subset} pairs of ${values.split}`;
  }
  if (limit !== undefined) {
    pairs = pairs.slice(0, limit);
    what += `, first ${pairs.length}`;
  }
  if (pairs.length === 0) throw new Error(`eval: nothing to evaluate (${what})`);
  log(`eval: ${what}`);

  const every = Math.max(1, Math.floor(pairs.length / 20));
  const report = await evaluate(values.model, pairs, {
    threads,
    saveMasksDir: values['save-masks'],
    saveOverlaysDir: values['save-overlays'],
    onProgress: (done, total, row) => {
      if (done % every === 0 || done === total) {
        log(`eval: ${done}/${total} ${row.stem} dice ${fmt(row.native.dice)} (native), ${fmt(row.model.dice)} (model)`);
      }
    },
  });
  if (values.csv !== undefined) {
    writeFileSync(values.csv, toCsv(report.perImage));
    log(`eval: wrote ${report.perImage.length} rows to ${values.csv}`);
  }
  if (values['save-masks'] !== undefined) log(`eval: wrote ${report.perImage.length} masks to ${values['save-masks']}`);
  if (values['save-overlays'] !== undefined) log(`eval: wrote ${report.perImage.length} overlays (prediction red, truth green) to ${values['save-overlays']}`);
  let stress: StressReport | undefined;
  if (values.stress) {
    const set = values['stress-set'];
    if (set !== undefined && set !== 'colour' && set !== 'grey') throw new UsageError(`--stress-set must be colour or grey, got ${JSON.stringify(set)}`, EVAL_USAGE);
    const modality = set ?? (await detectModality(pairs)).modality;
    // A model directory's converted precisions are checked against its fp32 under each shift too.
    const dir = statSync(values.model).isDirectory() ? values.model : undefined;
    const converted = dir === undefined ? [] : (
      [['fp16', FP16_FILE], ['int8', INT8_FILE]] as const
    ).filter(([, f]) => existsSync(join(dir, f))).map(([precision, f]) => ({ precision, bytes: readFileSync(join(dir, f)) }));
    const shifts = shiftsFor(modality);
    log(`eval: stress tests, ${shifts.length} shifts for ${modality} data${converted.length ? `; ${converted.map((c) => c.precision).join(' and ')} checked against fp32 under each` : ''}`);
    const baseline = { native: report.summary.native.perImage.dice.mean, model: report.summary.model.perImage.dice.mean };
    stress = await runStress({ path: report.model.path, bytes: readFileSync(report.model.path) }, converted, pairs, shifts, baseline, { threads, log });
  }
  // NaN (no image with a defined HD95) becomes null in JSON, which is what "undefined" should read as.
  if (values.json) print(JSON.stringify(stress ? { ...report, stress } : report, null, 2));
  else print(formatReport(report) + (stress ? formatStress(stress) : ''));
}

/** The stress table: fp32 Dice (native size) per shift, its change, and each precision's agreement. */
export function formatStress(r: StressReport): string {
  const precisions = Object.keys(r.worstAgreement);
  const head = ['shift', 'dice', 'change', ...precisions.map((p) => `${p} vs fp32`)];
  const rows = r.shifts.map((s) => [s.name, fmt(s.dice.native), (s.diceChange >= 0 ? '+' : '') + fmt(s.diceChange), ...precisions.map((p) => fmt(s.agreement[p].mean))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return `\nstress tests (${r.images} images; unshifted dice ${fmt(r.baseline.native)}, native size):\n${[line(head), ...rows.map(line)].join('\n')}\n`;
}
