// Trees that own their net namespace, beyond the zdtm cases: util-linux `unshare --net --uts`
// execs a shell inside new namespaces (no --fork: its own process would stay behind in them),
// which brings lo up with an extra address and starts python3's http.server on 127.0.0.1
// there. After the restore a client started inside the namespace (nsenter) gets the served
// file; the shell and the server carry on. A process outside the tree that joins the tree's
// net namespace is refused by name, the tree and the stranger running on. A container whose
// eth0 is a veth with its other end on a bridge of a "host" namespace (one the test makes)
// serves a file to the host through it after the restore.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "common/scoped_fd.h"
#include "e2e_common.h"
#include "tcp_client.h"

namespace cr::e2e {
namespace {

// A shell that runs `setup` (set -e), then serves its directory with python3's http.server on
// `addr`:8080 and waits; on SIGTERM it stops the server and runs `checks` (each failing one
// says FAIL and exits 1), then says PASS. The server is ready once it listens: it closes its
// fd 3 then, and the shell has closed its own. Its request log goes to /dev/null (the
// harness's log may not change before SIGTERM).
std::string serving_shell(const std::string& setup, const std::string& addr,
                          const std::string& checks) {
  std::string script = "set -e\n" + setup + "set +e\n" + R"sh(python3 -I -c '
import functools, http.server, os
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=".")
s = http.server.HTTPServer(("ADDR", 8080), h)
os.close(3)
s.serve_forever()' 2>/dev/null &
py=$!
trap 'kill $py; wait $py
)sh" + checks + R"sh(
  echo PASS >&2; exit 0' TERM
exec 3>&-
while :; do wait; done
)sh";
  script.replace(script.find("ADDR"), 4, addr);
  return script;
}

const std::string kShell = serving_shell(R"sh(ip link set lo up
ip addr add 10.7.0.1/24 dev lo
echo "served from the namespace" > index.txt
)sh",
                                         "127.0.0.1", R"sh(
  ip -o addr show dev lo | grep -q "10.7.0.1/24" || { echo "FAIL: lo lost 10.7.0.1" >&2; exit 1; })sh");

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
        return Target::start(dir, {"/usr/bin/unshare", "--net", "--uts", "/bin/sh", "-c", kShell});
      },
      serves_inside, serves_inside);
}

// The "host" of the veth tests: a net namespace of the test's making with a bridge br0 at
// 10.9.0.1/24 (the test's own namespace is left alone). The test's thread joins it while it
// starts the container and runs crdump and crrestore (their children are made in it).
const char kHostNs[] = R"sh(
set -e
ip link set lo up
ip link add br0 type bridge
ip addr add 10.9.0.1/24 dev br0
ip link set br0 up
exec 3>&-
exec sleep 100000
)sh";

// A container whose eth0 is a veth with its other end $2 a port of the host's br0 ($1: a pid
// in the host namespace), a fixed MAC, 10.9.0.2/24 and a default route through the bridge,
// serving a file on every address. Its trap checks that all of it is still there.
const std::string kVethShell = serving_shell(R"sh(ip link set lo up
ip link add eth0 address 02:00:00:00:09:02 type veth peer name "$2" netns "$1"
nsenter --net=/proc/"$1"/ns/net ip link set "$2" master br0 up
ip addr add 10.9.0.2/24 dev eth0
ip link set eth0 up
ip route add default via 10.9.0.1
echo "served through the veth" > index.txt
)sh",
                                             "0.0.0.0", R"sh(
  ip -o link show eth0 | grep -q "02:00:00:00:09:02" || { echo "FAIL: eth0 MAC" >&2; exit 1; }
  ip -o addr show dev eth0 | grep -q "10.9.0.2/24" || { echo "FAIL: eth0 address" >&2; exit 1; }
  ip route | grep -q "default via 10.9.0.1 dev eth0" || { echo "FAIL: route" >&2; exit 1; })sh");

// The calling thread in the net namespace of `pid` until the end of the scope.
class InNetNsOf {
 public:
  explicit InNetNsOf(pid_t pid) : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    ScopedFd ns(::open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
    ok_ = home_.valid() && ns.valid() && ::setns(ns.get(), CLONE_NEWNET) == 0;
  }
  ~InNetNsOf() {
    if (ok_) (void)::setns(home_.get(), CLONE_NEWNET);
  }
  bool ok() const { return ok_; }

 private:
  ScopedFd home_;
  bool ok_ = false;
};

// The container's file, fetched from the calling thread's namespace (the host's).
std::string fetch_through_veth() {
  return command_output(
      "/usr/bin/python3 -I -c 'import urllib.request; "
      "print(urllib.request.urlopen(\"http://10.9.0.2:8080/index.txt\", "
      "timeout=60).read().decode(), end=\"\")' 2>&1");
}

bool veth_tools_present() {
  return access("/usr/bin/nsenter", X_OK) == 0 && access("/usr/sbin/ip", X_OK) == 0 &&
         access("/usr/bin/unshare", X_OK) == 0;
}

Target start_veth_host(TempDir& dir) {
  return Target::start(dir, {"/usr/bin/unshare", "--net", "/bin/sh", "-c", kHostNs});
}

Target start_veth_container(TempDir& dir, pid_t host, const std::string& end) {
  return Target::start(dir, {"/usr/bin/unshare", "--net", "--uts", "/bin/sh", "-c", kVethShell,
                             "sh", std::to_string(host), end});
}

// crdump and crrestore run in the host namespace: the veth's other end is seen there with its
// bridge, and made again there as it was (a moment after the original's namespace is gone:
// crrestore waits for the old end to go with it).
TEST(NetNamespace, VethWithItsOtherEndOnAHostBridgeComesBack) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  if (!veth_tools_present()) GTEST_SKIP() << "needs util-linux nsenter, unshare and iproute2";
  TempDir hostdir;
  Target host = start_veth_host(hostdir);
  ASSERT_GT(host.pid(), 0) << host.error();
  {
    InNetNsOf in_host(host.pid());
    ASSERT_TRUE(in_host.ok());
    // Each round's end has a name of its own: the last round's goes with its namespace a
    // moment after that is left.
    int round = 0;
    auto serves = [&](pid_t) {
      EXPECT_EQ(fetch_through_veth(), "served through the veth\n");
      EXPECT_NE(command_output("ip -o link show vh" + std::to_string(round)).find("master br0"),
                std::string::npos);
    };
    container_round_trips(
        "veth",
        [&](TempDir& dir) {
          return start_veth_container(dir, host.pid(), "vh" + std::to_string(++round));
        },
        serves, serves);
  }
  (void)host.terminate();
}

// crdump in the test's own namespace does not see the veth's other end: crrestore asks for
// --external (a one-line error, nothing left), then makes the end by the name and on the bridge
// given; a name of no veth of the tree is refused.
TEST(NetNamespace, VethEndOutsideCrdumpsSightNeedsExternal) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces";
  if (!tools_present()) return;
  if (!veth_tools_present()) GTEST_SKIP() << "needs util-linux nsenter, unshare and iproute2";
  TempDir hostdir;
  Target host = start_veth_host(hostdir);
  ASSERT_GT(host.pid(), 0) << host.error();
  TempDir dir;
  Target t = [&] {
    InNetNsOf in_host(host.pid());
    return start_veth_container(dir, host.pid(), "vh0");
  }();
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img")));
  InNetNsOf in_host(host.pid());
  ASSERT_TRUE(in_host.ok());
  ToolRun plain = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  EXPECT_FALSE(plain.status.ok());
  EXPECT_TRUE(plain.one_line_error("crrestore")) << plain.err;
  EXPECT_NE(plain.err.find("--external veth[eth0]"), std::string::npos) << plain.err;
  EXPECT_FALSE(pid_exists(pid));
  ToolRun typo =
      run_tool(dir, "crrestore", {"-d", "-i", dir.path("img"), "--external", "veth[eth9]:vx9@br0"});
  EXPECT_TRUE(typo.one_line_error("crrestore")) << typo.err;
  EXPECT_NE(typo.err.find("no veth 'eth9'"), std::string::npos) << typo.err;
  ToolRun r =
      run_tool(dir, "crrestore", {"-d", "-i", dir.path("img"), "--external", "veth[eth0]:vx9@br0"});
  ASSERT_TRUE(r.status.ok()) << r.describe();
  EXPECT_EQ(fetch_through_veth(), "served through the veth\n");
  EXPECT_NE(command_output("ip -o link show vx9").find("master br0"), std::string::npos);
  expect_restored_passes(dir, pid);
  (void)host.terminate();
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
