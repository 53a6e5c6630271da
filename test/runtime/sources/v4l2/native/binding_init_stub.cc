// Module init used only by test/runtime/sources/v4l2/native.test.ts to build v4l2_binding.cc into a
// stand-alone addon, so the binding is compiled and loaded in CI without the full runtime addon
// (whose init native/binding/addon.cc registers V4l2Device the same way).
#include <napi.h>

namespace lvunet {
namespace binding {
Napi::Function DefineV4l2Device(Napi::Env env);
}  // namespace binding
}  // namespace lvunet

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("V4l2Device", lvunet::binding::DefineV4l2Device(env));
  return exports;
}

NODE_API_MODULE(lvunet_v4l2_test, Init)
