// Reads that must come back whole.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/text.h"

namespace cr {

/// Reads `len` bytes at `off` from `fd` into `buf`, retrying short reads and EINTR; an early
/// end of file is EIO. `what` names the file in the error (the offset where it stopped is added).
inline Status pread_full(int fd, void* buf, size_t len, uint64_t off, std::string_view what) {
  auto* dst = static_cast<uint8_t*>(buf);
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::pread(fd, dst + got, len - got, static_cast<off_t>(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error(std::string(what) + " at " + hex(off + got), n == 0 ? EIO : errno);
    got += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace cr
