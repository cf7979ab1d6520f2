// Small formatting helpers shared by every layer (error messages, crit output).
#pragma once

#include <arpa/inet.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

namespace cr {

/// "0x7f1200000000": how addresses appear in messages.
inline std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

/// A unix socket name for messages: an abstract name's NUL bytes as '@', as ss(8) shows them;
/// other control bytes as '?'.
inline std::string socket_name_text(std::string_view name) {
  std::string s(name);
  for (char& c : s)
    if (c == '\0')
      c = '@';
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      c = '?';
  return s;
}

/// "127.0.0.1:8080", "[::1]:8080": an internet address (4 or 16 bytes) and port for messages.
inline std::string inet_endpoint_text(std::span<const uint8_t> addr, uint32_t port) {
  char buf[64] = "?";
  if (addr.size() == 4)
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", addr[0], addr[1], addr[2], addr[3]);
  else if (addr.size() == 16)
    ::inet_ntop(AF_INET6, addr.data(), buf, sizeof buf);
  std::string a = addr.size() == 16 ? "[" + std::string(buf) + "]" : std::string(buf);
  return a + ":" + std::to_string(port);
}

/// "fd 7": how an fd is named in messages.
inline std::string fd_name(int fd) { return "fd " + std::to_string(fd); }

/// A file's mtime in nanoseconds, as Vma.file_mtime_ns and File.mtime_ns record it. crdump
/// writes it and crrestore compares it, so both sides must use this one definition.
inline uint64_t mtime_ns(const struct stat& st) {
  return static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
         static_cast<uint64_t>(st.st_mtim.tv_nsec);
}

}  // namespace cr
