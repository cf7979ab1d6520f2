#include "restore/task_create.h"

#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "sys/proc_parse.h"

namespace cr::restore {

namespace {

// Waits until `tid` has exited (a stop reported late is skipped), or is not ours to wait for.
void reap(pid_t tid) {
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(tid, &st, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st)) return;
  }
}

constexpr int kZombieWaitMs = 5000;

// Whether `pid` exists only as a zombie (exited, waiting for its parent to reap it).
bool held_by_zombie(pid_t pid) {
  auto proc = sys::ProcDir::open(pid);
  if (!proc.ok()) return false;
  auto text = proc->read("stat");
  if (!text.ok()) return false;
  auto st = sys::parse_stat(*text);
  return st.ok() && (st->state == 'Z' || st->state == 'X');
}

}  // namespace

ChildGuard::ChildGuard(ChildGuard&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), threads_(std::move(o.threads_)) {}

ChildGuard& ChildGuard::operator=(ChildGuard&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    pid_ = std::exchange(o.pid_, -1);
    threads_ = std::move(o.threads_);
  }
  return *this;
}

pid_t ChildGuard::release() {
  threads_.clear();
  return std::exchange(pid_, -1);
}

void ChildGuard::kill_and_reap() {
  pid_t pid = std::exchange(pid_, -1);
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  // A thread no longer traced (detached already) is not ours to wait for: ECHILD, move on.
  for (pid_t tid : threads_) reap(tid);
  threads_.clear();
  reap(pid);
}

Result<ChildGuard> clone_with_pid(pid_t pid, const std::function<void()>& child_main,
                                  uint64_t share) {
  if (pid <= 0) return make_error("cannot create pid " + std::to_string(pid));
  pid_t tid = pid;
  clone_args args{};
  args.flags = share & (CLONE_FILES | CLONE_FS);
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 1;
  long r = ::syscall(SYS_clone3, &args, sizeof args);
  // A zombie of the dumped process (killed by crdump) holds its pid until its parent reaps it;
  // when that parent is init, reaping can take a moment. Nothing signals the reap to a stranger,
  // so wait for it a bounded time, and only while the holder is a zombie.
  for (int waited_ms = 0; r < 0 && errno == EEXIST && waited_ms < kZombieWaitMs; waited_ms += 10) {
    if (!held_by_zombie(pid)) break;
    ::usleep(10 * 1000);
    r = ::syscall(SYS_clone3, &args, sizeof args);
  }
  if (r < 0) {
    if (errno == EEXIST) {
      const std::string why = held_by_zombie(pid) ? " (by a zombie its parent has not reaped)" : "";
      return Error{"pid " + std::to_string(pid) + " is in use" + why, EEXIST};
    }
    return errno_error("clone3 with pid " + std::to_string(pid));
  }
  if (r == 0) {
    child_main();
    ::_exit(127);
  }
  if (r != pid) {
    ChildGuard stray(static_cast<pid_t>(r));  // killed on the way out
    return make_error("clone3 gave pid " + std::to_string(r) + " instead of " +
                      std::to_string(pid));
  }
  return ChildGuard(static_cast<pid_t>(r));
}

}  // namespace cr::restore
