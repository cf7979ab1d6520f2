// Trees that own their time or cgroup namespace, beyond the zdtm cases: util-linux `unshare
// --time --cgroup` with offsets, whose program carries on after the restore in namespaces of
// the same kind with the same offsets and cgroup paths; and a process outside the tree in the
// tree's time or cgroup namespace, refused by name while the tree and the stranger run on.
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

std::string ns_of(pid_t pid, const char* kind) {
  char buf[64] = {};
  const std::string link = "/proc/" + std::to_string(pid) + "/ns/" + kind;
  return ::readlink(link.c_str(), buf, sizeof buf - 1) > 0 ? buf : "";
}

// A python3 outside the tree joins namespace `kind` (its setns flag) of `pid`, then says ready.
Target start_stranger(TempDir& other, pid_t pid, const char* kind, const char* flag) {
  const std::string join = std::string("import ctypes, os, signal, sys\nfd = os.open('/proc/") +
                           std::to_string(pid) + "/ns/" + kind +
                           "', os.O_RDONLY)\n"
                           "if ctypes.CDLL(None, use_errno=True).setns(fd, " +
                           flag +
                           ") != 0: sys.exit(3)\n"
                           "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
                           "os.close(3)\n"
                           "signal.sigwait([signal.SIGTERM])\n"
                           "print('PASS', file=sys.stderr)\n";
  return Target::start(other, {"/usr/bin/python3", "-I", "-c", join});
}

void expect_stranger_refused(TempDir& dir, Target& t, const Target& stranger, const char* kind) {
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(t.pid())});
  EXPECT_FALSE(d.status.ok()) << d.describe();
  EXPECT_NE(
      d.err.find("pid " + std::to_string(stranger.pid()) +
                 " ('python3'), outside the tree, is in the tree's own " + kind + " namespace"),
      std::string::npos)
      << d.err;
  const std::string out = dir.path("dry-run.out");
  ToolRun dry = run_tool_to_file(dir, "crdump", {"--dry-run", std::to_string(t.pid())}, out);
  EXPECT_EQ(dry.status.code, 1) << dry.describe();
  EXPECT_NE(read_file(out).find(std::string("outside the tree, is in the tree's own ") + kind),
            std::string::npos)
      << read_file(out);
}

TEST(TimeNamespace, StrangerInTheTreesTimeNamespaceRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  TempDir dir;
  Target t =
      Target::start(dir, {zdtm_path("timens_clock")}, Target::Ready::kClosesFd3, kCloneNewTime);
  ASSERT_GT(t.pid(), 0) << t.error();
  TempDir other;
  Target stranger = start_stranger(other, t.pid(), "time", "0x80");
  ASSERT_GT(stranger.pid(), 0) << stranger.error();
  expect_stranger_refused(dir, t, stranger, "time");
  EXPECT_TRUE(stranger.terminate().ok());
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
}

TEST(CgroupNamespace, StrangerInTheTreesCgroupNamespaceRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("ns_refused"), "cgroup"});
  ASSERT_GT(t.pid(), 0) << t.error();
  TempDir other;
  Target stranger = start_stranger(other, t.pid(), "cgroup", "0x02000000");
  ASSERT_GT(stranger.pid(), 0) << stranger.error();
  expect_stranger_refused(dir, t, stranger, "cgroup");
  EXPECT_TRUE(stranger.terminate().ok());
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
}

// `unshare --time --monotonic --boottime --cgroup sh -c ...`: unshare execs the shell inside
// both namespaces; the shell says ready and waits. After the restore it is in a time
// namespace with the same offsets and a cgroup namespace of its own, and on SIGTERM it reads
// its cgroup (as it sees it) and the offsets again and passes if they are what they were.
TEST(TimeNamespace, UnshareTimeAndCgroupShellCarriesOn) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  const char kShell[] = R"sh(
before="$(cat /proc/self/timens_offsets /proc/self/cgroup)"
trap 'kill $! 2>/dev/null; after="$(cat /proc/self/timens_offsets /proc/self/cgroup)"
  if [ "$before" = "$after" ]; then echo PASS >&2; exit 0; fi
  echo "FAIL: was $before now $after" >&2; exit 1' TERM
exec 3>&-
while :; do sleep 1000 & wait $!; done
)sh";
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning}) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = Target::start(dir, {"/usr/bin/unshare", "--time", "--monotonic", "86400",
                                   "--boottime", "172800", "--cgroup", "/bin/sh", "-c", kShell});
    ASSERT_GT(t.pid(), 0) << t.error();
    const pid_t pid = t.pid();
    const std::string offsets = read_file("/proc/" + std::to_string(pid) + "/timens_offsets");
    EXPECT_NE(offsets.find("86400"), std::string::npos) << offsets;
    if (!dump_target(dir, t, mode, dir.path("img"))) continue;
    if (!restore_detached(dir, dir.path("img"), pid)) continue;
    EXPECT_NE(ns_of(pid, "time"), ns_of(::getpid(), "time"));
    EXPECT_EQ(ns_of(pid, "time"), ns_of(pid, "time_for_children"));
    EXPECT_NE(ns_of(pid, "cgroup"), ns_of(::getpid(), "cgroup"));
    EXPECT_EQ(read_file("/proc/" + std::to_string(pid) + "/timens_offsets"), offsets);
    expect_restored_passes(dir, pid);
  }
}

}  // namespace
}  // namespace cr::e2e
