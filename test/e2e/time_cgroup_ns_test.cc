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
  std::string offsets;
  container_round_trips(
      "time and cgroup namespaces",
      [&](TempDir& dir) {
        return Target::start(dir, {"/usr/bin/unshare", "--time", "--monotonic", "86400",
                                   "--boottime", "172800", "--cgroup", "/bin/sh", "-c", kShell});
      },
      [&](pid_t pid) {
        offsets = read_file("/proc/" + std::to_string(pid) + "/timens_offsets");
        EXPECT_NE(offsets.find("86400"), std::string::npos) << offsets;
      },
      [&](pid_t pid) {
        EXPECT_NE(ns_of(pid, "time"), ns_of(::getpid(), "time"));
        EXPECT_EQ(ns_of(pid, "time"), ns_of(pid, "time_for_children"));
        EXPECT_NE(ns_of(pid, "cgroup"), ns_of(::getpid(), "cgroup"));
        EXPECT_EQ(read_file("/proc/" + std::to_string(pid) + "/timens_offsets"), offsets);
      });
}

}  // namespace
}  // namespace cr::e2e
