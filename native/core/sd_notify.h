// systemd's notification protocol (sd_notify(3)) without libsystemd: one datagram to the
// AF_UNIX socket named in $NOTIFY_SOCKET. Node cannot send AF_UNIX datagrams itself.
#pragma once

#include <string>

namespace lvunet {

// Sends `state` (e.g. "READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=...") to `socketPath`
// ('@' prefix = abstract namespace). Throws CoreError naming the socket on failure.
void sdNotify(const std::string& socketPath, const std::string& state);

}  // namespace lvunet
