// What the end-to-end benchmarks share: running a tool with its stdio redirected, and targets
// forked from the benchmark binary that say "ready" by closing a pipe, then wait in pause().
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace cr::bench {

/// Runs argv (no shell) with stdin from `in_path`, stdout to `out_path` and stderr to
/// `err_path` (nullptr: ours); returns its exit status (128 + signal if killed).
inline int run(const std::vector<std::string>& args, const char* out_path = "/dev/null",
               const char* in_path = "/dev/null", const char* err_path = nullptr) {
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(in_path, O_RDONLY);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0);
    dup2(out, 1);
    if (err_path != nullptr) dup2(open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), 2);
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

/// In a target: stdio on /dev/null, every other fd closed (`keep` last, which tells the
/// benchmark it is ready when every copy is closed), then pause() forever. crdump sees no fd
/// that points outside the target.
[[noreturn]] inline void become_target(int keep = -1) {
  int devnull = open("/dev/null", O_RDWR);
  dup2(devnull, 0);
  dup2(devnull, 1);
  dup2(devnull, 2);
  for (int fd = 3; fd < 1024; ++fd)
    if (fd != keep) close(fd);
  if (keep >= 0) close(keep);
  for (;;) pause();
}

/// Forks a target that runs `setup` and then become_target(); returns once it (and whatever
/// it forked that also closed its fds) is ready.
inline pid_t spawn_target(const std::function<void()>& setup) {
  int ready[2];
  if (pipe(ready) != 0) abort();
  pid_t pid = fork();
  if (pid == 0) {
    setup();
    become_target(ready[1]);
  }
  close(ready[1]);
  char c;
  while (read(ready[0], &c, 1) > 0) {
  }
  close(ready[0]);
  return pid;
}

/// Kills the target, reaps it, and (we are a child subreaper) whatever of its tree has come to
/// us as a zombie.
inline void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

inline double seconds_of(const std::chrono::steady_clock::time_point& t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace cr::bench
