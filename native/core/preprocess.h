// Frame preprocessing: pixel format -> RGB24 -> bilinear resize -> normalise -> NCHW float32.
// The exact arithmetic is specified in src/runtime/native/pixel-formats.ts (YUV -> RGB) and
// src/image/preprocess.ts (resize + normalise); both TS references must agree bit for bit with this
// file, which is why the build uses -ffp-contract=off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lvunet {

enum class PixelFormat { YUYV, NV12, GREY, RGB24, RGBA };
enum class Fit { Stretch, Letterbox };

// Parses "YUYV" (alias "YUY2"), "NV12", "GREY" (alias "GRAY"), "RGB24", "RGBA". Throws CoreError.
PixelFormat parsePixelFormat(const std::string& name);
const char* pixelFormatName(PixelFormat format);
Fit parseFit(const std::string& name);

// Tightly packed byte length of a frame; throws CoreError for dimensions the format cannot hold
// (zero, odd width for YUYV, odd width or height for NV12, overflow).
std::size_t frameByteLength(PixelFormat format, std::uint32_t width, std::uint32_t height);

// Throws CoreError(ERR_FRAME_SIZE) unless byteLength == frameByteLength(format, width, height).
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

// toRgb followed by resizeNormalize; validates the frame first.
std::vector<float> preprocessFrame(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength,
                                   std::uint32_t width, std::uint32_t height, std::uint32_t outW,
                                   std::uint32_t outH, Fit fit, const Normalization& norm);

}  // namespace lvunet
