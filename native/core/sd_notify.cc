#include "sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"

namespace lvunet {

void sdNotify(const std::string& socketPath, const std::string& state) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socketPath.empty() || socketPath.size() >= sizeof(addr.sun_path)) {
    throw CoreError("ERR_INVALID_ARGUMENT", "NOTIFY_SOCKET path is empty or too long: '" + socketPath + "'");
  }
  std::memcpy(addr.sun_path, socketPath.data(), socketPath.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socketPath.size());

  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw CoreError("ERR_NATIVE", std::string("socket(AF_UNIX) failed: ") + std::strerror(errno));
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  ::close(fd);
  if (sent < 0) {
    throw CoreError("ERR_NATIVE", "sd_notify to '" + socketPath + "' failed: " + std::strerror(err));
  }
}

}  // namespace lvunet
