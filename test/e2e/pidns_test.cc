// Container-like trees: a root that is pid 1 of a pid namespace of its own with a UTS
// namespace of its own, started by the harness as a container's launcher would (clone with
// CLONE_NEWPID | CLONE_NEWUTS, the harness staying in its own namespaces). A shell and a
// python3 child carry on after the restore with their pids and hostname; a process outside
// the tree in the tree's UTS namespace is refused by name, and the tree keeps running.
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

constexpr uint64_t kContainer = CLONE_NEWPID | CLONE_NEWUTS;

// sh as pid 1 sets the hostname and starts python3, which counts until SIGTERM. On SIGTERM
// (trapped: an init ignores SIGTERM at its default from outside its namespace) the shell
// passes it on, and passes if python3 passed and `hostname` run inside says the same.
const char kShell[] = R"(
hostname crtools-box
python3 -I -c '
import os, signal, socket, sys
me, stop, n = os.getpid(), [], 0
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
os.close(3)  # ready once its handler is in (the shell closed its own fd 3)
while not stop:
    n += 1
    signal.sigtimedwait([], 0.01)
ok = os.getpid() == me and os.getppid() == 1 and socket.gethostname() == "crtools-box" and n > 0
print("python3 pid %d in the namespace, %d rounds, %s" % (me, n, "ok" if ok else "WRONG"), file=sys.stderr)
sys.exit(0 if ok else 1)
' &
py=$!
trap 'kill -TERM $py; wait $py; st=$?; h=$(hostname)
  if [ $st = 0 ] && [ "$h" = crtools-box ] && [ $$ = 1 ]; then echo "sh pid $$, hostname $h: PASS" >&2; exit 0; fi
  echo "FAIL: python3 status $st, hostname $h, sh pid $$" >&2; exit 1' TERM
exec 3>&-
while :; do wait; done
)";

TEST(PidNamespace, ShellAndPythonContainerCarriesOn) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  container_round_trips(
      "container",
      [](TempDir& dir) {
        return Target::start(dir, {"/bin/sh", "-c", kShell}, Target::Ready::kClosesFd3,
                             kContainer);
      },
      [](pid_t) {},
      [](pid_t pid) {
        // Where the restored tree is: a pid namespace and UTS namespace other than ours.
        EXPECT_NE(ns_of(pid, "pid"), ns_of(::getpid(), "pid"));
        EXPECT_NE(ns_of(pid, "uts"), ns_of(::getpid(), "uts"));
      });
}

// A python3 outside the tree joins the tree's UTS namespace (setns through ctypes), then says
// ready: crdump refuses naming it; the tree and the stranger carry on.
TEST(PidNamespace, StrangerInTheTreesUtsNamespaceRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  TempDir dir;
  Target t =
      Target::start(dir, {zdtm_path("pidns_tree"), "uts"}, Target::Ready::kClosesFd3, kContainer);
  ASSERT_GT(t.pid(), 0) << t.error();
  TempDir other;
  Target stranger = start_stranger(other, t.pid(), "uts", "0x04000000");
  ASSERT_GT(stranger.pid(), 0) << stranger.error();
  expect_stranger_refused(dir, t, stranger, "uts");
  EXPECT_TRUE(stranger.terminate().ok());
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
}

// util-linux `unshare --pid --uts --fork` leaves its own parent waiting in the new UTS namespace
// (and making its children in the new pid namespace): a process outside the tree that the
// restore would lose, refused naming it (docs/ARCHITECTURE.md).
TEST(PidNamespace, UnshareForkParentRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  TempDir dir;
  Target t =
      Target::start(dir, {"/usr/bin/unshare", "--pid", "--uts", "--fork", "/usr/bin/sleep", "1000"},
                    Target::Ready::kOnExec);
  ASSERT_GT(t.pid(), 0) << t.error();
  // Nothing tells us when unshare has forked: look for its child (bounded).
  pid_t kid = 0;
  for (int i = 0; i < 2000 && kid == 0; ++i) {
    const std::string kids = read_file("/proc/" + std::to_string(t.pid()) + "/task/" +
                                       std::to_string(t.pid()) + "/children");
    kid = static_cast<pid_t>(std::atoi(kids.c_str()));
    if (kid == 0) ::usleep(1000);
  }
  ASSERT_GT(kid, 0) << "unshare made no child";
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(kid)});
  EXPECT_FALSE(d.status.ok()) << d.describe();
  EXPECT_NE(d.err.find("pid " + std::to_string(t.pid()) +
                       " ('unshare'), outside the tree, is in "
                       "the tree's own"),
            std::string::npos)
      << d.err;
  EXPECT_TRUE(pid_exists(kid)) << "the tree must run on after the refusal";
  // The init of the namespace ignores SIGTERM from unshare or us: SIGKILL, then unshare exits.
  ::kill(kid, SIGKILL);
  (void)t.wait();
}

}  // namespace
}  // namespace cr::e2e
