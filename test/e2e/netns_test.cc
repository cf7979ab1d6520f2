// Trees that own their net namespace, beyond the zdtm cases: util-linux `unshare --net --uts`
// execs a shell inside new namespaces (no --fork: its own process would stay behind in them),
// which brings lo up with an extra address and starts python3's http.server on 127.0.0.1
// there. After the restore a client started inside the namespace (nsenter) gets the served
// file; the shell and the server carry on. A process outside the tree that joins the tree's
// net namespace is refused by name, the tree and the stranger running on.
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "e2e_common.h"
#include "tcp_client.h"

namespace cr::e2e {
namespace {

std::string ns_of(pid_t pid, const char* kind) {
  char buf[64] = {};
  const std::string link = "/proc/" + std::to_string(pid) + "/ns/" + kind;
  return ::readlink(link.c_str(), buf, sizeof buf - 1) > 0 ? buf : "";
}

// The server is ready once it listens: it closes its fd 3 then, and the shell has closed its
// own. Its request log goes to /dev/null (the harness's log may not change before SIGTERM).
const char kShell[] = R"sh(
set -e
ip link set lo up
ip addr add 10.7.0.1/24 dev lo
echo "served from the namespace" > index.txt
set +e
python3 -I -c '
import functools, http.server, os
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=".")
s = http.server.HTTPServer(("127.0.0.1", 8080), h)
os.close(3)
s.serve_forever()' 2>/dev/null &
py=$!
trap 'kill $py; wait $py
  if ip -o addr show dev lo | grep -q "10.7.0.1/24"; then echo PASS >&2; exit 0; fi
  echo "FAIL: lo lost 10.7.0.1" >&2; exit 1' TERM
exec 3>&-
while :; do wait; done
)sh";

std::string fetch_inside(pid_t pid) {
  return command_output("nsenter --net=/proc/" + std::to_string(pid) +
                        "/ns/net /usr/bin/python3 -I -c 'import urllib.request; "
                        "print(urllib.request.urlopen(\"http://127.0.0.1:8080/index.txt\", "
                        "timeout=60).read().decode(), end=\"\")' 2>&1");
}

TEST(NetNamespace, UnshareNetHttpServerAnswersAfterRestore) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  if (access("/usr/bin/nsenter", X_OK) != 0 || access("/usr/sbin/ip", X_OK) != 0)
    GTEST_SKIP() << "needs util-linux nsenter and iproute2";
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning}) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = Target::start(dir, {"/usr/bin/unshare", "--net", "--uts", "/bin/sh", "-c", kShell});
    ASSERT_GT(t.pid(), 0) << t.error();
    const pid_t pid = t.pid();
    const std::string host_net = ns_of(::getpid(), "net");
    ASSERT_NE(ns_of(pid, "net"), host_net);
    EXPECT_EQ(fetch_inside(pid), "served from the namespace\n");
    if (!dump_target(dir, t, mode, dir.path("img"))) continue;
    if (!restore_detached(dir, dir.path("img"), pid)) continue;
    EXPECT_NE(ns_of(pid, "net"), host_net);
    EXPECT_EQ(fetch_inside(pid), "served from the namespace\n");
    expect_restored_passes(dir, pid);
    std::cout << "  [net namespace " << mode_name(mode) << "] " << read_file(dir.work() + "/log");
  }
}

// A python3 outside the tree joins the tree's net namespace (setns through ctypes), then says
// ready: crdump (and its dry run) refuse naming it.
TEST(NetNamespace, StrangerInTheTreesNetNamespaceRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  TempDir dir;
  Target t =
      Target::start(dir, {zdtm_path("netns_lo"), "lo"}, Target::Ready::kClosesFd3, CLONE_NEWNET);
  ASSERT_GT(t.pid(), 0) << t.error();
  TempDir other;
  const std::string join = "import ctypes, os, signal, sys\nfd = os.open('/proc/" +
                           std::to_string(t.pid()) +
                           "/ns/net', os.O_RDONLY)\n"
                           "if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0: "
                           "sys.exit(3)\n"
                           "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
                           "os.close(3)\n"
                           "signal.sigwait([signal.SIGTERM])\n"
                           "print('PASS', file=sys.stderr)\n";
  Target stranger = Target::start(other, {"/usr/bin/python3", "-I", "-c", join});
  ASSERT_GT(stranger.pid(), 0) << stranger.error();
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(t.pid())});
  EXPECT_FALSE(d.status.ok()) << d.describe();
  EXPECT_NE(d.err.find("pid " + std::to_string(stranger.pid()) +
                       " ('python3'), outside the tree, is in the tree's own net namespace"),
            std::string::npos)
      << d.err;
  const std::string out = dir.path("dry-run.out");
  ToolRun dry = run_tool_to_file(dir, "crdump", {"--dry-run", std::to_string(t.pid())}, out);
  EXPECT_EQ(dry.status.code, 1) << dry.describe();
  EXPECT_NE(read_file(out).find("outside the tree, is in the tree's own net namespace"),
            std::string::npos)
      << read_file(out);
  EXPECT_TRUE(stranger.terminate().ok());
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
}

}  // namespace
}  // namespace cr::e2e
