#include "postprocess.h"

#include <algorithm>

#include <cmath>
#include <cstring>
#include <string>

#include "error.h"
#include "preprocess.h"

namespace lvunet {

// ====================================================
// Copyright (C) 2004 by Sun Microsystems, Inc. All rights reserved.
//
// Permission to use, copy, modify, and distribute this
// software is freely granted, provided that this notice
// is preserved.
// ====================================================
// e_exp.c as in V8's src/base/ieee754.cc (the algorithm and constants are fdlibm's; see there for the
// derivation). Word access goes through memcpy instead of unions.
namespace {

inline std::uint32_t highWord(double x) {
  std::uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return static_cast<std::uint32_t>(bits >> 32);
}

inline std::uint32_t lowWord(double x) {
  std::uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return static_cast<std::uint32_t>(bits);
}

inline double fromWords(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = (static_cast<std::uint64_t>(hi) << 32) | lo;
  double x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

}  // namespace

double fdlibmExp(double x) {
  static const double one = 1.0, halF[2] = {0.5, -0.5}, o_threshold = 7.09782712893383973096e+02,
                      u_threshold = -7.45133219101941108420e+02,
                      ln2HI[2] = {6.93147180369123816490e-01, -6.93147180369123816490e-01},
                      ln2LO[2] = {1.90821492927058770002e-10, -1.90821492927058770002e-10},
                      invln2 = 1.44269504088896338700e+00, P1 = 1.66666666666666019037e-01,
                      P2 = -2.77777777770155933842e-03, P3 = 6.61375632143793436117e-05,
                      P4 = -1.65339022054652515390e-06, P5 = 4.13813679705723846039e-08, E = 2.718281828459045;
  static volatile double huge = 1.0e+300, twom1000 = 9.33263618503218878990e-302, two1023 = 8.988465674311579539e307;

  double y, hi = 0.0, lo = 0.0, c, t, twopk;
  std::int32_t k = 0, xsb;
  std::uint32_t hx = highWord(x);
  xsb = static_cast<std::int32_t>((hx >> 31) & 1);
  hx &= 0x7FFFFFFF;

  if (hx >= 0x40862E42) {
    if (hx >= 0x7FF00000) {
      const std::uint32_t lx = lowWord(x);
      if (((hx & 0xFFFFF) | lx) != 0) return x + x;
      return (xsb == 0) ? x : 0.0;
    }
    if (x > o_threshold) return huge * huge;
    if (x < u_threshold) return twom1000 * twom1000;
  }

  if (hx > 0x3FD62E42) {
    if (hx < 0x3FF0A2B2) {
      if (x == 1.0) return E;
      hi = x - ln2HI[xsb];
      lo = ln2LO[xsb];
      k = 1 - xsb - xsb;
    } else {
      k = static_cast<std::int32_t>(invln2 * x + halF[xsb]);
      t = k;
      hi = x - t * ln2HI[0];
      lo = t * ln2LO[0];
    }
    x = hi - lo;
  } else if (hx < 0x3E300000) {
    if (huge + x > one) return one + x;
  } else {
    k = 0;
  }

  t = x * x;
  if (k >= -1021) {
    twopk = fromWords(0x3FF00000 + static_cast<std::uint32_t>(static_cast<std::uint32_t>(k) << 20), 0);
  } else {
    twopk = fromWords(0x3FF00000 + (static_cast<std::uint32_t>(k + 1000) << 20), 0);
  }
  c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k == 0) return one - ((x * c) / (c - 2.0) - x);
  y = one - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * two1023;
    return y * twopk;
  }
  return y * twopk * twom1000;
}

float sigmoid(float xf) {
  const double x = xf;
  if (x >= 0) return static_cast<float>(1 / (1 + fdlibmExp(-x)));
  if (x < 0) {
    const double e = fdlibmExp(x);
    return static_cast<float>(e / (1 + e));
  }
  return 0.0f;
}

#if defined(__GNUC__)
namespace {

// fdlibmExp on two lanes at once (SSE2 / NEON through GCC vector extensions) for the arguments
// sigmoid() takes, -707 < x <= -2^-28: the same IEEE operations on the same values, its branches
// turned into lane selects, so each lane is bit-identical to the scalar function. Comparisons and
// integer steps are done in double (SSE2 has no 64-bit integer compare or conversion).
typedef double V2d __attribute__((vector_size(16)));
typedef std::int64_t V2l __attribute__((vector_size(16)));

inline V2d sel(V2l m, V2d a, V2d b) {
  return reinterpret_cast<V2d>((reinterpret_cast<V2l>(a) & m) | (reinterpret_cast<V2l>(b) & ~m));
}

inline V2d splat(double v) { return V2d{v, v}; }

inline V2d expNegativeLanes(V2d x) {
  const V2d one = splat(1.0), two = splat(2.0), zero = splat(0.0);
  const V2d ln2HI1 = splat(-6.93147180369123816490e-01), ln2LO1 = splat(-1.90821492927058770002e-10);
  const V2d ln2HI0 = splat(6.93147180369123816490e-01), ln2LO0 = splat(1.90821492927058770002e-10);
  const V2d invln2 = splat(1.44269504088896338700e+00), halF1 = splat(-0.5);
  const V2d P1 = splat(1.66666666666666019037e-01), P2 = splat(-2.77777777770155933842e-03);
  const V2d P3 = splat(6.61375632143793436117e-05), P4 = splat(-1.65339022054652515390e-06);
  const V2d P5 = splat(4.13813679705723846039e-08);
  // hx > 0x3FD62E42 and hx < 0x3FF0A2B2 on the high word of |x|, as bounds on x (< 0).
  const V2d reducedBound = splat(-fromWords(0x3FD62E43, 0));
  const V2d nearBound = splat(-fromWords(0x3FF0A2B2, 0));
  const V2l reduced = x <= reducedBound;
  const V2l near = reduced & (x > nearBound);
  // k = static_cast<int>(v), v < 0: round to nearest through the 1.5 * 2^52 shifter, then toward zero.
  const V2d v = invln2 * x + halF1;
  const V2d shifter = splat(6755399441055744.0);
  V2d r = (v + shifter) - shifter;
  r = sel(r < v, r + one, r);
  const V2d tFar = r;
  const V2d hiFar = x - tFar * ln2HI0;
  const V2d loFar = tFar * ln2LO0;
  const V2d hiNear = x - ln2HI1;
  const V2d k = sel(reduced, sel(near, splat(-1.0), tFar), zero);
  const V2d hi = sel(reduced, sel(near, hiNear, hiFar), zero);
  const V2d lo = sel(reduced, sel(near, ln2LO1, loFar), zero);
  const V2d xr = sel(reduced, hi - lo, x);
  const V2d t = xr * xr;
  // INSERT_WORDS(twopk, 0x3FF00000 + (k << 20), 0): k + 1023 lands in the low mantissa bits of
  // 2^52 + k + 1023 (exact), and is shifted into the exponent field.
  const V2d biased = k + splat(4503599627371519.0);  // 2^52 + 1023
  const V2d twopk = reinterpret_cast<V2d>(reinterpret_cast<V2l>(biased) << 52);
  const V2d c = xr - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  const V2l k0 = k == zero;
  const V2d q = (xr * c) / sel(k0, c - two, two - c);
  const V2d r0 = one - (q - xr);
  const V2d y = one - ((lo - q) - hi);
  return sel(k0, r0, y * twopk);
}

// Outside 2^-28 <= |x| < 707 (and for NaN) sigmoid() takes another branch of exp.
inline bool vectorPath(float x) {
  const float a = std::fabs(x);
  return a >= 0x1p-28f && a < 707.0f;
}

}  // namespace

void sigmoidInto(const float* logits, std::size_t n, float* out) {
  const V2d one = splat(1.0);
  // Eight values per step: the exp polynomial and the two divisions form a long dependency chain,
  // and four independent chains keep the pipelines busy.
  constexpr std::size_t kLanes = 8;
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    bool vector = true;
    for (std::size_t k = 0; k < kLanes; ++k) vector = vector && vectorPath(logits[i + k]);
    if (!vector) {
      for (std::size_t k = 0; k < kLanes; ++k) out[i + k] = sigmoid(logits[i + k]);
      continue;
    }
    V2d r[kLanes / 2];
    for (std::size_t v = 0; v < kLanes / 2; ++v) {
      const V2d x = {logits[i + 2 * v], logits[i + 2 * v + 1]};
      const V2l pos = x >= splat(0.0);
      const V2d e = expNegativeLanes(sel(pos, -x, x));  // exp(-|x|), as in sigmoid()
      // 1 / (1 + e) or e / (1 + e): one division for both branches.
      r[v] = sel(pos, one, e) / (one + e);
    }
    for (std::size_t v = 0; v < kLanes / 2; ++v) {
      out[i + 2 * v] = static_cast<float>(r[v][0]);
      out[i + 2 * v + 1] = static_cast<float>(r[v][1]);
    }
  }
  for (; i < n; ++i) out[i] = sigmoid(logits[i]);
}
#else
void sigmoidInto(const float* logits, std::size_t n, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = sigmoid(logits[i]);
}
#endif

namespace {

CoreError invalid(const std::string& message) { return CoreError(codes::kInvalidArgument, message); }

// Horizontal half of the bilinear tap for window row `row` (window coordinates): the inner brackets
// gx * src[r + x0] + fx * src[r + x1] of sampleBilinear() in src/image/preprocess.ts.
void horizontal(const float* prob, std::uint32_t modelW, const ModelWindow& w, std::uint32_t row,
                const PostprocessScratch& s, std::uint32_t frameW, double* h) {
  const float* src = prob + static_cast<std::size_t>(w.oy + row) * modelW + w.ox;
  for (std::uint32_t x = 0; x < frameW; ++x) {
    h[x] = s.gx[x] * static_cast<double>(src[s.x0[x]]) + s.fx[x] * static_cast<double>(src[s.x1[x]]);
  }
}

// Horizontal taps for frame columns [xa, xb] only, into h[xa..xb].
void horizontalRange(const float* prob, std::uint32_t modelW, const ModelWindow& w, std::uint32_t row,
                     const PostprocessScratch& s, std::uint32_t xa, std::uint32_t xb, double* h) {
  const float* src = prob + static_cast<std::size_t>(w.oy + row) * modelW + w.ox;
  for (std::uint32_t x = xa; x <= xb; ++x) {
    h[x] = s.gx[x] * static_cast<double>(src[s.x0[x]]) + s.fx[x] * static_cast<double>(src[s.x1[x]]);
  }
}

const double* cachedRow(const float* prob, std::uint32_t modelW, const ModelWindow& w, std::uint32_t row,
                        std::int64_t keep, std::uint32_t frameW, PostprocessScratch& s) {
  for (int k = 0; k < 2; ++k) {
    if (s.rowIndex[k] == row) return s.rows[k].data();
  }
  const int slot = s.rowIndex[0] == keep ? 1 : 0;
  horizontal(prob, modelW, w, row, s, frameW, s.rows[slot].data());
  s.rowIndex[slot] = row;
  return s.rows[slot].data();
}

// Separate loops with unaliased pointers, so that both vectorise (a byte store may alias anything).
void resizeRow(const double* __restrict h0, const double* __restrict h1, double gy, double fy, std::uint32_t n,
               float* __restrict out) {
  for (std::uint32_t x = 0; x < n; ++x) out[x] = static_cast<float>(gy * h0[x] + fy * h1[x]);
}

void thresholdRow(const float* __restrict prob, std::uint32_t n, double threshold, std::uint8_t* __restrict mask) {
  for (std::uint32_t x = 0; x < n; ++x) mask[x] = static_cast<double>(prob[x]) > threshold ? 1 : 0;
}

// The reference's order: left to right.
double runSum(const float* p, std::uint32_t n) {
  double sp = 0;
  for (std::uint32_t i = 0; i < n; ++i) sp += p[i];
  return sp;
}

// Four interleaved partial sums; only for values whose sum is exact in any order (see exactSums).
double runSumExact(const float* p, std::uint32_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::uint32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return (s0 + s1) + (s2 + s3);
}

// Run boundaries in a 0/1 mask row, eight bytes at a time where possible.
std::uint32_t skipZeros(const std::uint8_t* m, std::uint32_t x, std::uint32_t n) {
  while (x + 8 <= n) {
    std::uint64_t w;
    std::memcpy(&w, m + x, 8);
    if (w != 0) break;
    x += 8;
  }
  while (x < n && m[x] == 0) ++x;
  return x;
}

std::uint32_t skipNonZeros(const std::uint8_t* m, std::uint32_t x, std::uint32_t n) {
  // Mask bytes are 0 or 1: a word of eight foreground bytes is exactly 0x0101010101010101.
  while (x + 8 <= n) {
    std::uint64_t w;
    std::memcpy(&w, m + x, 8);
    if (w != 0x0101010101010101ull) break;
    x += 8;
  }
  while (x < n && m[x] != 0) ++x;
  return x;
}

inline std::int32_t find(std::vector<std::int32_t>& parent, std::int32_t a) {
  std::int32_t r = a;
  while (parent[r] != r) r = parent[r];
  while (parent[a] != r) {
    const std::int32_t p = parent[a];
    parent[a] = r;
    a = p;
  }
  return r;
}

}  // namespace

void postprocess(const float* logits, std::uint32_t modelW, std::uint32_t modelH, const ModelWindow& window,
                 std::uint32_t frameW, std::uint32_t frameH, double threshold, std::uint8_t* maskModel,
                 std::uint8_t* maskFrame, PostprocessOutput& out, PostprocessScratch& s) {
  if (modelW == 0 || modelH == 0 || frameW == 0 || frameH == 0) throw invalid("postprocess sizes must be non-zero");
  if (!(threshold >= 0 && threshold <= 1)) {
    throw invalid("threshold must be a number in [0, 1], got " + std::to_string(threshold));
  }
  const ModelWindow& w = window;
  if (w.newW < 1 || w.newH < 1 || w.ox + w.newW > modelW || w.oy + w.newH > modelH) {
    throw invalid("letterbox content rect " + std::to_string(w.newW) + "x" + std::to_string(w.newH) + " at (" +
                  std::to_string(w.ox) + ", " + std::to_string(w.oy) + ") does not fit the " + std::to_string(modelW) +
                  "x" + std::to_string(modelH) + " model output");
  }

  const std::size_t n = static_cast<std::size_t>(modelW) * modelH;
  s.probModel.resize(n);
  float* prob = s.probModel.data();
  // Far background: a logit below ln(t / (1 − t)) − 1e-3 has a probability at least ~1e-6 below t
  // (t in [1e-3, 0.999]), far beyond float rounding, so it is background and so is any bilinear
  // mix of such pixels (a convex combination). Most of a frame is far background; its pixels need
  // neither exp() nor a resize, and what is computed is still the reference's exact value. Rows keep
  // the column range [lo, hi] of their other ("near") pixels; exp() runs on that range widened by one
  // pixel and one row, which holds every tap a near frame pixel reads.
  const std::int32_t W = static_cast<std::int32_t>(modelW);
  s.nearLo.assign(modelH, W);
  s.nearHi.assign(modelH, -1);
  if (threshold >= 1e-3 && threshold <= 0.999) {
    const double cut = std::log(threshold / (1 - threshold)) - 1e-3;
    for (std::uint32_t r = 0; r < modelH; ++r) {
      const float* l = logits + static_cast<std::size_t>(r) * modelW;
      std::int32_t lo = 0, hi = W - 1;
      while (lo < W && static_cast<double>(l[lo]) < cut) ++lo;  // NaN compares false: near, computed exactly
      while (hi >= lo && static_cast<double>(l[hi]) < cut) --hi;
      if (lo <= hi) s.nearLo[r] = lo, s.nearHi[r] = hi;
    }
    std::fill(prob, prob + n, 0.0f);
    for (std::uint32_t r = 0; r < modelH; ++r) {
      std::int32_t lo = W, hi = -1;
      for (std::uint32_t k = r == 0 ? 0 : r - 1; k <= r + 1 && k < modelH; ++k) {
        lo = std::min(lo, s.nearLo[k]);
        hi = std::max(hi, s.nearHi[k]);
      }
      if (lo > hi) continue;
      lo = std::max(0, lo - 1);
      hi = std::min(W - 1, hi + 1);
      const std::size_t at = static_cast<std::size_t>(r) * modelW + static_cast<std::size_t>(lo);
      sigmoidInto(logits + at, static_cast<std::size_t>(hi - lo + 1), prob + at);
    }
  } else {
    std::fill(s.nearLo.begin(), s.nearLo.end(), 0);
    std::fill(s.nearHi.begin(), s.nearHi.end(), W - 1);
    sigmoidInto(logits, n, prob);
  }
  thresholdRow(prob, static_cast<std::uint32_t>(n), threshold, maskModel);

  axisTaps(w.newW, frameW, s.x0, s.x1, s.fx, s.gx);
  axisTaps(w.newH, frameH, s.y0, s.y1, s.fy, s.gy);
  for (auto& r : s.rows) r.resize(frameW);
  s.rowIndex[0] = s.rowIndex[1] = -1;
  s.probRow.resize(frameW);
  s.runY.clear();
  s.runA.clear();
  s.runB.clear();
  s.parent.clear();
  s.runP.clear();
  auto& runY = s.runY;
  auto& runA = s.runA;
  auto& runB = s.runB;
  auto& parent = s.parent;
  auto& runP = s.runP;

  // Resize, threshold and scanline labelling in one pass over the frame rows, exactly as
  // findComponents() labels runs (see src/runtime/postprocess/components.ts for the invariants).
  // Foreground probabilities exceed the threshold. When that is at least 2^-13, each is a multiple of
  // 2^-36 and a run (at most 65536 pixels) sums to less than 2^17: every partial sum is exact in
  // double, so the run's sum does not depend on the order of the additions.
  const bool exactSums = threshold >= 0x1p-13;
  std::int32_t runs = 0, prevFirst = 0, prevEnd = 0;
  std::uint64_t foreground = 0;
  float* pr = s.probRow.data();
  for (auto& r : s.partial) r.resize(frameW);
  for (std::uint32_t y = 0; y < frameH; ++y) {
    std::uint8_t* m = maskFrame + static_cast<std::size_t>(y) * frameW;
    // Near pixels of the two tap rows, in window columns; frame columns outside [xa, xb] read only
    // far pixels (x0, x1 are non-decreasing and x1 <= x0 + 1).
    const std::uint32_t r0 = w.oy + s.y0[y], r1 = w.oy + s.y1[y];
    const std::int32_t lo = std::max<std::int32_t>(0, std::min(s.nearLo[r0], s.nearLo[r1]) - static_cast<std::int32_t>(w.ox));
    const std::int32_t hi = std::min<std::int32_t>(static_cast<std::int32_t>(w.newW) - 1,
                                                   std::max(s.nearHi[r0], s.nearHi[r1]) - static_cast<std::int32_t>(w.ox));
    std::uint32_t xa = frameW, xb = 0;
    if (lo <= hi) {
      xa = static_cast<std::uint32_t>(std::lower_bound(s.x1.begin(), s.x1.end(), static_cast<std::uint32_t>(lo)) - s.x1.begin());
      xb = static_cast<std::uint32_t>(std::upper_bound(s.x0.begin(), s.x0.end(), static_cast<std::uint32_t>(hi)) - s.x0.begin());
      // xb is one past the last column; empty when nothing is left.
    }
    if (xa >= xb) {
      std::memset(m, 0, frameW);
      prevFirst = runs;
      prevEnd = runs;
      continue;
    }
    const double fy = s.fy[y], gy = s.gy[y];
    if (xa == 0 && xb == frameW) {
      const double* h0 = cachedRow(prob, modelW, w, s.y0[y], s.y1[y], frameW, s);
      const double* h1 = cachedRow(prob, modelW, w, s.y1[y], s.y0[y], frameW, s);
      resizeRow(h0, h1, gy, fy, frameW, pr);
      thresholdRow(pr, frameW, threshold, m);
    } else {
      double* h0 = s.partial[0].data();
      double* h1 = s.partial[1].data();
      horizontalRange(prob, modelW, w, s.y0[y], s, xa, xb - 1, h0);
      horizontalRange(prob, modelW, w, s.y1[y], s, xa, xb - 1, h1);
      resizeRow(h0 + xa, h1 + xa, gy, fy, xb - xa, pr + xa);
      std::memset(m, 0, xa);
      thresholdRow(pr + xa, xb - xa, threshold, m + xa);
      std::memset(m + xb, 0, frameW - xb);
    }

    const std::int32_t rowFirst = runs;
    std::int32_t j = prevFirst;
    std::uint32_t x = 0;
    while (x < frameW) {
      x = skipZeros(m, x, frameW);
      if (x == frameW) break;
      const auto a = static_cast<std::int32_t>(x);
      x = skipNonZeros(m, x, frameW);
      const double sp = exactSums ? runSumExact(pr + a, x - a) : runSum(pr + a, x - a);
      const auto b = static_cast<std::int32_t>(x) - 1;
      foreground += static_cast<std::uint64_t>(b - a + 1);
      runY.push_back(static_cast<std::int32_t>(y));
      runA.push_back(a);
      runB.push_back(b);
      parent.push_back(runs);
      runP.push_back(sp);
      while (j < prevEnd && runB[j] < a - 1) ++j;
      std::int32_t k = j;
      for (; k < prevEnd && runA[k] <= b + 1; ++k) {
        const std::int32_t ra = find(parent, k);
        const std::int32_t rb = find(parent, runs);
        if (ra < rb) parent[rb] = ra;
        else if (rb < ra) parent[ra] = rb;
      }
      if (k > j) j = k - 1;
      ++runs;
    }
    prevFirst = rowFirst;
    prevEnd = runs;
  }

  std::int32_t count = 0;
  for (std::int32_t i = 0; i < runs; ++i) parent[i] = parent[i] == i ? count++ : parent[parent[i]];

  out.foreground = foreground;
  out.components.assign(static_cast<std::size_t>(count),
                        ComponentStats{0, 0, 0, 0, static_cast<std::int32_t>(frameW), 0, 0, 0, 0});
  for (std::int32_t i = 0; i < runs; ++i) {
    ComponentStats& c = out.components[static_cast<std::size_t>(parent[i])];
    const std::int32_t y = runY[i], a = runA[i], b = runB[i];
    const std::int32_t len = b - a + 1;
    if (c.area == 0) {
      c.start = y * static_cast<std::int32_t>(frameW) + a;
      c.minY = y;
    }
    c.area += len;
    // (a + b) * len is even and far below 2^53: the same exact value the reference computes.
    c.sumX += static_cast<double>((static_cast<std::int64_t>(a) + b) * len) / 2;
    c.sumY += static_cast<double>(static_cast<std::int64_t>(y) * len);
    if (a < c.minX) c.minX = a;
    if (b > c.maxX) c.maxX = b;
    c.maxY = y;
    c.sumP += runP[i];
  }
}

void cocoRleCounts(const std::uint8_t* mask, std::uint32_t width, std::uint32_t height,
                   std::vector<std::uint32_t>& counts, std::vector<std::uint8_t>& block) {
  counts.clear();
  if (width == 0 || height == 0) return;
  constexpr std::uint32_t kBlock = 64;
  block.resize(static_cast<std::size_t>(kBlock) * height);
  std::uint8_t current = 0;  // runs start with background
  std::uint64_t run = 0;
  for (std::uint32_t x0 = 0; x0 < width; x0 += kBlock) {
    const std::uint32_t n = std::min(kBlock, width - x0);
    // Transpose columns x0 .. x0+n-1 into block (column c at c * height): rows are read contiguously.
    for (std::uint32_t y = 0; y < height; ++y) {
      const std::uint8_t* row = mask + static_cast<std::size_t>(y) * width + x0;
      for (std::uint32_t c = 0; c < n; ++c) block[static_cast<std::size_t>(c) * height + y] = row[c] != 0;
    }
    const std::uint8_t* p = block.data();
    const std::size_t len = static_cast<std::size_t>(n) * height;
    for (std::size_t i = 0; i < len; ++i) {
      if (p[i] != current) {
        counts.push_back(static_cast<std::uint32_t>(run));
        run = 0;
        current = p[i];
      }
      ++run;
    }
  }
  counts.push_back(static_cast<std::uint32_t>(run));
}

}  // namespace lvunet
