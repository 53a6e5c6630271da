// One frame, start to finish, on the calling (worker) thread: preprocess -> ONNX Runtime run ->
// postprocess, with the time each step started and ended. The JS thread only hands over the frame
// and receives masks and component sums. Plain C++: no napi.h.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ort_runtime.h"
#include "postprocess.h"
#include "preprocess.h"

namespace lvunet {

// Model input geometry and normalisation: fixed for one model.
struct FrameSpec {
  std::uint32_t modelW = 0;
  std::uint32_t modelH = 0;
  Fit fit = Fit::Stretch;
  Normalization norm{};
};

// Lets preprocessing and postprocessing of neighbouring frames overlap while ONNX Runtime runs one
// frame at a time, in the order the frames were submitted: two runs at once would only split the
// intra-op threads between them, and results must come out in capture order. Waiting cannot
// deadlock however small the libuv pool is: its queue is FIFO, so a job never starts before the jobs
// holding earlier tickets, and those never wait on it.
class RunOrder {
 public:
  // Called on the submitting thread, in frame order.
  std::uint64_t ticket();
  // Blocks until every earlier ticket has called done().
  void wait(std::uint64_t ticket);
  void done();

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t next_ = 0;
  std::uint64_t turn_ = 0;
};

struct FrameScratch {
  PreprocessScratch pre;
  std::vector<float> input;
  PostprocessScratch post;
  std::vector<std::uint8_t> rleBlock;
  // The frame-size mask when the caller does not take it (FrameInput::maskFrame false): written here
  // and reused, so that a frame-size block is not allocated and handed to the JS heap per frame.
  std::vector<std::uint8_t> maskFrame;
};

// Scratch buffers for the jobs in flight (usually two), reused from frame to frame.
class ScratchPool {
 public:
  std::unique_ptr<FrameScratch> acquire();
  void release(std::unique_ptr<FrameScratch> scratch);

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<FrameScratch>> free_;
};

struct FrameInput {
  PixelFormat format;
  const std::uint8_t* data;
  std::size_t byteLength;
  std::uint32_t width;
  std::uint32_t height;
  double threshold;
  std::string frameId;
  // Also compute the COCO RLE counts of the frame-size mask (cocoRleCounts), off the JS thread.
  bool rle = false;
  // Hand the frame-size mask back (FrameResult::maskFrame). Off, it stays in the job's scratch and
  // only what was computed from it (components, foreground, RLE counts) comes back.
  bool maskFrame = true;
};

// Milliseconds since the job was submitted (steady clock), for each step's start and end.
struct FrameTimes {
  double preprocessStart = 0, preprocessEnd = 0;
  // End of the MJPEG decode, the first part of preprocessing (= preprocessStart for raw formats).
  double decodeEnd = 0;
  double inferenceStart = 0, inferenceEnd = 0;
  double postprocessStart = 0, postprocessEnd = 0;
};

struct FrameResult {
  std::unique_ptr<std::uint8_t[]> maskModel;
  // Null unless FrameInput::maskFrame was set.
  std::unique_ptr<std::uint8_t[]> maskFrame;
  PostprocessOutput post;
  // COCO counts of maskFrame when FrameInput::rle was set.
  std::vector<std::uint32_t> rleCounts;
  // Size of the image preprocessing resized: the frame's, or the DCT-scaled size of an MJPEG frame.
  std::uint32_t decodedW = 0, decodedH = 0;
  FrameTimes times;
};

// Runs the whole frame. `ticket` must come from `order` (taken when the frame was submitted); it is
// consumed whatever happens. Errors are CoreError with frameId, modelPath and stage
// ("preprocess", "inference" or "postprocess") in their context.
void processFrame(const Session& session, const FrameSpec& spec, const FrameInput& frame, RunOrder& order,
                  std::uint64_t ticket, std::chrono::steady_clock::time_point submitted, FrameScratch& scratch,
                  FrameResult& result);

}  // namespace lvunet
