/**
 * Chooses a pixel format, frame size and frame rate from what a device enumerates. Pure: the same
 * capabilities and request always give the same choice, and every compromise is explained in
 * `reasons`/`warnings` so an operator can see why a cart streams 1920x1080 MJPEG instead of the
 * 1280x720 asked for.
 *
 * Order of preference, applied to every (format, size) the device offers:
 *   1. exact size; 2. closest size: |ln(area ratio)|, then |ln(aspect ratio)| (log ratios, so half
 *   and double the requested area are equally far); 3. exact rate, then the nearest rate;
 *   4. the request's format preference (default YUYV > NV12 > MJPG > GREY).
 * Stepwise/continuous sizes and intervals are snapped to the device's step.
 */
import { V4l2Error } from './errors.js';
import type { Fraction, FormatCapability, FourCC, IntervalSpec, SizeCapability, V4l2Capabilities } from './types.js';

export const DEFAULT_FORMAT_PREFERENCE: readonly FourCC[] = ['YUYV', 'NV12', 'MJPG', 'GREY'];

/** Common names people write for V4L2 fourccs. */
const FOURCC_ALIASES: Readonly<Record<string, FourCC>> = {
  MJPEG: 'MJPG',
  JPEG: 'MJPG',
  YUY2: 'YUYV',
  GRAY: 'GREY',
  Y8: 'GREY',
  RGB24: 'RGB3',
};

export function normalizeFourcc(name: string): FourCC {
  const upper = name.trim().toUpperCase();
  return FOURCC_ALIASES[upper] ?? upper;
}

export interface CaptureRequest {
  readonly width: number;
  readonly height: number;
  /** Frames per second; omitted: the highest the chosen size offers. */
  readonly fps?: number;
  /** Acceptable formats, most preferred first (aliases such as MJPEG and GRAY are accepted). */
  readonly formats?: readonly string[];
}

export interface Negotiation {
  readonly fourcc: FourCC;
  readonly width: number;
  readonly height: number;
  /** Frame interval to request with S_PARM; null when neither the device nor the request gives one. */
  readonly interval: Fraction | null;
  readonly fps: number | null;
  readonly exactSize: boolean;
  readonly exactFps: boolean;
  readonly reasons: string[];
  readonly warnings: string[];
}

export class NegotiationError extends V4l2Error {
  constructor(
    message: string,
    /** One line per format the device offers, as in the message. */
    readonly offers: readonly string[],
    path?: string,
  ) {
    super('ERR_V4L2_NEGOTIATION', message, { path });
    this.name = 'NegotiationError';
  }
}

// ---------------------------------------------------------------------------------------------
// Fractions and formatting

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a || 1;
}

function reduce(numerator: number, denominator: number): Fraction {
  const g = gcd(numerator, denominator);
  return { numerator: numerator / g, denominator: denominator / g };
}

export function fpsOf(interval: Fraction): number {
  return interval.numerator > 0 ? interval.denominator / interval.numerator : 0;
}

function intervalForFps(fps: number): Fraction {
  // Millisecond-of-a-frame precision keeps 29.97 exact (1000/29970) without floating fractions.
  return reduce(1000, Math.round(fps * 1000));
}

function fmtFps(fps: number): string {
  return Number.isInteger(fps) ? String(fps) : fps.toFixed(2);
}

function fmtIntervals(spec: IntervalSpec): string {
  switch (spec.kind) {
    case 'discrete':
      return spec.intervals.map((i) => fmtFps(fpsOf(i))).join('/') + ' fps';
    case 'stepwise':
    case 'continuous':
      return `${fmtFps(fpsOf(spec.max))}-${fmtFps(fpsOf(spec.min))} fps`;
    case 'none':
      return 'rate not enumerated';
  }
}

function fmtSize(s: SizeCapability): string {
  if (s.kind === 'discrete') return `${s.width}x${s.height} @ ${fmtIntervals(s.intervals)}`;
  return `${s.minWidth}x${s.minHeight}..${s.maxWidth}x${s.maxHeight} step ${s.stepWidth}x${s.stepHeight} @ ${fmtIntervals(s.intervals)}`;
}

/** One line per format: `MJPG "Motion-JPEG": 1920x1080 @ 30 fps, 640x480 @ 30/15 fps`. */
export function describeOffers(formats: readonly FormatCapability[]): string[] {
  return formats.map((f) => {
    const sizes = f.sizes.length > 0 ? f.sizes.map(fmtSize).join(', ') : 'sizes not enumerated';
    return `${f.fourcc} "${f.description}": ${sizes}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Snapping

function snap(value: number, min: number, max: number, step: number): number {
  const s = step > 0 ? step : 1;
  if (value <= min) return min;
  if (value >= max) return max;
  const k = Math.round((value - min) / s);
  const v = min + k * s;
  return v > max ? v - s : v;
}

interface RateChoice {
  interval: Fraction | null;
  fps: number | null;
  exact: boolean;
  /** Relative distance from the requested rate (0 when none was requested). */
  distance: number;
}

/** Rates within 0.2 % count as exact, so 29.97 (30000/1001) satisfies a request for 30. */
const FPS_TOLERANCE = 0.002;

export function chooseRate(spec: IntervalSpec, fps: number | undefined): RateChoice {
  const close = (a: number, b: number): boolean => Math.abs(a - b) <= FPS_TOLERANCE * b;
  switch (spec.kind) {
    case 'discrete': {
      let best: RateChoice | undefined;
      for (const interval of spec.intervals) {
        const f = fpsOf(interval);
        if (f <= 0) continue;
        const distance = fps === undefined ? 0 : Math.abs(f - fps) / fps;
        const candidate: RateChoice = { interval, fps: f, exact: fps === undefined || close(f, fps), distance };
        const better =
          !best ||
          (fps === undefined ? f > (best.fps ?? 0) : distance < best.distance || (distance === best.distance && f > (best.fps ?? 0)));
        if (better) best = candidate;
      }
      if (best) return best;
      return { interval: fps === undefined ? null : intervalForFps(fps), fps: fps ?? null, exact: false, distance: 1 };
    }
    case 'stepwise':
    case 'continuous': {
      // Intervals are seconds per frame: the shortest interval (`min`) is the highest rate.
      if (fps === undefined) return { interval: spec.min, fps: fpsOf(spec.min), exact: true, distance: 0 };
      const want = 1 / fps;
      const lo = spec.min.numerator / spec.min.denominator;
      const hi = spec.max.numerator / spec.max.denominator;
      let interval: Fraction;
      if (want <= lo) interval = spec.min;
      else if (want >= hi) interval = spec.max;
      else if (spec.kind === 'continuous' || spec.step.numerator === 0) interval = intervalForFps(fps);
      else {
        // min + k·step, in integers: a/b + k·c/d = (a·d + k·c·b) / (b·d).
        const { numerator: a, denominator: b } = spec.min;
        const { numerator: c, denominator: d } = spec.step;
        let k = Math.round((want - lo) / (c / d));
        if ((a * d + k * c * b) / (b * d) > hi) k -= 1;
        interval = reduce(a * d + k * c * b, b * d);
      }
      const f = fpsOf(interval);
      return { interval, fps: f, exact: close(f, fps), distance: Math.abs(f - fps) / fps };
    }
    case 'none':
      return { interval: fps === undefined ? null : intervalForFps(fps), fps: fps ?? null, exact: false, distance: 0 };
  }
}

// ---------------------------------------------------------------------------------------------

interface Candidate {
  fourcc: FourCC;
  rank: number;
  width: number;
  height: number;
  sizeExact: boolean;
  snappedFrom?: SizeCapability;
  unenumerated: boolean;
  areaDistance: number;
  aspectDistance: number;
  rate: RateChoice;
  intervals: IntervalSpec;
}

function validateRequest(request: CaptureRequest): void {
  const bad = (what: string): never => {
    throw new V4l2Error('ERR_INVALID_ARGUMENT', `capture request: ${what}`);
  };
  for (const [name, v] of [['width', request.width], ['height', request.height]] as const) {
    if (!Number.isInteger(v) || v <= 0) bad(`${name} must be a positive integer, got ${String(v)}`);
  }
  if (request.fps !== undefined && !(Number.isFinite(request.fps) && request.fps > 0)) {
    bad(`fps must be a positive number, got ${String(request.fps)}`);
  }
  if (request.formats !== undefined && request.formats.length === 0) bad('formats must list at least one pixel format');
}

function round9(x: number): number {
  return Math.round(x * 1e9) / 1e9;
}

function compare(a: Candidate, b: Candidate): number {
  return (
    Number(b.sizeExact) - Number(a.sizeExact) ||
    round9(a.areaDistance) - round9(b.areaDistance) ||
    round9(a.aspectDistance) - round9(b.aspectDistance) ||
    Number(b.rate.exact) - Number(a.rate.exact) ||
    round9(a.rate.distance) - round9(b.rate.distance) ||
    a.rank - b.rank
  );
}

export function negotiate(
  capabilities: Pick<V4l2Capabilities, 'formats'> & { readonly device?: { readonly path: string } },
  request: CaptureRequest,
): Negotiation {
  validateRequest(request);
  const preference = [...new Set((request.formats ?? DEFAULT_FORMAT_PREFERENCE).map(normalizeFourcc))];
  const path = capabilities.device?.path;
  const where = path ? `${path}: ` : '';
  const offers = describeOffers(capabilities.formats);
  const usable = capabilities.formats.filter((f) => preference.includes(f.fourcc));
  if (usable.length === 0) {
    const offered = offers.length > 0 ? `The device offers:\n  ${offers.join('\n  ')}` : 'The device enumerates no capture formats.';
    throw new NegotiationError(
      `${where}no usable pixel format. Accepted, most preferred first: ${preference.join(', ')}. ${offered}`,
      offers,
      path,
    );
  }

  const { width: rw, height: rh } = request;
  const requestedArea = rw * rh;
  const requestedAspect = rw / rh;
  const candidates: Candidate[] = [];
  const add = (f: FormatCapability, width: number, height: number, intervals: IntervalSpec, extra: Partial<Candidate> = {}): void => {
    candidates.push({
      fourcc: f.fourcc,
      rank: preference.indexOf(f.fourcc),
      width,
      height,
      sizeExact: width === rw && height === rh,
      unenumerated: false,
      areaDistance: Math.abs(Math.log((width * height) / requestedArea)),
      aspectDistance: Math.abs(Math.log(width / height / requestedAspect)),
      rate: chooseRate(intervals, request.fps),
      intervals,
      ...extra,
    });
  };
  for (const f of usable) {
    if (f.sizes.length === 0) {
      add(f, rw, rh, { kind: 'none' }, { unenumerated: true });
      continue;
    }
    for (const s of f.sizes) {
      if (s.kind === 'discrete') {
        if (s.width > 0 && s.height > 0) add(f, s.width, s.height, s.intervals);
        continue;
      }
      const step = s.kind === 'continuous';
      const w = snap(rw, s.minWidth, s.maxWidth, step ? 1 : s.stepWidth);
      const h = snap(rh, s.minHeight, s.maxHeight, step ? 1 : s.stepHeight);
      add(f, w, h, s.intervals, { snappedFrom: s });
    }
  }
  candidates.sort(compare);
  const best = candidates[0];

  const reasons: string[] = [];
  const warnings: string[] = [];
  const rateText = best.rate.fps === null ? 'the driver default rate' : `${fmtFps(best.rate.fps)} fps`;
  reasons.push(
    `${best.fourcc} ${best.width}x${best.height} @ ${rateText}: ` +
      `${best.sizeExact ? 'exact size' : 'closest size'}, ` +
      `${best.rate.exact ? (request.fps === undefined ? 'highest rate' : 'exact rate') : 'nearest rate'}, ` +
      `format preference ${best.rank + 1} of ${preference.length}`,
  );
  const passedOver = usable.filter((f) => preference.indexOf(f.fourcc) < best.rank).map((f) => f.fourcc);
  if (passedOver.length > 0) {
    reasons.push(`preferred ${passedOver.join(', ')} not chosen: no closer size or rate at that format`);
  }
  if (best.unenumerated) {
    warnings.push(`the driver does not enumerate ${best.fourcc} sizes; asking for ${rw}x${rh} and using what S_FMT returns`);
  } else if (!best.sizeExact) {
    if (best.snappedFrom && best.snappedFrom.kind !== 'discrete' && rw >= best.snappedFrom.minWidth && rw <= best.snappedFrom.maxWidth && rh >= best.snappedFrom.minHeight && rh <= best.snappedFrom.maxHeight) {
      warnings.push(
        `requested ${rw}x${rh} snapped to the device's ${best.snappedFrom.stepWidth}x${best.snappedFrom.stepHeight} step: ${best.width}x${best.height}`,
      );
    } else {
      warnings.push(`requested ${rw}x${rh} is not offered; using ${best.width}x${best.height} ${best.fourcc} (closest by area, then aspect ratio)`);
    }
    if (best.aspectDistance > 0.01) {
      warnings.push(`aspect ratio ${(best.width / best.height).toFixed(3)} differs from the requested ${requestedAspect.toFixed(3)}`);
    }
  }
  if (request.fps !== undefined && !best.rate.exact) {
    warnings.push(
      best.intervals.kind === 'none'
        ? `the driver does not enumerate frame rates for ${best.fourcc} ${best.width}x${best.height}; will ask for ${fmtFps(request.fps)} fps`
        : `requested ${fmtFps(request.fps)} fps is not offered for ${best.fourcc} ${best.width}x${best.height} (${fmtIntervals(best.intervals)}); using ${rateText}`,
    );
  }
  return {
    fourcc: best.fourcc,
    width: best.width,
    height: best.height,
    interval: best.rate.interval,
    fps: best.rate.fps,
    exactSize: best.sizeExact,
    exactFps: best.rate.exact,
    reasons,
    warnings,
  };
}
