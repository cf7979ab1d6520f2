// This test process as a TCP client of a server under test (network and real-server tests).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/scoped_fd.h"

namespace cr::e2e {

inline ScopedFd connect_tcp(uint16_t port) {
  ScopedFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!s.valid() || ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
  return s;
}

inline bool send_all(int s, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(s, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until `n` bytes came, the peer closed or reset, or a generous guard ran out (a hang
// is reported as a failure, not waited for).
inline std::string recv_n(int s, size_t n, std::string* error = nullptr) {
  std::string out;
  while (out.size() < n) {
    pollfd p{s, POLLIN, 0};
    int r = ::poll(&p, 1, 30000);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (error) *error = "no answer within 30 s";
      break;
    }
    char buf[4096];
    ssize_t got = ::recv(s, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      if (error) *error = got == 0 ? "connection closed" : std::string("recv: ") + strerror(errno);
      break;
    }
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

// A port nobody uses now (bound to 0, then released).
inline uint16_t free_port() {
  ScopedFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return 0;
  return ntohs(a.sin_port);
}

/// Connects to `port` once the server accepts: polled up to about 10 s (the condition is
/// checked again each time, nothing waits a fixed time for it).
inline ScopedFd connect_when_listening(uint16_t port) {
  ScopedFd c;
  for (int i = 0; i < 1000 && !c.valid(); ++i) {
    c = connect_tcp(port);
    if (!c.valid()) ::poll(nullptr, 0, 10);
  }
  return c;
}

}  // namespace cr::e2e
