// V4L2 single-planar video capture: system calls only. Plain C++17 (no napi.h), so it builds and is
// tested on its own. Choosing a format, validating controls, checking frames, detecting stalls and
// reopening a camera all live in TypeScript (src/runtime/sources/v4l2/); this class only wraps ioctls
// and turns each failure into a CoreError whose context names the device path, the call
// (`syscall`: "open", "VIDIOC_S_FMT", ...) and the errno (`errno`: "ENODEV", ...), because the
// TypeScript side decides from the errno whether a camera was unplugged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "error.h"

namespace lvunet {

namespace codes {
// Shared with src/runtime/sources/v4l2/errors.ts (V4l2ErrorCode).
inline constexpr const char* kV4l2Open = "ERR_V4L2_OPEN";
inline constexpr const char* kV4l2NotV4l2 = "ERR_V4L2_NOT_V4L2";
inline constexpr const char* kV4l2Ioctl = "ERR_V4L2_IOCTL";
inline constexpr const char* kV4l2Mmap = "ERR_V4L2_MMAP";
inline constexpr const char* kV4l2Poll = "ERR_V4L2_POLL";
inline constexpr const char* kV4l2State = "ERR_V4L2_STATE";
}  // namespace codes

namespace v4l2 {

// "YUYV" <-> V4L2_PIX_FMT_YUYV. Names shorter than four characters are padded with spaces, as the
// kernel does ("Y16 "); fourccToString trims that padding.
std::string fourccToString(uint32_t fourcc);
uint32_t fourccFromString(const std::string& name);

// Symbolic errno name ("ENODEV"); "errno N" for values outside the table.
std::string errnoName(int err);

struct Fraction {
  uint32_t numerator = 0;
  uint32_t denominator = 0;
};

struct Capability {
  std::string driver;
  std::string card;
  std::string busInfo;
  uint32_t version = 0;
  uint32_t capabilities = 0;
  // Capabilities of this device node (equal to `capabilities` for drivers without DEVICE_CAPS).
  uint32_t deviceCaps = 0;
};

struct FormatDescription {
  uint32_t pixelFormat = 0;
  std::string description;
  uint32_t flags = 0;  // V4L2_FMT_FLAG_*
};

enum class EnumKind { None, Discrete, Stepwise, Continuous };

struct FrameSize {
  uint32_t width = 0;
  uint32_t height = 0;
};

struct FrameSizes {
  EnumKind kind = EnumKind::None;  // None: the driver does not implement ENUM_FRAMESIZES
  std::vector<FrameSize> discrete;
  uint32_t minWidth = 0, maxWidth = 0, stepWidth = 0;
  uint32_t minHeight = 0, maxHeight = 0, stepHeight = 0;
};

struct FrameIntervals {
  EnumKind kind = EnumKind::None;  // None: the driver does not implement ENUM_FRAMEINTERVALS
  std::vector<Fraction> discrete;
  Fraction min, max, step;
};

struct MenuItem {
  uint32_t index = 0;
  std::string name;  // V4L2_CTRL_TYPE_MENU
  int64_t value = 0;  // V4L2_CTRL_TYPE_INTEGER_MENU
};

struct ControlInfo {
  uint32_t id = 0;
  uint32_t type = 0;  // V4L2_CTRL_TYPE_*
  std::string name;
  int64_t minimum = 0, maximum = 0, step = 0, defaultValue = 0;
  uint32_t flags = 0;  // V4L2_CTRL_FLAG_*
  std::vector<MenuItem> menu;
};

struct PixFormat {
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t pixelFormat = 0;
  uint32_t bytesPerLine = 0;
  uint32_t sizeImage = 0;
  uint32_t field = 0;
  uint32_t colorspace = 0;
};

struct Dequeued {
  uint32_t index = 0;
  uint32_t bytesUsed = 0;
  uint32_t sequence = 0;
  uint32_t flags = 0;  // V4L2_BUF_FLAG_* (ERROR marks a frame the driver knows is corrupt)
  int64_t timestampNs = 0;
};

// One open video capture node. Not copyable; closing (explicitly or by the destructor) stops
// streaming, unmaps every buffer and closes the file descriptors. Only wake() may be called from a
// thread other than the one running dequeue().
class Device {
 public:
  // open(path, O_RDWR | O_NONBLOCK) then VIDIOC_QUERYCAP: a path that opens but is not a V4L2 node
  // (/dev/null, a regular file) fails here, with ERR_V4L2_NOT_V4L2, rather than at the first use.
  explicit Device(std::string path);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const std::string& path() const noexcept { return path_; }
  bool isOpen() const noexcept { return fd_ >= 0; }
  const Capability& capability() const noexcept { return capability_; }

  std::vector<FormatDescription> enumFormats();
  FrameSizes enumFrameSizes(uint32_t pixelFormat);
  FrameIntervals enumFrameIntervals(uint32_t pixelFormat, uint32_t width, uint32_t height);
  // Every control (QUERYCTRL with V4L2_CTRL_FLAG_NEXT_CTRL), menus filled by QUERYMENU. Control
  // class headings are left out.
  std::vector<ControlInfo> queryControls();

  PixFormat getFormat();
  // VIDIOC_S_FMT; returns what the driver actually chose (it may adjust any field).
  PixFormat setFormat(uint32_t pixelFormat, uint32_t width, uint32_t height);
  // nullopt when the driver does not support V4L2_CAP_TIMEPERFRAME.
  std::optional<Fraction> getFrameInterval();
  std::optional<Fraction> setFrameInterval(Fraction interval);
  int32_t getControl(uint32_t id);
  void setControl(uint32_t id, int32_t value);

  // REQBUFS (MMAP) + QUERYBUF + mmap + QBUF for each buffer. Returns the count the driver granted.
  uint32_t requestBuffers(uint32_t count);
  // Unmaps and frees the buffers (REQBUFS 0). Streaming must be off.
  void releaseBuffers();
  // STREAMON; after a streamOff() it first queues every buffer again (STREAMOFF dequeued them all).
  void streamOn();
  void streamOff();
  bool streaming() const noexcept { return streaming_; }
  uint32_t bufferCount() const noexcept { return static_cast<uint32_t>(buffers_.size()); }

  // Waits up to timeoutMs for a filled buffer and dequeues it. nullopt on timeout or wake(). The
  // buffer stays owned by the application until requeue(index).
  std::optional<Dequeued> dequeue(int timeoutMs);
  const uint8_t* bufferData(uint32_t index) const;
  size_t bufferLength(uint32_t index) const;
  void requeue(uint32_t index);

  // Makes a dequeue() in progress on another thread return nullopt promptly.
  void wake() noexcept;

  void close() noexcept;

 private:
  struct Mapping {
    void* start = nullptr;
    size_t length = 0;
  };

  [[noreturn]] void fail(const char* code, const char* syscall, int err, const std::string& detail = "") const;
  void ioctlOrThrow(unsigned long request, const char* name, void* arg) const;
  void requireOpen(const char* what) const;
  void unmapAll() noexcept;

  std::string path_;
  int fd_ = -1;
  int wakeFd_ = -1;  // eventfd polled beside the device so wake() can end a wait
  Capability capability_;
  std::vector<Mapping> buffers_;
  bool streaming_ = false;
  // Every mapped buffer is queued with the driver or with a dequeue() that requeues it (false after
  // STREAMOFF, which hands them all back).
  bool queued_ = false;
};

}  // namespace v4l2
}  // namespace lvunet
