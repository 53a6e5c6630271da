// Shared by the N-API wraps: turning core errors into JS errors (code + context properties), and
// argument checks that name the argument. Header-only, internal linkage per translation unit.
#pragma once

#include <napi.h>

#include <cstdint>
#include <exception>
#include <string>

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

}  // namespace lvunet::binding_util
