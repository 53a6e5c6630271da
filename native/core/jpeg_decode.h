// JPEG (MJPEG frame) decoding with libjpeg-turbo's TurboJPEG API, with DCT-domain scaling: the
// decoder's IDCT produces the image at num/8 of its size directly, which at 1920x1080 -> 480x270
// costs about half of a full-size decode and avoids a full-size RGB buffer. Plain C++: no napi.h;
// turbojpeg.h stays inside jpeg_decode.cc.
//
// The decode step is part of the one preprocessing definition (src/model/preprocessing.ts,
// JPEG_DECODE): the scale is the smallest TurboJPEG factor num/8 (1/8 ... 8/8) whose scaled size,
// ceil(dim * num / 8) per axis, is at least the model input in both axes (8/8 when none is), and the
// output is libjpeg-turbo's RGB (accurate integer IDCT, fancy upsampling) at that size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace lvunet {

// Largest JPEG frame accepted, in pixels (the same cap as MAX_FRAME_PIXELS in
// src/runtime/sources/limits.ts): a corrupt or crafted header must not make a device allocate
// gigabytes before failing.
inline constexpr std::uint64_t kMaxJpegPixels = 36'000'000;

struct JpegScale {
  std::uint32_t num = 8;
  std::uint32_t denom = 8;
};

// The scale factor the preprocessing definition prescribes (see above).
JpegScale jpegDecodeScale(std::uint32_t width, std::uint32_t height, std::uint32_t minW, std::uint32_t minH);
// ceil(dim * num / denom), as libjpeg-turbo's TJSCALED computes it.
std::uint32_t jpegScaledDim(std::uint32_t dim, JpegScale scale);

struct JpegHeader {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
};

// One TurboJPEG decompressor. Not shareable between threads running at the same time (one per
// preprocessing scratch). Errors are CoreError with code ERR_JPEG_TRUNCATED (the data ends before
// the image does) or ERR_JPEG_CORRUPT (anything else the decoder rejects or warns about), and the
// decoder's own message.
class JpegDecoder {
 public:
  JpegDecoder();
  ~JpegDecoder();
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;

  JpegHeader header(const std::uint8_t* data, std::size_t size);
  // Decodes at `scale` into `rgb` (resized to w * h * 3), tightly packed RGB24; returns the size.
  JpegHeader decodeRgb(const std::uint8_t* data, std::size_t size, JpegScale scale, std::vector<std::uint8_t>& rgb);

 private:
  void* handle_;
};

// Baseline JPEG of a tightly packed RGB24 image (for `frames make`: camera-like MJPEG recordings),
// quality 1..100, chroma subsampling 444, 422 (what UVC grabbers send) or 420. Throws CoreError.
std::vector<std::uint8_t> encodeJpegRgb(const std::uint8_t* rgb, std::uint32_t width, std::uint32_t height, int quality,
                                        int subsampling);

}  // namespace lvunet
