// Image stream throughput: small-record encode/decode, and 1 GiB of page records from a writer
// through a pipe to a reader thread (checksummed, unchecked, zstd), beside a plain memcpy of
// the same 1 GiB so the ratio is measured on the same machine in the same run.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/scoped_fd.h"
#include "format/crc32c.h"
#include "format/record_reader.h"
#include "format/record_writer.h"

namespace {

using namespace cr;
using namespace cr::format;

constexpr size_t kTotal = 1ull << 30;

// The 1 GiB source, touched (every page faulted in and written), shared by all benchmarks.
uint8_t* source() {
  static uint8_t* src = [] {
    auto* p = static_cast<uint8_t*>(
        mmap(nullptr, kTotal, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    for (size_t i = 0; i < kTotal; i += 64) p[i] = static_cast<uint8_t>(i >> 12);
    return p;
  }();
  return src;
}

double g_memcpy_bps = 0;

void BM_Memcpy1GiB(benchmark::State& state) {
  uint8_t* src = source();
  auto* dst = static_cast<uint8_t*>(
      mmap(nullptr, kTotal, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  std::memset(dst, 1, kTotal);  // touched, like the source
  double secs = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    std::memcpy(dst, src, kTotal);
    benchmark::ClobberMemory();
    secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  munmap(dst, kTotal);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kTotal));
  g_memcpy_bps = static_cast<double>(state.iterations() * kTotal) / secs;
  state.counters["GBps"] = g_memcpy_bps / 1e9;
}
BENCHMARK(BM_Memcpy1GiB)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

void BM_Crc32c1GiB(benchmark::State& state) {
  uint8_t* src = source();
  uint32_t c = 0;
  for (auto _ : state) benchmark::DoNotOptimize(c = crc32c(src, kTotal));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kTotal));
}
BENCHMARK(BM_Crc32c1GiB)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// The kernel's ceiling for the pipe runs below: the same 1 GiB in 1 MiB write()s through a pipe
// widened to 1 MiB, to a thread that read()s and discards. No framing, no checksums.
void raw_pipe_pass() {
  uint8_t* src = source();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  ScopedFd rfd(fds[0]), wfd(fds[1]);
  (void)fcntl(wfd.get(), F_SETPIPE_SZ, 1 << 20);
  std::thread reader([&] {
    std::vector<uint8_t> buf(2 << 20);
    while (::read(rfd.get(), buf.data(), buf.size()) > 0) {
    }
  });
  for (size_t off = 0; off < kTotal;) {
    const ssize_t w = ::write(wfd.get(), src + off, std::min<size_t>(1 << 20, kTotal - off));
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  wfd.reset();
  reader.join();
}

void BM_RawPipe1GiB(benchmark::State& state) {
  raw_pipe_pass();  // warm-up, as for the framed runs
  double secs = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    raw_pipe_pass();
    secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double bps = static_cast<double>(state.iterations() * kTotal) / secs;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kTotal));
  state.counters["GBps"] = bps / 1e9;
  if (g_memcpy_bps > 0) {
    state.counters["vs_memcpy"] = bps / g_memcpy_bps;
    std::fprintf(stderr, "raw pipe: %.2f GB/s = %.0f%% of memcpy (%.2f GB/s)\n", bps / 1e9,
                 100 * bps / g_memcpy_bps, g_memcpy_bps / 1e9);
  }
}
BENCHMARK(BM_RawPipe1GiB)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

schema::StreamHeader bench_header() {
  schema::StreamHeader h;
  h.arch = 62;
  h.page_size = 4096;
  return h;
}

// One pass: writer in this thread, reader in another, connected by a pipe; 1 GiB of 1 MiB
// page runs. Returns an error message, empty on success.
std::string one_pipe_pass(int zstd_level, int zstd_threads, bool checksums) {
  uint8_t* src = source();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return "pipe2 failed";
  ScopedFd rfd(fds[0]), wfd(fds[1]);
  std::string read_error;
  uint64_t got = 0;
  std::thread reader([&] {
    ReaderOptions ro;
    ro.verify_checksums = checksums;
    auto r = RecordReader::open(rfd.get(), ro);
    if (!r.ok()) {
      read_error = r.error().message;
      return;
    }
    for (;;) {
      auto more = (*r)->next();
      if (!more.ok()) {
        read_error = more.error().message;
        return;
      }
      if (!*more) break;
      got += (*r)->tail().size();
    }
  });
  WriterOptions wo;
  wo.zstd_level = zstd_level;
  wo.zstd_threads = zstd_threads;
  wo.checksums = checksums;
  Status st;
  {
    auto w = RecordWriter::create(wfd.get(), wo, bench_header());
    if (!w.ok()) {
      st = std::move(w).error();
    } else {
      schema::Pages p;
      p.npages = kPagesPerRecordBytes / 4096;
      for (size_t off = 0; off < kTotal && st.ok(); off += kPagesPerRecordBytes) {
        p.vaddr = off;
        st = (*w)->write(p, {src + off, kPagesPerRecordBytes});
      }
      if (st.ok()) st = (*w)->finish();
    }
  }
  wfd.reset();
  reader.join();
  if (!st.ok()) return st.error().message;
  if (!read_error.empty()) return read_error;
  if (got != kTotal) return "reader got fewer bytes";
  return {};
}

void pages_through_pipe(benchmark::State& state, const char* label, int zstd_level,
                        int zstd_threads, bool checksums) {
  // One unmeasured pass first: the first time a run pushes 1 GiB through pipe pages is much
  // slower on this VM (page allocator and cgroup warm-up), whichever variant runs first.
  std::string err = one_pipe_pass(zstd_level, zstd_threads, checksums);
  if (!err.empty()) return state.SkipWithError(err.c_str());
  double secs = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    err = one_pipe_pass(zstd_level, zstd_threads, checksums);
    if (!err.empty()) return state.SkipWithError(err.c_str());
    secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double bytes = static_cast<double>(state.iterations() * kTotal);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  const double bps = bytes / secs;
  state.counters["GBps"] = bps / 1e9;
  if (g_memcpy_bps > 0) {
    state.counters["vs_memcpy"] = bps / g_memcpy_bps;
    std::fprintf(stderr, "%s: %.2f GB/s = %.0f%% of memcpy (%.2f GB/s)\n", label, bps / 1e9,
                 100 * bps / g_memcpy_bps, g_memcpy_bps / 1e9);
  }
}

void BM_PagesPipeChecksummed(benchmark::State& s) {
  pages_through_pipe(s, "checksummed", 0, 0, true);
}
void BM_PagesPipeNoChecksums(benchmark::State& s) {
  pages_through_pipe(s, "no checksums", 0, 0, false);
}
void BM_PagesPipeZstd1(benchmark::State& s) { pages_through_pipe(s, "zstd 1", 1, 0, true); }
void BM_PagesPipeZstd1Threads2(benchmark::State& s) {
  pages_through_pipe(s, "zstd 1, 2 threads", 1, 2, true);
}
BENCHMARK(BM_PagesPipeChecksummed)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_PagesPipeNoChecksums)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_PagesPipeZstd1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_PagesPipeZstd1Threads2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

schema::Vma typical_vma() {
  schema::Vma v;
  v.pid = 1234;
  v.start = 0x7f12'3456'7000;
  v.end = 0x7f12'3458'9000;
  v.prot = 3;
  v.flags = 2;
  v.kind = schema::kVmaFilePrivate;
  v.path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  v.dev = 0x803;
  v.ino = 1234567;
  v.file_size = 1'922'136;
  v.file_mtime_ns = 1'700'000'000'000'000'000;
  return v;
}

void BM_VmaEncode(benchmark::State& state) {
  const schema::Vma v = typical_vma();
  std::vector<uint8_t> out;
  for (auto _ : state) {
    out.clear();
    encode_fields(v, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VmaEncode);

void BM_VmaDecode(benchmark::State& state) {
  std::vector<uint8_t> buf;
  encode_fields(typical_vma(), buf);
  for (auto _ : state) {
    auto v = decode_fields<schema::Vma>(buf);
    benchmark::DoNotOptimize(v.ok());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VmaDecode);

// Whole path for small records: writer to a memfd, then the reader (checksums, objref walk).
void BM_VmaStreamWriteRead(benchmark::State& state) {
  const schema::Vma v = typical_vma();
  constexpr int kPerStream = 100000;
  for (auto _ : state) {
    ScopedFd fd(memfd_create("bench", MFD_CLOEXEC));
    {
      auto w = RecordWriter::create(fd.get(), {}, bench_header());
      for (int i = 0; i < kPerStream; ++i) (void)(*w)->write(v);
      (void)(*w)->finish();
    }
    lseek(fd.get(), 0, SEEK_SET);
    auto r = RecordReader::open(fd.get());
    int n = 0;
    while (r.ok() && (*r)->next().value()) {
      auto d = (*r)->decode<schema::Vma>();
      n += d.ok();
    }
    if (n != kPerStream) return state.SkipWithError("lost records");
  }
  state.SetItemsProcessed(state.iterations() * kPerStream);
}
BENCHMARK(BM_VmaStreamWriteRead)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
