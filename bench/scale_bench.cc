// crdump and crrestore as a function of size in threads and in processes, little memory each.
// Quoted per thread and per process: the cost should be small and linear.
//
//   BM_DumpThreads/N     a process of N threads (1 to 1,000), each parked in pause() on a small
//                        stack: crdump --leave-running to /dev/null; counter freeze_ms is
//                        crdump's own "freeze" pass (seize every thread, read its state)
//   BM_RestoreThreads/N  crrestore -d of such an image (the restored process is then killed)
//   BM_DumpTree/N        a tree of N processes (1, 10, 100, 500): a root and N-1 children,
//                        each in pause()
//   BM_RestoreTree/N     crrestore -d of such an image
//
// Each target is a forked child of this binary that starts its threads or children, closes
// every fd it got from us, says "ready" by closing a pipe (once every thread runs, every child
// has closed its copy) and waits in pause().
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

const std::string kBin = CR_BIN_DIR;

int run(const std::vector<std::string>& args, const char* out_path, const char* in_path,
        const char* err_path = "/dev/null") {
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(in_path, O_RDONLY);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::atomic<int> g_started{0};

pid_t spawn_threads(int nthreads) {
  int ready[2];
  if (pipe(ready) != 0) abort();
  pid_t pid = fork();
  if (pid == 0) {
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
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != ready[1]) close(fd);
    close(ready[1]);
    for (;;) pause();
  }
  close(ready[1]);
  char c;
  while (read(ready[0], &c, 1) > 0) {
  }
  close(ready[0]);
  return pid;
}

// A root with nprocs - 1 children. Each child closes every fd (the ready pipe included), so
// EOF on the pipe means every child has started.
pid_t spawn_tree(int nprocs) {
  int ready[2];
  if (pipe(ready) != 0) abort();
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 1; i < nprocs; ++i) {
      pid_t kid = fork();
      if (kid < 0) _exit(3);
      if (kid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        for (int fd = 3; fd < 1024; ++fd) close(fd);
        for (;;) pause();
      }
    }
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != ready[1]) close(fd);
    close(ready[1]);
    for (;;) pause();
  }
  close(ready[1]);
  char c;
  while (read(ready[0], &c, 1) > 0) {
  }
  close(ready[0]);
  return pid;
}

// Kills the target and reaps it and (we are a child subreaper) whatever of its tree comes to us.
void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

// Kills a whole restored tree: the children first (they are not ours until the root dies).
void kill_tree(pid_t root) {
  std::ifstream in("/proc/" + std::to_string(root) + "/task/" + std::to_string(root) + "/children");
  pid_t kid;
  while (in >> kid) kill(kid, SIGKILL);
  kill_and_reap(root);
  // The children come to us as zombies once the root is gone.
  for (int i = 0; i < 1000 && waitpid(-1, nullptr, 0) > 0; ++i) {
  }
}

double seconds_of(const std::chrono::steady_clock::time_point& t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
  const char* img = "/tmp/crtools-bench-scale.img";
  if (run({kBin + "/crdump", std::to_string(pid)}, img, "/dev/null") != 0) {
    kill_and_reap(pid);
    state.SkipWithError("crdump failed");
    return;
  }
  kill_and_reap(pid);  // crdump killed it (and its children): free the pids
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
    ->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_RestoreThreads)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_DumpTree)->Arg(1)->Arg(10)->Arg(100)->Arg(500)->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_RestoreTree)->Arg(1)->Arg(10)->Arg(100)->Arg(500)->UseManualTime()
    ->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

int main(int argc, char** argv) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
