/**
 * The training curves as an SVG written beside the log (curves.svg): two panels sharing the epoch
 * axis, each with a labelled axis, tick values, grid and legend. Top: train and validation loss
 * (0 .. a round number above the largest finite loss). Bottom: validation Dice and the
 * deep-training slope λ on a fixed 0..1 scale. SVG because it is text (no image or font library on
 * a board), scales on any screen, and opens in every browser. Non-finite values leave a gap.
 */
import type { EpochRecord } from './trainer.js';

const COLOURS = { trainLoss: '#1f77b4', valLoss: '#ff7f0e', valDice: '#2ca02c', lambda: '#969696' } as const;

interface Series {
  readonly label: string;
  readonly colour: string;
  readonly value: (r: EpochRecord) => number;
}

interface Panel {
  readonly title: string;
  readonly yLabel: string;
  readonly top: number;
  readonly bottom: number;
  readonly max: number;
  readonly series: readonly Series[];
}

/** A round axis maximum at or above v: 1, 2 or 5 times a power of ten. */
export function niceMax(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v - 1e-12) return m * p;
  return 10 * p;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Epoch ticks: about eight, at round steps. */
function epochTicks(first: number, last: number): number[] {
  const span = Math.max(1, last - first);
  const step = Math.max(1, niceMax(span / 8));
  const ticks: number[] = [];
  for (let e = Math.ceil(first / step) * step; e <= last; e += step) ticks.push(e);
  if (ticks.length === 0) ticks.push(first);
  return ticks;
}

const fmt = (v: number): string => String(Math.round(v * 1000) / 1000);

export function plotCurves(records: readonly EpochRecord[], width = 900, height = 620): string {
  const left = 70, right = width - 20, mid = Math.floor(height / 2);
  const finite = (v: number): boolean => Number.isFinite(v);
  const lossMax = niceMax(Math.max(0, ...records.flatMap((r) => [r.trainLoss, r.valLoss]).filter(finite)));
  const panels: Panel[] = [
    {
      title: 'Loss (0.5·BCE + soft-Dice loss)',
      yLabel: 'loss',
      top: 40,
      bottom: mid - 30,
      max: lossMax,
      series: [
        { label: 'train loss', colour: COLOURS.trainLoss, value: (r) => r.trainLoss },
        { label: 'validation loss', colour: COLOURS.valLoss, value: (r) => r.valLoss },
      ],
    },
    {
      title: 'Validation Dice and deep-training slope λ',
      yLabel: 'Dice / λ',
      top: mid + 30,
      bottom: height - 60,
      max: 1,
      series: [
        { label: 'validation Dice', colour: COLOURS.valDice, value: (r) => r.valDice },
        { label: 'λ', colour: COLOURS.lambda, value: (r) => r.lambda },
      ],
    },
  ];
  const epochs = records.map((r) => r.epoch);
  const first = epochs.length ? Math.min(...epochs) : 1;
  const last = epochs.length ? Math.max(...epochs) : 1;
  const xAt = (e: number): number => (last === first ? (left + right) / 2 : left + ((right - left) * (e - first)) / (last - first));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
  ];
  for (const p of panels) {
    const yAt = (v: number): number => p.bottom - ((p.bottom - p.top) * Math.min(v, p.max)) / p.max;
    out.push(`<text x="${left}" y="${p.top - 12}" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
    for (let k = 0; k <= 5; k++) {
      const v = (p.max * k) / 5;
      const y = yAt(v);
      out.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="${k === 0 ? '#000' : '#e1e1e1'}"/>`);
      out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${fmt(v)}</text>`);
    }
    for (const e of epochTicks(first, last)) {
      const x = xAt(e);
      out.push(`<line x1="${x}" y1="${p.bottom}" x2="${x}" y2="${p.bottom + 5}" stroke="#000"/>`);
      out.push(`<text x="${x}" y="${p.bottom + 18}" text-anchor="middle">${e}</text>`);
    }
    out.push(`<line x1="${left}" y1="${p.top}" x2="${left}" y2="${p.bottom}" stroke="#000"/>`);
    const cy = (p.top + p.bottom) / 2;
    out.push(`<text x="18" y="${cy}" text-anchor="middle" transform="rotate(-90 18 ${cy})">${esc(p.yLabel)}</text>`);
    out.push(`<text x="${(left + right) / 2}" y="${p.bottom + 34}" text-anchor="middle">epoch</text>`);
    // The legend sits on a white box drawn after the curves, so a curve never hides it.
    const legend: string[] = [`<rect x="${right - 160}" y="${p.top - 2}" width="155" height="${p.series.length * 16 + 6}" fill="#fff" fill-opacity="0.9" stroke="#ccc"/>`];
    for (const [i, s] of p.series.entries()) {
      // One polyline per run of finite values.
      let run: string[] = [];
      const flush = (): void => {
        if (run.length === 1) out.push(`<circle cx="${run[0].split(',')[0]}" cy="${run[0].split(',')[1]}" r="2" fill="${s.colour}"/>`);
        else if (run.length > 1) out.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${run.join(' ')}"/>`);
        run = [];
      };
      for (const r of records) {
        const v = s.value(r);
        if (finite(v)) run.push(`${xAt(r.epoch).toFixed(1)},${yAt(v).toFixed(1)}`);
        else flush();
      }
      flush();
      const lx = right - 150, ly = p.top + 8 + i * 16;
      legend.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.colour}" stroke-width="2"/>`);
      legend.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(s.label)}</text>`);
    }
    out.push(...legend);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
