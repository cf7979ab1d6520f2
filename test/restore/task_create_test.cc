#include "restore/task_create.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace cr::restore {
namespace {

bool pid_exists(pid_t pid) {
  struct stat st {};
  return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

TEST(CloneWithPid, GivesTheAskedPid) {
  // Try a few free pids high in the range: another process may take one between our look and
  // the clone, which shows up as "in use" and we move on.
  for (pid_t pid = 31000; pid < 31100; ++pid) {
    if (pid_exists(pid)) continue;
    auto r = clone_with_pid(pid, [] { ::_exit(7); });
    if (!r.ok() && r.error().code == EEXIST) continue;
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->pid(), pid);
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    r->release();
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 7);
    return;
  }
  FAIL() << "no free pid in 31000..31099";
}

TEST(CloneWithPid, PidInUseIsAClearError) {
  auto r = clone_with_pid(::getpid(), [] { ::_exit(0); });
  ASSERT_FALSE(r.ok());
  // Names the holder: its comm, and whether it is alive or a zombie.
  EXPECT_EQ(r.error().message,
            "pid " + std::to_string(::getpid()) + " is in use by 'restore_test' (alive, state R)");
}

TEST(ChildGuard, KillsAndReapsAnArmedChild) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  { ChildGuard g(pid); }
  // Reaped already: waitpid finds no such child.
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

}  // namespace
}  // namespace cr::restore
