#include "preview.h"

#include <algorithm>
#include <string>

#include "error.h"
#include "jpeg_decode.h"

namespace lvunet {

namespace {

// Source index of output sample o of `span`, pixel centres: floor((o + 0.5) * src / span).
std::uint32_t sampleAt(std::uint32_t o, std::uint32_t src, std::uint32_t span) {
  const std::uint64_t s = (2ULL * o + 1) * src / (2ULL * span);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(s, src - 1));
}

}  // namespace

std::vector<std::uint8_t> previewJpeg(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength,
                                      std::uint32_t width, std::uint32_t height, std::uint32_t outW,
                                      std::uint32_t outH, int quality) {
  validateFrame(format, width, height, byteLength);
  if (outW == 0 || outH == 0 || outW > width || outH > height) {
    throw CoreError(codes::kInvalidArgument, "preview size " + std::to_string(outW) + "x" + std::to_string(outH) +
                                                 " must be non-zero and at most the frame's " + std::to_string(width) +
                                                 "x" + std::to_string(height));
  }
  // MJPEG: decoded once, small, then sampled as RGB24 like any other frame.
  PixelFormat fmt = format;
  const std::uint8_t* src = frame;
  std::uint32_t srcW = width, srcH = height;
  PreprocessScratch scratch;
  if (format == PixelFormat::MJPEG) {
    decodeJpegForModel(frame, byteLength, width, height, outW, outH, scratch);
    fmt = PixelFormat::RGB24;
    src = scratch.jpegRgb.data();
    srcW = scratch.srcUsedW;
    srcH = scratch.srcUsedH;
  }
  std::vector<std::uint32_t> cols(outW);
  for (std::uint32_t x = 0; x < outW; ++x) cols[x] = sampleAt(x, srcW, outW);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(outW) * outH * 3);
  // One or two source rows converted to RGB by the same toRgb the pipeline's reference uses.
  std::vector<std::uint8_t> rowRgb(static_cast<std::size_t>(srcW) * 2 * 3);
  std::vector<std::uint8_t> nv12(static_cast<std::size_t>(srcW) * 3);
  for (std::uint32_t y = 0; y < outH; ++y) {
    const std::uint32_t sy = sampleAt(y, srcH, outH);
    const std::uint8_t* row = rowRgb.data();
    switch (fmt) {
      case PixelFormat::NV12: {
        // Luma rows of the 2x2 block holding sy, then its chroma row: a 2-row NV12 frame.
        const std::uint32_t y0 = sy & ~1U;
        std::copy_n(src + static_cast<std::size_t>(y0) * srcW, static_cast<std::size_t>(srcW) * 2, nv12.data());
        std::copy_n(src + static_cast<std::size_t>(srcW) * srcH + static_cast<std::size_t>(y0 / 2) * srcW, srcW,
                    nv12.data() + static_cast<std::size_t>(srcW) * 2);
        toRgb(fmt, nv12.data(), nv12.size(), srcW, 2, rowRgb.data());
        row = rowRgb.data() + static_cast<std::size_t>(sy - y0) * srcW * 3;
        break;
      }
      default: {
        const std::size_t rowBytes = frameByteLength(fmt, srcW, 1);
        toRgb(fmt, src + static_cast<std::size_t>(sy) * rowBytes, rowBytes, srcW, 1, rowRgb.data());
        break;
      }
    }
    std::uint8_t* o = out.data() + static_cast<std::size_t>(y) * outW * 3;
    for (std::uint32_t x = 0; x < outW; ++x) std::copy_n(row + static_cast<std::size_t>(cols[x]) * 3, 3, o + x * 3);
  }
  return encodeJpegRgb(out.data(), outW, outH, quality, 420);
}

}  // namespace lvunet
