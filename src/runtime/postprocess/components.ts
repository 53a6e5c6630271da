/**
 * 8-connected components of a binary mask by scanline (run) labelling: each row is split into
 * foreground runs, a run is joined with union-find to every run of the previous row it touches
 * (8-connectivity: ranges overlap after widening by one pixel), and statistics are accumulated per run.
 * No recursion (a full 1920x1080 frame cannot overflow a stack), and the only per-pixel work is the
 * word-wise scan for run ends plus the probability sum; union-find work scales with runs, not pixels.
 */
import { assertGrayImage, type GrayImage } from '../../image/types.js';
import { roundTo } from './round.js';
import { skipNonZeros, skipZeros, wordView } from './scan.js';
import type { BBox, Component } from '../../schemas/result.js';

// The wire shape of a component (result@1) is defined once in src/schemas/result.ts.
export type { BBox, Component };

export const DEFAULT_MAX_COMPONENTS = 32;

export interface ComponentOptions {
  /** Components smaller than this many pixels are dropped (default 1: keep all). */
  minArea?: number;
  /** At most this many components are reported, largest first (default DEFAULT_MAX_COMPONENTS). */
  maxComponents?: number;
  /** Probability map of the mask's size, for meanProbability. */
  prob?: Float32Array;
}

/**
 * What contour tracing needs: the mask and, for each reported component, its first pixel in raster
 * order (row-major index), which lies on its outer boundary. No label image is kept: Moore tracing from
 * that pixel only ever reaches pixels 8-connected to it, i.e. that component.
 */
export interface Labelling {
  /** The labelled mask; absent when it stayed native (summarizeNative without the frame-size mask). */
  mask?: GrayImage;
  /** start[i] belongs to components[i]. */
  start: number[];
}

export interface ComponentsResult {
  /** Sorted by area descending; equal areas in raster order of their first pixel. */
  components: Component[];
  /** Components found before filtering. */
  total: number;
  /** total - components.length: below minArea or beyond maxComponents. */
  dropped: number;
  labelling: Labelling;
}

function assertCount(value: number, what: string, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${what} must be an integer >= ${min}, got ${value}`);
}

/**
 * Raw statistics of every component, in label order (raster order of each component's first pixel),
 * before any filtering or rounding: COMPONENT_FIELDS values per component, namely area, sumX, sumY,
 * sumP, minX, minY, maxX, maxY, start. The native postprocessor (native/core/postprocess.cc)
 * produces the same table bit for bit; selectComponents turns either into the reported components.
 */
export interface RawComponents {
  count: number;
  data: Float64Array;
  /** Whether sumP holds probability sums (else 0 and no meanProbability is reported). */
  hasProb: boolean;
}

export const COMPONENT_FIELDS = 9;
const F_AREA = 0, F_SUMX = 1, F_SUMY = 2, F_SUMP = 3, F_MINX = 4, F_MINY = 5, F_MAXX = 6, F_MAXY = 7, F_START = 8;

/** Finds the 8-connected components of `mask` (non-zero = foreground). */
export function findComponents(mask: GrayImage, options: ComponentOptions = {}): ComponentsResult & { labelling: Required<Labelling> } {
  assertGrayImage(mask, 'findComponents');
  const prob = options.prob;
  if (prob && prob.length !== mask.width * mask.height) {
    throw new RangeError(`findComponents: probabilities have ${prob.length} values, expected ${mask.width}x${mask.height}`);
  }
  assertCount(options.minArea ?? 1, 'minArea', 0);
  assertCount(options.maxComponents ?? DEFAULT_MAX_COMPONENTS, 'maxComponents', 0);
  const found = selectComponents(labelComponents(mask, prob), mask, options, mask);
  return { ...found, labelling: { mask, start: found.labelling.start } };
}

/** Labels `mask` and sums each component's statistics (see RawComponents). */
export function labelComponents(mask: GrayImage, prob?: Float32Array): RawComponents {
  const { width: w, height: h, data: m } = mask;
  // Runs in raster order: row, first and last column. parent is the union-find forest over run
  // indices; roots are always the smallest index of their set (the larger root is linked under the
  // smaller), so parent[i] <= i and the forest flattens in one increasing sweep.
  let cap = 1024;
  let runY: Int32Array = new Int32Array(cap);
  let runA: Int32Array = new Int32Array(cap);
  let runB: Int32Array = new Int32Array(cap);
  let parent: Int32Array = new Int32Array(cap);
  let runs = 0;

  const find = (a: number): number => {
    let r = a;
    while (parent[r] !== r) r = parent[r];
    while (parent[a] !== r) {
      const p = parent[a];
      parent[a] = r;
      a = p;
    }
    return r;
  };

  const w32 = wordView(m);
  let prevFirst = 0;
  let prevEnd = 0;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    const rowEnd = row + w;
    const rowFirst = runs;
    // j walks the previous row's runs; runs on both rows are sorted, so the walk is linear.
    let j = prevFirst;
    let p = row;
    while (p < rowEnd) {
      p = skipZeros(m, w32, p, rowEnd);
      if (p === rowEnd) break;
      const a = p - row;
      p = skipNonZeros(m, w32, p, rowEnd);
      const b = p - row - 1;
      if (runs === cap) {
        cap *= 2;
        runY = grow(runY, cap);
        runA = grow(runA, cap);
        runB = grow(runB, cap);
        parent = grow(parent, cap);
      }
      runY[runs] = y;
      runA[runs] = a;
      runB[runs] = b;
      parent[runs] = runs;
      while (j < prevEnd && runB[j] < a - 1) j++;
      let k = j;
      for (; k < prevEnd && runA[k] <= b + 1; k++) {
        const ra = find(k);
        const rb = find(runs);
        if (ra < rb) parent[rb] = ra;
        else if (rb < ra) parent[ra] = rb;
      }
      // The last run touched may reach under the next run of this row too.
      if (k > j) j = k - 1;
      runs++;
    }
    prevFirst = rowFirst;
    prevEnd = runs;
  }

  // Flatten to component numbers 0..count-1, numbered in order of each component's first run, which
  // is raster order of its first pixel.
  let count = 0;
  for (let i = 0; i < runs; i++) parent[i] = parent[i] === i ? count++ : parent[parent[i]];

  const out = new Float64Array(count * COMPONENT_FIELDS);
  for (let l = 0; l < count; l++) out[l * COMPONENT_FIELDS + F_MINX] = w;
  for (let i = 0; i < runs; i++) {
    const o = parent[i] * COMPONENT_FIELDS;
    const y = runY[i], a = runA[i], b = runB[i];
    const len = b - a + 1;
    if (out[o + F_AREA] === 0) {
      out[o + F_START] = y * w + a;
      out[o + F_MINY] = y;
    }
    out[o + F_AREA] += len;
    // Sum of a..b; (a + b) * len is always even, so this stays an exact integer.
    out[o + F_SUMX] += ((a + b) * len) / 2;
    out[o + F_SUMY] += y * len;
    if (a < out[o + F_MINX]) out[o + F_MINX] = a;
    if (b > out[o + F_MAXX]) out[o + F_MAXX] = b;
    out[o + F_MAXY] = y;
    if (prob) {
      let sp = 0;
      for (let p = y * w + a, e = y * w + b; p <= e; p++) sp += prob[p];
      out[o + F_SUMP] += sp;
    }
  }
  return { count, data: out, hasProb: prob !== undefined };
}

/**
 * The reported components of a labelled mask: those of at least minArea pixels, largest first (ties
 * in raster order), at most maxComponents, with their statistics rounded for publication.
 */
export function selectComponents(
  raw: RawComponents,
  size: { width: number; height: number },
  options: Pick<ComponentOptions, 'minArea' | 'maxComponents'> = {},
  mask?: GrayImage,
): ComponentsResult {
  const minArea = options.minArea ?? 1;
  const maxComponents = options.maxComponents ?? DEFAULT_MAX_COMPONENTS;
  assertCount(minArea, 'minArea', 0);
  assertCount(maxComponents, 'maxComponents', 0);
  const { count, data: d } = raw;
  if (d.length !== count * COMPONENT_FIELDS) throw new RangeError(`raw components: ${d.length} values for ${count} components`);
  const area = (l: number): number => d[l * COMPONENT_FIELDS + F_AREA];
  const order: number[] = [];
  for (let l = 0; l < count; l++) if (area(l) >= minArea) order.push(l);
  order.sort((a, b) => area(b) - area(a) || a - b);
  if (order.length > maxComponents) order.length = maxComponents;

  const total = size.width * size.height;
  const components = order.map((l): Component => {
    const o = l * COMPONENT_FIELDS;
    const a = d[o + F_AREA];
    const minX = d[o + F_MINX], minY = d[o + F_MINY];
    const c: Component = {
      area: a,
      areaPercent: roundTo((100 * a) / total, 4),
      bbox: { x: minX, y: minY, width: d[o + F_MAXX] - minX + 1, height: d[o + F_MAXY] - minY + 1 },
      centroid: { x: roundTo(d[o + F_SUMX] / a, 2), y: roundTo(d[o + F_SUMY] / a, 2) },
    };
    if (raw.hasProb) c.meanProbability = roundTo(d[o + F_SUMP] / a, 4);
    return c;
  });

  return {
    components,
    total: count,
    dropped: count - components.length,
    labelling: { mask, start: order.map((l) => d[l * COMPONENT_FIELDS + F_START]) },
  };
}

function grow(a: Int32Array, size: number): Int32Array {
  const out = new Int32Array(size);
  out.set(a);
  return out;
}
