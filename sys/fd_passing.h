// Handing fds over a unix socket (SCM_RIGHTS): crrestore puts messages with their fds in flight
// back into queues, crdump hands its guardian copies of the sockets it changes. Credentials
// (SCM_CREDENTIALS): crrestore puts back messages that carried them, and names a pid to the
// --pidns launcher.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <unistd.h>

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

/// sendmsg of `len` bytes at `data` with `cred` as SCM_CREDENTIALS (the kernel takes a pid,
/// uid and gid other than the sender's own from a privileged sender only, and a pid only of a
/// process that exists), retried on EINTR. Bytes sent, or -1 with errno.
inline ssize_t send_with_creds(int sock, const void* data, size_t len, const ucred& cred,
                               int flags) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))] = {};
  iovec iov{const_cast<void*>(data), len};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_CREDENTIALS;
  c->cmsg_len = CMSG_LEN(sizeof(ucred));
  std::memcpy(CMSG_DATA(c), &cred, sizeof cred);
  ssize_t n;
  do {
    n = ::sendmsg(sock, &m, flags);
  } while (n < 0 && errno == EINTR);
  return n;
}

/// Receives one message of exactly `len` bytes into `buf` and the fd that may come with it
/// (`fd` -1 if none; MSG_CMSG_CLOEXEC). Messages of another size are dropped (their fd closed).
/// False at end of file or on an error.
inline bool recv_fixed_with_fd(int sock, void* buf, size_t len, int& fd) {
  for (;;) {
    fd = -1;
    iovec iov{buf, len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr h{};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = control;
    h.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(sock, &h, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    if (static_cast<size_t>(n) == len) return true;
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace cr::sys
