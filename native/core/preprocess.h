// Frame preprocessing: pixel format -> RGB24 -> bilinear resize -> normalise -> NCHW float32.
// The exact arithmetic is specified in src/runtime/native/pixel-formats.ts (YUV -> RGB) and
// src/image/preprocess.ts (resize + normalise); both TS references must agree bit for bit with this
// file, which is why the build uses -ffp-contract=off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "jpeg_decode.h"

namespace lvunet {

// MJPEG: one complete JPEG image per frame (V4L2 MJPG, a frame of a .mjpeg file, a .jpg file); its
// byte length varies, width and height are those of its header.
enum class PixelFormat { YUYV, NV12, GREY, RGB24, RGBA, MJPEG };
enum class Fit { Stretch, Letterbox };

// Parses "YUYV" (alias "YUY2"), "NV12", "GREY" (alias "GRAY"), "RGB24", "RGBA", "MJPEG". Throws CoreError.
PixelFormat parsePixelFormat(const std::string& name);
const char* pixelFormatName(PixelFormat format);
Fit parseFit(const std::string& name);

// Tightly packed byte length of a frame; throws CoreError for dimensions the format cannot hold
// (zero, odd width for YUYV, odd width or height for NV12, overflow) and for MJPEG (no fixed length).
std::size_t frameByteLength(PixelFormat format, std::uint32_t width, std::uint32_t height);

// Throws CoreError(ERR_FRAME_SIZE) unless byteLength == frameByteLength(format, width, height); an
// MJPEG frame only needs to be non-empty here (its header is checked when it is decoded).
void validateFrame(PixelFormat format, std::uint32_t width, std::uint32_t height, std::size_t byteLength);

// Converts a validated frame to interleaved RGB24 (width * height * 3 bytes) into `rgb`.
void toRgb(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength, std::uint32_t width,
           std::uint32_t height, std::uint8_t* rgb);

struct Normalization {
  double mean[3];
  double std[3];
  double scale;
};

// Bilinear resize of an RGB24 image to outW x outH and normalisation into planar NCHW float32
// (3 * outW * outH floats written to `out`).
void resizeNormalize(const std::uint8_t* rgb, std::uint32_t srcW, std::uint32_t srcH, std::uint32_t outW,
                     std::uint32_t outH, Fit fit, const Normalization& norm, float* out);

// Content rectangle of a letterboxed (or, for Fit::Stretch, the whole) output: the same geometry as
// letterboxGeometry() in src/image/preprocess.ts.
struct ContentRect {
  std::uint32_t newW, newH, ox, oy;
};
ContentRect contentRect(std::uint32_t srcW, std::uint32_t srcH, std::uint32_t outW, std::uint32_t outH, Fit fit);

// Bilinear taps of one axis, src samples -> span outputs, half-pixel centres: for each output o,
// s = (o + 0.5) * src / span - 0.5 clamped to [0, src - 1], i0 = floor(s), i1 = min(i0 + 1, src - 1),
// f = s - i0, g = 1 - f; the float64 values of bilinearAxis() in src/image/preprocess.ts.
void axisTaps(std::uint32_t src, std::uint32_t span, std::vector<std::uint32_t>& i0, std::vector<std::uint32_t>& i1,
              std::vector<double>& f, std::vector<double>& g);

// Per-thread working memory of preprocessInto(), kept between calls so that a steady stream of
// frames allocates nothing. Not shareable between threads running at the same time.
struct PreprocessScratch {
  std::uint32_t srcW = 0, srcH = 0, outW = 0, outH = 0;
  Fit fit = Fit::Stretch;
  ContentRect rect{0, 0, 0, 0};
  std::vector<std::uint32_t> x0, x1, y0, y1;
  std::vector<double> fx, gx, fy, gy;
  // Two horizontally interpolated source rows (3 planes of rect.newW doubles each) and their row index.
  std::vector<double> rows[2];
  std::int64_t rowIndex[2] = {-1, -1};
  // One source row converted to RGB, 3 planes of doubles (the SSE2 YUYV path).
  std::vector<double> rgbRow;
  // MJPEG frames: the decompressor (made on first use) and the decoded, DCT-scaled RGB24 image.
  std::unique_ptr<JpegDecoder> jpeg;
  std::vector<std::uint8_t> jpegRgb;
  // Size of the image the resize read from: the frame's own size, or the DCT-scaled size of an MJPEG
  // frame. contentRect(srcUsedW, srcUsedH, ...) is where the frame sits in the model input.
  std::uint32_t srcUsedW = 0, srcUsedH = 0;
};

// validateFrame + resize + normalise straight from the frame's pixel format into `out`
// (MJPEG: decodeJpegForModel first, then the RGB24 path on the decoded image)
// (3 * outW * outH floats). Only the source pixels the bilinear taps read are converted, and each
// source row is interpolated horizontally once, however many output rows use it. Bit-identical to
// toRgb followed by resizeNormalize.
void preprocessInto(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength, std::uint32_t width,
                    std::uint32_t height, std::uint32_t outW, std::uint32_t outH, Fit fit, const Normalization& norm,
                    float* out, PreprocessScratch& scratch);

// The decode step of the preprocessing definition for an MJPEG frame: header size must be
// width x height, decoded at jpegDecodeScale(width, height, outW, outH) into scratch.jpegRgb; sets
// scratch.srcUsedW/H to the decoded size. Throws CoreError (ERR_JPEG_*, ERR_FRAME_SIZE).
void decodeJpegForModel(const std::uint8_t* frame, std::size_t byteLength, std::uint32_t width, std::uint32_t height,
                        std::uint32_t outW, std::uint32_t outH, PreprocessScratch& scratch);

// preprocessInto with a scratch of its own, into a new vector.
std::vector<float> preprocessFrame(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength,
                                   std::uint32_t width, std::uint32_t height, std::uint32_t outW,
                                   std::uint32_t outH, Fit fit, const Normalization& norm);

}  // namespace lvunet
