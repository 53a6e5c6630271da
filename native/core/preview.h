// Preview pictures for the live view (src/view/): a frame in any pixel format the pipeline takes,
// shrunk to outW x outH and encoded as a baseline JPEG, all on the calling (libuv) thread. Plain
// C++: no napi.h.
//
// Nearest-neighbour sampling, not the model's bilinear resize: a preview is for people, at most a
// few per second, and sampling converts only the source rows it keeps (an MJPEG frame is decoded
// at the smallest DCT scale still at least outW x outH), so a 1080p frame costs a few ms of one
// libuv thread, never the JS thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "preprocess.h"

namespace lvunet {

// Throws CoreError: a frame that does not match its format and size (ERR_FRAME_SIZE, ERR_JPEG_*),
// an output size of zero or larger than the frame, a quality outside 1..100 (ERR_INVALID_ARGUMENT).
std::vector<std::uint8_t> previewJpeg(PixelFormat format, const std::uint8_t* frame, std::size_t byteLength,
                                      std::uint32_t width, std::uint32_t height, std::uint32_t outW,
                                      std::uint32_t outH, int quality);

}  // namespace lvunet
