// Thin N-API wrap of native/core/v4l2_device: `new V4l2Device(path)` with one method per system
// call. The JS surface is declared by NativeV4l2Device in src/runtime/sources/v4l2/types.ts; all
// decisions (format choice, control validation, frame checks, stall and unplug recovery) are made
// there. dequeue() waits on a libuv worker thread and copies the frame out of the mmap'ed buffer
// before re-queueing it, so JS never holds memory the driver may overwrite.
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.h"
#include "napi_util.h"
#include "../core/v4l2_device.h"

namespace lvunet {
namespace binding {

namespace {

using lvunet::CoreError;
using lvunet::binding_util::guarded;
using lvunet::binding_util::stringArg;
using lvunet::binding_util::PromiseWorker;
using lvunet::binding_util::uintArg;
using lvunet::v4l2::Device;

int32_t intArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= -2147483648.0 && v <= 2147483647.0) || v != static_cast<double>(static_cast<int32_t>(v))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a 32-bit integer");
  }
  return static_cast<int32_t>(v);
}

uint32_t fourccArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "fourcc must be a string");
  const std::string name = info[i].As<Napi::String>().Utf8Value();
  return guarded(info.Env(), [&] { return lvunet::v4l2::fourccFromString(name); });
}

const char* kindName(lvunet::v4l2::EnumKind kind) {
  switch (kind) {
    case lvunet::v4l2::EnumKind::Discrete: return "discrete";
    case lvunet::v4l2::EnumKind::Stepwise: return "stepwise";
    case lvunet::v4l2::EnumKind::Continuous: return "continuous";
    case lvunet::v4l2::EnumKind::None: break;
  }
  return "none";
}

Napi::Object fraction(Napi::Env env, const lvunet::v4l2::Fraction& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("numerator", f.numerator);
  o.Set("denominator", f.denominator);
  return o;
}

Napi::Object pixFormat(Napi::Env env, const lvunet::v4l2::PixFormat& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("width", p.width);
  o.Set("height", p.height);
  o.Set("fourcc", lvunet::v4l2::fourccToString(p.pixelFormat));
  o.Set("bytesPerLine", p.bytesPerLine);
  o.Set("sizeImage", p.sizeImage);
  o.Set("field", p.field);
  o.Set("colorspace", p.colorspace);
  return o;
}

class V4l2DeviceWrap;

// One poll + DQBUF + copy + QBUF on a libuv worker thread. The frame is copied once, out of the
// mmap buffer into a Node Buffer allocated on the JS thread before the wait (uninitialised memory,
// accounted by V8): a malloc'd block per frame handed to JS as an external buffer was freed only
// when a later GC ran its finalizer, on another thread than the one that allocated it, and the
// process grew by tens of MiB over 300 frames of a real driver (vivid, `npm run test:v4l2`).
class DequeueWorker : public PromiseWorker {
 public:
  DequeueWorker(Napi::Object owner, V4l2DeviceWrap* wrap, std::shared_ptr<Device> device, int timeoutMs,
                Napi::Buffer<uint8_t> target)
      : PromiseWorker(owner.Env(), "lvunet_edge:v4l2.dequeue"),
        owner_(Napi::Persistent(owner)),
        wrap_(wrap),
        device_(std::move(device)),
        timeoutMs_(timeoutMs),
        target_(Napi::Persistent(target)),
        targetData_(target.Data()),
        targetLength_(target.Length()) {}


 protected:
  void Execute() override {
    guard([&] {
      frame_ = device_->dequeue(timeoutMs_);
      if (!frame_) return;
      const uint8_t* src = device_->bufferData(frame_->index);
      copied_ = std::min<size_t>({frame_->bytesUsed, device_->bufferLength(frame_->index), targetLength_});
      if (copied_ > 0) std::memcpy(targetData_, src, copied_);
      device_->requeue(frame_->index);
    });
  }

  std::vector<std::pair<std::string, std::string>> errorContext() const override { return {{"path", device_->path()}}; }
  // The device takes the next dequeue() once this one has settled, failed or not.
  void beforeReject() override { finish(); }
  void OnOK() override;

 private:
  void finish();

  // Keeps the JS object (and so `wrap_`) alive while the worker runs, even if JS dropped it.
  Napi::ObjectReference owner_;
  V4l2DeviceWrap* wrap_;
  std::shared_ptr<Device> device_;
  int timeoutMs_;
  // The Buffer frames are copied into; untouched by JS until the promise resolves with a view of it.
  Napi::Reference<Napi::Buffer<uint8_t>> target_;
  uint8_t* targetData_;
  size_t targetLength_;
  size_t copied_ = 0;
  std::optional<lvunet::v4l2::Dequeued> frame_;
};

class V4l2DeviceWrap : public Napi::ObjectWrap<V4l2DeviceWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "V4l2Device",
                       {
                           InstanceMethod<&V4l2DeviceWrap::Info>("info"),
                           InstanceMethod<&V4l2DeviceWrap::EnumFormats>("enumFormats"),
                           InstanceMethod<&V4l2DeviceWrap::EnumFrameSizes>("enumFrameSizes"),
                           InstanceMethod<&V4l2DeviceWrap::EnumFrameIntervals>("enumFrameIntervals"),
                           InstanceMethod<&V4l2DeviceWrap::QueryControls>("queryControls"),
                           InstanceMethod<&V4l2DeviceWrap::GetFormat>("getFormat"),
                           InstanceMethod<&V4l2DeviceWrap::SetFormat>("setFormat"),
                           InstanceMethod<&V4l2DeviceWrap::GetFrameInterval>("getFrameInterval"),
                           InstanceMethod<&V4l2DeviceWrap::SetFrameInterval>("setFrameInterval"),
                           InstanceMethod<&V4l2DeviceWrap::GetControl>("getControl"),
                           InstanceMethod<&V4l2DeviceWrap::SetControl>("setControl"),
                           InstanceMethod<&V4l2DeviceWrap::RequestBuffers>("requestBuffers"),
                           InstanceMethod<&V4l2DeviceWrap::ReleaseBuffers>("releaseBuffers"),
                           InstanceMethod<&V4l2DeviceWrap::StreamOn>("streamOn"),
                           InstanceMethod<&V4l2DeviceWrap::StreamOff>("streamOff"),
                           InstanceMethod<&V4l2DeviceWrap::Dequeue>("dequeue"),
                           InstanceMethod<&V4l2DeviceWrap::Close>("close"),
                       });
  }

  // new V4l2Device(path): opens the node and runs VIDIOC_QUERYCAP (a quick, non-blocking open).
  explicit V4l2DeviceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<V4l2DeviceWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    device_ = guarded(env, [&] { return std::make_shared<Device>(path); });
    path_ = path;
  }

  // Called by DequeueWorker on the JS thread when its wait ends.
  void dequeueDone() {
    busy_ = false;
    if (closeRequested_ && device_) {
      device_->close();
      device_.reset();
    }
  }

 private:
  Device& live(Napi::Env env, const char* what) {
    if (!device_ || closeRequested_) {
      Napi::Error e = Napi::Error::New(env, std::string(what) + " on '" + path_ + "': the device has been closed");
      e.Set("code", Napi::String::New(env, lvunet::codes::kV4l2State));
      e.Set("path", Napi::String::New(env, path_));
      throw e;
    }
    return *device_;
  }

  // Buffer and stream changes would pull mappings from under a dequeue running on a worker thread.
  Device& idle(Napi::Env env, const char* what) {
    Device& d = live(env, what);
    if (busy_) {
      Napi::Error e = Napi::Error::New(env, std::string(what) + " on '" + path_ + "': a dequeue is in progress");
      e.Set("code", Napi::String::New(env, lvunet::codes::kV4l2State));
      e.Set("path", Napi::String::New(env, path_));
      throw e;
    }
    return d;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const lvunet::v4l2::Capability& c = live(env, "info").capability();
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", path_);
    o.Set("driver", c.driver);
    o.Set("card", c.card);
    o.Set("busInfo", c.busInfo);
    o.Set("version", c.version);
    o.Set("capabilities", c.capabilities);
    o.Set("deviceCaps", c.deviceCaps);
    return o;
  }

  Napi::Value EnumFormats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = live(env, "enumFormats");
    return guarded(env, [&] {
      const auto formats = d.enumFormats();
      Napi::Array a = Napi::Array::New(env, formats.size());
      for (uint32_t i = 0; i < formats.size(); ++i) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("fourcc", lvunet::v4l2::fourccToString(formats[i].pixelFormat));
        o.Set("description", formats[i].description);
        o.Set("flags", formats[i].flags);
        a.Set(i, o);
      }
      return a;
    });
  }

  Napi::Value EnumFrameSizes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = live(env, "enumFrameSizes");
    const uint32_t fourcc = fourccArg(info, 0);
    return guarded(env, [&] {
      const lvunet::v4l2::FrameSizes s = d.enumFrameSizes(fourcc);
      Napi::Object o = Napi::Object::New(env);
      o.Set("kind", kindName(s.kind));
      if (s.kind == lvunet::v4l2::EnumKind::Discrete) {
        Napi::Array a = Napi::Array::New(env, s.discrete.size());
        for (uint32_t i = 0; i < s.discrete.size(); ++i) {
          Napi::Object size = Napi::Object::New(env);
          size.Set("width", s.discrete[i].width);
          size.Set("height", s.discrete[i].height);
          a.Set(i, size);
        }
        o.Set("sizes", a);
      } else if (s.kind != lvunet::v4l2::EnumKind::None) {
        o.Set("minWidth", s.minWidth);
        o.Set("maxWidth", s.maxWidth);
        o.Set("stepWidth", s.stepWidth);
        o.Set("minHeight", s.minHeight);
        o.Set("maxHeight", s.maxHeight);
        o.Set("stepHeight", s.stepHeight);
      }
      return o;
    });
  }

  Napi::Value EnumFrameIntervals(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = live(env, "enumFrameIntervals");
    const uint32_t fourcc = fourccArg(info, 0);
    const uint32_t width = uintArg(info, 1, "width");
    const uint32_t height = uintArg(info, 2, "height");
    return guarded(env, [&] {
      const lvunet::v4l2::FrameIntervals s = d.enumFrameIntervals(fourcc, width, height);
      Napi::Object o = Napi::Object::New(env);
      o.Set("kind", kindName(s.kind));
      if (s.kind == lvunet::v4l2::EnumKind::Discrete) {
        Napi::Array a = Napi::Array::New(env, s.discrete.size());
        for (uint32_t i = 0; i < s.discrete.size(); ++i) a.Set(i, fraction(env, s.discrete[i]));
        o.Set("intervals", a);
      } else if (s.kind != lvunet::v4l2::EnumKind::None) {
        o.Set("min", fraction(env, s.min));
        o.Set("max", fraction(env, s.max));
        o.Set("step", fraction(env, s.step));
      }
      return o;
    });
  }

  Napi::Value QueryControls(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = live(env, "queryControls");
    return guarded(env, [&] {
      const auto controls = d.queryControls();
      Napi::Array a = Napi::Array::New(env, controls.size());
      for (uint32_t i = 0; i < controls.size(); ++i) {
        const lvunet::v4l2::ControlInfo& c = controls[i];
        Napi::Object o = Napi::Object::New(env);
        o.Set("id", c.id);
        o.Set("type", c.type);
        o.Set("name", c.name);
        o.Set("minimum", static_cast<double>(c.minimum));
        o.Set("maximum", static_cast<double>(c.maximum));
        o.Set("step", static_cast<double>(c.step));
        o.Set("defaultValue", static_cast<double>(c.defaultValue));
        o.Set("flags", c.flags);
        Napi::Array menu = Napi::Array::New(env, c.menu.size());
        for (uint32_t m = 0; m < c.menu.size(); ++m) {
          Napi::Object item = Napi::Object::New(env);
          item.Set("index", c.menu[m].index);
          item.Set("name", c.menu[m].name);
          item.Set("value", static_cast<double>(c.menu[m].value));
          menu.Set(m, item);
        }
        o.Set("menu", menu);
        a.Set(i, o);
      }
      return a;
    });
  }

  Napi::Value GetFormat(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = live(env, "getFormat");
    return guarded(env, [&] { return pixFormat(env, d.getFormat()); });
  }

  Napi::Value SetFormat(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = idle(env, "setFormat");
    const uint32_t fourcc = fourccArg(info, 0);
    const uint32_t width = uintArg(info, 1, "width");
    const uint32_t height = uintArg(info, 2, "height");
    return guarded(env, [&] { return pixFormat(env, d.setFormat(fourcc, width, height)); });
  }

  Napi::Value GetFrameInterval(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = live(env, "getFrameInterval");
    return guarded(env, [&]() -> Napi::Value {
      const auto f = d.getFrameInterval();
      if (!f) return env.Null();
      return fraction(env, *f);
    });
  }

  Napi::Value SetFrameInterval(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = idle(env, "setFrameInterval");
    const lvunet::v4l2::Fraction wanted{uintArg(info, 0, "numerator"), uintArg(info, 1, "denominator")};
    return guarded(env, [&]() -> Napi::Value {
      const auto f = d.setFrameInterval(wanted);
      if (!f) return env.Null();
      return fraction(env, *f);
    });
  }

  Napi::Value GetControl(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = live(env, "getControl");
    const uint32_t id = uintArg(info, 0, "id");
    return guarded(env, [&] { return Napi::Number::New(env, d.getControl(id)); });
  }

  Napi::Value SetControl(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = live(env, "setControl");
    const uint32_t id = uintArg(info, 0, "id");
    const int32_t value = intArg(info, 1, "value");
    guarded(env, [&] { d.setControl(id, value); });
    return env.Undefined();
  }

  Napi::Value RequestBuffers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = idle(env, "requestBuffers");
    const uint32_t count = uintArg(info, 0, "count");
    return guarded(env, [&] { return Napi::Number::New(env, d.requestBuffers(count)); });
  }

  Napi::Value ReleaseBuffers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = idle(env, "releaseBuffers");
    guarded(env, [&] { d.releaseBuffers(); });
    return env.Undefined();
  }

  Napi::Value StreamOn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = idle(env, "streamOn");
    guarded(env, [&] { d.streamOn(); });
    return env.Undefined();
  }

  Napi::Value StreamOff(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Device& d = idle(env, "streamOff");
    guarded(env, [&] { d.streamOff(); });
    return env.Undefined();
  }

  // dequeue(timeoutMs, into?): Promise<frame | null>; null when nothing arrived in time (or on
  // close()). `into`: a Buffer the caller reuses from frame to frame (a pool), so that a frame-size
  // block is not allocated per frame; a frame longer than it is cut there (and the frame check drops it).
  Napi::Value Dequeue(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    live(env, "dequeue");
    const uint32_t timeoutMs = uintArg(info, 0, "timeoutMs");
    if (busy_) {
      Napi::Error e = Napi::Error::New(env, "dequeue on '" + path_ + "': another dequeue is in progress");
      e.Set("code", Napi::String::New(env, lvunet::codes::kV4l2State));
      e.Set("path", Napi::String::New(env, path_));
      throw e;
    }
    const int timeout = static_cast<int>(std::min<uint32_t>(timeoutMs, 60000));
    // Room for the largest mapped buffer (all are sizeimage long); a dequeue that is not streaming
    // fails in the worker with the driver-independent state error.
    size_t capacity = 0;
    for (uint32_t i = 0; i < device_->bufferCount(); ++i) capacity = std::max(capacity, device_->bufferLength(i));
    const bool reuse = info.Length() > 1 && info[1].IsBuffer() && info[1].As<Napi::Buffer<uint8_t>>().Length() > 0;
    if (info.Length() > 1 && !info[1].IsUndefined() && !reuse) {
      throw Napi::TypeError::New(env, "dequeue on '" + path_ + "': into must be a non-empty Buffer");
    }
    auto* worker = new DequeueWorker(info.This().As<Napi::Object>(), this, device_, timeout,
                                     reuse ? info[1].As<Napi::Buffer<uint8_t>>() : Napi::Buffer<uint8_t>::New(env, capacity));
    busy_ = true;
    Napi::Promise promise = worker->promise();
    worker->Queue();  // deletes itself after OnOK/OnError
    return promise;
  }

  // close(): releases the device now, or, while a dequeue waits, wakes it and releases it as soon
  // as the worker returns (it resolves with null). Idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (device_ && !closeRequested_) {
      if (busy_) {
        closeRequested_ = true;
        device_->wake();
      } else {
        device_->close();
        device_.reset();
      }
    }
    return info.Env().Undefined();
  }

  std::string path_;
  std::shared_ptr<Device> device_;
  bool busy_ = false;
  bool closeRequested_ = false;
};

void DequeueWorker::finish() { wrap_->dequeueDone(); }

void DequeueWorker::OnOK() {
  Napi::Env env = Env();
  finish();
  if (!frame_) {
    deferred_.Resolve(env.Null());
    return;
  }
  Napi::Buffer<uint8_t> target = target_.Value();
  // A view of the bytes the driver filled: the Buffer is as long as the mapping (sizeimage).
  Napi::Uint8Array data = Napi::Uint8Array::New(env, copied_, target.ArrayBuffer(), target.ByteOffset());
  target_.Reset();
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", frame_->index);
  o.Set("bytesUsed", frame_->bytesUsed);
  o.Set("sequence", frame_->sequence);
  o.Set("flags", frame_->flags);
  o.Set("timestampNs", Napi::BigInt::New(env, frame_->timestampNs));
  o.Set("data", data);
  deferred_.Resolve(o);
}

}  // namespace

// Registered by the module init (native/binding/addon.cc) as exports.V4l2Device.
Napi::Function DefineV4l2Device(Napi::Env env) { return V4l2DeviceWrap::Define(env); }

}  // namespace binding
}  // namespace lvunet
