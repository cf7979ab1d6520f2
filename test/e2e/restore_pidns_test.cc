// crrestore --pidns (issue 13): a host tree restored into a new pid namespace keeps its pids
// there while the original, still running, holds them on the host. The plain restore's "pid N
// is in use" says --pidns exists. zdtm programs carry on through --pidns; a launcher killed at
// any pass of the restore leaves no process behind (its init ends the namespace).
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "e2e_common.h"
#include "pidns_common.h"

namespace cr::e2e {
namespace {

// A tree of tree_groups (a child leading a group with a grandchild in it, a second child
// leading its own session, pipes between them all) dumped --leave-running: the original keeps
// every pid. Without --pidns the restore is refused naming --pidns; with it the tree is made
// at the same pids inside a new pid namespace, at other pids outside, and carries on.
TEST(RestorePidns, TreeKeepsItsPidsWhileTheyAreTaken) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make a pid namespace";
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("tree_groups")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::vector<pid_t> orig = tree_pids(t.pid());
  ASSERT_EQ(orig.size(), 4u) << "tree_groups: a parent, two children, a grandchild";
  const std::string img = dir.path("img");
  ToolRun d = run_tool(dir, "crdump", {"--leave-running", "-o", img, std::to_string(t.pid())});
  ASSERT_TRUE(d.status.ok()) << d.describe();

  ToolRun plain = run_tool(dir, "crrestore", {"-d", "-i", img});
  EXPECT_FALSE(plain.status.ok()) << plain.describe();
  EXPECT_TRUE(plain.one_line_error("crrestore")) << plain.err;
  EXPECT_NE(plain.err.find("is in use"), std::string::npos) << plain.err;
  EXPECT_NE(plain.err.find("--pidns"), std::string::npos) << plain.err;

  const pid_t host = restore_pidns(dir, img, {"--pidfile", dir.path("pidfile")});
  ASSERT_GT(host, 0);
  EXPECT_NE(host, t.pid());
  EXPECT_EQ(std::atol(read_file(dir.path("pidfile")).c_str()), host) << "the root's host pid";
  EXPECT_NE(pid_ns_of(host), pid_ns_of(::getpid()));
  const std::vector<pid_t> ids = nspid(host);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids.back(), t.pid()) << "the root's pid inside is its dumped one";
  const std::vector<pid_t> restored = tree_pids(host);
  std::set<pid_t> inner, want(orig.begin(), orig.end());
  for (pid_t p : restored) {
    const std::vector<pid_t> v = nspid(p);
    if (!v.empty()) inner.insert(v.back());
  }
  EXPECT_EQ(inner, want) << "every process at its dumped pid inside";
  // Its parent inside is crrestore's init once crrestore is gone (pid 1 there).
  EXPECT_GT(ns_init_of(host), 0);

  // The restored tree checks its pids, parents, groups and sessions and its pipes itself.
  ExitStatus st = terminate_in_ns(host);
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << read_file(dir.work() + "/log");
  EXPECT_NE(read_file(dir.work() + "/log").find("PASS"), std::string::npos)
      << read_file(dir.work() + "/log");
  // The original ran on beside it, untouched.
  ExitStatus o = t.terminate();
  EXPECT_TRUE(o.ok()) << o.describe() << "\nlog: " << t.log();
  if (HasFailure()) dir.keep();
}

// Without -d the launcher waits: a SIGTERM sent to it goes through the init to the root, and
// the launcher exits with the root's status once the root has exited.
TEST(RestorePidns, LauncherPassesSignalsAndExitStatus) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make a pid namespace";
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("tree_groups")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"))) return;
  const std::string pidfile = dir.path("pidfile");
  const pid_t launcher =
      start_tool(dir, "crrestore", {"--pidns", "--pidfile", pidfile, "-i", dir.path("img")}, -1, -1,
                 "crrestore.err");
  ASSERT_GT(launcher, 0);
  // The pid file is written once the tree runs (rename: whole or absent).
  const bool written =
      poll_until([&] { return ::access(pidfile.c_str(), F_OK) == 0; }, std::chrono::seconds(30));
  EXPECT_TRUE(written) << read_file(dir.path("crrestore.err"));
  if (written) {
    const pid_t host = static_cast<pid_t>(std::atol(read_file(pidfile).c_str()));
    EXPECT_EQ(nspid(host).back(), pid);
  }
  ::kill(launcher, SIGTERM);
  auto st = wait_exit(launcher, std::chrono::seconds(30));
  ASSERT_TRUE(st.has_value()) << "crrestore --pidns did not end";
  EXPECT_TRUE(st->ok()) << st->describe() << "\n" << read_file(dir.path("crrestore.err"));
  EXPECT_NE(read_file(dir.work() + "/log").find("PASS"), std::string::npos)
      << read_file(dir.work() + "/log");
  if (HasFailure()) dir.keep();
}

// An image whose root is pid 1 of its own pid namespace is made in a new one anyway: --pidns
// says so and restores nothing.
TEST(RestorePidns, OwnPidNamespaceImageRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("pidns_tree")}, Target::Ready::kClosesFd3, CLONE_NEWPID);
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::string img = dir.path("img");
  ToolRun d = run_tool(dir, "crdump", {"--leave-running", "-o", img, std::to_string(t.pid())});
  ASSERT_TRUE(d.status.ok()) << d.describe();
  ToolRun r = run_tool(dir, "crrestore", {"-d", "--pidns", "-i", img});
  EXPECT_FALSE(r.status.ok()) << r.describe();
  EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
  EXPECT_NE(r.err.find("--pidns: the image's root is pid 1 of a pid namespace of its own"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(pid_exists(t.pid()));
  ExitStatus o = t.terminate();
  EXPECT_TRUE(o.ok()) << o.describe() << "\nlog: " << t.log();
}

// zdtm programs dumped (killed) and restored through --pidns pass their own checks there.
struct PidnsCase {
  std::string name;
  std::vector<std::string> argv;  // the program and its arguments
  uint64_t clone_flags = 0;       // namespaces the harness starts it in
};

std::ostream& operator<<(std::ostream& os, const PidnsCase& c) { return os << c.name; }

class RestorePidnsZdtm : public ::testing::TestWithParam<PidnsCase> {};

TEST_P(RestorePidnsZdtm, Passes) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make a pid namespace";
  if (!tools_present()) return;
  const PidnsCase& c = GetParam();
  TempDir dir;
  std::vector<std::string> argv = c.argv;
  argv[0] = zdtm_path(argv[0]);
  Target t = Target::start(dir, argv, Target::Ready::kClosesFd3, c.clone_flags);
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"))) return;
  const pid_t host = restore_pidns(dir, dir.path("img"));
  ASSERT_GT(host, 0);
  const std::vector<pid_t> ids = nspid(host);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids.back(), pid);
  ExitStatus st = terminate_in_ns(host);
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << read_file(dir.work() + "/log");
  EXPECT_NE(read_file(dir.work() + "/log").find("PASS"), std::string::npos)
      << read_file(dir.work() + "/log");
  if (HasFailure()) dir.keep();
}

INSTANTIATE_TEST_SUITE_P(
    All, RestorePidnsZdtm,
    ::testing::Values(
        PidnsCase{"tree_groups", {"tree_groups"}},
        PidnsCase{"tree_gone_leaders", {"tree_gone_leaders"}},
        PidnsCase{"tree_zombie", {"tree_zombie"}}, PidnsCase{"tree_cow", {"tree_cow"}},
        PidnsCase{"pipe_data", {"pipe_data"}}, PidnsCase{"signals", {"signals"}},
        PidnsCase{"posix_timer", {"posix_timer"}}, PidnsCase{"file_locks", {"file_locks"}},
        PidnsCase{"file_owner", {"file_owner"}}, PidnsCase{"pidfd_tree", {"pidfd_tree"}},
        PidnsCase{"proc_files", {"proc_files"}},
        PidnsCase{"threads_count16", {"threads_count", "16"}},
        PidnsCase{"pid_ids", {"pid_ids", "arg1", "arg2"}}, PidnsCase{"sysv_ipc", {"sysv_ipc"}},
        // A user's image (no root process): restricted, --pidns allowed.
        PidnsCase{"creds_user_files", {"creds_user_files"}},
        // A root with a mount namespace of its own in the host's pid namespace.
        PidnsCase{"mntns_hostpid", {"mntns_tree"}, CLONE_NEWNS}),
    [](const auto& info) { return info.param.name; });

// crrestore --pidns killed at each pass of its restore in turn (the launcher, from the
// restorer's kill point): its init ends the namespace, and nothing of the tree is left.
TEST(RestorePidns, KilledLauncherLeavesNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make a pid namespace";
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("tree_groups")});
  ASSERT_GT(t.pid(), 0) << t.error();
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"))) return;
  expect_killed_launcher_leaves_nothing(dir, dir.path("img"));
  if (HasFailure()) dir.keep();
}

}  // namespace
}  // namespace cr::e2e
