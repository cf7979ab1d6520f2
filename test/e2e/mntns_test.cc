// A container with a mount namespace of its own: the harness starts a shell as pid 1 of new
// pid, mount and UTS namespaces (a container launcher's clone; the harness stays outside), and
// the shell sets it up as `unshare --mount --mount-proc` and a runtime would: every mount
// private, a new proc, a tmpfs with a configuration file, a read-only bind of a host directory.
// A python3 child carries on after the restore, reading and writing the tmpfs; a process
// outside the tree that joins the tree's mount namespace is refused by name.
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

constexpr uint64_t kContainer = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS;

// The shell is in its temp dir (the harness's cwd for it). On SIGTERM (trapped: an init
// ignores it from outside at its default) it passes it on to python3, which checks its pid
// and /proc, the tmpfs's file, writes another and reads the bind; the shell then checks the
// mount table still has the tmpfs, the bind and the new proc.
const char kShell[] = R"(
set -e
mount --make-rprivate /
mount -t proc -o nosuid,nodev,noexec proc /proc
hostname crtools-mnt
mkdir -p box etc.host
echo "from the host" > etc.host/motd
mount -t tmpfs -o size=4m,mode=755 boxfs box
mkdir box/etc
mount --bind etc.host box/etc
mount -o remount,bind,ro box/etc
echo "rounds=1" > box/config
set +e
python3 -I -c '
import os, signal, socket, sys
me, stop, n = os.getpid(), [], 0
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
os.close(3)  # ready once its handler is in (the shell closed its own fd 3)
while not stop:
    n += 1
    signal.sigtimedwait([], 0.01)
ok = os.getpid() == me and os.getppid() == 1 and os.readlink("/proc/self") == str(me)
ok = ok and socket.gethostname() == "crtools-mnt" and open("box/config").read() == "rounds=1\n"
ok = ok and open("box/etc/motd").read() == "from the host\n"
with open("box/out", "w") as f:
    f.write("%d rounds\n" % n)
ok = ok and open("box/out").read() == "%d rounds\n" % n
try:
    open("box/etc/new", "w")
    ok = False
except OSError:
    pass
print("python3 pid %d, %d rounds, %s" % (me, n, "ok" if ok else "WRONG"), file=sys.stderr)
sys.exit(0 if ok else 1)
' &
py=$!
trap 'kill -TERM $py; wait $py; st=$?
  p=$(awk "\$5 == \"/proc\" && \$9 == \"proc\"" /proc/self/mountinfo | wc -l)
  if [ $st = 0 ] && [ $$ = 1 ] && grep -q " $PWD/box rw,relatime - tmpfs boxfs" /proc/self/mountinfo &&
     grep -q " $PWD/box/etc ro," /proc/self/mountinfo && [ "$p" = 2 ]; then
    echo "sh pid $$: PASS" >&2; exit 0; fi
  echo "FAIL: python3 status $st, sh pid $$, proc mounts $p" >&2; cat /proc/self/mountinfo >&2; exit 1' TERM
exec 3>&-
while :; do wait; done
)";

TEST(MountNamespace, ShellAndPythonContainerCarriesOn) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  container_round_trips(
      "mount namespace",
      [](TempDir& dir) {
        return Target::start(dir, {"/bin/sh", "-c", kShell}, Target::Ready::kClosesFd3,
                             kContainer);
      },
      [](pid_t) {}, [](pid_t pid) { EXPECT_NE(ns_of(pid, "mnt"), ns_of(::getpid(), "mnt")); });
}

// The host directory the container binds is gone after the dump (moved to another name, with
// one more file in it): the plain restore is refused naming the missing source; with
// --external mnt[<the bind's mount point>]:<the new name> the bind is made from there, the
// container sees the new file and carries on. --external naming no mount of the image is
// refused before anything is made.
TEST(MountNamespace, ExternalMountRebindsAMovedHostDirectory) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {"/bin/sh", "-c", kShell}, Target::Ready::kClosesFd3, kContainer);
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img")));
  const std::string work = dir.work();
  ASSERT_EQ(::rename((work + "/etc.host").c_str(), (work + "/etc.moved").c_str()), 0);
  write_file(work + "/etc.moved/marker", "moved\n");

  ToolRun plain = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  EXPECT_FALSE(plain.status.ok()) << plain.describe();
  EXPECT_TRUE(plain.one_line_error("crrestore")) << plain.err;
  EXPECT_NE(plain.err.find(work + "/etc.host"), std::string::npos) << plain.err;
  ToolRun typo = run_tool(dir, "crrestore",
                          {"-d", "-i", dir.path("img"), "--external", "mnt[/nowhere]:" + work});
  EXPECT_FALSE(typo.status.ok()) << typo.describe();
  EXPECT_NE(typo.err.find("the image has no bind or host mount at /nowhere"), std::string::npos)
      << typo.err;
  reap_zombies();
  EXPECT_FALSE(pid_exists(pid)) << "a refused restore left the root behind";

  ToolRun r = run_tool(dir, "crrestore",
                       {"-d", "-i", dir.path("img"), "--external",
                        "mnt[" + work + "/box/etc]:" + work + "/etc.moved"});
  ASSERT_TRUE(r.status.ok()) << r.describe();
  ASSERT_TRUE(pid_exists(pid));
  EXPECT_EQ(read_file("/proc/" + std::to_string(pid) + "/root" + work + "/box/etc/marker"),
            "moved\n");
  expect_restored_passes(dir, pid);
}

// A python3 outside the tree joins the tree's mount namespace (setns through ctypes), then
// says ready: crdump refuses naming it; the tree and the stranger carry on.
TEST(MountNamespace, StrangerInTheTreesMountNamespaceRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("mntns_tree")}, Target::Ready::kClosesFd3,
                           CLONE_NEWPID | CLONE_NEWNS);
  ASSERT_GT(t.pid(), 0) << t.error();
  TempDir other;
  Target stranger = start_stranger(other, t.pid(), "mnt", "0x00020000");
  ASSERT_GT(stranger.pid(), 0) << stranger.error();
  expect_stranger_refused(dir, t, stranger, "mount");
  EXPECT_TRUE(stranger.terminate().ok());
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
}

}  // namespace
}  // namespace cr::e2e
