/**
 * Outer contours of connected components: Moore-neighbour tracing over pixel centres, then
 * Ramer-Douglas-Peucker simplification. Points are flat integer lists [x0, y0, x1, y1, ...] (the
 * COCO polygon layout), clockwise in image coordinates (y down), without repeating the first point.
 */
import { assertGrayImage, type GrayImage } from '../../image/types.js';
import type { Labelling } from './components.js';
import type { Contour } from '../../schemas/result.js';

// The wire shape of a contour (result@1) is defined once in src/schemas/result.ts.
export type { Contour };

export const DEFAULT_CONTOUR_EPSILON = 1.5;
export const DEFAULT_MAX_CONTOUR_POINTS = 128;

export interface ContourOptions {
  /** RDP tolerance in pixels (default DEFAULT_CONTOUR_EPSILON); 0 keeps every non-collinear turn. */
  epsilon?: number;
  /**
   * Cap on points per contour (default DEFAULT_MAX_CONTOUR_POINTS, at least 2). A contour that still
   * has more after simplification is re-simplified with epsilon doubled until it fits, so the cap costs
   * detail evenly instead of cutting part of the outline off.
   */
  maxPoints?: number;
}

// Clockwise in image coordinates (y down): E, SE, S, SW, W, NW, N, NE.
const DX = [1, 1, 0, -1, -1, -1, 0, 1];
const DY = [0, 1, 1, 1, 0, -1, -1, -1];

/**
 * Traces the outer boundary of the 8-connected component of `mask` that contains pixel `start` (a
 * row-major index), which must be the component's first pixel in raster order: everything above it and
 * to its left is then outside, so it is on the outer boundary. Returns boundary pixel coordinates as a
 * flat list; pixels of one-pixel-wide parts appear once per side walked.
 */
export function traceOuterContour(mask: GrayImage, start: number): number[] {
  assertGrayImage(mask, 'traceOuterContour');
  const { width, height, data } = mask;
  if (!(Number.isInteger(start) && start >= 0 && start < data.length) || data[start] === 0) {
    throw new RangeError(`traceOuterContour: pixel ${start} is not foreground`);
  }
  const sx = start % width;
  const sy = (start - sx) / width;
  if ((sx > 0 && data[start - 1] !== 0) || (sy > 0 && rowHasForeground(data, start - width - 1, sx, width))) {
    throw new RangeError(`traceOuterContour: pixel ${start} is not the first pixel of its component`);
  }
  const inside = (x: number, y: number): boolean =>
    x >= 0 && y >= 0 && x < width && y < height && data[y * width + x] !== 0;

  /** First direction, scanning clockwise from `from`, that leads into the component; -1 if none. */
  const scan = (x: number, y: number, from: number): number => {
    for (let k = 0; k < 8; k++) {
      const d = (from + k) & 7;
      if (inside(x + DX[d], y + DY[d])) return d;
    }
    return -1;
  };

  const points = [sx, sy];
  // We "arrived" from the west: W, NW, N and NE of the first pixel are all outside.
  const first = scan(sx, sy, 5);
  if (first < 0) return points;
  let x = sx + DX[first];
  let y = sy + DY[first];
  let d = first;
  // A guard against bugs only: a closed trace enters each pixel from at most 8 directions.
  const limit = 8 * data.length + 8;
  for (let steps = 0; steps < limit; steps++) {
    // The background pixel checked just before the move is, seen from the new pixel, at d+6 (axial
    // move) or d+5 (diagonal move); resume the clockwise scan just after it.
    const next = scan(x, y, (d + ((d & 1) === 0 ? 7 : 6)) & 7);
    // Tracing is deterministic in (pixel, direction taken): leaving the start in the first direction
    // again means the loop is about to repeat.
    if (x === sx && y === sy && next === first) return points;
    points.push(x, y);
    x += DX[next];
    y += DY[next];
    d = next;
  }
  throw new Error(`traceOuterContour: contour from pixel ${start} did not close after ${limit} steps`);
}

/** Whether any of the (up to) three pixels NW, N, NE of column sx, from flat index nw, is foreground. */
function rowHasForeground(data: Uint8Array, nw: number, sx: number, width: number): boolean {
  for (let dx = -1; dx <= 1; dx++) {
    const x = sx + dx;
    if (x >= 0 && x < width && data[nw + 1 + dx] !== 0) return true;
  }
  return false;
}

/** Squared distance from (px, py) to the segment (ax, ay)-(bx, by). */
function segmentDist2(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const vx = bx - ax;
  const vy = by - ay;
  const len2 = vx * vx + vy * vy;
  let t = len2 === 0 ? 0 : ((px - ax) * vx + (py - ay) * vy) / len2;
  if (t < 0) t = 0;
  else if (t > 1) t = 1;
  const dx = px - (ax + t * vx);
  const dy = py - (ay + t * vy);
  return dx * dx + dy * dy;
}

/**
 * Marks in `keep` the points of pts[from..to] (flat indices of points, inclusive) that RDP keeps
 * with tolerance `eps2` (squared), endpoints excluded. Iterative with an explicit stack: a contour of
 * thousands of points would make a recursive version deep.
 */
function rdpMark(pts: number[], from: number, to: number, eps2: number, keep: Uint8Array): void {
  const n = pts.length / 2;
  const stack = [from, to];
  while (stack.length > 0) {
    const b = stack.pop() as number;
    const a = stack.pop() as number;
    const ax = pts[2 * (a % n)], ay = pts[2 * (a % n) + 1];
    const bx = pts[2 * (b % n)], by = pts[2 * (b % n) + 1];
    let best = -1;
    let bestD = eps2;
    for (let i = a + 1; i < b; i++) {
      const d = segmentDist2(pts[2 * (i % n)], pts[2 * (i % n) + 1], ax, ay, bx, by);
      if (d > bestD) {
        bestD = d;
        best = i;
      }
    }
    if (best < 0) continue;
    keep[best % n] = 1;
    stack.push(a, best, best, b);
  }
}

/** Ramer-Douglas-Peucker on an open polyline (flat list); both endpoints are kept. */
export function simplifyPath(points: number[], epsilon: number): number[] {
  assertPoints(points, epsilon);
  const n = points.length / 2;
  if (n <= 2) return points.slice();
  const keep = new Uint8Array(n);
  keep[0] = 1;
  keep[n - 1] = 1;
  rdpMark(points, 0, n - 1, epsilon * epsilon, keep);
  return collect(points, keep);
}

/**
 * Ramer-Douglas-Peucker on a closed polygon (flat list, first point not repeated). The ring is split
 * at the first point and the point farthest from it, and each half is simplified as an open path, so
 * the result starts at the same point as the input.
 */
export function simplifyClosed(points: number[], epsilon: number): number[] {
  assertPoints(points, epsilon);
  const n = points.length / 2;
  if (n <= 1) return points.slice();
  const x0 = points[0], y0 = points[1];
  let far = 0;
  let farD = -1;
  for (let i = 1; i < n; i++) {
    const dx = points[2 * i] - x0, dy = points[2 * i + 1] - y0;
    const d = dx * dx + dy * dy;
    if (d > farD) {
      farD = d;
      far = i;
    }
  }
  const keep = new Uint8Array(n);
  keep[0] = 1;
  if (farD === 0) return collect(points, keep);
  keep[far] = 1;
  const eps2 = epsilon * epsilon;
  rdpMark(points, 0, far, eps2, keep);
  // Index n stands for point 0 again (rdpMark reads indices modulo n), closing the ring.
  rdpMark(points, far, n, eps2, keep);
  return collect(points, keep);
}

function assertPoints(points: number[], epsilon: number): void {
  if (points.length % 2 !== 0) throw new RangeError(`point list has odd length ${points.length}`);
  if (!(epsilon >= 0) || !Number.isFinite(epsilon)) {
    throw new RangeError(`epsilon must be a finite number >= 0, got ${epsilon}`);
  }
}

function collect(points: number[], keep: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < keep.length; i++) if (keep[i]) out.push(points[2 * i], points[2 * i + 1]);
  return out;
}

/** simplifyClosed, with epsilon doubled until at most maxPoints points remain. */
export function simplifyClosedCapped(points: number[], epsilon: number, maxPoints: number): number[] {
  if (!Number.isInteger(maxPoints) || maxPoints < 2) {
    throw new RangeError(`maxPoints must be an integer >= 2, got ${maxPoints}`);
  }
  let eps = epsilon;
  let out = simplifyClosed(points, eps);
  // Terminates: once eps exceeds every distance in the ring only the first and farthest points remain.
  while (out.length / 2 > maxPoints) {
    eps = Math.max(eps * 2, 0.5);
    out = simplifyClosed(points, eps);
  }
  return out;
}

/** Simplified outer contours of the kept components of a labelling, in component order. */
export function componentContours(labelling: Labelling, options: ContourOptions = {}): Contour[] {
  const epsilon = options.epsilon ?? DEFAULT_CONTOUR_EPSILON;
  const maxPoints = options.maxPoints ?? DEFAULT_MAX_CONTOUR_POINTS;
  const { mask } = labelling;
  if (!mask) throw new Error('componentContours: contours trace the frame-size mask, which was left native (ask for it: maskFrame)');
  return labelling.start.map((start, i) => ({
    component: i,
    points: simplifyClosedCapped(traceOuterContour(mask, start), epsilon, maxPoints),
  }));
}
