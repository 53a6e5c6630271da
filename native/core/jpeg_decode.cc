#include "jpeg_decode.h"

#include <turbojpeg.h>

#include <string>

#include "error.h"

namespace lvunet {

namespace {

constexpr const char* kJpegCorrupt = "ERR_JPEG_CORRUPT";
constexpr const char* kJpegTruncated = "ERR_JPEG_TRUNCATED";

// Without TJFLAG_STOPONWARNING libjpeg-turbo "recovers" from a truncated or damaged stream by
// filling the rest of the image with grey and only warns: the model would then segment a half-grey
// frame. Such frames are dropped instead. Accurate (integer, ISLOW) IDCT: the default.
constexpr int kFlags = TJFLAG_STOPONWARNING | TJFLAG_ACCURATEDCT;

CoreError decodeError(tjhandle h, const char* what) {
  const std::string message = tjGetErrorStr2(h);
  // libjpeg's JWRN_JPEG_EOF ("Premature end of JPEG file") is how a cut-off frame shows.
  const bool truncated = message.find("Premature end") != std::string::npos;
  return CoreError(truncated ? kJpegTruncated : kJpegCorrupt, std::string(what) + ": " + message);
}

}  // namespace

JpegScale jpegDecodeScale(std::uint32_t width, std::uint32_t height, std::uint32_t minW, std::uint32_t minH) {
  for (std::uint32_t num = 1; num < 8; ++num) {
    const JpegScale s{num, 8};
    if (jpegScaledDim(width, s) >= minW && jpegScaledDim(height, s) >= minH) return s;
  }
  return JpegScale{8, 8};
}

std::uint32_t jpegScaledDim(std::uint32_t dim, JpegScale s) {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(dim) * s.num + s.denom - 1) / s.denom);
}

JpegDecoder::JpegDecoder() : handle_(tjInitDecompress()) {
  if (handle_ == nullptr) throw CoreError("ERR_NATIVE", std::string("cannot create a TurboJPEG decompressor: ") + tjGetErrorStr2(nullptr));
}

JpegDecoder::~JpegDecoder() { tjDestroy(static_cast<tjhandle>(handle_)); }

JpegHeader JpegDecoder::header(const std::uint8_t* data, std::size_t size) {
  tjhandle h = static_cast<tjhandle>(handle_);
  if (size < 4 || data[0] != 0xff || data[1] != 0xd8) {
    throw CoreError(kJpegCorrupt, "not a JPEG frame (no SOI marker at the start, " + std::to_string(size) + " bytes)");
  }
  int w = 0, h2 = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(h, data, static_cast<unsigned long>(size), &w, &h2, &subsamp, &colorspace) != 0) {
    throw decodeError(h, "JPEG header");
  }
  if (w <= 0 || h2 <= 0) throw CoreError(kJpegCorrupt, "JPEG header gives a size of " + std::to_string(w) + "x" + std::to_string(h2));
  if (static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h2) > kMaxJpegPixels) {
    throw CoreError(codes::kFrameSize, "JPEG frame of " + std::to_string(w) + "x" + std::to_string(h2) + " exceeds the limit of " +
                                           std::to_string(kMaxJpegPixels / 1000000) + " megapixels");
  }
  return JpegHeader{static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(h2)};
}

JpegHeader JpegDecoder::decodeRgb(const std::uint8_t* data, std::size_t size, JpegScale scale,
                                  std::vector<std::uint8_t>& rgb) {
  tjhandle h = static_cast<tjhandle>(handle_);
  const JpegHeader full = header(data, size);
  const JpegHeader out{jpegScaledDim(full.width, scale), jpegScaledDim(full.height, scale)};
  rgb.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  // tjDecompress2 picks the IDCT scale from the requested size: ask for exactly the scaled size.
  if (tjDecompress2(h, data, static_cast<unsigned long>(size), rgb.data(), static_cast<int>(out.width), 0,
                    static_cast<int>(out.height), TJPF_RGB, kFlags) != 0) {
    throw decodeError(h, "JPEG decode");
  }
  return out;
}

std::vector<std::uint8_t> encodeJpegRgb(const std::uint8_t* rgb, std::uint32_t width, std::uint32_t height, int quality,
                                        int subsampling) {
  if (quality < 1 || quality > 100) throw CoreError("ERR_INVALID_ARGUMENT", "JPEG quality must be 1..100, got " + std::to_string(quality));
  int samp;
  switch (subsampling) {
    case 444: samp = TJSAMP_444; break;
    case 422: samp = TJSAMP_422; break;
    case 420: samp = TJSAMP_420; break;
    default: throw CoreError("ERR_INVALID_ARGUMENT", "chroma subsampling must be 444, 422 or 420, got " + std::to_string(subsampling));
  }
  if (width == 0 || height == 0 || static_cast<std::uint64_t>(width) * height > kMaxJpegPixels) {
    throw CoreError("ERR_INVALID_ARGUMENT", "cannot encode a " + std::to_string(width) + "x" + std::to_string(height) + " JPEG");
  }
  tjhandle h = tjInitCompress();
  if (h == nullptr) throw CoreError("ERR_NATIVE", std::string("cannot create a TurboJPEG compressor: ") + tjGetErrorStr2(nullptr));
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(h, rgb, static_cast<int>(width), 0, static_cast<int>(height), TJPF_RGB, &out, &size, samp, quality,
                             TJFLAG_ACCURATEDCT);
  if (rc != 0) {
    const std::string message = tjGetErrorStr2(h);
    tjFree(out);
    tjDestroy(h);
    throw CoreError("ERR_NATIVE", "JPEG encode: " + message);
  }
  std::vector<std::uint8_t> bytes(out, out + size);
  tjFree(out);
  tjDestroy(h);
  return bytes;
}

}  // namespace lvunet
