#include "frame_job.h"

#include <exception>
#include <utility>

#include "error.h"

namespace lvunet {

std::uint64_t RunOrder::ticket() {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_++;
}

void RunOrder::wait(std::uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return turn_ == ticket; });
}

void RunOrder::done() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++turn_;
  }
  cv_.notify_all();
}

std::unique_ptr<FrameScratch> ScratchPool::acquire() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_.empty()) return std::make_unique<FrameScratch>();
  std::unique_ptr<FrameScratch> s = std::move(free_.back());
  free_.pop_back();
  return s;
}

void ScratchPool::release(std::unique_ptr<FrameScratch> scratch) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(std::move(scratch));
}

namespace {

CoreError withStage(const CoreError& e, const std::string& stage, const FrameInput& frame, const Session& session) {
  CoreError::Context ctx = e.context();
  auto has = [&](const char* key) {
    for (const auto& kv : ctx) {
      if (kv.first == key) return true;
    }
    return false;
  };
  if (!has("modelPath")) ctx.emplace_back("modelPath", session.modelPath());
  ctx.emplace_back("frameId", frame.frameId);
  ctx.emplace_back("stage", stage);
  return CoreError(e.code(), e.what(), std::move(ctx));
}

CoreError fromStd(const std::exception& e, const std::string& stage, const FrameInput& frame, const Session& session) {
  return withStage(CoreError("ERR_NATIVE", e.what()), stage, frame, session);
}

// Ends the frame's turn however the run ends, so that later frames never wait forever.
class Turn {
 public:
  Turn(RunOrder& order, std::uint64_t ticket) : order_(order) { order_.wait(ticket); }
  ~Turn() { order_.done(); }
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;

 private:
  RunOrder& order_;
};

}  // namespace

void processFrame(const Session& session, const FrameSpec& spec, const FrameInput& frame, RunOrder& order,
                  std::uint64_t ticket, std::chrono::steady_clock::time_point submitted, FrameScratch& scratch,
                  FrameResult& result) {
  const auto ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - submitted).count();
  };
  FrameTimes& t = result.times;
  const std::size_t modelPixels = static_cast<std::size_t>(spec.modelW) * spec.modelH;
  const std::size_t inputSize = 3 * modelPixels;

  t.preprocessStart = ms();
  bool preprocessed = false;
  std::exception_ptr failure;
  try {
    scratch.input.resize(inputSize);
    if (frame.format == PixelFormat::MJPEG) {
      // Decoded here rather than inside preprocessInto, so that the decode is timed on its own.
      decodeJpegForModel(frame.data, frame.byteLength, frame.width, frame.height, spec.modelW, spec.modelH, scratch.pre);
      t.decodeEnd = ms();
      const std::vector<std::uint8_t>& rgb = scratch.pre.jpegRgb;
      preprocessInto(PixelFormat::RGB24, rgb.data(), rgb.size(), scratch.pre.srcUsedW, scratch.pre.srcUsedH, spec.modelW,
                     spec.modelH, spec.fit, spec.norm, scratch.input.data(), scratch.pre);
    } else {
      t.decodeEnd = t.preprocessStart;
      preprocessInto(frame.format, frame.data, frame.byteLength, frame.width, frame.height, spec.modelW, spec.modelH,
                     spec.fit, spec.norm, scratch.input.data(), scratch.pre);
    }
    preprocessed = true;
  } catch (const CoreError& e) {
    failure = std::make_exception_ptr(withStage(e, "preprocess", frame, session));
  } catch (const std::exception& e) {
    failure = std::make_exception_ptr(fromStd(e, "preprocess", frame, session));
  }
  t.preprocessEnd = ms();

  RunResult out;
  {
    Turn turn(order, ticket);
    if (!preprocessed) std::rethrow_exception(failure);
    t.inferenceStart = ms();
    const std::vector<std::int64_t> dims = {1, 3, spec.modelH, spec.modelW};
    try {
      out = session.run(scratch.input.data(), scratch.input.size(), dims);
      if (out.data.size() != modelPixels) {
        std::string shape;
        for (std::size_t i = 0; i < out.dims.size(); ++i) shape += (i ? ", " : "") + std::to_string(out.dims[i]);
        throw CoreError(codes::kInvalidArgument, session.modelPath() + ": output [" + shape + "] is not one " +
                                                     std::to_string(spec.modelH) + "x" + std::to_string(spec.modelW) +
                                                     " logit map");
      }
    } catch (const CoreError& e) {
      throw withStage(e, "inference", frame, session);
    } catch (const std::exception& e) {
      throw fromStd(e, "inference", frame, session);
    }
    t.inferenceEnd = ms();
  }

  t.postprocessStart = ms();
  try {
    // Where the image sits in the model input: for MJPEG that of the DCT-scaled decode, which
    // preprocessing resized (its letterbox rectangle can differ by a pixel from the full frame's).
    const ContentRect r = contentRect(scratch.pre.srcUsedW, scratch.pre.srcUsedH, spec.modelW, spec.modelH, spec.fit);
    result.maskModel.reset(new std::uint8_t[modelPixels]);
    const std::size_t framePixels = static_cast<std::size_t>(frame.width) * frame.height;
    std::uint8_t* maskFrame;
    if (frame.maskFrame) {
      result.maskFrame.reset(new std::uint8_t[framePixels]);
      maskFrame = result.maskFrame.get();
    } else {
      scratch.maskFrame.resize(framePixels);
      maskFrame = scratch.maskFrame.data();
    }
    postprocess(out.data.data(), spec.modelW, spec.modelH, ModelWindow{r.newW, r.newH, r.ox, r.oy}, frame.width,
                frame.height, frame.threshold, result.maskModel.get(), maskFrame, result.post, scratch.post);
    result.decodedW = scratch.pre.srcUsedW;
    result.decodedH = scratch.pre.srcUsedH;
    if (frame.rle) cocoRleCounts(maskFrame, frame.width, frame.height, result.rleCounts, scratch.rleBlock);
  } catch (const CoreError& e) {
    throw withStage(e, "postprocess", frame, session);
  } catch (const std::exception& e) {
    throw fromStd(e, "postprocess", frame, session);
  }
  t.postprocessEnd = ms();
}

}  // namespace lvunet
