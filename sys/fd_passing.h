// Handing fds over a unix socket (SCM_RIGHTS): crrestore puts messages with their fds in flight
// back into queues, crdump hands its guardian copies of the sockets it changes.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

namespace cr::sys {

/// sendmsg of `len` bytes at `data` with `fds` as one SCM_RIGHTS message (none: no control),
/// retried on EINTR. Bytes sent, or -1 with errno.
inline ssize_t send_with_fds(int sock, const void* data, size_t len, std::span<const int> fds,
                             int flags) {
  std::vector<char> control(fds.empty() ? 0 : CMSG_SPACE(sizeof(int) * fds.size()));
  iovec iov{const_cast<void*>(data), len};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (!fds.empty()) {
    m.msg_control = control.data();
    m.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &m, flags);
  } while (n < 0 && errno == EINTR);
  return n;
}

}  // namespace cr::sys
