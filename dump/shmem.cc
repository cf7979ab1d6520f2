// Shared anonymous memory objects: a Shmem record each, then its contents as ShmemData records,
// read through /proc/PID/map_files of one process that maps it (the shmem file itself: holes
// read as zeros without being allocated, pages in swap come back). Zero pages are left out.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "dump/passes.h"

namespace cr::dump {

namespace {

constexpr size_t kChunk = 1u << 20;  // one read; also the ShmemData record cap
constexpr size_t kPage = 4096;

bool zero_page(const uint8_t* p) {
  static const uint8_t kZero[kPage] = {};
  return std::memcmp(p, kZero, kPage) == 0;
}

Status write_object(format::RecordWriter& out, const ShmemObject& o) {
  CR_TRY(out.write(schema::Shmem{o.id, o.ino, o.size}));
  CR_TRY_ASSIGN(ProcDir proc, ProcDir::open(o.pid));
  const std::string name = map_files_entry(o.start, o.end);
  ScopedFd fd(::openat(proc.fd(), name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid())
    return errno_error("open /proc/" + std::to_string(o.pid) + "/" + name + " (shared memory)");
  std::vector<uint8_t> buf(kChunk);
  for (uint64_t off = 0; off < o.size; off += kChunk) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, o.size - off));
    size_t got = 0;
    while (got < want) {
      ssize_t n = ::pread(fd.get(), buf.data() + got, want - got, static_cast<off_t>(off + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_error("read shared memory of pid " + std::to_string(o.pid));
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    // A file shorter than its last page (a 32-byte semaphore) reads short: the rest is zeros.
    std::memset(buf.data() + got, 0, want - got);
    got = want;
    CR_TRY(for_each_nonzero_run(std::span<const uint8_t>(buf.data(), got),
                                [&](size_t at, std::span<const uint8_t> run) {
                                  return out.write(schema::ShmemData{o.id, off + at}, run);
                                }));
  }
  return {};
}

}  // namespace

Status for_each_nonzero_run(std::span<const uint8_t> buf,
                            const std::function<Status(size_t, std::span<const uint8_t>)>& fn) {
  for (size_t p = 0; p + kPage <= buf.size();) {
    if (zero_page(buf.data() + p)) {
      p += kPage;
      continue;
    }
    size_t e = p + kPage;
    while (e + kPage <= buf.size() && !zero_page(buf.data() + e)) e += kPage;
    CR_TRY(fn(p, buf.subspan(p, e - p)));
    p = e;
  }
  return {};
}

Status write_shmem(DumpTree& tree) {
  for (const ShmemObject& o : tree.shmems) CR_TRY(write_object(tree.procs.front()->out, o));
  return {};
}

}  // namespace cr::dump
