#include "v4l2_device.h"

#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lvunet {
namespace v4l2 {

namespace {

// Retries on EINTR: a signal delivered to the process (Node uses several) must not look like a
// device failure.
int xioctl(int fd, unsigned long request, void* arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r == -1 && errno == EINTR);
  return r;
}

// Kernel strings are fixed-size arrays that are not always NUL-terminated.
template <size_t N>
std::string fixedString(const uint8_t (&bytes)[N]) {
  const char* p = reinterpret_cast<const char*>(bytes);
  return std::string(p, strnlen(p, N));
}

int64_t monotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

EnumKind kindOf(uint32_t v4l2Type) {
  switch (v4l2Type) {
    case V4L2_FRMSIZE_TYPE_DISCRETE: return EnumKind::Discrete;
    case V4L2_FRMSIZE_TYPE_STEPWISE: return EnumKind::Stepwise;
    case V4L2_FRMSIZE_TYPE_CONTINUOUS: return EnumKind::Continuous;
    default: return EnumKind::None;
  }
}
static_assert(static_cast<int>(V4L2_FRMSIZE_TYPE_DISCRETE) == static_cast<int>(V4L2_FRMIVAL_TYPE_DISCRETE) &&
                  static_cast<int>(V4L2_FRMSIZE_TYPE_STEPWISE) == static_cast<int>(V4L2_FRMIVAL_TYPE_STEPWISE) &&
                  static_cast<int>(V4L2_FRMSIZE_TYPE_CONTINUOUS) == static_cast<int>(V4L2_FRMIVAL_TYPE_CONTINUOUS),
              "kindOf() maps frame size and frame interval types with one table");

}  // namespace

std::string fourccToString(uint32_t fourcc) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>((fourcc >> (8 * i)) & 0xff);
    s.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

uint32_t fourccFromString(const std::string& name) {
  if (name.empty() || name.size() > 4) {
    throw CoreError(codes::kInvalidArgument, "a fourcc has 1 to 4 characters, got '" + name + "'",
                    {{"fourcc", name}});
  }
  std::string padded = name;
  padded.resize(4, ' ');
  return v4l2_fourcc(padded[0], padded[1], padded[2], padded[3]);
}

std::string errnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOTTY: return "ENOTTY";
    case ENOSPC: return "ENOSPC";
    case EPIPE: return "EPIPE";
    case ERANGE: return "ERANGE";
    case ENOSYS: return "ENOSYS";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EOVERFLOW: return "EOVERFLOW";
    case ENOLINK: return "ENOLINK";
    default: return "errno " + std::to_string(err);
  }
}

// ---------------------------------------------------------------------------------------------

Device::Device(std::string path) : path_(std::move(path)) {
  // O_NONBLOCK: DQBUF must never sleep inside the kernel; waiting is done by poll() with a timeout
  // so a stalled camera cannot hang a worker thread forever.
  fd_ = ::open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    std::string hint;
    if (err == ENOENT) hint = " (no such device node: is the camera plugged in? see `ls /dev/video*`)";
    if (err == EACCES) hint = " (permission denied: add the service user to the 'video' group)";
    if (err == EBUSY) hint = " (another process holds the camera)";
    fail(codes::kV4l2Open, "open", err, hint);
  }
  try {
    struct stat st {};
    if (::fstat(fd_, &st) == -1) fail(codes::kV4l2Open, "fstat", errno);
    if (!S_ISCHR(st.st_mode)) {
      throw CoreError(codes::kV4l2NotV4l2, "'" + path_ + "' is not a V4L2 device: not a character device",
                      {{"path", path_}, {"syscall", "fstat"}});
    }
    v4l2_capability cap{};
    if (xioctl(fd_, VIDIOC_QUERYCAP, &cap) == -1) {
      const int err = errno;
      if (err == ENOTTY || err == EINVAL) {
        throw CoreError(codes::kV4l2NotV4l2,
                        "'" + path_ + "' is not a V4L2 device: VIDIOC_QUERYCAP failed: " + std::strerror(err) + " (" +
                            errnoName(err) + ")",
                        {{"path", path_}, {"syscall", "VIDIOC_QUERYCAP"}, {"errno", errnoName(err)}});
      }
      fail(codes::kV4l2Ioctl, "VIDIOC_QUERYCAP", err);
    }
    capability_.driver = fixedString(cap.driver);
    capability_.card = fixedString(cap.card);
    capability_.busInfo = fixedString(cap.bus_info);
    capability_.version = cap.version;
    capability_.capabilities = cap.capabilities;
    capability_.deviceCaps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;

    wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd_ < 0) fail(codes::kV4l2Open, "eventfd", errno);
  } catch (...) {
    close();  // the destructor does not run for a constructor that throws
    throw;
  }
}

Device::~Device() { close(); }

void Device::fail(const char* code, const char* syscall, int err, const std::string& detail) const {
  throw CoreError(code,
                  std::string(syscall) + " on '" + path_ + "' failed: " + std::strerror(err) + " (" + errnoName(err) +
                      ")" + detail,
                  {{"path", path_}, {"syscall", syscall}, {"errno", errnoName(err)}});
}

void Device::ioctlOrThrow(unsigned long request, const char* name, void* arg) const {
  if (xioctl(fd_, request, arg) == -1) fail(codes::kV4l2Ioctl, name, errno);
}

void Device::requireOpen(const char* what) const {
  if (fd_ < 0) {
    throw CoreError(codes::kV4l2State, std::string(what) + " on '" + path_ + "': the device has been closed",
                    {{"path", path_}, {"syscall", what}});
  }
}

std::vector<FormatDescription> Device::enumFormats() {
  requireOpen("VIDIOC_ENUM_FMT");
  std::vector<FormatDescription> out;
  for (uint32_t index = 0;; ++index) {
    v4l2_fmtdesc desc{};
    desc.index = index;
    desc.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(fd_, VIDIOC_ENUM_FMT, &desc) == -1) {
      if (errno == EINVAL) break;  // end of the list
      fail(codes::kV4l2Ioctl, "VIDIOC_ENUM_FMT", errno);
    }
    out.push_back({desc.pixelformat, fixedString(desc.description), desc.flags});
  }
  return out;
}

FrameSizes Device::enumFrameSizes(uint32_t pixelFormat) {
  requireOpen("VIDIOC_ENUM_FRAMESIZES");
  FrameSizes out;
  for (uint32_t index = 0;; ++index) {
    v4l2_frmsizeenum e{};
    e.index = index;
    e.pixel_format = pixelFormat;
    if (xioctl(fd_, VIDIOC_ENUM_FRAMESIZES, &e) == -1) {
      // EINVAL ends the list; at index 0 it (or ENOTTY) means the driver does not enumerate sizes.
      if (errno == EINVAL || (index == 0 && errno == ENOTTY)) break;
      fail(codes::kV4l2Ioctl, "VIDIOC_ENUM_FRAMESIZES", errno);
    }
    out.kind = kindOf(e.type);
    if (e.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
      out.discrete.push_back({e.discrete.width, e.discrete.height});
      continue;
    }
    out.minWidth = e.stepwise.min_width;
    out.maxWidth = e.stepwise.max_width;
    out.stepWidth = e.stepwise.step_width;
    out.minHeight = e.stepwise.min_height;
    out.maxHeight = e.stepwise.max_height;
    out.stepHeight = e.stepwise.step_height;
    break;  // a stepwise or continuous range is the only entry
  }
  return out;
}

FrameIntervals Device::enumFrameIntervals(uint32_t pixelFormat, uint32_t width, uint32_t height) {
  requireOpen("VIDIOC_ENUM_FRAMEINTERVALS");
  FrameIntervals out;
  for (uint32_t index = 0;; ++index) {
    v4l2_frmivalenum e{};
    e.index = index;
    e.pixel_format = pixelFormat;
    e.width = width;
    e.height = height;
    if (xioctl(fd_, VIDIOC_ENUM_FRAMEINTERVALS, &e) == -1) {
      if (errno == EINVAL || (index == 0 && errno == ENOTTY)) break;
      fail(codes::kV4l2Ioctl, "VIDIOC_ENUM_FRAMEINTERVALS", errno);
    }
    out.kind = kindOf(e.type);
    if (e.type == V4L2_FRMIVAL_TYPE_DISCRETE) {
      out.discrete.push_back({e.discrete.numerator, e.discrete.denominator});
      continue;
    }
    out.min = {e.stepwise.min.numerator, e.stepwise.min.denominator};
    out.max = {e.stepwise.max.numerator, e.stepwise.max.denominator};
    out.step = {e.stepwise.step.numerator, e.stepwise.step.denominator};
    break;
  }
  return out;
}

std::vector<ControlInfo> Device::queryControls() {
  requireOpen("VIDIOC_QUERYCTRL");
  std::vector<v4l2_queryctrl> raw;
  v4l2_queryctrl q{};
  q.id = V4L2_CTRL_FLAG_NEXT_CTRL;
  while (xioctl(fd_, VIDIOC_QUERYCTRL, &q) == 0) {
    raw.push_back(q);
    q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
  }
  if (errno != EINVAL) fail(codes::kV4l2Ioctl, "VIDIOC_QUERYCTRL", errno);
  if (raw.empty()) {
    // Drivers older than NEXT_CTRL (kernel < 2.6.18 style) only answer fixed ids: walk the user
    // class and the legacy private range instead.
    for (uint32_t id = V4L2_CID_BASE; id < V4L2_CID_LASTP1; ++id) {
      v4l2_queryctrl p{};
      p.id = id;
      if (xioctl(fd_, VIDIOC_QUERYCTRL, &p) == 0) raw.push_back(p);
    }
    for (uint32_t id = V4L2_CID_PRIVATE_BASE;; ++id) {
      v4l2_queryctrl p{};
      p.id = id;
      if (xioctl(fd_, VIDIOC_QUERYCTRL, &p) == -1) break;
      raw.push_back(p);
    }
  }

  std::vector<ControlInfo> out;
  for (const v4l2_queryctrl& c : raw) {
    if (c.type == V4L2_CTRL_TYPE_CTRL_CLASS) continue;  // a heading, not a control
    ControlInfo info;
    info.id = c.id;
    info.type = c.type;
    info.name = fixedString(c.name);
    info.minimum = c.minimum;
    info.maximum = c.maximum;
    info.step = c.step;
    info.defaultValue = c.default_value;
    info.flags = c.flags;
    if (c.type == V4L2_CTRL_TYPE_MENU || c.type == V4L2_CTRL_TYPE_INTEGER_MENU) {
      for (int64_t i = c.minimum; i <= c.maximum && i >= 0; ++i) {
        v4l2_querymenu m{};
        m.id = c.id;
        m.index = static_cast<uint32_t>(i);
        // Menus may have holes (EINVAL for an index the driver skips).
        if (xioctl(fd_, VIDIOC_QUERYMENU, &m) == -1) continue;
        MenuItem item;
        item.index = m.index;
        if (c.type == V4L2_CTRL_TYPE_MENU) {
          item.name = fixedString(m.name);
        } else {
          item.value = m.value;
          item.name = std::to_string(m.value);
        }
        info.menu.push_back(std::move(item));
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

namespace {
PixFormat fromV4l2(const v4l2_format& f) {
  PixFormat p;
  p.width = f.fmt.pix.width;
  p.height = f.fmt.pix.height;
  p.pixelFormat = f.fmt.pix.pixelformat;
  p.bytesPerLine = f.fmt.pix.bytesperline;
  p.sizeImage = f.fmt.pix.sizeimage;
  p.field = f.fmt.pix.field;
  p.colorspace = f.fmt.pix.colorspace;
  return p;
}
}  // namespace

PixFormat Device::getFormat() {
  requireOpen("VIDIOC_G_FMT");
  v4l2_format f{};
  f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  ioctlOrThrow(VIDIOC_G_FMT, "VIDIOC_G_FMT", &f);
  return fromV4l2(f);
}

PixFormat Device::setFormat(uint32_t pixelFormat, uint32_t width, uint32_t height) {
  requireOpen("VIDIOC_S_FMT");
  v4l2_format f{};
  f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  f.fmt.pix.pixelformat = pixelFormat;
  f.fmt.pix.width = width;
  f.fmt.pix.height = height;
  f.fmt.pix.field = V4L2_FIELD_ANY;
  ioctlOrThrow(VIDIOC_S_FMT, "VIDIOC_S_FMT", &f);
  return fromV4l2(f);
}

std::optional<Fraction> Device::getFrameInterval() {
  requireOpen("VIDIOC_G_PARM");
  v4l2_streamparm p{};
  p.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  if (xioctl(fd_, VIDIOC_G_PARM, &p) == -1) {
    if (errno == EINVAL || errno == ENOTTY) return std::nullopt;
    fail(codes::kV4l2Ioctl, "VIDIOC_G_PARM", errno);
  }
  if (!(p.parm.capture.capability & V4L2_CAP_TIMEPERFRAME)) return std::nullopt;
  return Fraction{p.parm.capture.timeperframe.numerator, p.parm.capture.timeperframe.denominator};
}

std::optional<Fraction> Device::setFrameInterval(Fraction interval) {
  requireOpen("VIDIOC_S_PARM");
  v4l2_streamparm p{};
  p.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  p.parm.capture.timeperframe.numerator = interval.numerator;
  p.parm.capture.timeperframe.denominator = interval.denominator;
  if (xioctl(fd_, VIDIOC_S_PARM, &p) == -1) {
    if (errno == EINVAL || errno == ENOTTY) return std::nullopt;
    fail(codes::kV4l2Ioctl, "VIDIOC_S_PARM", errno);
  }
  if (!(p.parm.capture.capability & V4L2_CAP_TIMEPERFRAME)) return std::nullopt;
  return Fraction{p.parm.capture.timeperframe.numerator, p.parm.capture.timeperframe.denominator};
}

int32_t Device::getControl(uint32_t id) {
  requireOpen("VIDIOC_G_CTRL");
  v4l2_control c{};
  c.id = id;
  if (xioctl(fd_, VIDIOC_G_CTRL, &c) == -1) fail(codes::kV4l2Ioctl, "VIDIOC_G_CTRL", errno, " (control id " + std::to_string(id) + ")");
  return c.value;
}

void Device::setControl(uint32_t id, int32_t value) {
  requireOpen("VIDIOC_S_CTRL");
  v4l2_control c{};
  c.id = id;
  c.value = value;
  if (xioctl(fd_, VIDIOC_S_CTRL, &c) == -1) {
    fail(codes::kV4l2Ioctl, "VIDIOC_S_CTRL", errno,
         " (control id " + std::to_string(id) + ", value " + std::to_string(value) + ")");
  }
}

uint32_t Device::requestBuffers(uint32_t count) {
  requireOpen("VIDIOC_REQBUFS");
  if (!buffers_.empty()) {
    throw CoreError(codes::kV4l2State, "VIDIOC_REQBUFS on '" + path_ + "': buffers are already mapped",
                    {{"path", path_}, {"syscall", "VIDIOC_REQBUFS"}});
  }
  v4l2_requestbuffers req{};
  req.count = count;
  req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  req.memory = V4L2_MEMORY_MMAP;
  ioctlOrThrow(VIDIOC_REQBUFS, "VIDIOC_REQBUFS", &req);
  if (req.count == 0) fail(codes::kV4l2Ioctl, "VIDIOC_REQBUFS", ENOMEM, " (the driver granted no buffers)");
  try {
    for (uint32_t i = 0; i < req.count; ++i) {
      v4l2_buffer buf{};
      buf.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
      buf.memory = V4L2_MEMORY_MMAP;
      buf.index = i;
      ioctlOrThrow(VIDIOC_QUERYBUF, "VIDIOC_QUERYBUF", &buf);
      void* start = ::mmap(nullptr, buf.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, buf.m.offset);
      if (start == MAP_FAILED) fail(codes::kV4l2Mmap, "mmap", errno, " (buffer " + std::to_string(i) + ")");
      buffers_.push_back({start, buf.length});
    }
    for (uint32_t i = 0; i < req.count; ++i) requeue(i);
    queued_ = true;
  } catch (...) {
    unmapAll();
    v4l2_requestbuffers none{};
    none.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    none.memory = V4L2_MEMORY_MMAP;
    xioctl(fd_, VIDIOC_REQBUFS, &none);  // best effort: the original error is the one to report
    throw;
  }
  return req.count;
}

void Device::releaseBuffers() {
  requireOpen("VIDIOC_REQBUFS");
  if (streaming_) {
    throw CoreError(codes::kV4l2State, "VIDIOC_REQBUFS 0 on '" + path_ + "': stop streaming first",
                    {{"path", path_}, {"syscall", "VIDIOC_REQBUFS"}});
  }
  unmapAll();
  queued_ = false;
  v4l2_requestbuffers req{};
  req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  req.memory = V4L2_MEMORY_MMAP;
  if (xioctl(fd_, VIDIOC_REQBUFS, &req) == -1 && errno != ENODEV) fail(codes::kV4l2Ioctl, "VIDIOC_REQBUFS", errno);
}

void Device::streamOn() {
  requireOpen("VIDIOC_STREAMON");
  // STREAMOFF hands every buffer back to the application; streaming again without queueing them
  // leaves the driver nothing to fill (vb2 then answers poll with POLLERR, found with vivid).
  if (!queued_) {
    for (uint32_t i = 0; i < buffers_.size(); ++i) requeue(i);
    queued_ = !buffers_.empty();
  }
  int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  ioctlOrThrow(VIDIOC_STREAMON, "VIDIOC_STREAMON", &type);
  streaming_ = true;
}

void Device::streamOff() {
  requireOpen("VIDIOC_STREAMOFF");
  int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  // The queue is stopped whatever the outcome (an unplugged device answers ENODEV), so the flags
  // are cleared before the call can throw. STREAMOFF also dequeues every buffer: streamOn() queues
  // them again.
  streaming_ = false;
  queued_ = false;
  ioctlOrThrow(VIDIOC_STREAMOFF, "VIDIOC_STREAMOFF", &type);
}

std::optional<Dequeued> Device::dequeue(int timeoutMs) {
  requireOpen("VIDIOC_DQBUF");
  if (!streaming_) {
    throw CoreError(codes::kV4l2State, "VIDIOC_DQBUF on '" + path_ + "': not streaming",
                    {{"path", path_}, {"syscall", "VIDIOC_DQBUF"}});
  }
  const int64_t deadline = monotonicMs() + (timeoutMs < 0 ? 0 : timeoutMs);
  for (;;) {
    const int64_t left = deadline - monotonicMs();
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    const int r = ::poll(fds, 2, left > 0 ? static_cast<int>(left) : 0);
    if (r == -1) {
      if (errno == EINTR) continue;
      fail(codes::kV4l2Poll, "poll", errno);
    }
    if (r == 0) return std::nullopt;
    if (fds[1].revents & POLLIN) {
      uint64_t drained = 0;
      ssize_t ignored = ::read(wakeFd_, &drained, sizeof drained);
      (void)ignored;
      return std::nullopt;
    }
    if (fds[0].revents & POLLNVAL) fail(codes::kV4l2Poll, "poll", EBADF);
    if (!(fds[0].revents & (POLLIN | POLLERR | POLLHUP))) continue;

    v4l2_buffer buf{};
    buf.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    buf.memory = V4L2_MEMORY_MMAP;
    if (xioctl(fd_, VIDIOC_DQBUF, &buf) == -1) {
      const int err = errno;
      if (err == EAGAIN) {
        // POLLERR with nothing to dequeue would spin until the deadline; report it instead.
        if (fds[0].revents & (POLLERR | POLLHUP)) fail(codes::kV4l2Poll, "poll", EIO, " (POLLERR with no buffer ready)");
        continue;
      }
      fail(codes::kV4l2Ioctl, "VIDIOC_DQBUF", err);
    }
    if (buf.index >= buffers_.size()) {
      throw CoreError(codes::kV4l2State,
                      "VIDIOC_DQBUF on '" + path_ + "' returned buffer " + std::to_string(buf.index) + " of " +
                          std::to_string(buffers_.size()),
                      {{"path", path_}, {"syscall", "VIDIOC_DQBUF"}});
    }
    Dequeued d;
    d.index = buf.index;
    d.bytesUsed = buf.bytesused;
    d.sequence = buf.sequence;
    d.flags = buf.flags;
    d.timestampNs = static_cast<int64_t>(buf.timestamp.tv_sec) * 1000000000LL +
                    static_cast<int64_t>(buf.timestamp.tv_usec) * 1000LL;
    return d;
  }
}

const uint8_t* Device::bufferData(uint32_t index) const {
  if (index >= buffers_.size()) return nullptr;
  return static_cast<const uint8_t*>(buffers_[index].start);
}

size_t Device::bufferLength(uint32_t index) const {
  return index < buffers_.size() ? buffers_[index].length : 0;
}

void Device::requeue(uint32_t index) {
  requireOpen("VIDIOC_QBUF");
  v4l2_buffer buf{};
  buf.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  buf.memory = V4L2_MEMORY_MMAP;
  buf.index = index;
  ioctlOrThrow(VIDIOC_QBUF, "VIDIOC_QBUF", &buf);
}

void Device::wake() noexcept {
  if (wakeFd_ < 0) return;
  const uint64_t one = 1;
  ssize_t ignored = ::write(wakeFd_, &one, sizeof one);
  (void)ignored;
}

void Device::unmapAll() noexcept {
  for (const Mapping& m : buffers_) ::munmap(m.start, m.length);
  buffers_.clear();
}

void Device::close() noexcept {
  if (fd_ >= 0 && streaming_) {
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    xioctl(fd_, VIDIOC_STREAMOFF, &type);
    streaming_ = false;
  }
  unmapAll();
  queued_ = false;
  if (fd_ >= 0) ::close(fd_);
  if (wakeFd_ >= 0) ::close(wakeFd_);
  fd_ = -1;
  wakeFd_ = -1;
}

}  // namespace v4l2
}  // namespace lvunet
