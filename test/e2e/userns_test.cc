// Trees in a user namespace of their own (issue 13): a container made as root, one made for
// another user (a root inside that is uid 4343 outside, setgroups denied: what that user could
// make itself), and a tree that owns nothing but its user namespace. Each is dumped, restored
// with --pidns (crrestore makes the user namespace with the image's maps, and the rest inside
// it), and checks itself (zdtm/userns_tree.c): its maps, root inside with its capabilities,
// the same namespaces owned by its user namespace, and that owning them still works. Also what
// is refused: a restore without --pidns, a stranger in the tree's user namespace, and maps only
// root may write in an image without a root process.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "e2e_common.h"
#include "pidns_common.h"
#include "tcp_client.h"

namespace cr::e2e {
namespace {

struct UsernsCase {
  const char* name;
  uint64_t flags;     // the namespaces made with the user namespace
  uint32_t outside;   // the uid and gid that are 0 inside
};

class UserNamespace : public ::testing::TestWithParam<std::tuple<UsernsCase, Mode>> {};

TEST_P(UserNamespace, TreeComesBackInsideItsOwn) {
  const UsernsCase& c = std::get<0>(GetParam());
  const Mode mode = std::get<1>(GetParam());
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces for the tree";
  if (!tools_present()) return;
  TempDir dir;
  std::vector<std::string> argv = {zdtm_path("userns_tree")};
  // What the tree shares with us comes back as crrestore --pidns's own, owned by the new user
  // namespace: its pid namespace, and its mount namespace (a slave copy with its own /proc).
  if ((c.flags & CLONE_NEWPID) == 0) argv.push_back("pid");
  if ((c.flags & CLONE_NEWNS) == 0) argv.push_back("mnt");
  Target t = Target::start(dir, argv, Target::Ready::kClosesFd3,
                           CLONE_NEWUSER | c.flags, c.outside);
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::string maps = read_file("/proc/" + std::to_string(t.pid()) + "/uid_map");
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, mode, img)) return;
  crit_check(dir, img);

  ToolRun plain = run_tool(dir, "crrestore", {"-d", "-i", img});
  EXPECT_FALSE(plain.status.ok()) << plain.describe();
  EXPECT_TRUE(plain.one_line_error("crrestore")) << plain.err;
  EXPECT_NE(plain.err.find("user namespace of its own: restore it with --pidns"),
            std::string::npos)
      << plain.err;

  const pid_t root = restore_pidns(dir, img);
  ASSERT_GT(root, 0);
  EXPECT_EQ(read_file("/proc/" + std::to_string(root) + "/uid_map"), maps);
  EXPECT_NE(link_of("/proc/" + std::to_string(root) + "/ns/user"), link_of("/proc/self/ns/user"));
  if ((c.flags & CLONE_NEWPID) != 0) {
    EXPECT_EQ(nspid(root).back(), 1) << "pid 1 of its own";
  }
  ExitStatus st = terminate_in_ns(root);
  const std::string log = read_file(dir.work() + "/log");
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << log;
  EXPECT_NE(log.find("PASS"), std::string::npos) << log;
  if (HasFailure()) {
    dir.keep();
    std::cerr << "kept " << dir.root() << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, UserNamespace,
    ::testing::Combine(::testing::Values(
        UsernsCase{"container", CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET, 0},
        UsernsCase{"users_container", CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET,
                   4343},
        UsernsCase{"container_mnt", CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS, 0},
        // Every kind a container has, its cgroup and time namespaces too (as root outside: a
        // user's tree could not be put back in root's cgroups, where the harness starts it).
        UsernsCase{"container_all",
                   CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWNS |
                       CLONE_NEWCGROUP | kCloneNewTime,
                   0},
        UsernsCase{"userns_only", 0, 0}, UsernsCase{"users_userns_only", 0, 4343}),
                       ::testing::Values(Mode::kKill, Mode::kLeaveRunning)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param).name) + "_" + mode_name(std::get<1>(info.param));
    });

std::string fetch_inside(pid_t pid) {
  return command_output("nsenter --net=/proc/" + std::to_string(pid) +
                        "/ns/net /usr/bin/python3 -I -c 'import urllib.request; "
                        "print(urllib.request.urlopen(\"http://127.0.0.1:8000/index.html\", "
                        "timeout=60).read().decode(), end=\"\")' 2>&1");
}

// A real program in another user's container made with util-linux: uid 4343 runs `unshare
// --user --map-root-user` with its own net, UTS, IPC and mount namespaces, brings lo up, sets
// the hostname, mounts a tmpfs with a page and execs python3's http.server on it. Dumped, and
// restored with --pidns: the server answers from the tmpfs inside the restored namespace, as
// uid 4343 outside, with its hostname and maps.
TEST(UserNamespaceProgram, UsersUnshareHttpServerServesAfterRestore) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user and dump its tree";
  if (!tools_present()) return;
  for (const char* p : {"/usr/bin/nsenter", "/usr/sbin/ip", "/usr/bin/setpriv", "/usr/bin/unshare",
                        "/usr/bin/python3"})
    if (access(p, X_OK) != 0) GTEST_SKIP() << "needs " << p;
  TempDir dir;
  const std::string log = dir.work() + "/log";
  int logfd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(logfd, 0);
  ASSERT_EQ(fchown(logfd, 4343, 4343), 0);  // the server's own, as it would be
  SpawnSpec spec;
  spec.argv = {"/usr/bin/setpriv", "--reuid=4343", "--regid=4343", "--clear-groups", "--",
               "/usr/bin/unshare", "--user", "--map-root-user", "--net", "--uts", "--ipc",
               "--mount", "/bin/sh", "-c",
               "ip link set lo up && hostname userns-box && mount -t tmpfs none /mnt && "
               "echo hello > /mnt/index.html && exec /usr/bin/python3 -m http.server "
               "--directory /mnt --bind 127.0.0.1 8000"};
  spec.cwd = dir.work();
  spec.stdout_fd = logfd;
  spec.stderr_fd = logfd;
  spec.new_session = true;
  become_subreaper();
  const pid_t pid = spawn(spec);  // setpriv, unshare and sh exec: the server has this pid
  close(logfd);
  ASSERT_GT(pid, 0);
  const bool up = poll_until([&] { return fetch_inside(pid) == "hello\n"; }, std::chrono::seconds(30));
  if (!up) {
    ::kill(pid, SIGKILL);
    (void)wait_exit(pid, std::chrono::seconds(10));
    FAIL() << "the server did not answer: " << fetch_inside(pid) << "\nlog: " << read_file(log);
  }
  const std::string maps = read_file("/proc/" + std::to_string(pid) + "/uid_map");
  const std::string img = dir.path("img");
  ToolRun d = run_tool(dir, "crdump", {"-o", img, std::to_string(pid)});
  if (!d.status.ok()) ::kill(pid, SIGKILL);
  (void)wait_exit(pid, std::chrono::seconds(10));
  ASSERT_TRUE(d.status.ok()) << d.describe() << "\nlog: " << read_file(log);

  const pid_t root = restore_pidns(dir, img);
  ASSERT_GT(root, 0);
  EXPECT_EQ(fetch_inside(root), "hello\n") << "log: " << read_file(log);
  EXPECT_EQ(read_file("/proc/" + std::to_string(root) + "/uid_map"), maps);
  EXPECT_EQ(command_output("nsenter --uts=/proc/" + std::to_string(root) + "/ns/uts hostname"),
            "userns-box\n");
  const std::string status = read_file("/proc/" + std::to_string(root) + "/status");
  EXPECT_NE(status.find("Uid:\t4343\t4343\t4343\t4343\n"), std::string::npos) << status;
  ExitStatus st = terminate_in_ns(root);
  EXPECT_GE(st.code, 0) << "the restored server's namespace did not end: " << st.describe();
  if (HasFailure()) {
    dir.keep();
    std::cerr << "kept " << dir.root() << "\n";
  }
}

// crrestore --pidns of another user's container killed at each pass of its restore in turn:
// the init in the new user namespace ends the namespace, and nothing of the tree is left.
TEST(UserNamespaceProgram, KilledLauncherLeavesNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces for the tree";
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("userns_tree"), "mnt"}, Target::Ready::kClosesFd3,
                           CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
                               CLONE_NEWNET,
                           4343);
  ASSERT_GT(t.pid(), 0) << t.error();
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"))) return;
  expect_killed_launcher_leaves_nothing(dir, dir.path("img"));
  if (HasFailure()) dir.keep();
}

// A python3 outside the tree that joined the tree's user namespace: the restored namespace
// would not hold it.
TEST(UserNamespaceRefused, StrangerInTheTreesUserNamespace) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces for the tree";
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("userns_tree"), "mnt"}, Target::Ready::kClosesFd3,
                           CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS, 0);
  ASSERT_GT(t.pid(), 0) << t.error();
  TempDir other;
  Target stranger = start_stranger(other, t.pid(), "user", "0x10000000");
  ASSERT_GT(stranger.pid(), 0) << stranger.error();
  expect_stranger_refused(dir, t, stranger, "user");
  EXPECT_TRUE(stranger.terminate().ok());
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
}

// An image of another user's container (uid 4343 outside is root inside) edited to ask for
// what only root may give: crrestore refuses in one line before it makes anything.
class UserNamespaceImage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to make namespaces for the tree";
    ASSERT_TRUE(tools_present());
    Target t = Target::start(dir_, {zdtm_path("userns_tree"), "mnt"}, Target::Ready::kClosesFd3,
                             CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS, 4343);
    ASSERT_GT(t.pid(), 0) << t.error();
    ASSERT_TRUE(dump_target(dir_, t, Mode::kKill, dir_.path("img")));
    const std::string out = dir_.path("img.json");
    ToolRun d = run_tool_to_file(dir_, "crit", {"decode", "--pages", dir_.path("img")}, out);
    ASSERT_TRUE(d.status.ok()) << d.describe();
    doc_ = nlohmann::json::parse(read_file(out));
  }
  nlohmann::json& user_ns() {
    for (auto& r : doc_["records"])
      if (r["type"] == "user_ns") return r["fields"];
    ADD_FAILURE() << "no user_ns record";
    return doc_;
  }
  void expect_refused(const std::string& want) {
    const std::string json = dir_.path("edit.json"), img = dir_.path("edit.img");
    write_file(json, doc_.dump());
    ToolRun e = run_tool(dir_, "crit", {"encode", json, "-o", img});
    ASSERT_TRUE(e.status.ok()) << "crit encode: " << e.describe();
    ToolRun r = run_tool(dir_, "crrestore", {"-d", "--pidns", "-i", img});
    EXPECT_FALSE(r.status.ok()) << r.describe();
    EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    EXPECT_EQ(read_file(dir_.work() + "/log"), "") << "the tree ran";
  }
  TempDir dir_;
  nlohmann::json doc_;
};

// A second line maps ids the user does not have: only root could write that map.
TEST_F(UserNamespaceImage, MapsOnlyRootMayWriteRefused) {
  user_ns()["uid_map"] = {0, 4343, 1, 1, 100000, 1000};
  expect_refused("maps ids only root may map");
}

// setgroups allowed: only root may write a gid map then.
TEST_F(UserNamespaceImage, SetgroupsAllowedRefused) {
  user_ns()["setgroups"] = 1;
  expect_refused("maps ids only root may map");
}

// The gid mapped must be the user's own.
TEST_F(UserNamespaceImage, GidNotTheUsersRefused) {
  user_ns()["gid_map"] = {0, 0, 1};
  expect_refused("gid 0 mapped, not one of uid 4343's groups");
}

// The groups the tree keeps (set before the namespace is made) must be its user's.
TEST_F(UserNamespaceImage, GroupsNotTheUsersRefused) {
  user_ns()["groups"] = {0};
  expect_refused("supplementary group 0 is not one of uid 4343's groups");
}

}  // namespace
}  // namespace cr::e2e
