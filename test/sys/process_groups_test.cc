#include "sys/process_groups.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

namespace cr::sys {
namespace {

ProcStat proc(pid_t pid, pid_t ppid, pid_t pgrp, pid_t session, char state = 'S') {
  ProcStat st;
  st.pid = pid;
  st.ppid = ppid;
  st.pgrp = pgrp;
  st.session = session;
  st.state = state;
  st.num_threads = 1;
  return st;
}

// A shell (10, session 10) with a job in group 20 and a job's child in group 30.
std::vector<ProcStat> shell_session() {
  return {proc(1, 0, 1, 1), proc(10, 1, 10, 10), proc(20, 10, 20, 10), proc(21, 20, 20, 10),
          proc(30, 21, 30, 10)};
}

TEST(ProcessGroups, JobOfAShellIsNotOrphaned) {
  auto all = shell_session();
  EXPECT_FALSE(pgrp_orphaned(20, all, 1));  // 20's parent, the shell, is in group 10
  EXPECT_FALSE(pgrp_orphaned(30, all, 1));  // 30's parent is in group 20, same session
}

TEST(ProcessGroups, SessionLeadersGroupIsOrphaned) {
  // The shell's own group: its parent (init) does not count, nobody else is in it.
  EXPECT_TRUE(pgrp_orphaned(10, shell_session(), 1));
  // With another init in view (a pid namespace), pid 1 is a parent like any other, but in
  // another session.
  EXPECT_TRUE(pgrp_orphaned(10, shell_session(), 0));
}

TEST(ProcessGroups, ParentInAnotherSessionDoesNotConnect) {
  auto all = shell_session();
  all[2].ppid = 1;  // 20 reparented to init: its group lost its link to the session
  EXPECT_TRUE(pgrp_orphaned(20, all, 1));
  all.push_back(proc(40, 1, 40, 40));  // a daemon in a session of its own
  all[2].ppid = 40;
  EXPECT_TRUE(pgrp_orphaned(20, all, 1));
}

TEST(ProcessGroups, OneConnectedMemberIsEnough) {
  auto all = shell_session();
  all[2].ppid = 1;
  all.push_back(proc(22, 30, 20, 10));  // a member whose parent is in group 30
  EXPECT_FALSE(pgrp_orphaned(20, all, 1));
}

TEST(ProcessGroups, ZombiesAndUnseenParentsDoNotConnect) {
  auto all = shell_session();
  all[2].state = 'Z';  // 20 exited; 21's parent (20) is in the group itself
  EXPECT_TRUE(pgrp_orphaned(20, all, 1));
  all[2].num_threads = 2;  // a zombie leader whose threads still run counts
  EXPECT_FALSE(pgrp_orphaned(20, all, 1));
  all = shell_session();
  all[2].ppid = 0;  // parent outside the pid namespace
  EXPECT_TRUE(pgrp_orphaned(20, all, 1));
}

TEST(ProcessGroups, OwnGroupFromProc) {
  // This test's own group, read from /proc: whatever runs it, the answer matches the rule
  // applied to a fresh child that joins a group of its own under us (same session).
  pid_t kid = ::fork();
  ASSERT_GE(kid, 0);
  if (kid == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_EQ(::setpgid(kid, kid), 0);
  auto orphaned = pgrp_orphaned_now(kid);
  ::kill(kid, SIGKILL);
  ::waitpid(kid, nullptr, 0);
  ASSERT_TRUE(orphaned.ok()) << orphaned.error().message;
  EXPECT_FALSE(*orphaned);  // its parent (us) is in another group of its session
}

}  // namespace
}  // namespace cr::sys
