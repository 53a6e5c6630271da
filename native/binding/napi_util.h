// Shared by the N-API wraps: turning core errors into JS errors (code + context properties), and
// argument checks that name the argument. Header-only, internal linkage per translation unit.
#pragma once

#include <napi.h>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.h"

namespace lvunet::binding_util {

inline Napi::Error toJsError(Napi::Env env, const CoreError& error) {
  Napi::Error js = Napi::Error::New(env, error.what());
  js.Set("code", Napi::String::New(env, error.code()));
  for (const auto& kv : error.context()) js.Set(kv.first, Napi::String::New(env, kv.second));
  return js;
}

// Runs `body`, turning core errors into JS exceptions.
template <typename F>
auto guarded(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const CoreError& e) {
    throw toJsError(env, e);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    Napi::Error js = Napi::Error::New(env, e.what());
    js.Set("code", Napi::String::New(env, "ERR_NATIVE"));
    throw js;
  }
}

inline std::string stringArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline uint32_t uintArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 4294967295.0) || v != static_cast<double>(static_cast<uint32_t>(v))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a non-negative 32-bit integer");
  }
  return static_cast<uint32_t>(v);
}

// The one shape of a promise-returning AsyncWorker's error handling. Execute() runs its body in
// guard(): a CoreError keeps its code and context (frameId, modelPath, stage, ...) all the way to
// the JS error; any other exception becomes ERR_NATIVE with the worker's errorContext(), so a JS
// caller always learns which model, frame or device failed.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  PromiseWorker(Napi::Env env, const char* resourceName)
      : Napi::AsyncWorker(env, resourceName), deferred_(Napi::Promise::Deferred::New(env)) {}

  // Worker thread: runs `body`, recording a failure for OnError.
  template <typename F>
  void guard(F&& body) {
    try {
      body();
    } catch (const CoreError& e) {
      error_ = e;
      SetError(e.what());
    } catch (const std::exception& e) {
      std::string where;
      for (const auto& kv : errorContext()) where += (where.empty() ? " (" : ", ") + kv.first + " '" + kv.second + "'";
      SetError(std::string(e.what()) + (where.empty() ? "" : where + ")"));
    }
  }

  // Properties that name what failed (e.g. {"modelPath", path}), for errors that are not CoreError.
  virtual std::vector<std::pair<std::string, std::string>> errorContext() const = 0;

  // JS thread, before the promise is rejected (e.g. to release a device for the next call).
  virtual void beforeReject() {}

  void OnError(const Napi::Error& e) override {
    beforeReject();
    if (error_) {
      deferred_.Reject(toJsError(Env(), *error_).Value());
      return;
    }
    Napi::Error js = Napi::Error::New(Env(), e.Message());
    js.Set("code", Napi::String::New(Env(), "ERR_NATIVE"));
    for (const auto& kv : errorContext()) js.Set(kv.first, Napi::String::New(Env(), kv.second));
    deferred_.Reject(js.Value());
  }

  Napi::Promise::Deferred deferred_;

 private:
  std::optional<CoreError> error_;
};

}  // namespace lvunet::binding_util
