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
  const std::string host_net = ns_of(::getpid(), "net");
  auto serves_inside = [&](pid_t pid) {
    EXPECT_NE(ns_of(pid, "net"), host_net);
    EXPECT_EQ(fetch_inside(pid), "served from the namespace\n");
  };
  container_round_trips(
      "net namespace",
      [](TempDir& dir) {
        return Target::start(dir,
                             {"/usr/bin/unshare", "--net", "--uts", "/bin/sh", "-c", kShell});
      },
      serves_inside, serves_inside);
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
  Target stranger = start_stranger(other, t.pid(), "net", "0x40000000");
  ASSERT_GT(stranger.pid(), 0) << stranger.error();
  expect_stranger_refused(dir, t, stranger, "net");
  EXPECT_TRUE(stranger.terminate().ok());
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
}

}  // namespace
}  // namespace cr::e2e
