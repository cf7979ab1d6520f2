#include "restore/task_create.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

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

// A container's root: pid 1 of a new pid namespace with its host pid, and a child it makes
// there with both of its pids (set_tid {5, host}).
TEST(CloneWithPid, InitOfANewPidNamespaceAndItsChild) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make a pid namespace";
  std::vector<pid_t> free;
  for (pid_t pid = 31200; pid < 31300 && free.size() < 2; ++pid)
    if (!pid_exists(pid)) free.push_back(pid);
  ASSERT_EQ(free.size(), 2u);
  const pid_t kid_host = free[1];
  auto r = clone_with_pid(
      free[0],
      [kid_host] {
        if (::getpid() != 1 || ::getppid() != 0) ::_exit(10);
        auto c = clone_with_pid(
            kid_host, [] { ::_exit(::getpid() == 5 && ::getppid() == 1 ? 0 : 11); }, 0, 5);
        if (!c.ok()) ::_exit(c.error().code == EEXIST ? 12 : 13);
        if (c->pid() != 5) ::_exit(14);
        int st = 0;
        if (::waitpid(5, &st, 0) != 5) ::_exit(15);
        c->release();
        ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 16);
      },
      CLONE_NEWPID | CLONE_NEWUTS, 1);
  if (!r.ok() && r.error().code == EEXIST) GTEST_SKIP() << "pid taken meanwhile";
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->pid(), free[0]);
  int st = 0;
  ASSERT_EQ(::waitpid(free[0], &st, 0), free[0]);
  r->release();
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "12: the child's host pid was taken meanwhile";
}

TEST(CloneWithPid, PidInUseIsAClearError) {
  auto r = clone_with_pid(::getpid(), [] { ::_exit(0); });
  ASSERT_FALSE(r.ok());
  // Names the holder: its comm, and whether it is alive or a zombie.
  EXPECT_EQ(r.error().message,
            "pid " + std::to_string(::getpid()) +
                " is in use by 'restore_test' (alive, state R) (crrestore --pidns restores the tree "
                "in a new pid namespace, where its pids are free)");
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
