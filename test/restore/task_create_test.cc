#include "restore/task_create.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>

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

// Issue 11: a zombie reaped between clone3's EEXIST and the /proc scan left no holder, and the
// scan's "nobody holds it" was taken as "in use". The reaper here runs beside the restore, as
// init does: every round must give the pid, however the two interleave.
TEST(CloneWithPid, ZombieReapedDuringTheWaitGivesThePid) {
  for (int round = 0; round < 40; ++round) {
    pid_t z = ::fork();
    ASSERT_GE(z, 0);
    if (z == 0) ::_exit(0);
    siginfo_t si{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(z), &si, WEXITED | WNOWAIT), 0);  // a zombie now
    std::thread reaper([z] { ::waitpid(z, nullptr, 0); });
    auto r = clone_with_pid(z, [] { ::_exit(3); });
    reaper.join();
    if (!r.ok() && r.error().code == EEXIST && pid_exists(z)) continue;  // taken by a stranger
    ASSERT_TRUE(r.ok()) << "round " << round << ": " << r.error().message;
    int st = 0;
    ASSERT_EQ(::waitpid(z, &st, 0), z);
    r->release();
    EXPECT_EQ(WEXITSTATUS(st), 3);
  }
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
