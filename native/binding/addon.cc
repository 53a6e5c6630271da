// Thin N-API layer over native/core. TypeScript (src/runtime/native/binding.ts) validates options and
// hands over complete, flat values; this file converts them into core structs, runs the work (a
// model run on a libuv worker thread, never on the JS thread) and turns CoreError into a JS Error
// whose `code` and context properties (path, modelPath, provider, ...) come from the core.
#include <napi.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.h"
#include "napi_util.h"
#include "../core/frame_job.h"
#include "../core/ort_runtime.h"
#include "../core/postprocess.h"
#include "../core/preprocess.h"
#include "../core/preview.h"
#include "../core/sd_notify.h"

namespace lvunet { namespace binding { Napi::Function DefineV4l2Device(Napi::Env env); } }

namespace {

using lvunet::CoreError;
using lvunet::binding_util::guarded;
using lvunet::binding_util::PromiseWorker;
using lvunet::binding_util::stringArg;
using lvunet::binding_util::uintArg;

Napi::Uint8Array bytesArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Uint8Array");
  }
  return info[i].As<Napi::Uint8Array>();
}

void triple(Napi::Env env, const Napi::Value& v, const char* name, double out[3]) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) {
    throw Napi::TypeError::New(env, std::string(name) + " must be an array of 3 numbers");
  }
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < 3; ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be an array of 3 numbers");
    out[i] = x.As<Napi::Number>().DoubleValue();
  }
}

Napi::Array stringArray(Napi::Env env, const std::vector<std::string>& values) {
  Napi::Array a = Napi::Array::New(env, values.size());
  for (uint32_t i = 0; i < values.size(); ++i) a.Set(i, Napi::String::New(env, values[i]));
  return a;
}

Napi::Array int64Array(Napi::Env env, const std::vector<int64_t>& values) {
  Napi::Array a = Napi::Array::New(env, values.size());
  for (uint32_t i = 0; i < values.size(); ++i) a.Set(i, Napi::Number::New(env, static_cast<double>(values[i])));
  return a;
}

Napi::Array tensorInfos(Napi::Env env, const std::vector<lvunet::TensorInfo>& infos) {
  Napi::Array a = Napi::Array::New(env, infos.size());
  for (uint32_t i = 0; i < infos.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", infos[i].name);
    o.Set("type", infos[i].elementType);
    o.Set("shape", int64Array(env, infos[i].shape));
    o.Set("dimNames", stringArray(env, infos[i].dimNames));
    a.Set(i, o);
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// run(): one model run on a libuv worker thread. Everything it needs is copied on the JS thread.

class RunWorker : public PromiseWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<const lvunet::Session> session, std::vector<float> input,
            std::vector<int64_t> dims)
      : PromiseWorker(env, "lvunet_edge:run"),
        session_(std::move(session)),
        input_(std::move(input)),
        dims_(std::move(dims)) {}

 protected:
  void Execute() override {
    guard([&] { result_ = session_->run(input_.data(), input_.size(), dims_); });
  }

  std::vector<std::pair<std::string, std::string>> errorContext() const override {
    return {{"modelPath", session_->modelPath()}};
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Float32Array data = Napi::Float32Array::New(env, result_.data.size());
    if (!result_.data.empty()) std::memcpy(data.Data(), result_.data.data(), result_.data.size() * sizeof(float));
    Napi::Object out = Napi::Object::New(env);
    out.Set("data", data);
    out.Set("dims", int64Array(env, result_.dims));
    deferred_.Resolve(out);
  }

 private:
  std::shared_ptr<const lvunet::Session> session_;
  std::vector<float> input_;
  std::vector<int64_t> dims_;
  lvunet::RunResult result_;
};

// ---------------------------------------------------------------------------------------------
// Postprocessing results as JS values. Masks are handed over without a copy: the ArrayBuffer owns the
// memory the worker wrote them into.

constexpr size_t kComponentFields = 9;  // src/runtime/native/binding.ts COMPONENT_FIELDS

Napi::Uint8Array ownedBytes(Napi::Env env, std::unique_ptr<uint8_t[]> bytes, size_t length) {
  uint8_t* raw = bytes.release();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, raw, length, [](Napi::Env, void* data) {
    delete[] static_cast<uint8_t*>(data);
  });
  return Napi::Uint8Array::New(env, length, buffer, 0);
}

Napi::Float64Array componentArray(Napi::Env env, const std::vector<lvunet::ComponentStats>& components) {
  Napi::Float64Array a = Napi::Float64Array::New(env, components.size() * kComponentFields);
  double* d = a.Data();
  for (const lvunet::ComponentStats& c : components) {
    *d++ = c.area;
    *d++ = c.sumX;
    *d++ = c.sumY;
    *d++ = c.sumP;
    *d++ = c.minX;
    *d++ = c.minY;
    *d++ = c.maxX;
    *d++ = c.maxY;
    *d++ = c.start;
  }
  return a;
}

void setPostprocess(Napi::Env env, Napi::Object out, std::unique_ptr<uint8_t[]> maskModel, size_t modelBytes,
                    std::unique_ptr<uint8_t[]> maskFrame, size_t frameBytes, const lvunet::PostprocessOutput& post) {
  out.Set("maskModel", ownedBytes(env, std::move(maskModel), modelBytes));
  // Absent when the caller left it native (process() with maskFrame false).
  if (maskFrame) out.Set("maskFrame", ownedBytes(env, std::move(maskFrame), frameBytes));
  out.Set("components", componentArray(env, post.components));
  out.Set("foreground", Napi::Number::New(env, static_cast<double>(post.foreground)));
}

// What a frame processor shares between its jobs: the session (kept alive by jobs in flight even
// after release()), the model geometry, the run order and the scratch buffers.
struct ProcessorCore {
  std::shared_ptr<const lvunet::Session> session;
  lvunet::FrameSpec spec;
  lvunet::RunOrder order;
  lvunet::ScratchPool pool;
};

class ProcessWorker : public PromiseWorker {
 public:
  ProcessWorker(Napi::Env env, std::shared_ptr<ProcessorCore> core, Napi::Uint8Array frame, lvunet::FrameInput input)
      : PromiseWorker(env, "lvunet_edge:process"),
        core_(std::move(core)),
        // The caller does not write the frame until the promise settles (the pipeline hands a pooled
        // buffer back to its source only then), so the worker reads the caller's bytes in place; the
        // reference only keeps them from being collected.
        frameRef_(Napi::Persistent(frame)),
        input_(std::move(input)),
        submitted_(std::chrono::steady_clock::now()),
        ticket_(core_->order.ticket()) {}

 protected:
  void Execute() override {
    std::unique_ptr<lvunet::FrameScratch> scratch = core_->pool.acquire();
    guard([&] { lvunet::processFrame(*core_->session, core_->spec, input_, core_->order, ticket_, submitted_, *scratch, result_); });
    core_->pool.release(std::move(scratch));
  }

  std::vector<std::pair<std::string, std::string>> errorContext() const override {
    return {{"frameId", input_.frameId}, {"modelPath", core_->session->modelPath()}};
  }

  void OnOK() override {
    Napi::Env env = Env();
    const lvunet::FrameSpec& spec = core_->spec;
    Napi::Object out = Napi::Object::New(env);
    setPostprocess(env, out, std::move(result_.maskModel), static_cast<size_t>(spec.modelW) * spec.modelH,
                   std::move(result_.maskFrame), static_cast<size_t>(input_.width) * input_.height, result_.post);
    Napi::Float64Array times = Napi::Float64Array::New(env, 7);
    const lvunet::FrameTimes& t = result_.times;
    const double values[7] = {t.preprocessStart,  t.preprocessEnd,   t.inferenceStart, t.inferenceEnd,
                              t.postprocessStart, t.postprocessEnd, t.decodeEnd};
    std::memcpy(times.Data(), values, sizeof values);
    out.Set("times", times);
    Napi::Uint32Array decoded = Napi::Uint32Array::New(env, 2);
    decoded[0] = result_.decodedW;
    decoded[1] = result_.decodedH;
    out.Set("decodedSize", decoded);
    if (input_.rle) {
      Napi::Uint32Array counts = Napi::Uint32Array::New(env, result_.rleCounts.size());
      if (!result_.rleCounts.empty()) {
        std::memcpy(counts.Data(), result_.rleCounts.data(), result_.rleCounts.size() * sizeof(std::uint32_t));
      }
      out.Set("rleCounts", counts);
    }
    deferred_.Resolve(out);
  }

 private:
  std::shared_ptr<ProcessorCore> core_;
  Napi::Reference<Napi::Uint8Array> frameRef_;
  lvunet::FrameInput input_;
  std::chrono::steady_clock::time_point submitted_;
  std::uint64_t ticket_;
  lvunet::FrameResult result_;
};

class ProcessorWrap : public Napi::ObjectWrap<ProcessorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeFrameProcessor",
                       {
                           InstanceMethod<&ProcessorWrap::Process>("process"),
                           InstanceMethod<&ProcessorWrap::Release>("release"),
                       });
  }

  explicit ProcessorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessorWrap>(info) {}

  void attach(std::shared_ptr<ProcessorCore> core) { core_ = std::move(core); }

 private:
  // process(frame, width, height, format, threshold, frameId, rle, maskFrame): Promise<NativeFrameResult>.
  // A frame of the wrong size throws here, synchronously (ERR_FRAME_SIZE): it never reaches a worker.
  // rle: also return the COCO counts of the frame-size mask (rleCounts). maskFrame: return the
  // frame-size mask itself; false keeps it native (a frame-size block per frame on the JS heap makes
  // V8 run full collections for external memory pressure).
  Napi::Value Process(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_) throw Napi::Error::New(env, "this frame processor has been released");
    Napi::Uint8Array frame = bytesArg(info, 0, "frame");
    lvunet::FrameInput input{};
    input.width = uintArg(info, 1, "width");
    input.height = uintArg(info, 2, "height");
    const std::string format = stringArg(info, 3, "format");
    if (!info[4].IsNumber()) throw Napi::TypeError::New(env, "threshold must be a number");
    input.threshold = info[4].As<Napi::Number>().DoubleValue();
    input.frameId = stringArg(info, 5, "frameId");
    if (!info[6].IsBoolean()) throw Napi::TypeError::New(env, "rle must be a boolean");
    if (!info[7].IsBoolean()) throw Napi::TypeError::New(env, "maskFrame must be a boolean");
    input.rle = info[6].As<Napi::Boolean>().Value();
    input.maskFrame = info[7].As<Napi::Boolean>().Value();
    input.data = frame.Data();
    input.byteLength = frame.ByteLength();
    guarded(env, [&] {
      try {
        input.format = lvunet::parsePixelFormat(format);
        lvunet::validateFrame(input.format, input.width, input.height, input.byteLength);
        if (!(input.threshold >= 0 && input.threshold <= 1)) {
          throw CoreError(lvunet::codes::kInvalidArgument,
                          "threshold must be a number in [0, 1], got " + std::to_string(input.threshold));
        }
      } catch (const CoreError& e) {
        throw e.with("frameId", input.frameId).with("stage", "preprocess");
      }
    });
    auto* worker = new ProcessWorker(env, core_, frame, std::move(input));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  }

  // release(): drops this handle's hold on the session; jobs in flight keep it until they end.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    core_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<ProcessorCore> core_;
};

// ---------------------------------------------------------------------------------------------

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSession",
                       {
                           InstanceMethod<&SessionWrap::Run>("run"),
                           InstanceMethod<&SessionWrap::Describe>("describe"),
                           InstanceMethod<&SessionWrap::Release>("release"),
                           InstanceMethod<&SessionWrap::CreateFrameProcessor>("createFrameProcessor"),
                       });
  }

  explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {}

  void attach(std::shared_ptr<lvunet::Session> session) { session_ = std::move(session); }

 private:
  const lvunet::Session& live(Napi::Env env) const {
    if (!session_) throw Napi::Error::New(env, "this session has been released");
    return *session_;
  }

  // describe(): { modelPath, providers: { requested, active, fallbacks }, inputs, outputs }
  Napi::Value Describe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const lvunet::Session& s = live(env);
    Napi::Object report = Napi::Object::New(env);
    report.Set("requested", stringArray(env, s.providers().requested));
    report.Set("active", stringArray(env, s.providers().active));
    Napi::Array fallbacks = Napi::Array::New(env, s.providers().fallbacks.size());
    for (uint32_t i = 0; i < s.providers().fallbacks.size(); ++i) {
      Napi::Object f = Napi::Object::New(env);
      f.Set("provider", s.providers().fallbacks[i].provider);
      f.Set("reason", s.providers().fallbacks[i].reason);
      fallbacks.Set(i, f);
    }
    report.Set("fallbacks", fallbacks);
    Napi::Object out = Napi::Object::New(env);
    out.Set("modelPath", s.modelPath());
    out.Set("providers", report);
    out.Set("inputs", tensorInfos(env, s.inputs()));
    out.Set("outputs", tensorInfos(env, s.outputs()));
    return out;
  }

  // run(data: Float32Array, dims: number[]): Promise<{ data: Float32Array, dims: number[] }>
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    live(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(env, "input must be a Float32Array");
    }
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "dims must be an array of integers");
    Napi::Float32Array data = info[0].As<Napi::Float32Array>();
    Napi::Array dimsArray = info[1].As<Napi::Array>();
    std::vector<int64_t> dims(dimsArray.Length());
    for (uint32_t i = 0; i < dims.size(); ++i) {
      Napi::Value d = dimsArray.Get(i);
      if (!d.IsNumber()) throw Napi::TypeError::New(env, "dims must be an array of integers");
      dims[i] = d.As<Napi::Number>().Int64Value();
    }
    std::vector<float> input(data.Data(), data.Data() + data.ElementLength());
    auto* worker = new RunWorker(env, session_, std::move(input), std::move(dims));
    Napi::Promise promise = worker->promise();
    worker->Queue();  // the worker deletes itself after OnOK/OnError
    return promise;
  }

  // createFrameProcessor(modelWidth, modelHeight, fit, mean, std, scale): NativeFrameProcessor
  Napi::Value CreateFrameProcessor(const Napi::CallbackInfo& info);

  // release(): drops this handle's reference; a run in flight keeps the session until it ends.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    session_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<lvunet::Session> session_;
};

class RuntimeWrap : public Napi::ObjectWrap<RuntimeWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeRuntime",
                       {
                           InstanceMethod<&RuntimeWrap::Info>("info"),
                           InstanceMethod<&RuntimeWrap::AvailableProviders>("availableProviders"),
                           InstanceMethod<&RuntimeWrap::CreateSession>("createSession"),
                       });
  }

  explicit RuntimeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RuntimeWrap>(info) {}

  void attach(std::shared_ptr<lvunet::OrtLibrary> library) { library_ = std::move(library); }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("path", library_->path());
    out.Set("version", library_->version());
    out.Set("apiVersion", library_->apiVersion());
    out.Set("headerApiVersion", lvunet::OrtLibrary::headerApiVersion());
    return out;
  }

  Napi::Value AvailableProviders(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&] { return stringArray(info.Env(), library_->availableProviders()); });
  }

  // createSession(modelPath, { intraOpThreads, interOpThreads, graphOptimization, providers, strict })
  //   : Promise<NativeSession>
  Napi::Value CreateSession(const Napi::CallbackInfo& info);

  std::shared_ptr<lvunet::OrtLibrary> library_;
};

// ---------------------------------------------------------------------------------------------
// previewJpeg(): a live-view picture (core/preview.h) made on a libuv worker thread.

class PreviewWorker : public PromiseWorker {
 public:
  // The frame is copied here, on the JS thread: the caller may hand its buffer back to a pool (or
  // drop it) as soon as this returns, and a preview is at most a few a second.
  PreviewWorker(Napi::Env env, Napi::Uint8Array frame, lvunet::PixelFormat format, uint32_t width, uint32_t height,
                uint32_t outW, uint32_t outH, int quality)
      : PromiseWorker(env, "lvunet_edge:previewJpeg"),
        frame_(frame.Data(), frame.Data() + frame.ByteLength()),
        format_(format),
        width_(width),
        height_(height),
        outW_(outW),
        outH_(outH),
        quality_(quality) {}

 protected:
  void Execute() override {
    guard([&] { jpeg_ = lvunet::previewJpeg(format_, frame_.data(), frame_.size(), width_, height_, outW_, outH_, quality_); });
  }

  std::vector<std::pair<std::string, std::string>> errorContext() const override {
    return {{"format", lvunet::pixelFormatName(format_)}};
  }

  void OnOK() override {
    Napi::Uint8Array out = Napi::Uint8Array::New(Env(), jpeg_.size());
    std::memcpy(out.Data(), jpeg_.data(), jpeg_.size());
    deferred_.Resolve(out);
  }

 private:
  std::vector<std::uint8_t> frame_;
  lvunet::PixelFormat format_;
  uint32_t width_, height_, outW_, outH_;
  int quality_;
  std::vector<std::uint8_t> jpeg_;
};

// Version of the JS <-> C++ interface (the NativeBinding interface in src/runtime/native/binding.ts):
// bump it, and NATIVE_ABI_VERSION there, whenever an export, a signature or a returned shape changes,
// so that an addon built from other sources (a stale build/, an old prebuilt, LVUNET_EDGE_NATIVE)
// is refused at load with a clear message instead of failing later with a confusing TypeError.
constexpr int kAddonAbiVersion = 3;

struct Addon : public Napi::Addon<Addon> {
  Napi::FunctionReference runtimeCtor;
  Napi::FunctionReference sessionCtor;
  Napi::FunctionReference processorCtor;

  Addon(Napi::Env env, Napi::Object exports) {
    runtimeCtor = Napi::Persistent(RuntimeWrap::Define(env));
    sessionCtor = Napi::Persistent(SessionWrap::Define(env));
    processorCtor = Napi::Persistent(ProcessorWrap::Define(env));
    DefineAddon(exports, {
                             InstanceMethod<&Addon::LoadRuntime>("loadRuntime"),
                             InstanceMethod<&Addon::FrameByteLength>("frameByteLength"),
                             InstanceMethod<&Addon::ToRgb>("toRgb"),
                             InstanceMethod<&Addon::Preprocess>("preprocess"),
                             InstanceMethod<&Addon::DecodeJpeg>("decodeJpeg"),
                             InstanceMethod<&Addon::EncodeJpeg>("encodeJpeg"),
                             InstanceMethod<&Addon::PreviewJpeg>("previewJpeg"),
                             InstanceMethod<&Addon::CocoRle>("cocoRle"),
                             InstanceMethod<&Addon::Postprocess>("postprocess"),
                             InstanceMethod<&Addon::Exp>("exp"),
                             InstanceMethod<&Addon::Sigmoid>("sigmoid"),
                             InstanceMethod<&Addon::SdNotify>("sdNotify"),
                         });
    exports.Set("V4l2Device", lvunet::binding::DefineV4l2Device(env));
    exports.Set("abiVersion", Napi::Number::New(env, kAddonAbiVersion));
  }

  // sdNotify(socketPath, state): undefined
  Napi::Value SdNotify(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string socketPath = stringArg(info, 0, "socketPath");
    const std::string state = stringArg(info, 1, "state");
    guarded(env, [&] { lvunet::sdNotify(socketPath, state); });
    return env.Undefined();
  }

  // loadRuntime(libraryPath): NativeRuntime
  Napi::Value LoadRuntime(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string path = stringArg(info, 0, "libraryPath");
    auto library = guarded(env, [&] { return lvunet::OrtLibrary::load(path); });
    Napi::Object obj = runtimeCtor.New({});
    RuntimeWrap::Unwrap(obj)->attach(std::move(library));
    return obj;
  }

  // frameByteLength(format, width, height): number
  Napi::Value FrameByteLength(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string format = stringArg(info, 0, "format");
    const uint32_t width = uintArg(info, 1, "width");
    const uint32_t height = uintArg(info, 2, "height");
    return guarded(env, [&] {
      return Napi::Number::New(
          env, static_cast<double>(lvunet::frameByteLength(lvunet::parsePixelFormat(format), width, height)));
    });
  }

  // toRgb(frame, width, height, format): Uint8Array (RGB24)
  Napi::Value ToRgb(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array frame = bytesArg(info, 0, "frame");
    const uint32_t width = uintArg(info, 1, "width");
    const uint32_t height = uintArg(info, 2, "height");
    const std::string format = stringArg(info, 3, "format");
    return guarded(env, [&] {
      const lvunet::PixelFormat f = lvunet::parsePixelFormat(format);
      lvunet::validateFrame(f, width, height, frame.ByteLength());
      Napi::Uint8Array rgb = Napi::Uint8Array::New(env, static_cast<size_t>(width) * height * 3);
      lvunet::toRgb(f, frame.Data(), frame.ByteLength(), width, height, rgb.Data());
      return rgb;
    });
  }

  // preprocess(frame, width, height, format, outWidth, outHeight, fit, mean, std, scale): Float32Array
  Napi::Value Preprocess(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array frame = bytesArg(info, 0, "frame");
    const uint32_t width = uintArg(info, 1, "width");
    const uint32_t height = uintArg(info, 2, "height");
    const std::string format = stringArg(info, 3, "format");
    const uint32_t outW = uintArg(info, 4, "outWidth");
    const uint32_t outH = uintArg(info, 5, "outHeight");
    const std::string fit = stringArg(info, 6, "fit");
    lvunet::Normalization norm{};
    triple(env, info[7], "mean", norm.mean);
    triple(env, info[8], "std", norm.std);
    if (!info[9].IsNumber()) throw Napi::TypeError::New(env, "scale must be a number");
    norm.scale = info[9].As<Napi::Number>().DoubleValue();
    return guarded(env, [&] {
      std::vector<float> out =
          lvunet::preprocessFrame(lvunet::parsePixelFormat(format), frame.Data(), frame.ByteLength(), width, height,
                                  outW, outH, lvunet::parseFit(fit), norm);
      Napi::Float32Array arr = Napi::Float32Array::New(env, out.size());
      std::memcpy(arr.Data(), out.data(), out.size() * sizeof(float));
      return arr;
    });
  }

  // decodeJpeg(frame, width, height, minWidth, minHeight): { width, height, data } — the decode step
  // of the preprocessing definition (jpeg_decode.h): the JPEG, whose header must say width x height,
  // decoded at the smallest DCT scale still at least minWidth x minHeight, as RGB24. For the
  // reference path and tools; the pipeline decodes inside process().
  Napi::Value DecodeJpeg(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array frame = bytesArg(info, 0, "frame");
    const uint32_t width = uintArg(info, 1, "width");
    const uint32_t height = uintArg(info, 2, "height");
    const uint32_t minW = uintArg(info, 3, "minWidth");
    const uint32_t minH = uintArg(info, 4, "minHeight");
    return guarded(env, [&] {
      lvunet::PreprocessScratch scratch;
      lvunet::decodeJpegForModel(frame.Data(), frame.ByteLength(), width, height, minW, minH, scratch);
      Napi::Object out = Napi::Object::New(env);
      out.Set("width", Napi::Number::New(env, scratch.srcUsedW));
      out.Set("height", Napi::Number::New(env, scratch.srcUsedH));
      Napi::Uint8Array data = Napi::Uint8Array::New(env, scratch.jpegRgb.size());
      std::memcpy(data.Data(), scratch.jpegRgb.data(), scratch.jpegRgb.size());
      out.Set("data", data);
      return out;
    });
  }

  // encodeJpeg(rgb, width, height, quality, subsampling): Uint8Array — baseline JPEG (frames make).
  Napi::Value EncodeJpeg(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array rgb = bytesArg(info, 0, "rgb");
    const uint32_t width = uintArg(info, 1, "width");
    const uint32_t height = uintArg(info, 2, "height");
    const uint32_t quality = uintArg(info, 3, "quality");
    const uint32_t subsampling = uintArg(info, 4, "subsampling");
    return guarded(env, [&] {
      if (rgb.ByteLength() != static_cast<size_t>(width) * height * 3) {
        throw CoreError(lvunet::codes::kInvalidArgument, "encodeJpeg: " + std::to_string(rgb.ByteLength()) +
                                                             " bytes are not a " + std::to_string(width) + "x" +
                                                             std::to_string(height) + " RGB24 image");
      }
      std::vector<std::uint8_t> bytes =
          lvunet::encodeJpegRgb(rgb.Data(), width, height, static_cast<int>(quality), static_cast<int>(subsampling));
      Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
      std::memcpy(out.Data(), bytes.data(), bytes.size());
      return out;
    });
  }

  // previewJpeg(frame, width, height, format, outWidth, outHeight, quality): Promise<Uint8Array> — a
  // live-view JPEG of the frame at outWidth x outHeight, sampled and encoded off the JS thread.
  Napi::Value PreviewJpeg(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array frame = bytesArg(info, 0, "frame");
    const uint32_t width = uintArg(info, 1, "width");
    const uint32_t height = uintArg(info, 2, "height");
    const std::string format = stringArg(info, 3, "format");
    const uint32_t outW = uintArg(info, 4, "outWidth");
    const uint32_t outH = uintArg(info, 5, "outHeight");
    const uint32_t quality = uintArg(info, 6, "quality");
    return guarded(env, [&] {
      auto* worker = new PreviewWorker(env, frame, lvunet::parsePixelFormat(format), width, height, outW, outH,
                                       static_cast<int>(quality));
      worker->Queue();
      return worker->promise();
    });
  }

  // cocoRle(mask, width, height): Uint32Array, the COCO counts of a 0/1 mask (cocoRleCounts).
  Napi::Value CocoRle(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array mask = bytesArg(info, 0, "mask");
    const uint32_t width = uintArg(info, 1, "width");
    const uint32_t height = uintArg(info, 2, "height");
    return guarded(env, [&] {
      if (mask.ByteLength() != static_cast<size_t>(width) * height) {
        throw CoreError(lvunet::codes::kInvalidArgument, "cocoRle: mask of " + std::to_string(mask.ByteLength()) +
                                                             " bytes is not " + std::to_string(width) + "x" +
                                                             std::to_string(height));
      }
      std::vector<std::uint32_t> counts;
      std::vector<std::uint8_t> block;
      lvunet::cocoRleCounts(mask.Data(), width, height, counts, block);
      Napi::Uint32Array out = Napi::Uint32Array::New(env, counts.size());
      if (!counts.empty()) std::memcpy(out.Data(), counts.data(), counts.size() * sizeof(std::uint32_t));
      return out;
    });
  }

  // postprocess(logits, modelWidth, modelHeight, frameWidth, frameHeight, window, threshold)
  //   : { maskModel, maskFrame, components, foreground }; window: [newW, newH, ox, oy] or null (stretch).
  // Synchronous: the pipeline uses it through process(); this entry point serves tests and tools.
  Napi::Value Postprocess(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(env, "logits must be a Float32Array");
    }
    Napi::Float32Array logits = info[0].As<Napi::Float32Array>();
    const uint32_t modelW = uintArg(info, 1, "modelWidth");
    const uint32_t modelH = uintArg(info, 2, "modelHeight");
    const uint32_t frameW = uintArg(info, 3, "frameWidth");
    const uint32_t frameH = uintArg(info, 4, "frameHeight");
    lvunet::ModelWindow window{modelW, modelH, 0, 0};
    if (!info[5].IsNull() && !info[5].IsUndefined()) {
      double w[4];
      if (!info[5].IsArray() || info[5].As<Napi::Array>().Length() != 4) {
        throw Napi::TypeError::New(env, "window must be [newW, newH, ox, oy] or null");
      }
      for (uint32_t i = 0; i < 4; ++i) {
        Napi::Value v = info[5].As<Napi::Array>().Get(i);
        if (!v.IsNumber()) throw Napi::TypeError::New(env, "window must be [newW, newH, ox, oy] or null");
        w[i] = v.As<Napi::Number>().DoubleValue();
        if (!(w[i] >= 0 && w[i] <= 65536) || w[i] != static_cast<double>(static_cast<uint32_t>(w[i]))) {
          throw Napi::RangeError::New(env, "window values must be integers in 0..65536");
        }
      }
      window = {static_cast<uint32_t>(w[0]), static_cast<uint32_t>(w[1]), static_cast<uint32_t>(w[2]),
                static_cast<uint32_t>(w[3])};
    }
    if (!info[6].IsNumber()) throw Napi::TypeError::New(env, "threshold must be a number");
    const double threshold = info[6].As<Napi::Number>().DoubleValue();
    return guarded(env, [&] {
      const size_t modelPixels = static_cast<size_t>(modelW) * modelH;
      if (logits.ElementLength() != modelPixels) {
        throw CoreError(lvunet::codes::kInvalidArgument,
                        "postprocess: logits have " + std::to_string(logits.ElementLength()) + " values, expected 1x1x" +
                            std::to_string(modelH) + "x" + std::to_string(modelW));
      }
      const size_t framePixels = static_cast<size_t>(frameW) * frameH;
      std::unique_ptr<uint8_t[]> maskModel(new uint8_t[modelPixels]);
      std::unique_ptr<uint8_t[]> maskFrame(new uint8_t[framePixels]);
      lvunet::PostprocessOutput post;
      lvunet::PostprocessScratch scratch;
      lvunet::postprocess(logits.Data(), modelW, modelH, window, frameW, frameH, threshold, maskModel.get(),
                          maskFrame.get(), post, scratch);
      Napi::Object out = Napi::Object::New(env);
      setPostprocess(env, out, std::move(maskModel), modelPixels, std::move(maskFrame), framePixels, post);
      return out;
    });
  }

  // exp(values: Float64Array): Float64Array, fdlibm's exp (for tests against Math.exp).
  Napi::Value Exp(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw Napi::TypeError::New(env, "values must be a Float64Array");
    }
    Napi::Float64Array in = info[0].As<Napi::Float64Array>();
    Napi::Float64Array out = Napi::Float64Array::New(env, in.ElementLength());
    for (size_t i = 0; i < in.ElementLength(); ++i) out[i] = lvunet::fdlibmExp(in[i]);
    return out;
  }

  // sigmoid(logits: Float32Array): Float32Array
  Napi::Value Sigmoid(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(env, "logits must be a Float32Array");
    }
    Napi::Float32Array in = info[0].As<Napi::Float32Array>();
    Napi::Float32Array out = Napi::Float32Array::New(env, in.ElementLength());
    lvunet::sigmoidInto(in.Data(), in.ElementLength(), out.Data());
    return out;
  }
};


// createSession(): loading a model (and, for TensorRT, building an engine: minutes) happens on a
// libuv worker thread too; the JS object wrapping the session is made back on the JS thread.
class CreateSessionWorker : public PromiseWorker {
 public:
  CreateSessionWorker(Napi::Env env, std::shared_ptr<lvunet::OrtLibrary> library, std::string modelPath,
                      lvunet::SessionConfig config)
      : PromiseWorker(env, "lvunet_edge:createSession"),
        library_(std::move(library)),
        modelPath_(std::move(modelPath)),
        config_(std::move(config)) {}

 protected:
  void Execute() override {
    guard([&] { session_ = std::make_shared<lvunet::Session>(library_, modelPath_, config_); });
  }

  std::vector<std::pair<std::string, std::string>> errorContext() const override { return {{"modelPath", modelPath_}}; }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      Napi::Object obj = env.GetInstanceData<Addon>()->sessionCtor.New({});
      SessionWrap::Unwrap(obj)->attach(std::move(session_));
      deferred_.Resolve(obj);
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  std::shared_ptr<lvunet::OrtLibrary> library_;
  std::string modelPath_;
  lvunet::SessionConfig config_;
  std::shared_ptr<lvunet::Session> session_;
};

Napi::Value RuntimeWrap::CreateSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string modelPath = stringArg(info, 0, "modelPath");
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  lvunet::SessionConfig config;
  auto number = [&](const char* key) {
    Napi::Value v = o.Get(key);
    if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("options.") + key + " must be a number");
    return v.As<Napi::Number>().Int32Value();
  };
  config.intraOpThreads = number("intraOpThreads");
  config.interOpThreads = number("interOpThreads");
  Napi::Value level = o.Get("graphOptimization");
  if (!level.IsString()) throw Napi::TypeError::New(env, "options.graphOptimization must be a string");
  config.strict = o.Get("strict").ToBoolean().Value();
  Napi::Value entries = o.Get("configEntries");
  if (entries.IsObject()) {
    Napi::Object eo = entries.As<Napi::Object>();
    Napi::Array keys = eo.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      Napi::Value value = eo.Get(keys.Get(k));
      if (!value.IsString()) throw Napi::TypeError::New(env, "options.configEntries values must be strings");
      config.configEntries.emplace_back(keys.Get(k).ToString().Utf8Value(), value.As<Napi::String>().Utf8Value());
    }
  }
  Napi::Value providers = o.Get("providers");
  if (!providers.IsArray()) throw Napi::TypeError::New(env, "options.providers must be an array");
  Napi::Array list = providers.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value p = list.Get(i);
    if (!p.IsObject() || !p.As<Napi::Object>().Get("name").IsString()) {
      throw Napi::TypeError::New(env, "options.providers[" + std::to_string(i) + "].name must be a string");
    }
    lvunet::ProviderRequest request;
    request.name = p.As<Napi::Object>().Get("name").As<Napi::String>().Utf8Value();
    Napi::Value opts = p.As<Napi::Object>().Get("options");
    if (opts.IsObject()) {
      Napi::Object oo = opts.As<Napi::Object>();
      Napi::Array keys = oo.GetPropertyNames();
      for (uint32_t k = 0; k < keys.Length(); ++k) {
        Napi::Value key = keys.Get(k);
        Napi::Value value = oo.Get(key);
        if (!value.IsString()) {
          throw Napi::TypeError::New(env, "provider option '" + key.ToString().Utf8Value() + "' of " + request.name +
                                              " must be a string");
        }
        request.options.emplace_back(key.ToString().Utf8Value(), value.As<Napi::String>().Utf8Value());
      }
    }
    config.providers.push_back(std::move(request));
  }
  guarded(env, [&] {
    config.graphOptimization = lvunet::parseGraphOptimization(level.As<Napi::String>().Utf8Value());
  });
  auto* worker = new CreateSessionWorker(env, library_, modelPath, std::move(config));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value SessionWrap::CreateFrameProcessor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  live(env);
  auto core = std::make_shared<ProcessorCore>();
  core->session = session_;
  core->spec.modelW = uintArg(info, 0, "modelWidth");
  core->spec.modelH = uintArg(info, 1, "modelHeight");
  const std::string fit = stringArg(info, 2, "fit");
  triple(env, info[3], "mean", core->spec.norm.mean);
  triple(env, info[4], "std", core->spec.norm.std);
  if (!info[5].IsNumber()) throw Napi::TypeError::New(env, "scale must be a number");
  core->spec.norm.scale = info[5].As<Napi::Number>().DoubleValue();
  guarded(env, [&] {
    core->spec.fit = lvunet::parseFit(fit);
    if (core->spec.modelW == 0 || core->spec.modelH == 0) {
      throw CoreError(lvunet::codes::kInvalidArgument, "model size must be non-zero");
    }
    // Fails here, once, rather than on every frame.
    std::vector<float> probe(3 * static_cast<size_t>(core->spec.modelW) * core->spec.modelH);
    const uint8_t grey[4] = {0, 0, 0, 0};
    lvunet::PreprocessScratch scratch;
    lvunet::preprocessInto(lvunet::PixelFormat::GREY, grey, 4, 2, 2, core->spec.modelW, core->spec.modelH,
                           core->spec.fit, core->spec.norm, probe.data(), scratch);
  });
  Napi::Object obj = env.GetInstanceData<Addon>()->processorCtor.New({});
  ProcessorWrap::Unwrap(obj)->attach(std::move(core));
  return obj;
}

}  // namespace

NODE_API_ADDON(Addon)
