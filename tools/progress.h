// A progress line on stderr for crdump and crrestore: shown only when stderr is a terminal,
// updated every 64 MiB of page data (so small images print nothing), ended by finish().
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace cr::tools {

class Progress {
 public:
  explicit Progress(const char* tool) : tool_(tool), on_(::isatty(2) == 1) {}

  void update(uint64_t bytes) {
    if (!on_ || bytes < next_) return;
    next_ = bytes + kStep;
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\r%s: %llu MiB of pages, %.2f GB/s", tool_,
                 static_cast<unsigned long long>(bytes >> 20), s > 0 ? bytes / s / 1e9 : 0.0);
    shown_ = true;
  }
  void finish() {
    if (shown_) std::fputc('\n', stderr);
    shown_ = false;
  }

 private:
  static constexpr uint64_t kStep = 64ull << 20;
  const char* tool_;
  bool on_;
  bool shown_ = false;
  uint64_t next_ = kStep;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace cr::tools
