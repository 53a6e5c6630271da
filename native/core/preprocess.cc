#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <limits>

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
  throw invalid("unknown pixel format '" + name + "' (expected YUYV, NV12, GREY, RGB24 or RGBA)");
}

const char* pixelFormatName(PixelFormat format) {
  switch (format) {
    case PixelFormat::YUYV: return "YUYV";
    case PixelFormat::NV12: return "NV12";
    case PixelFormat::GREY: return "GREY";
    case PixelFormat::RGB24: return "RGB24";
    case PixelFormat::RGBA: return "RGBA";
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
  }
  throw invalid("unknown pixel format");
}

void validateFrame(PixelFormat format, std::uint32_t width, std::uint32_t height, std::size_t byteLength) {
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

namespace {

struct Tap {
  std::uint32_t i0;
  std::uint32_t i1;
  double f;
};

// Source coordinate of output index `o` inside a content span of `span` outputs starting at `offset`:
// s = (o - offset + 0.5) * src / span - 0.5, clamped to [0, src - 1]. Evaluated left to right in
// double exactly as written, like the TS reference.
Tap sourceTap(std::uint32_t o, std::uint32_t offset, std::uint32_t span, std::uint32_t src) {
  double s = (static_cast<double>(o) - static_cast<double>(offset) + 0.5) * static_cast<double>(src) /
                 static_cast<double>(span) -
             0.5;
  if (s < 0.0) s = 0.0;
  const double maxS = static_cast<double>(src - 1);
  if (s > maxS) s = maxS;
  const double fl = std::floor(s);
  const auto i0 = static_cast<std::uint32_t>(fl);
  const std::uint32_t i1 = std::min(i0 + 1, src - 1);
  return Tap{i0, i1, s - fl};
}

}  // namespace

void resizeNormalize(const std::uint8_t* rgb, std::uint32_t srcW, std::uint32_t srcH, std::uint32_t outW,
                     std::uint32_t outH, Fit fit, const Normalization& norm, float* out) {
  if (srcW == 0 || srcH == 0 || outW == 0 || outH == 0) throw invalid("resize sizes must be non-zero");
  for (int c = 0; c < 3; ++c) {
    if (!(norm.std[c] != 0.0) || !std::isfinite(norm.std[c]) || !std::isfinite(norm.mean[c])) {
      throw invalid("normalisation mean/std must be finite and std non-zero");
    }
  }
  if (!(norm.scale != 0.0) || !std::isfinite(norm.scale)) throw invalid("normalisation scale must be finite, non-zero");

  std::uint32_t newW = outW, newH = outH, ox = 0, oy = 0;
  if (fit == Fit::Letterbox) {
    const double s = std::min(static_cast<double>(outW) / srcW, static_cast<double>(outH) / srcH);
    // round() of a positive value: same result as JS Math.round. At least one pixel of content.
    newW = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::round(srcW * s)));
    newH = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::round(srcH * s)));
    newW = std::min(newW, outW);
    newH = std::min(newH, outH);
    ox = (outW - newW) / 2;
    oy = (outH - newH) / 2;
  }

  std::vector<Tap> xTaps(newW);
  for (std::uint32_t x = 0; x < newW; ++x) xTaps[x] = sourceTap(x + ox, ox, newW, srcW);

  const std::size_t plane = static_cast<std::size_t>(outW) * outH;
  std::fill(out, out + plane * 3, 0.0f);  // letterbox padding: the normalised mean, 0
  for (std::uint32_t yy = 0; yy < newH; ++yy) {
    const std::uint32_t y = yy + oy;
    const Tap ty = sourceTap(y, oy, newH, srcH);
    const std::uint8_t* r0 = rgb + static_cast<std::size_t>(ty.i0) * srcW * 3;
    const std::uint8_t* r1 = rgb + static_cast<std::size_t>(ty.i1) * srcW * 3;
    const double fy = ty.f;
    for (std::uint32_t xx = 0; xx < newW; ++xx) {
      const std::uint32_t x = xx + ox;
      const Tap& tx = xTaps[xx];
      const double fx = tx.f;
      const std::size_t a = static_cast<std::size_t>(tx.i0) * 3;
      const std::size_t b = static_cast<std::size_t>(tx.i1) * 3;
      for (int c = 0; c < 3; ++c) {
        const double p00 = r0[a + c], p01 = r0[b + c], p10 = r1[a + c], p11 = r1[b + c];
        const double v = (1 - fy) * ((1 - fx) * p00 + fx * p01) + fy * ((1 - fx) * p10 + fx * p11);
        out[static_cast<std::size_t>(c) * plane + static_cast<std::size_t>(y) * outW + x] =
            static_cast<float>((v / norm.scale - norm.mean[c]) / norm.std[c]);
      }
    }
  }
}

std::vector<float> preprocessFrame(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength,
                                   std::uint32_t width, std::uint32_t height, std::uint32_t outW,
                                   std::uint32_t outH, Fit fit, const Normalization& norm) {
  validateFrame(format, width, height, byteLength);
  if (outW == 0 || outH == 0) throw invalid("output size must be non-zero");
  std::vector<float> out(static_cast<std::size_t>(outW) * outH * 3);
  if (format == PixelFormat::RGB24) {
    resizeNormalize(frame, width, height, outW, outH, fit, norm, out.data());
  } else {
    std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width) * height * 3);
    toRgb(format, frame, byteLength, width, height, rgb.data());
    resizeNormalize(rgb.data(), width, height, outW, outH, fit, norm, out.data());
  }
  return out;
}

}  // namespace lvunet
