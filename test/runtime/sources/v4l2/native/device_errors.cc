// Standalone check of native/core/v4l2_device without a camera: the failures a user meets first
// (wrong path, a node that is not a camera) must name the path, the call and the errno.
// Built and run by test/runtime/sources/v4l2/native.test.ts; prints one TAP line per check.
#include <linux/videodev2.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "v4l2_device.h"

namespace {

int failures = 0;
int count = 0;

void check(bool ok, const std::string& what, const std::string& detail = "") {
  ++count;
  std::printf("%s %d - %s%s%s\n", ok ? "ok" : "not ok", count, what.c_str(), detail.empty() ? "" : " # ",
              detail.c_str());
  if (!ok) ++failures;
}

std::string contextOf(const lvunet::CoreError& e, const std::string& key) {
  for (const auto& kv : e.context()) {
    if (kv.first == key) return kv.second;
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Opens `path`, expecting a CoreError; returns it (or a synthetic one when nothing was thrown).
lvunet::CoreError openExpectingError(const std::string& path) {
  try {
    lvunet::v4l2::Device device(path);
  } catch (const lvunet::CoreError& e) {
    return e;
  }
  return lvunet::CoreError("NO_ERROR", "opening '" + path + "' did not throw");
}

}  // namespace

int main() {
  {
    const std::string path = "/dev/lvunet-no-such-video99";
    lvunet::CoreError e = openExpectingError(path);
    const std::string msg = e.what();
    check(e.code() == lvunet::codes::kV4l2Open, "missing device: code ERR_V4L2_OPEN", e.code());
    check(contains(msg, path) && contains(msg, "open") && contains(msg, "ENOENT") &&
              contains(msg, "No such file or directory"),
          "missing device: message names path, call and errno", msg);
    check(contains(msg, "plugged in"), "missing device: message suggests the likely cause", msg);
    check(contextOf(e, "path") == path && contextOf(e, "syscall") == "open" && contextOf(e, "errno") == "ENOENT",
          "missing device: context path/syscall/errno");
  }
  {
    lvunet::CoreError e = openExpectingError("/dev/null");
    const std::string msg = e.what();
    check(e.code() == lvunet::codes::kV4l2NotV4l2, "/dev/null: code ERR_V4L2_NOT_V4L2", e.code());
    check(contains(msg, "'/dev/null' is not a V4L2 device") && contains(msg, "VIDIOC_QUERYCAP") &&
              contains(msg, "ENOTTY"),
          "/dev/null: message names path, ioctl and errno", msg);
    check(contextOf(e, "syscall") == "VIDIOC_QUERYCAP" && contextOf(e, "errno") == "ENOTTY",
          "/dev/null: context syscall/errno");
  }
  {
    char tmpl[] = "/tmp/lvunet-v4l2-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd >= 0) close(fd);
    lvunet::CoreError e = openExpectingError(tmpl);
    unlink(tmpl);
    check(e.code() == lvunet::codes::kV4l2NotV4l2 && contains(e.what(), "not a character device"),
          "regular file: rejected as not a character device", e.what());
  }
  {
    using lvunet::v4l2::fourccFromString;
    using lvunet::v4l2::fourccToString;
    check(fourccFromString("YUYV") == V4L2_PIX_FMT_YUYV && fourccFromString("MJPG") == V4L2_PIX_FMT_MJPEG &&
              fourccFromString("NV12") == V4L2_PIX_FMT_NV12 && fourccFromString("GREY") == V4L2_PIX_FMT_GREY,
          "fourccFromString matches videodev2.h");
    check(fourccToString(V4L2_PIX_FMT_YUYV) == "YUYV" && fourccToString(V4L2_PIX_FMT_Y16) == "Y16" &&
              fourccFromString("Y16") == V4L2_PIX_FMT_Y16,
          "fourcc padding round-trips ('Y16 ')");
    bool threw = false;
    try {
      fourccFromString("TOOLONG");
    } catch (const lvunet::CoreError& e) {
      threw = contains(e.what(), "TOOLONG");
    }
    check(threw, "fourccFromString rejects names longer than 4 characters");
    check(lvunet::v4l2::errnoName(ENODEV) == "ENODEV" && lvunet::v4l2::errnoName(100000) == "errno 100000",
          "errnoName");
  }
  std::printf("1..%d\n", count);
  return failures == 0 ? 0 : 1;
}
