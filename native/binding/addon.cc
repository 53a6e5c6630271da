// Thin N-API layer over native/core. TypeScript (src/runtime/native/binding.ts) validates options and
// hands over complete, flat values; this file converts them into core structs, runs the work (a
// model run on a libuv worker thread, never on the JS thread) and turns CoreError into a JS Error
// whose `code` and context properties (path, modelPath, provider, ...) come from the core.
#include <napi.h>

#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.h"
#include "napi_util.h"
#include "../core/ort_runtime.h"
#include "../core/preprocess.h"
#include "../core/sd_notify.h"

namespace lvunet { namespace binding { Napi::Function DefineV4l2Device(Napi::Env env); } }

namespace {

using lvunet::CoreError;
using lvunet::binding_util::guarded;
using lvunet::binding_util::stringArg;
using lvunet::binding_util::toJsError;
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

class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<const lvunet::Session> session, std::vector<float> input,
            std::vector<int64_t> dims)
      : Napi::AsyncWorker(env, "lvunet_edge:run"),
        deferred_(Napi::Promise::Deferred::New(env)),
        session_(std::move(session)),
        input_(std::move(input)),
        dims_(std::move(dims)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = session_->run(input_.data(), input_.size(), dims_);
    } catch (const CoreError& e) {
      error_ = e;
      SetError(e.what());
    } catch (const std::exception& e) {
      SetError(std::string(e.what()) + " (model '" + session_->modelPath() + "')");
    }
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

  void OnError(const Napi::Error& e) override {
    if (error_) {
      deferred_.Reject(toJsError(Env(), *error_).Value());
    } else {
      Napi::Error js = Napi::Error::New(Env(), e.Message());
      js.Set("code", Napi::String::New(Env(), "ERR_NATIVE"));
      js.Set("modelPath", Napi::String::New(Env(), session_->modelPath()));
      deferred_.Reject(js.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<const lvunet::Session> session_;
  std::vector<float> input_;
  std::vector<int64_t> dims_;
  lvunet::RunResult result_;
  std::optional<CoreError> error_;
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

struct Addon : public Napi::Addon<Addon> {
  Napi::FunctionReference runtimeCtor;
  Napi::FunctionReference sessionCtor;

  Addon(Napi::Env env, Napi::Object exports) {
    runtimeCtor = Napi::Persistent(RuntimeWrap::Define(env));
    sessionCtor = Napi::Persistent(SessionWrap::Define(env));
    DefineAddon(exports, {
                             InstanceMethod<&Addon::LoadRuntime>("loadRuntime"),
                             InstanceMethod<&Addon::FrameByteLength>("frameByteLength"),
                             InstanceMethod<&Addon::ToRgb>("toRgb"),
                             InstanceMethod<&Addon::Preprocess>("preprocess"),
                             InstanceMethod<&Addon::SdNotify>("sdNotify"),
                         });
    exports.Set("V4l2Device", lvunet::binding::DefineV4l2Device(env));
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
};

// createSession(): loading a model (and, for TensorRT, building an engine: minutes) happens on a
// libuv worker thread too; the JS object wrapping the session is made back on the JS thread.
class CreateSessionWorker : public Napi::AsyncWorker {
 public:
  CreateSessionWorker(Napi::Env env, std::shared_ptr<lvunet::OrtLibrary> library, std::string modelPath,
                      lvunet::SessionConfig config)
      : Napi::AsyncWorker(env, "lvunet_edge:createSession"),
        deferred_(Napi::Promise::Deferred::New(env)),
        library_(std::move(library)),
        modelPath_(std::move(modelPath)),
        config_(std::move(config)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      session_ = std::make_shared<lvunet::Session>(library_, modelPath_, config_);
    } catch (const CoreError& e) {
      error_ = e;
      SetError(e.what());
    } catch (const std::exception& e) {
      SetError(std::string(e.what()) + " (model '" + modelPath_ + "')");
    }
  }

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

  void OnError(const Napi::Error& e) override {
    if (error_) {
      deferred_.Reject(toJsError(Env(), *error_).Value());
    } else {
      Napi::Error js = Napi::Error::New(Env(), e.Message());
      js.Set("code", Napi::String::New(Env(), "ERR_NATIVE"));
      js.Set("modelPath", Napi::String::New(Env(), modelPath_));
      deferred_.Reject(js.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<lvunet::OrtLibrary> library_;
  std::string modelPath_;
  lvunet::SessionConfig config_;
  std::shared_ptr<lvunet::Session> session_;
  std::optional<CoreError> error_;
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

}  // namespace

NODE_API_ADDON(Addon)
