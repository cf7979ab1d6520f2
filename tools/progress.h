// A progress line on stderr for crdump, crrestore and crconvert: shown only when stderr is a
// terminal, updated every 64 MiB (so small images print nothing), ended by finish(). Each tool
// counts what it moves (page bytes, or stream bytes for crconvert); where the input is a file,
// how far into it the tool has read gives a share and an estimate of the time left.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace cr::tools {

class Progress {
 public:
  /// `input`: the fd the tool reads its image from (-1: none); a regular file's offset against
  /// its size is the share done.
  explicit Progress(const char* tool, int input = -1) : tool_(tool), on_(::isatty(2) == 1) {
    struct stat st {};
    if (input >= 0 && ::fstat(input, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      input_ = input;
      size_ = static_cast<uint64_t>(st.st_size);
    }
  }

  /// `what`: "of pages", "of stream".
  void update(uint64_t bytes, const char* what = "of pages") {
    if (!on_ || bytes < next_) return;
    next_ = bytes + kStep;
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\r%s: %llu MiB %s, %.2f GB/s", tool_,
                 static_cast<unsigned long long>(bytes >> 20), what,
                 s > 0 ? bytes / s / 1e9 : 0.0);
    const off_t at = input_ >= 0 ? ::lseek(input_, 0, SEEK_CUR) : -1;
    if (at > 0 && static_cast<uint64_t>(at) <= size_) {
      const double share = static_cast<double>(at) / static_cast<double>(size_);
      std::fprintf(stderr, ", %3.0f%% of the image, %.0f s left", share * 100,
                   share > 0 ? s / share - s : 0.0);
    }
    std::fputs("   ", stderr);  // over what a longer line before left
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
  int input_ = -1;
  uint64_t size_ = 0;
  uint64_t next_ = kStep;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace cr::tools
