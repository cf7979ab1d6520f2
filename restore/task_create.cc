#include "restore/task_create.h"

#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace cr::restore {

ChildGuard::ChildGuard(ChildGuard&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}

ChildGuard& ChildGuard::operator=(ChildGuard&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    pid_ = std::exchange(o.pid_, -1);
  }
  return *this;
}

pid_t ChildGuard::release() { return std::exchange(pid_, -1); }

void ChildGuard::kill_and_reap() {
  pid_t pid = std::exchange(pid_, -1);
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int st = 0;
  while (::waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {
  }
}

Result<ChildGuard> clone_with_pid(pid_t pid, const std::function<void()>& child_main) {
  if (pid <= 0) return make_error("cannot create pid " + std::to_string(pid));
  pid_t tid = pid;
  clone_args args{};
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 1;
  long r = ::syscall(SYS_clone3, &args, sizeof args);
  if (r < 0) {
    if (errno == EEXIST) return Error{"pid " + std::to_string(pid) + " is in use", EEXIST};
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
