// crdump and crrestore as a function of size in threads and in processes, little memory each.
// Quoted per thread and per process: the cost should be small and linear.
//
//   BM_DumpThreads/N     a process of N threads (1 to 1,000), each parked in pause() on a small
//                        stack: crdump --leave-running to /dev/null; counter freeze_ms is
//                        crdump's own "freeze" pass (seize every thread, read its state)
//   BM_RestoreThreads/N  crrestore -d of such an image (the restored process is then killed)
//   BM_DumpTree/N        a tree of N processes (1, 10, 100, 1000): a root and N-1 children,
//                        each in pause()
//   BM_RestoreTree/N     crrestore -d of such an image
//   BM_DumpMounts/N      a process in a mount namespace of its own (unshare(CLONE_NEWNS), every
//                        mount private) with N bind mounts (10, 100, 1000) of one host directory
//   BM_RestoreMounts/N   crrestore -d of such an image (the namespace rebuilt, N binds made)
//
// Each figure is the median of 5 repetitions, each on a target of its own.
//
// Each target is a forked child of this binary that starts its threads or children, closes
// every fd it got from us, says "ready" by closing a pipe (once every thread runs, every child
// has closed its copy) and waits in pause().
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"

namespace {

using namespace cr::bench;  // NOLINT(google-build-using-namespace)

const std::string kBin = CR_BIN_DIR;

std::atomic<int> g_started{0};

pid_t spawn_threads(int nthreads) {
  return spawn_target([nthreads] {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    for (int i = 1; i < nthreads; ++i) {
      pthread_t t;
      if (pthread_create(&t, &attr, [](void*) -> void* {
            g_started.fetch_add(1);
            for (;;) pause();
          }, nullptr) != 0)
        _exit(3);
    }
    while (g_started.load() < nthreads - 1) sched_yield();
  });
}

// A root with nprocs - 1 children. Each child closes every fd (the ready pipe included), so
// EOF on the pipe means every child has started.
pid_t spawn_tree(int nprocs) {
  return spawn_target([nprocs] {
    for (int i = 1; i < nprocs; ++i) {
      pid_t kid = fork();
      if (kid < 0) _exit(3);
      if (kid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        become_target();
      }
    }
  });
}

// Where the mount benchmarks bind: kMountsDir/src onto kMountsDir/mK, directories of the host
// that stay while a benchmark runs (the restore binds them again).
const std::string kMountsDir = "/tmp/crtools-bench-mounts";

bool make_mount_dirs(int n) {
  ::mkdir(kMountsDir.c_str(), 0755);
  ::mkdir((kMountsDir + "/src").c_str(), 0755);
  for (int k = 0; k < n; ++k) ::mkdir((kMountsDir + "/m" + std::to_string(k)).c_str(), 0755);
  struct stat st {};
  return ::stat((kMountsDir + "/m" + std::to_string(n - 1)).c_str(), &st) == 0;
}

void remove_mount_dirs(int n) {
  for (int k = 0; k < n; ++k) ::rmdir((kMountsDir + "/m" + std::to_string(k)).c_str());
  ::rmdir((kMountsDir + "/src").c_str());
  ::rmdir(kMountsDir.c_str());
}

// A process with a private mount namespace of its own holding `n` binds (exits 3 on failure,
// which the benchmark sees as crdump failing on a gone pid).
pid_t spawn_mounts(int n) {
  return spawn_target([n] {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      _exit(3);
    for (int k = 0; k < n; ++k) {
      const std::string to = kMountsDir + "/m" + std::to_string(k);
      if (::mount((kMountsDir + "/src").c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0)
        _exit(3);
    }
  });
}

// Kills a whole restored tree: the children first (they are not ours until the root dies).
void kill_tree(pid_t root) {
  std::ifstream in("/proc/" + std::to_string(root) + "/task/" + std::to_string(root) + "/children");
  pid_t kid;
  while (in >> kid) kill(kid, SIGKILL);
  kill_and_reap(root);
  // The children come to us as zombies once the root is gone.
  for (int i = 0; i < 5000 && waitpid(-1, nullptr, 0) > 0; ++i) {
  }
}


// The "freeze" pass time from `crdump -v` output, in ms (0 if absent).
double freeze_ms(const char* path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string tool, pass;
    double ms = 0;
    if (ss >> tool >> pass >> ms && tool == "crdump:" && pass == "freeze") return ms;
  }
  return 0;
}

void dump_bench(benchmark::State& state, pid_t pid, const char* counter) {
  const int n = static_cast<int>(state.range(0));
  const char* err = "/tmp/crtools-bench-scale.err";
  double freeze = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    int rc = run({kBin + "/crdump", "-v", "--leave-running", std::to_string(pid)}, "/dev/null",
                 "/dev/null", err);
    state.SetIterationTime(seconds_of(t0));
    if (rc != 0) {
      state.SkipWithError("crdump failed");
      break;
    }
    freeze += freeze_ms(err);
  }
  kill_and_reap(pid);
  unlink(err);
  state.counters["freeze_ms"] = freeze / static_cast<double>(state.iterations());
  state.counters[counter] = n;
}

void restore_bench(benchmark::State& state, pid_t pid, const char* counter) {
  const int n = static_cast<int>(state.range(0));
  const char* img = "/dev/shm/crtools-bench-scale.img";
  if (run({kBin + "/crdump", std::to_string(pid)}, img, "/dev/null") != 0) {
    kill_and_reap(pid);
    state.SkipWithError("crdump failed");
    return;
  }
  kill_and_reap(pid);  // crdump killed it (and its children): free the pids
  // Its children come to us (a subreaper) as zombies: reaped, or the first restore of a tree
  // would find their pids taken.
  while (waitpid(-1, nullptr, 0) > 0) {
  }
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    int rc = run({kBin + "/crrestore", "-d"}, "/dev/null", img);
    state.SetIterationTime(seconds_of(t0));
    if (rc != 0) {
      state.SkipWithError("crrestore failed");
      break;
    }
    kill_tree(pid);  // we are a child subreaper: the restored root is ours to reap
  }
  unlink(img);
  state.counters[counter] = n;
}

// A dump or restore benchmark of a process with `state.range(0)` binds, its directories made
// before and removed after.
void mounts_bench(benchmark::State& state, bool restore) {
  const int n = static_cast<int>(state.range(0));
  if (geteuid() != 0 || !make_mount_dirs(n)) {
    state.SkipWithError("needs root (a mount namespace)");
    return;
  }
  if (restore)
    restore_bench(state, spawn_mounts(n), "mounts");
  else
    dump_bench(state, spawn_mounts(n), "mounts");
  remove_mount_dirs(n);
}
void BM_DumpMounts(benchmark::State& state) { mounts_bench(state, false); }
void BM_RestoreMounts(benchmark::State& state) { mounts_bench(state, true); }

void BM_DumpThreads(benchmark::State& state) {
  dump_bench(state, spawn_threads(static_cast<int>(state.range(0))), "threads");
}
void BM_RestoreThreads(benchmark::State& state) {
  restore_bench(state, spawn_threads(static_cast<int>(state.range(0))), "threads");
}
void BM_DumpTree(benchmark::State& state) {
  dump_bench(state, spawn_tree(static_cast<int>(state.range(0))), "processes");
}
void BM_RestoreTree(benchmark::State& state) {
  restore_bench(state, spawn_tree(static_cast<int>(state.range(0))), "processes");
}

BENCHMARK(BM_DumpThreads)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_RestoreThreads)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_DumpTree)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_DumpMounts)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_RestoreMounts)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_RestoreTree)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
