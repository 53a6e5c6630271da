/**
 * A dependency-light PNG of the training curves (pngjs only, so no text rendering): losses on a
 * 0..max scale in the top panel, val Dice and λ on a fixed 0..1 scale in the bottom one, with grid
 * lines at tenths. Colours: train loss blue, val loss orange, val Dice green, λ grey.
 */
import pngjs from 'pngjs';
import type { EpochRecord } from './trainer.js';

type Rgb = readonly [number, number, number];

const BLUE: Rgb = [31, 119, 180];
const ORANGE: Rgb = [255, 127, 14];
const GREEN: Rgb = [44, 160, 44];
const GREY: Rgb = [150, 150, 150];
const GRID: Rgb = [225, 225, 225];
const AXIS: Rgb = [0, 0, 0];

class Canvas {
  readonly png: pngjs.PNG;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.png = new pngjs.PNG({ width, height });
    this.png.data.fill(255);
  }

  set(x: number, y: number, c: Rgb): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return;
    const i = (yi * this.width + xi) * 4;
    this.png.data[i] = c[0];
    this.png.data[i + 1] = c[1];
    this.png.data[i + 2] = c[2];
    this.png.data[i + 3] = 255;
  }

  /** Two pixels wide, enough to tell the curves apart. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      this.set(x, y, c);
      this.set(x, y + 1, c);
    }
  }
}

interface Panel {
  readonly top: number;
  readonly bottom: number;
  readonly max: number;
}

export function plotCurves(records: readonly EpochRecord[], width = 800, height = 500): Buffer {
  const canvas = new Canvas(width, height);
  const left = 40;
  const right = width - 20;
  const mid = Math.floor(height / 2);
  const finite = (v: number): boolean => Number.isFinite(v);
  const lossMax = Math.max(1e-6, ...records.flatMap((r) => [r.trainLoss, r.valLoss]).filter(finite));
  const panels: Panel[] = [
    { top: 15, bottom: mid - 15, max: lossMax },
    { top: mid + 15, bottom: height - 25, max: 1 },
  ];
  for (const p of panels) {
    for (let k = 0; k <= 10; k++) {
      const y = p.bottom - ((p.bottom - p.top) * k) / 10;
      canvas.line(left, y, right, y, k === 0 ? AXIS : GRID);
    }
    canvas.line(left, p.top, left, p.bottom, AXIS);
  }
  const n = records.length;
  const xAt = (i: number): number => (n <= 1 ? left : left + ((right - left) * i) / (n - 1));
  const series: Array<[Panel, Rgb, (r: EpochRecord) => number]> = [
    [panels[0], BLUE, (r) => r.trainLoss],
    [panels[0], ORANGE, (r) => r.valLoss],
    [panels[1], GREY, (r) => r.lambda],
    [panels[1], GREEN, (r) => r.valDice],
  ];
  for (const [p, colour, value] of series) {
    const yAt = (v: number): number => p.bottom - ((p.bottom - p.top) * Math.min(v, p.max)) / p.max;
    for (let i = 0; i < n; i++) {
      const v = value(records[i]);
      if (!finite(v)) continue;
      const prev = i > 0 ? value(records[i - 1]) : NaN;
      if (finite(prev)) canvas.line(xAt(i - 1), yAt(prev), xAt(i), yAt(v), colour);
      else canvas.set(xAt(i), yAt(v), colour);
    }
  }
  return pngjs.PNG.sync.write(canvas.png);
}
