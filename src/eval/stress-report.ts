/**
 * Runs the stress shifts (stress.ts) over a labelled split: the fp32 model against the truth under each
 * shift (Dice at native and model size, next to the unshifted figure), and each converted precision
 * against fp32 under the same shift (mask Dice agreement). `model release` records the result in the
 * manifest and gates converted precisions on the worst shift.
 */
import type { EvalPair } from './evaluate.js';
import { evaluate } from './evaluate.js';
import { checkModelsAgainstReference } from '../model/precision/check.js';
import type { StressShift } from './stress.js';

export interface ShiftResult {
  readonly name: string;
  readonly description: string;
  /** fp32 against the truth under this shift (mean over images). */
  readonly dice: { readonly native: number; readonly model: number };
  /** fp32 Dice under the shift minus unshifted fp32 Dice (native size). */
  readonly diceChange: number;
  /** Converted precision → mean and min mask Dice against fp32, both given the shifted image. */
  readonly agreement: Readonly<Record<string, { readonly mean: number; readonly min: number }>>;
}

export interface StressReport {
  readonly images: number;
  readonly baseline: { readonly native: number; readonly model: number };
  readonly shifts: readonly ShiftResult[];
  /** Per converted precision: the worst shift's mean agreement, and which shift. */
  readonly worstAgreement: Readonly<Record<string, { readonly shift: string; readonly mean: number }>>;
}

export interface StressOptions {
  readonly threads?: number;
  readonly log?: (line: string) => void;
}

export async function runStress(
  fp32: { readonly path: string; readonly bytes: Uint8Array },
  converted: readonly { readonly precision: string; readonly bytes: Uint8Array }[],
  pairs: readonly EvalPair[],
  shifts: readonly StressShift[],
  baseline: { readonly native: number; readonly model: number },
  options: StressOptions = {},
): Promise<StressReport> {
  const log = options.log ?? (() => {});
  const threads = options.threads ?? 2;
  const results: ShiftResult[] = [];
  for (const [i, shift] of shifts.entries()) {
    const report = await evaluate(fp32.path, pairs, { threads, transform: shift.apply });
    const agreement: Record<string, { mean: number; min: number }> = {};
    if (converted.length > 0) {
      // All precisions in one pass: each shifted image is decoded and run through fp32 once for them all.
      const checks = await checkModelsAgainstReference(
        converted.map((c) => c.bytes),
        fp32.bytes,
        pairs,
        { threads, optimization: 'all', transform: shift.apply },
      );
      for (const [k, c] of converted.entries()) agreement[c.precision] = { mean: checks[k].maskDiceAgreement.mean, min: checks[k].maskDiceAgreement.min };
    }
    const dice = { native: report.summary.native.perImage.dice.mean, model: report.summary.model.perImage.dice.mean };
    results.push({ name: shift.name, description: shift.description, dice, diceChange: dice.native - baseline.native, agreement });
    const agreed = Object.entries(agreement).map(([p, a]) => `${p} ${a.mean.toFixed(4)}`).join(', ');
    log(`stress ${i + 1}/${shifts.length} ${shift.name}: Dice ${dice.native.toFixed(4)} (${(dice.native - baseline.native >= 0 ? '+' : '') + (dice.native - baseline.native).toFixed(4)})${agreed ? `; agreement with fp32: ${agreed}` : ''}`);
  }
  const worstAgreement: Record<string, { shift: string; mean: number }> = {};
  for (const c of converted) {
    for (const r of results) {
      const a = r.agreement[c.precision];
      if (!worstAgreement[c.precision] || a.mean < worstAgreement[c.precision].mean) worstAgreement[c.precision] = { shift: r.name, mean: a.mean };
    }
  }
  return { images: pairs.length, baseline, shifts: results, worstAgreement };
}
