#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "error.h"

namespace lvunet {

namespace {

// BT.601 limited range ("studio swing") YCbCr -> RGB, integer exact (8-bit fixed point, the
// well-known 298/409/100/208/516 coefficients):
//   C = Y - 16, D = U - 128, E = V - 128
//   R = clamp((298*C + 409*E + 128) >> 8)
//   G = clamp((298*C - 100*D - 208*E + 128) >> 8)
//   B = clamp((298*C + 516*D + 128) >> 8)
// clamp(x >> 8) is computed as x <= 0 ? 0 : min(255, x >> 8), so no negative value is ever shifted
// (implementation-defined in C++17); it equals an arithmetic shift followed by clamping.
inline std::uint8_t clampShift(int x) {
  if (x <= 0) return 0;
  const int v = x >> 8;
  return static_cast<std::uint8_t>(v > 255 ? 255 : v);
}

inline void yuvToRgb(int y, int u, int v, std::uint8_t* rgb) {
  const int c = 298 * (y - 16);
  const int d = u - 128;
  const int e = v - 128;
  rgb[0] = clampShift(c + 409 * e + 128);
  rgb[1] = clampShift(c - 100 * d - 208 * e + 128);
  rgb[2] = clampShift(c + 516 * d + 128);
}

CoreError invalid(const std::string& message) { return CoreError(codes::kInvalidArgument, message); }

}  // namespace

PixelFormat parsePixelFormat(const std::string& name) {
  if (name == "YUYV" || name == "YUY2") return PixelFormat::YUYV;
  if (name == "NV12") return PixelFormat::NV12;
  if (name == "GREY" || name == "GRAY") return PixelFormat::GREY;
  if (name == "RGB24") return PixelFormat::RGB24;
  if (name == "RGBA") return PixelFormat::RGBA;
  if (name == "MJPEG" || name == "MJPG" || name == "JPEG") return PixelFormat::MJPEG;
  throw invalid("unknown pixel format '" + name + "' (expected YUYV, NV12, GREY, RGB24 or RGBA)");
}

const char* pixelFormatName(PixelFormat format) {
  switch (format) {
    case PixelFormat::YUYV: return "YUYV";
    case PixelFormat::NV12: return "NV12";
    case PixelFormat::GREY: return "GREY";
    case PixelFormat::RGB24: return "RGB24";
    case PixelFormat::RGBA: return "RGBA";
    case PixelFormat::MJPEG: return "MJPEG";
  }
  return "?";
}

Fit parseFit(const std::string& name) {
  if (name == "stretch") return Fit::Stretch;
  if (name == "letterbox") return Fit::Letterbox;
  throw invalid("unknown fit '" + name + "' (expected 'stretch' or 'letterbox')");
}

std::size_t frameByteLength(PixelFormat format, std::uint32_t width, std::uint32_t height) {
  const std::string name = pixelFormatName(format);
  if (width == 0 || height == 0) {
    throw invalid(name + " frame must have a non-zero size, got " + std::to_string(width) + "x" +
                  std::to_string(height));
  }
  // 2^16 x 2^16 x 4 bytes still fits comfortably in 64 bits; refuse anything larger.
  if (width > 65536 || height > 65536) {
    throw invalid(name + " frame size " + std::to_string(width) + "x" + std::to_string(height) +
                  " exceeds 65536x65536");
  }
  const std::size_t pixels = static_cast<std::size_t>(width) * height;
  switch (format) {
    case PixelFormat::YUYV:
      if (width % 2 != 0) throw invalid("YUYV frame width must be even, got " + std::to_string(width));
      return pixels * 2;
    case PixelFormat::NV12:
      if (width % 2 != 0 || height % 2 != 0) {
        throw invalid("NV12 frame width and height must be even, got " + std::to_string(width) + "x" +
                      std::to_string(height));
      }
      return pixels + pixels / 2;
    case PixelFormat::GREY: return pixels;
    case PixelFormat::RGB24: return pixels * 3;
    case PixelFormat::RGBA: return pixels * 4;
    case PixelFormat::MJPEG: throw invalid("MJPEG frames have no fixed byte length");
  }
  throw invalid("unknown pixel format");
}

void validateFrame(PixelFormat format, std::uint32_t width, std::uint32_t height, std::size_t byteLength) {
  if (format == PixelFormat::MJPEG) {
    if (width == 0 || height == 0) {
      throw invalid("MJPEG frame must have a non-zero size, got " + std::to_string(width) + "x" + std::to_string(height));
    }
    if (byteLength < 4) {
      throw CoreError("ERR_JPEG_TRUNCATED", "MJPEG frame of " + std::to_string(byteLength) + " bytes holds no image",
                      {{"format", "MJPEG"}, {"actual", std::to_string(byteLength)}});
    }
    return;
  }
  const std::size_t expected = frameByteLength(format, width, height);
  if (byteLength != expected) {
    const std::string name = pixelFormatName(format);
    throw CoreError(codes::kFrameSize,
                    std::string(byteLength < expected ? "truncated " : "oversized ") + name + " frame: " +
                        std::to_string(width) + "x" + std::to_string(height) + " " + name + " needs " +
                        std::to_string(expected) + " bytes, got " + std::to_string(byteLength),
                    {{"format", name}, {"expected", std::to_string(expected)},
                     {"actual", std::to_string(byteLength)}});
  }
}

void toRgb(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength, std::uint32_t width,
           std::uint32_t height, std::uint8_t* rgb) {
  if (format == PixelFormat::MJPEG) throw invalid("toRgb does not decode MJPEG frames (see decodeJpegForModel)");
  validateFrame(format, width, height, byteLength);
  const std::size_t pixels = static_cast<std::size_t>(width) * height;
  switch (format) {
    case PixelFormat::RGB24:
      std::copy(frame, frame + pixels * 3, rgb);
      return;
    case PixelFormat::RGBA:
      for (std::size_t i = 0; i < pixels; ++i) {
        rgb[i * 3 + 0] = frame[i * 4 + 0];
        rgb[i * 3 + 1] = frame[i * 4 + 1];
        rgb[i * 3 + 2] = frame[i * 4 + 2];
      }
      return;
    case PixelFormat::GREY:
      // GREY is a luminance image, used as is (no limited-range expansion): R = G = B = Y.
      for (std::size_t i = 0; i < pixels; ++i) rgb[i * 3 + 0] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = frame[i];
      return;
    case PixelFormat::YUYV:
      // Y0 U Y1 V: two horizontally adjacent pixels share U and V.
      for (std::size_t i = 0; i < pixels; i += 2) {
        const std::uint8_t* p = frame + i * 2;
        yuvToRgb(p[0], p[1], p[3], rgb + i * 3);
        yuvToRgb(p[2], p[1], p[3], rgb + (i + 1) * 3);
      }
      return;
    case PixelFormat::MJPEG:
      return;  // refused above
    case PixelFormat::NV12: {
      // Y plane (width x height), then interleaved U V plane at half resolution in both directions.
      const std::uint8_t* uv = frame + pixels;
      for (std::uint32_t y = 0; y < height; ++y) {
        const std::uint8_t* yRow = frame + static_cast<std::size_t>(y) * width;
        const std::uint8_t* uvRow = uv + static_cast<std::size_t>(y / 2) * width;
        std::uint8_t* out = rgb + static_cast<std::size_t>(y) * width * 3;
        for (std::uint32_t x = 0; x < width; ++x) {
          const std::size_t c = (x / 2) * 2;
          yuvToRgb(yRow[x], uvRow[c], uvRow[c + 1], out + static_cast<std::size_t>(x) * 3);
        }
      }
      return;
    }
  }
}

// Source coordinate of output index `o` inside a content span of `span` outputs:
// s = (o + 0.5) * src / span - 0.5, clamped to [0, src - 1]; i0 = floor(s), i1 = min(i0 + 1, src - 1),
// f = s - i0. Evaluated left to right in double exactly as written, like bilinearAxis() in the TS
// reference; g = 1 - f is the same double the reference computes per pixel.
void axisTaps(std::uint32_t src, std::uint32_t span, std::vector<std::uint32_t>& i0, std::vector<std::uint32_t>& i1,
              std::vector<double>& f, std::vector<double>& g) {
  i0.resize(span);
  i1.resize(span);
  f.resize(span);
  g.resize(span);
  const double maxS = static_cast<double>(src - 1);
  for (std::uint32_t o = 0; o < span; ++o) {
    double s = (static_cast<double>(o) + 0.5) * static_cast<double>(src) / static_cast<double>(span) - 0.5;
    if (s < 0.0) s = 0.0;
    if (s > maxS) s = maxS;
    const double fl = std::floor(s);
    const auto a = static_cast<std::uint32_t>(fl);
    i0[o] = a;
    i1[o] = std::min(a + 1, src - 1);
    f[o] = s - fl;
    g[o] = 1 - f[o];
  }
}

namespace {

void checkNormalization(const Normalization& norm) {
  for (int c = 0; c < 3; ++c) {
    if (!(norm.std[c] != 0.0) || !std::isfinite(norm.std[c]) || !std::isfinite(norm.mean[c])) {
      throw invalid("normalisation mean/std must be finite and std non-zero");
    }
  }
  if (!(norm.scale != 0.0) || !std::isfinite(norm.scale)) throw invalid("normalisation scale must be finite, non-zero");
}

// yuvToRgb() by table lookups, for the per-tap conversions of the resize (the hot loop). The
// products are tabulated per input byte, and clampShift(x) becomes a lookup at (x + kBias) >> 8:
// kBias is a multiple of 256 large enough to keep every sum positive, so the shift is a plain
// floor(x / 256) + kBias / 256, and the table maps it back and clamps (exactly clampShift: x <= 0 and
// 0 < x < 256 both give 0). The tables hold doubles, the type the interpolation needs next.
struct YuvTables {
  static constexpr int kBias = 512 * 256;
  std::int32_t y[256], vr[256], ug[256], vg[256], ub[256];
  double clamp[1100];
  YuvTables() {
    for (int i = 0; i < 256; ++i) {
      y[i] = 298 * (i - 16) + 128 + kBias;
      vr[i] = 409 * (i - 128);
      ug[i] = -100 * (i - 128);
      vg[i] = -208 * (i - 128);
      ub[i] = 516 * (i - 128);
    }
    // Sums lie in [298*-16 + 128 + kBias - 516*128, 298*239 + 128 + kBias + 516*127], i.e. indices 235..1046.
    for (int i = 0; i < 1100; ++i) {
      const int v = i - kBias / 256;
      clamp[i] = v <= 0 ? 0.0 : (v > 255 ? 255.0 : static_cast<double>(v));
    }
  }
};

const YuvTables& yuvTables() {
  static const YuvTables tables;
  return tables;
}

inline void yuvToRgbD(const YuvTables& t, int y, int u, int v, double rgb[3]) {
  const std::int32_t c = t.y[y];
  rgb[0] = t.clamp[(c + t.vr[v]) >> 8];
  rgb[1] = t.clamp[(c + t.ug[u] + t.vg[v]) >> 8];
  rgb[2] = t.clamp[(c + t.ub[u]) >> 8];
}

// One source pixel as RGB doubles, converted on demand (the same values as toRgb()).
template <PixelFormat F>
inline void pixelAt(const YuvTables& t, const std::uint8_t* frame, std::size_t pixels, std::uint32_t width,
                    std::uint32_t row, std::uint32_t x, double rgb[3]) {
  const std::size_t i = static_cast<std::size_t>(row) * width + x;
  if constexpr (F == PixelFormat::RGB24) {
    rgb[0] = frame[i * 3];
    rgb[1] = frame[i * 3 + 1];
    rgb[2] = frame[i * 3 + 2];
  } else if constexpr (F == PixelFormat::RGBA) {
    rgb[0] = frame[i * 4];
    rgb[1] = frame[i * 4 + 1];
    rgb[2] = frame[i * 4 + 2];
  } else if constexpr (F == PixelFormat::GREY) {
    rgb[0] = rgb[1] = rgb[2] = frame[i];
  } else if constexpr (F == PixelFormat::YUYV) {
    // Y0 U Y1 V: the pair starting at the even pixel carries U and V (width is even).
    const std::uint8_t* p = frame + (i & ~static_cast<std::size_t>(1)) * 2;
    yuvToRgbD(t, p[(i & 1) * 2], p[1], p[3], rgb);
  } else {
    const std::uint8_t* uv = frame + pixels + static_cast<std::size_t>(row / 2) * width + (x / 2) * 2;
    yuvToRgbD(t, frame[i], uv[0], uv[1], rgb);
  }
}

// Horizontal half of the bilinear tap for source row `row`: h = (1 - fx) * p(i0) + fx * p(i1), the
// inner brackets of the reference formula, as 3 planes of newW doubles.
#if defined(__SSE2__)
// yuvToRgb() for a whole YUYV row, eight pixels at a time, into planes of doubles. The same integer
// arithmetic: pmaddwd forms 298*C + 409*E (and the other sums) exactly in 32 bits, psrad is the
// floor division by 256 and the saturating packs clamp to 0..255, which is clampShift().
void yuyvRowToRgb(const std::uint8_t* src, std::uint32_t width, double* r, double* g, double* b) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i bias = _mm_setr_epi16(16, 128, 16, 128, 16, 128, 16, 128);
  const __m128i kR = _mm_setr_epi16(298, 409, 298, 409, 298, 409, 298, 409);
  const __m128i kB = _mm_setr_epi16(298, 516, 298, 516, 298, 516, 298, 516);
  const __m128i kGyu = _mm_setr_epi16(298, -100, 298, -100, 298, -100, 298, -100);
  const __m128i kGv = _mm_setr_epi16(0, -208, 0, -208, 0, -208, 0, -208);
  const __m128i round = _mm_set1_epi32(128);
  const __m128i max = _mm_set1_epi16(255);
  std::uint32_t x = 0;
  auto store = [](__m128i v16, double* out) {
    // v16: eight values 0..255 as int16 -> doubles.
    const __m128i lo = _mm_unpacklo_epi16(v16, _mm_setzero_si128());
    const __m128i hi = _mm_unpackhi_epi16(v16, _mm_setzero_si128());
    _mm_storeu_pd(out, _mm_cvtepi32_pd(lo));
    _mm_storeu_pd(out + 2, _mm_cvtepi32_pd(_mm_shuffle_epi32(lo, 0x4E)));
    _mm_storeu_pd(out + 4, _mm_cvtepi32_pd(hi));
    _mm_storeu_pd(out + 6, _mm_cvtepi32_pd(_mm_shuffle_epi32(hi, 0x4E)));
  };
  auto channel = [&](__m128i pairsA, __m128i pairsB, __m128i k) {
    // pairsA/pairsB: (value, chroma) int16 pairs of pixels 0..3 and 4..7.
    const __m128i a = _mm_srai_epi32(_mm_add_epi32(_mm_madd_epi16(pairsA, k), round), 8);
    const __m128i c = _mm_srai_epi32(_mm_add_epi32(_mm_madd_epi16(pairsB, k), round), 8);
    return _mm_min_epi16(_mm_max_epi16(_mm_packs_epi32(a, c), zero), max);
  };
  for (; x + 8 <= width; x += 8) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * static_cast<std::size_t>(x)));
    // Y0 U0 Y1 V0 Y2 U1 Y3 V1 as int16, minus (16, 128) per pair: C D C E C D C E.
    const __m128i lo = _mm_sub_epi16(_mm_unpacklo_epi8(v, zero), bias);
    const __m128i hi = _mm_sub_epi16(_mm_unpackhi_epi8(v, zero), bias);
    // (C, E) per pixel: words 0,3,2,3 of each half; (C, D): words 0,1,2,1.
    const __m128i ceLo = _mm_shufflehi_epi16(_mm_shufflelo_epi16(lo, 0xEC), 0xEC);
    const __m128i ceHi = _mm_shufflehi_epi16(_mm_shufflelo_epi16(hi, 0xEC), 0xEC);
    const __m128i cdLo = _mm_shufflehi_epi16(_mm_shufflelo_epi16(lo, 0x64), 0x64);
    const __m128i cdHi = _mm_shufflehi_epi16(_mm_shufflelo_epi16(hi, 0x64), 0x64);
    store(channel(ceLo, ceHi, kR), r + x);
    store(channel(cdLo, cdHi, kB), b + x);
    const __m128i gLo = _mm_srai_epi32(_mm_add_epi32(_mm_add_epi32(_mm_madd_epi16(cdLo, kGyu), _mm_madd_epi16(ceLo, kGv)), round), 8);
    const __m128i gHi = _mm_srai_epi32(_mm_add_epi32(_mm_add_epi32(_mm_madd_epi16(cdHi, kGyu), _mm_madd_epi16(ceHi, kGv)), round), 8);
    store(_mm_min_epi16(_mm_max_epi16(_mm_packs_epi32(gLo, gHi), zero), max), g + x);
  }
  const YuvTables& t = yuvTables();
  for (; x < width; x += 2) {
    const std::uint8_t* p = src + 2 * static_cast<std::size_t>(x);
    double px[3];
    yuvToRgbD(t, p[0], p[1], p[3], px);
    r[x] = px[0], g[x] = px[1], b[x] = px[2];
    yuvToRgbD(t, p[2], p[1], p[3], px);
    r[x + 1] = px[0], g[x + 1] = px[1], b[x + 1] = px[2];
  }
}
#endif

template <PixelFormat F>
void horizontalRow(const std::uint8_t* frame, std::uint32_t width, std::uint32_t height, std::uint32_t row,
                   PreprocessScratch& s, double* h) {
#if defined(__SSE2__)
  if constexpr (F == PixelFormat::YUYV) {
    // Convert the row once, then gather the taps from it.
    s.rgbRow.resize(3 * static_cast<std::size_t>(width));
    double* r = s.rgbRow.data();
    double* g = r + width;
    double* b = g + width;
    yuyvRowToRgb(frame + static_cast<std::size_t>(row) * width * 2, width, r, g, b);
    const std::uint32_t n = s.rect.newW;
    for (std::uint32_t x = 0; x < n; ++x) {
      const std::uint32_t i0 = s.x0[x], i1 = s.x1[x];
      const double gx = s.gx[x], fx = s.fx[x];
      h[x] = gx * r[i0] + fx * r[i1];
      h[n + x] = gx * g[i0] + fx * g[i1];
      h[2 * static_cast<std::size_t>(n) + x] = gx * b[i0] + fx * b[i1];
    }
    return;
  }
#endif
  const YuvTables& t = yuvTables();
  const std::size_t pixels = static_cast<std::size_t>(width) * height;
  const std::uint32_t n = s.rect.newW;
  double* h0 = h;
  double* h1 = h + n;
  double* h2 = h + 2 * static_cast<std::size_t>(n);
  for (std::uint32_t x = 0; x < n; ++x) {
    double a[3], b[3];
    pixelAt<F>(t, frame, pixels, width, row, s.x0[x], a);
    pixelAt<F>(t, frame, pixels, width, row, s.x1[x], b);
    const double g = s.gx[x], f = s.fx[x];
    h0[x] = g * a[0] + f * b[0];
    h1[x] = g * a[1] + f * b[1];
    h2[x] = g * a[2] + f * b[2];
  }
}

void prepare(PreprocessScratch& s, std::uint32_t srcW, std::uint32_t srcH, std::uint32_t outW, std::uint32_t outH,
             Fit fit) {
  s.rowIndex[0] = s.rowIndex[1] = -1;  // a new frame: cached rows are stale
  if (s.srcW == srcW && s.srcH == srcH && s.outW == outW && s.outH == outH && s.fit == fit && !s.x0.empty()) return;
  s.srcW = srcW;
  s.srcH = srcH;
  s.outW = outW;
  s.outH = outH;
  s.fit = fit;
  s.rect = contentRect(srcW, srcH, outW, outH, fit);
  axisTaps(srcW, s.rect.newW, s.x0, s.x1, s.fx, s.gx);
  axisTaps(srcH, s.rect.newH, s.y0, s.y1, s.fy, s.gy);
  for (auto& r : s.rows) r.resize(3 * static_cast<std::size_t>(s.rect.newW));
}

// The cached horizontal row for source row `row`, computing it into a slot other than `keep`'s.
template <PixelFormat F>
const double* cachedRow(const std::uint8_t* frame, std::uint32_t width, std::uint32_t height, std::uint32_t row,
                        std::int64_t keep, PreprocessScratch& s) {
  for (int k = 0; k < 2; ++k) {
    if (s.rowIndex[k] == row) return s.rows[k].data();
  }
  const int slot = s.rowIndex[0] == keep ? 1 : 0;
  horizontalRow<F>(frame, width, height, row, s, s.rows[slot].data());
  s.rowIndex[slot] = row;
  return s.rows[slot].data();
}

template <PixelFormat F>
void resizeFrom(const std::uint8_t* frame, std::uint32_t width, std::uint32_t height, const Normalization& norm,
                float* out, PreprocessScratch& s) {
  const ContentRect r = s.rect;
  const std::uint32_t outW = s.outW;
  const std::size_t plane = static_cast<std::size_t>(outW) * s.outH;
  // Letterbox padding is 0, the normalised mean.
  if (r.newW != outW || r.newH != s.outH) std::fill(out, out + plane * 3, 0.0f);
  const std::uint32_t n = r.newW;
  const double scale = norm.scale;
  for (std::uint32_t yy = 0; yy < r.newH; ++yy) {
    const std::uint32_t i0 = s.y0[yy], i1 = s.y1[yy];
    const double* h0 = cachedRow<F>(frame, width, height, i0, i1, s);
    const double* h1 = cachedRow<F>(frame, width, height, i1, i0, s);
    const double fy = s.fy[yy], gy = s.gy[yy];
    const std::size_t rowOut = static_cast<std::size_t>(yy + r.oy) * outW + r.ox;
    for (int c = 0; c < 3; ++c) {
      const double* __restrict a = h0 + static_cast<std::size_t>(c) * n;
      const double* __restrict b = h1 + static_cast<std::size_t>(c) * n;
      const double mean = norm.mean[c], sd = norm.std[c];
      float* __restrict o = out + static_cast<std::size_t>(c) * plane + rowOut;
      for (std::uint32_t x = 0; x < n; ++x) {
        const double v = gy * a[x] + fy * b[x];
        o[x] = static_cast<float>((v / scale - mean) / sd);
      }
    }
  }
}

void resizeDispatch(PixelFormat format, const std::uint8_t* frame, std::uint32_t width, std::uint32_t height,
                    const Normalization& norm, float* out, PreprocessScratch& s) {
  switch (format) {
    case PixelFormat::YUYV: return resizeFrom<PixelFormat::YUYV>(frame, width, height, norm, out, s);
    case PixelFormat::NV12: return resizeFrom<PixelFormat::NV12>(frame, width, height, norm, out, s);
    case PixelFormat::GREY: return resizeFrom<PixelFormat::GREY>(frame, width, height, norm, out, s);
    case PixelFormat::RGB24: return resizeFrom<PixelFormat::RGB24>(frame, width, height, norm, out, s);
    case PixelFormat::RGBA: return resizeFrom<PixelFormat::RGBA>(frame, width, height, norm, out, s);
    case PixelFormat::MJPEG: throw invalid("MJPEG frames are decoded before they are resized");
  }
}

}  // namespace

ContentRect contentRect(std::uint32_t srcW, std::uint32_t srcH, std::uint32_t outW, std::uint32_t outH, Fit fit) {
  if (fit == Fit::Stretch) return ContentRect{outW, outH, 0, 0};
  const double s = std::min(static_cast<double>(outW) / srcW, static_cast<double>(outH) / srcH);
  // round() of a positive value: same result as JS Math.round. At least one pixel of content.
  std::uint32_t newW = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::round(srcW * s)));
  std::uint32_t newH = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::round(srcH * s)));
  newW = std::min(newW, outW);
  newH = std::min(newH, outH);
  return ContentRect{newW, newH, (outW - newW) / 2, (outH - newH) / 2};
}

void resizeNormalize(const std::uint8_t* rgb, std::uint32_t srcW, std::uint32_t srcH, std::uint32_t outW,
                     std::uint32_t outH, Fit fit, const Normalization& norm, float* out) {
  if (srcW == 0 || srcH == 0 || outW == 0 || outH == 0) throw invalid("resize sizes must be non-zero");
  checkNormalization(norm);
  PreprocessScratch scratch;
  prepare(scratch, srcW, srcH, outW, outH, fit);
  resizeFrom<PixelFormat::RGB24>(rgb, srcW, srcH, norm, out, scratch);
}

void preprocessInto(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength, std::uint32_t width,
                    std::uint32_t height, std::uint32_t outW, std::uint32_t outH, Fit fit, const Normalization& norm,
                    float* out, PreprocessScratch& scratch) {
  validateFrame(format, width, height, byteLength);
  if (outW == 0 || outH == 0) throw invalid("output size must be non-zero");
  checkNormalization(norm);
  if (format == PixelFormat::MJPEG) {
    decodeJpegForModel(frame, byteLength, width, height, outW, outH, scratch);
    prepare(scratch, scratch.srcUsedW, scratch.srcUsedH, outW, outH, fit);
    resizeDispatch(PixelFormat::RGB24, scratch.jpegRgb.data(), scratch.srcUsedW, scratch.srcUsedH, norm, out, scratch);
    return;
  }
  scratch.srcUsedW = width;
  scratch.srcUsedH = height;
  prepare(scratch, width, height, outW, outH, fit);
  resizeDispatch(format, frame, width, height, norm, out, scratch);
}

void decodeJpegForModel(const std::uint8_t* frame, std::size_t byteLength, std::uint32_t width, std::uint32_t height,
                        std::uint32_t outW, std::uint32_t outH, PreprocessScratch& scratch) {
  validateFrame(PixelFormat::MJPEG, width, height, byteLength);
  if (!scratch.jpeg) scratch.jpeg = std::make_unique<JpegDecoder>();
  const JpegHeader head = scratch.jpeg->header(frame, byteLength);
  if (head.width != width || head.height != height) {
    throw CoreError(codes::kFrameSize,
                    "MJPEG frame announced as " + std::to_string(width) + "x" + std::to_string(height) +
                        " but its JPEG header says " + std::to_string(head.width) + "x" + std::to_string(head.height),
                    {{"format", "MJPEG"}});
  }
  const JpegHeader got =
      scratch.jpeg->decodeRgb(frame, byteLength, jpegDecodeScale(width, height, outW, outH), scratch.jpegRgb);
  scratch.srcUsedW = got.width;
  scratch.srcUsedH = got.height;
}

std::vector<float> preprocessFrame(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength,
                                   std::uint32_t width, std::uint32_t height, std::uint32_t outW,
                                   std::uint32_t outH, Fit fit, const Normalization& norm) {
  validateFrame(format, width, height, byteLength);
  if (outW == 0 || outH == 0) throw invalid("output size must be non-zero");
  std::vector<float> out(static_cast<std::size_t>(outW) * outH * 3);
  PreprocessScratch scratch;
  preprocessInto(format, frame, byteLength, width, height, outW, outH, fit, norm, out.data(), scratch);
  return out;
}

}  // namespace lvunet
