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

export const DEFAULT_MAX_COMPONENTS = 32;

export interface BBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Component {
  /** Pixels. */
  area: number;
  /** 100 * area / (width * height), 4 decimals. */
  areaPercent: number;
  /** Inclusive pixel bounds: pixels x .. x+width-1, y .. y+height-1. */
  bbox: BBox;
  /** Mean pixel coordinate (pixel (x, y) sits at x, y), 2 decimals. */
  centroid: { x: number; y: number };
  /** Mean probability over the component's pixels, 4 decimals; only when probabilities were given. */
  meanProbability?: number;
}

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
  mask: GrayImage;
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

/** Finds the 8-connected components of `mask` (non-zero = foreground). */
export function findComponents(mask: GrayImage, options: ComponentOptions = {}): ComponentsResult {
  assertGrayImage(mask, 'findComponents');
  const minArea = options.minArea ?? 1;
  const maxComponents = options.maxComponents ?? DEFAULT_MAX_COMPONENTS;
  assertCount(minArea, 'minArea', 0);
  assertCount(maxComponents, 'maxComponents', 0);
  const prob = options.prob;
  const { width: w, height: h, data: m } = mask;
  if (prob && prob.length !== w * h) {
    throw new RangeError(`findComponents: probabilities have ${prob.length} values, expected ${w}x${h}`);
  }

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

  const area = new Float64Array(count);
  const sumX = new Float64Array(count);
  const sumY = new Float64Array(count);
  const sumP = new Float64Array(count);
  const minX = new Int32Array(count).fill(w);
  const maxX = new Int32Array(count);
  const minY = new Int32Array(count);
  const maxY = new Int32Array(count);
  const start = new Int32Array(count);
  for (let i = 0; i < runs; i++) {
    const l = parent[i];
    const y = runY[i], a = runA[i], b = runB[i];
    const len = b - a + 1;
    if (area[l] === 0) {
      start[l] = y * w + a;
      minY[l] = y;
    }
    area[l] += len;
    // Sum of a..b; (a + b) * len is always even, so this stays an exact integer.
    sumX[l] += ((a + b) * len) / 2;
    sumY[l] += y * len;
    if (a < minX[l]) minX[l] = a;
    if (b > maxX[l]) maxX[l] = b;
    maxY[l] = y;
    if (prob) {
      let sp = 0;
      for (let p = y * w + a, e = y * w + b; p <= e; p++) sp += prob[p];
      sumP[l] += sp;
    }
  }

  const order: number[] = [];
  for (let l = 0; l < count; l++) if (area[l] >= minArea) order.push(l);
  order.sort((a, b) => area[b] - area[a] || a - b);
  if (order.length > maxComponents) order.length = maxComponents;

  const total = w * h;
  const components = order.map((l): Component => {
    const c: Component = {
      area: area[l],
      areaPercent: roundTo((100 * area[l]) / total, 4),
      bbox: { x: minX[l], y: minY[l], width: maxX[l] - minX[l] + 1, height: maxY[l] - minY[l] + 1 },
      centroid: { x: roundTo(sumX[l] / area[l], 2), y: roundTo(sumY[l] / area[l], 2) },
    };
    if (prob) c.meanProbability = roundTo(sumP[l] / area[l], 4);
    return c;
  });

  return {
    components,
    total: count,
    dropped: count - components.length,
    labelling: { mask, start: order.map((l) => start[l]) },
  };
}

function grow(a: Int32Array, size: number): Int32Array {
  const out = new Int32Array(size);
  out.set(a);
  return out;
}
