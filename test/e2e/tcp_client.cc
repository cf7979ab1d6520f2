#include "tcp_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "harness.h"

namespace cr::e2e {

ScopedFd connect_tcp(uint16_t port) {
  ScopedFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!s.valid() || ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
  return s;
}

ScopedFd connect_tcp_when_listening(uint16_t port, int tries) {
  ScopedFd c;
  for (int i = 0; i < tries && !c.valid(); ++i) {
    c = connect_tcp(port);
    if (!c.valid()) ::poll(nullptr, 0, 10);
  }
  return c;
}

bool send_all(int s, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(s, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string recv_n(int s, size_t n, std::string* error) {
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

std::string http_get(int s, const std::string& path) {
  if (!send_all(s, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"))
    return "send failed";
  std::string head, err;
  while (head.find("\r\n\r\n") == std::string::npos) {
    std::string b = recv_n(s, 1, &err);
    if (b.empty()) return "no response: " + err + " after '" + head + "'";
    head += b;
  }
  if (!head.starts_with("HTTP/1.1 200 ")) return "not 200: " + head;
  auto at = head.find("Content-Length: ");
  if (at == std::string::npos) return "no length in " + head;
  const size_t len = std::stoul(head.substr(at + 16));
  std::string body = recv_n(s, len, &err);
  return body.size() == len ? body : "short body (" + err + "): " + body;
}

uint16_t free_port() {
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

bool nft_present() { return access("/usr/sbin/nft", X_OK) == 0; }

std::string command_output(const std::string& cmd) {
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return "?";
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, f)) out += buf;
  ::pclose(f);
  return out;
}

std::string lock_of(const std::string& img) {
  std::string t = command_output(tool_path("crit") + " show " + img +
                                 " 2>/dev/null | grep -o 'crtools_lock_[0-9_]*' | head -1");
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t;
}

bool lock_present(const std::string& table) {
  return !table.empty() &&
         command_output("nft list table inet " + table + " >/dev/null 2>&1 && echo yes") == "yes\n";
}

}  // namespace cr::e2e
