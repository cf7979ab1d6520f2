// End-to-end figures for crdump and crrestore, always beside a memcpy of the same number of
// bytes measured in the same run (the machine is shared and noisy: quote ratios).
//
// The machine's limits for moving 1 GiB (what the tools' rates are quoted against):
//   BM_Memcpy/1024        memcpy of 1 GiB between touched buffers
//   BM_ProcessVmReadv/1024  process_vm_readv of a target's 1 GiB in 1 MiB calls, into one
//                         touched buffer (what crdump's reading can reach)
//   BM_WriteTmpfs/1024    write() of 1 GiB in 1 MiB calls to a new file in /dev/shm (what a
//                         dump to a tmpfs file can reach)
//   BM_ReadFresh/1024     read() of that file into fresh anonymous memory (fault, zero, copy:
//                         the plain restore path); BM_ReadFreshHuge: with MADV_HUGEPAGE
//   BM_UffdCopy/1024      UFFDIO_COPY of 2 MiB chunks into 1 GiB of fresh anonymous memory
// The tools (images on tmpfs, as the CRIU figures of issue 17 were measured):
//   BM_Dump/1024          crdump --leave-running --no-pre-copy of a process with 1 GiB touched anon memory
//   BM_DumpToFile/1024    the same, to a file in /dev/shm
//   BM_Restore/1024       crrestore -d of that image (the restored task is then killed)
//   BM_RestoreWriteMem/1024  the same with CR_RESTORE_UFFD=0 (every page by process_vm_writev)
//   BM_Dump/4, BM_Restore/4: a small process (4 MiB touched)
//   BM_DumpZstd/1024      crdump -z (level 1, its default threads) to /dev/null of 1 GiB of
//                         mixed memory: half of each page random words, half small counters
//
// Each target is a forked child of this binary that touches its memory, closes every fd it got
// from us (so crdump sees no external fd), says "ready" by closing a pipe and waits in pause().
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_util.h"

namespace {

using namespace cr::bench;  // NOLINT(google-build-using-namespace)

const std::string kBin = CR_BIN_DIR;

// A child holding `mib` MiB of touched anonymous memory: distinct non-zero words, or (`mixed`)
// pages whose first half is random words and second half small counters (compressible about
// 2:1, as heaps of pointers, numbers and text are).
pid_t spawn_memory_target(size_t mib, bool mixed = false) {
  return spawn_target([mib, mixed] {
    size_t len = mib << 20;
    auto* p = static_cast<uint64_t*>(
        mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    uint64_t x = 0x243F6A8885A308D3ull;
    for (size_t i = 0; i < len / 8; ++i) {
      if (!mixed) {
        p[i] = i * 0x9E3779B97F4A7C15ull + 1;
      } else if (i % 512 < 256) {
        x ^= x << 13;  // xorshift64
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = x;
      } else {
        p[i] = (i / 512) % 1000 + 1;
      }
    }
  });
}

void BM_Memcpy(benchmark::State& state) {
  size_t len = static_cast<size_t>(state.range(0)) << 20;
  std::vector<char> a(len, 1), b(len, 2);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), len);
    benchmark::DoNotOptimize(b.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
}

void BM_ProcessVmReadv(benchmark::State& state) {
  const size_t len = static_cast<size_t>(state.range(0)) << 20, chunk = 1u << 20;
  // The target's mapping is at the same address in us: it is forked after the mmap.
  auto* p = static_cast<uint64_t*>(
      mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  pid_t pid = spawn_target([p, len] {
    for (size_t i = 0; i < len / 8; ++i) p[i] = i * 0x9E3779B97F4A7C15ull + 1;
  });
  munmap(p, len);
  std::vector<char> buf(chunk, 1);
  for (auto _ : state) {
    for (size_t off = 0; off < len; off += chunk) {
      iovec local{buf.data(), chunk}, remote{reinterpret_cast<char*>(p) + off, chunk};
      if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(chunk)) {
        state.SkipWithError("process_vm_readv");
        break;
      }
    }
  }
  kill_and_reap(pid);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
}

const char* kLimitFile = "/dev/shm/crtools-bench-limit";

// Writes `len` bytes of non-zero data to kLimitFile in 1 MiB calls.
bool write_limit_file(size_t len) {
  std::vector<char> buf(1u << 20, 3);
  int fd = open(kLimitFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  for (size_t off = 0; ok && off < len; off += buf.size())
    ok = write(fd, buf.data(), buf.size()) == static_cast<ssize_t>(buf.size());
  if (fd >= 0) close(fd);
  return ok;
}

void BM_WriteTmpfs(benchmark::State& state) {
  const size_t len = static_cast<size_t>(state.range(0)) << 20;
  for (auto _ : state) {
    if (!write_limit_file(len)) state.SkipWithError("write to /dev/shm");
    state.PauseTiming();
    unlink(kLimitFile);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
}

void read_fresh(benchmark::State& state, bool huge) {
  const size_t len = static_cast<size_t>(state.range(0)) << 20, chunk = 1u << 20;
  if (!write_limit_file(len)) {
    state.SkipWithError("write to /dev/shm");
    return;
  }
  int fd = open(kLimitFile, O_RDONLY | O_CLOEXEC);
  for (auto _ : state) {
    auto* p = static_cast<char*>(
        mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (huge) madvise(p, len, MADV_HUGEPAGE);
    for (size_t off = 0; off < len; off += chunk) {
      if (pread(fd, p + off, chunk, static_cast<off_t>(off)) != static_cast<ssize_t>(chunk)) {
        state.SkipWithError("read");
        break;
      }
    }
    state.PauseTiming();
    munmap(p, len);
    state.ResumeTiming();
  }
  close(fd);
  unlink(kLimitFile);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
}

void BM_ReadFresh(benchmark::State& state) { read_fresh(state, false); }
void BM_ReadFreshHuge(benchmark::State& state) { read_fresh(state, true); }

void dump_bench(benchmark::State& state, const char* out, bool zstd = false) {
  size_t mib = static_cast<size_t>(state.range(0));
  pid_t pid = spawn_memory_target(mib, zstd);
  // The plain dump's rate: --leave-running would pre-copy a tree this big first.
  std::vector<std::string> args = {kBin + "/crdump", "--leave-running", "--no-pre-copy"};
  if (zstd) args.push_back("-z");
  args.push_back(std::to_string(pid));
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    int rc = run(args, out);
    state.SetIterationTime(seconds_of(t0));
    if (rc != 0) {
      state.SkipWithError("crdump failed");
      break;
    }
  }
  kill_and_reap(pid);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (mib << 20)));
}

void BM_Dump(benchmark::State& state) { dump_bench(state, "/dev/null"); }
void BM_DumpZstd(benchmark::State& state) { dump_bench(state, "/dev/null", true); }
void BM_DumpToFile(benchmark::State& state) {
  dump_bench(state, "/dev/shm/crtools-bench.img");
  unlink("/dev/shm/crtools-bench.img");
}

void BM_Restore(benchmark::State& state) {
  size_t mib = static_cast<size_t>(state.range(0));
  const char* img = "/dev/shm/crtools-bench-restore.img";
  pid_t pid = spawn_memory_target(mib);
  if (run({kBin + "/crdump", std::to_string(pid)}, img) != 0) {
    kill_and_reap(pid);
    state.SkipWithError("crdump failed");
    return;
  }
  waitpid(pid, nullptr, 0);  // crdump killed it; free the PID
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    int rc = run({kBin + "/crrestore", "-d"}, "/dev/null", img);
    state.SetIterationTime(seconds_of(t0));
    if (rc != 0) {
      state.SkipWithError("crrestore failed");
      break;
    }
    kill_and_reap(pid);  // we are a child subreaper: the restored task is ours to reap
  }
  unlink(img);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (mib << 20)));
}

void BM_RestoreWriteMem(benchmark::State& state) {
  setenv("CR_RESTORE_UFFD", "0", 1);
  BM_Restore(state);
  unsetenv("CR_RESTORE_UFFD");
}

void BM_UffdCopy(benchmark::State& state) {
  const size_t len = static_cast<size_t>(state.range(0)) << 20, chunk = 2u << 20;
  std::vector<char> src(chunk, 7);
  for (auto _ : state) {
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
    uffdio_api api{};
    api.api = UFFD_API;
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uint64_t>(p);
    reg.range.len = len;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (p == MAP_FAILED || uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0 ||
        ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
      state.SkipWithError("userfaultfd");
      break;
    }
    for (size_t off = 0; off < len; off += chunk) {
      uffdio_copy c{};
      c.dst = reg.range.start + off;
      c.src = reinterpret_cast<uint64_t>(src.data());
      c.len = chunk;
      if (ioctl(uffd, UFFDIO_COPY, &c) != 0) {
        state.SkipWithError("UFFDIO_COPY");
        break;
      }
    }
    state.PauseTiming();
    close(uffd);
    munmap(p, len);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
}

BENCHMARK(BM_Memcpy)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_ProcessVmReadv)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_WriteTmpfs)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_ReadFresh)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_ReadFreshHuge)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Dump)->Arg(1024)->Arg(4)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_DumpZstd)->Arg(1024)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(BM_DumpToFile)->Arg(1024)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(BM_Restore)->Arg(1024)->Arg(4)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_RestoreWriteMem)->Arg(1024)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_UffdCopy)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
