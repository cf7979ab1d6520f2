#include "restore/privilege.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace cr::restore {
namespace {

ProcessImage proc(uint32_t pid, uint32_t uid, std::vector<uint32_t> files = {}) {
  ProcessImage p;
  p.process.emplace();
  p.process->pid = pid;
  schema::Creds c{};
  c.pid = pid;
  c.uid = c.euid = c.suid = c.fsuid = uid;
  c.gid = c.egid = c.sgid = c.fsgid = uid;
  c.groups = {uid};
  p.creds = c;
  for (uint32_t f : files) {
    schema::Fd fd{};
    fd.pid = pid;
    fd.fd = 3 + f;
    fd.file = f;
    p.fds.push_back(fd);
  }
  return p;
}

schema::File file(uint32_t id, uint32_t kind, const std::string& path) {
  schema::File f{};
  f.id = id;
  f.kind = kind;
  f.path = path;
  return f;
}

TreeHead user_tree() {
  TreeHead h;
  h.procs.push_back(proc(10, 1001, {1}));
  h.procs.push_back(proc(11, 1002, {1, 2}));
  h.shared.files[1] = file(1, schema::kFileRegular, "/home/a/f");
  h.shared.files[2] = file(2, schema::kFileRegular, "/home/b/f");
  return h;
}

std::string message(const Status& s) { return s.ok() ? "" : s.error().message; }

TEST(Privileges, ImageWithARootProcessIsUnrestricted) {
  TreeHead h = user_tree();
  h.procs.push_back(proc(12, 0));
  h.procs.back().creds->cap_eff = ~0ull;
  Privileges p = Privileges::of(h);
  EXPECT_FALSE(p.restricted());
  EXPECT_EQ(p.for_file(1), nullptr);
  EXPECT_EQ(p.owner(), nullptr);
  EXPECT_TRUE(p.check(h).ok());
  // A process with no Creds keeps crrestore's (root's): the image is root's too.
  TreeHead g = user_tree();
  g.procs[1].creds.reset();
  EXPECT_FALSE(Privileges::of(g).restricted());
}

TEST(Privileges, FilesAreOpenedAsTheirFirstHolder) {
  TreeHead h = user_tree();
  Privileges p = Privileges::of(h);
  ASSERT_TRUE(p.restricted());
  ASSERT_NE(p.for_file(1), nullptr);
  EXPECT_EQ(p.for_file(1)->fsuid, 1001u);  // the parent holds it first
  EXPECT_EQ(p.for_file(2)->fsuid, 1002u);  // only the child holds it
  EXPECT_EQ(p.for_file(2)->fsgid, 1002u);
  EXPECT_EQ(p.for_file(2)->groups, (std::vector<gid_t>{1002}));
  EXPECT_EQ(p.owner()->fsuid, 1001u);
  EXPECT_TRUE(p.check(h).ok()) << message(p.check(h));
}

TEST(Privileges, SocketsAreMadeAsTheHolderOfTheirFile) {
  TreeHead h = user_tree();
  schema::File s = file(3, schema::kFileUnixSocket, "");
  s.object = 40;
  h.shared.files[3] = s;
  schema::Fd fd{};
  fd.pid = 11;
  fd.fd = 9;
  fd.file = 3;
  h.procs[1].fds.push_back(fd);
  Privileges p = Privileges::of(h);
  ASSERT_NE(p.for_socket(40), nullptr);
  EXPECT_EQ(p.for_socket(40)->fsuid, 1002u);
}

TEST(Privileges, CapabilitiesOfAUserAreRefused) {
  TreeHead h = user_tree();
  h.procs[1].creds->cap_amb = 1ull << 21;
  Status st = Privileges::of(h).check(h);
  EXPECT_NE(message(st).find("pid 11: uid 1002 with capabilities"), std::string::npos)
      << message(st);
}

// A user's process may have only its user's groups: the root group, or another user's, would
// open files of that group. nobody (a passwd entry: nogroup) and 1002 (none: its own number).
TEST(Privileges, GroupsAUserDoesNotHaveAreRefused) {
  TreeHead h = user_tree();
  EXPECT_TRUE(Privileges::of(h).check(h).ok()) << message(Privileges::of(h).check(h));
  h.procs[1].creds->groups = {1002, 0};
  Status st = Privileges::of(h).check(h);
  EXPECT_NE(message(st).find("pid 11: uid 1002 with group 0, which is not one of its user's"),
            std::string::npos)
      << message(st);
  h = user_tree();
  h.procs[1].creds->egid = 1000;
  st = Privileges::of(h).check(h);
  EXPECT_NE(message(st).find("uid 1002 with group 1000"), std::string::npos) << message(st);
  EXPECT_TRUE(Privileges::of(h).check(h, /*signed_image=*/true).ok());
  EXPECT_EQ(groups_of_user(65534).front(), 65534u);
  EXPECT_EQ(groups_of_user(4343), (std::vector<gid_t>{4343}));
}

schema::InetSocket inet(uint32_t id, uint32_t state, uint32_t port) {
  schema::InetSocket r{};
  r.id = id;
  r.family = AF_INET;
  r.type = SOCK_STREAM;
  r.protocol = IPPROTO_TCP;
  r.state = state;
  r.src = {127, 0, 0, 1};
  r.src_port = port;
  r.flags = state == schema::kInetEstablished ? 0u : uint32_t{schema::kInetBound};
  if (state == schema::kInetEstablished) {
    r.dst = {127, 0, 0, 1};
    r.dst_port = 40000;
  }
  return r;
}

// A user cannot repair a connection (TCP_REPAIR would let it take over any connection), bind
// a privileged port or mark its packets; a listener on a high port is its own. A signed image
// is vouched for by its signer.
TEST(Privileges, InetSocketsAUserCannotMakeAreRefused) {
  TreeHead h = user_tree();
  h.shared.inet_sockets[5].sock = inet(5, schema::kInetListening, 8080);
  EXPECT_TRUE(Privileges::of(h).check(h).ok()) << message(Privileges::of(h).check(h));

  h.shared.inet_sockets[6].sock = inet(6, schema::kInetEstablished, 8080);
  Status st = Privileges::of(h).check(h);
  EXPECT_NE(message(st).find("inet socket 6 (127.0.0.1:8080): an established TCP connection"),
            std::string::npos)
      << message(st);
  EXPECT_TRUE(Privileges::of(h).check(h, /*signed_image=*/true).ok());

  h.shared.inet_sockets.erase(6);
  h.shared.inet_sockets[7].sock = inet(7, schema::kInetListening, 80);
  EXPECT_NE(message(Privileges::of(h).check(h)).find("port 80 is below"), std::string::npos);

  h.shared.inet_sockets.erase(7);
  schema::InetSocket marked = inet(8, schema::kInetClosed, 0);
  marked.opts = {uint64_t{SOL_SOCKET} << 48 | uint64_t{SO_MARK} << 32 | 7};
  h.shared.inet_sockets[8].sock = marked;
  EXPECT_NE(message(Privileges::of(h).check(h)).find("socket option 1/36 = 7"), std::string::npos)
      << message(Privileges::of(h).check(h));

  h.shared.inet_sockets.erase(8);
  h.shared.net_lock = "crtools_lock_1_2";
  EXPECT_NE(message(Privileges::of(h).check(h)).find("nftables"), std::string::npos);
}

// Listening to route and uevent groups is anyone's; the audit log's group, sending to a
// group and listening in every namespace are not a user's to ask for.
// The kernel takes a filter from a user only under no_new_privs; strict mode needs nothing.
TEST(Privileges, SeccompFilterOfAUserNeedsNoNewPrivs) {
  TreeHead h = user_tree();
  h.procs[1].seccomp.push_back(schema::SeccompThread{11, 11, 1, 0});
  EXPECT_TRUE(Privileges::of(h).check(h).ok()) << message(Privileges::of(h).check(h));
  h.procs[1].seccomp.push_back(schema::SeccompThread{11, 12, 2, 7});
  EXPECT_NE(message(Privileges::of(h).check(h)).find("thread 12: uid 1002 with a seccomp filter"),
            std::string::npos)
      << message(Privileges::of(h).check(h));
  h.procs[1].creds->no_new_privs = 1;
  EXPECT_TRUE(Privileges::of(h).check(h).ok()) << message(Privileges::of(h).check(h));
}

// A time or cgroup namespace takes CAP_SYS_ADMIN to make: not a user's to ask for, unless the
// image is signed.
TEST(Privileges, TimeAndCgroupNamespacesOfAUserAreRefused) {
  for (uint32_t flag :
       {uint32_t{schema::kProcessOwnTimeNs}, uint32_t{schema::kProcessOwnCgroupNs}}) {
    TreeHead h = user_tree();
    h.procs[0].process->flags |= flag;
    EXPECT_NE(message(Privileges::of(h).check(h)).find("time or cgroup namespace"),
              std::string::npos)
        << message(Privileges::of(h).check(h));
    EXPECT_TRUE(Privileges::of(h).check(h, /*signed_image=*/true).ok());
  }
}

// A net namespace (links, addresses, routes and sysctls set by crrestore as root) the same.
TEST(Privileges, NetNamespaceOfAUserIsRefused) {
  TreeHead h = user_tree();
  h.procs[0].process->flags |= schema::kProcessOwnNetNs;
  EXPECT_NE(message(Privileges::of(h).check(h)).find("mount or net namespace"), std::string::npos)
      << message(Privileges::of(h).check(h));
  EXPECT_TRUE(Privileges::of(h).check(h, /*signed_image=*/true).ok());
}

// Credentials in flight name other pids than crrestore's: only for root's (or signed) images.
TEST(Privileges, CredentialsInFlightOfAUserAreRefused) {
  TreeHead h = user_tree();
  h.shared.unix_sockets[3].creds[0] = schema::UnixSocketCreds{3, 0, 4242, 1000, 1000};
  EXPECT_NE(message(Privileges::of(h).check(h)).find("unix socket 3: credentials in flight"),
            std::string::npos)
      << message(Privileges::of(h).check(h));
  EXPECT_TRUE(Privileges::of(h).check(h, /*signed_image=*/true).ok());
}

TEST(Privileges, NetlinkSocketsAUserCannotMakeAreRefused) {
  TreeHead h = user_tree();
  schema::NetlinkSocket r{};
  r.id = 5;
  r.type = SOCK_RAW;
  r.protocol = NETLINK_ROUTE;
  r.flags = schema::kNetlinkBound;
  r.portid = 1234;
  r.groups = {1, 33};
  h.shared.netlink_sockets[5] = r;
  EXPECT_TRUE(Privileges::of(h).check(h).ok()) << message(Privileges::of(h).check(h));

  schema::NetlinkSocket audit = r;
  audit.protocol = NETLINK_AUDIT;
  audit.groups = {1};
  h.shared.netlink_sockets[5] = audit;
  EXPECT_NE(message(Privileges::of(h).check(h)).find("netlink socket 5 (protocol 9): multicast group 1"),
            std::string::npos)
      << message(Privileges::of(h).check(h));
  EXPECT_TRUE(Privileges::of(h).check(h, /*signed_image=*/true).ok());

  schema::NetlinkSocket sender = r;
  sender.flags |= schema::kNetlinkConnected;
  sender.dst_group = 1;
  h.shared.netlink_sockets[5] = sender;
  EXPECT_NE(message(Privileges::of(h).check(h)).find("connected to a multicast group"),
            std::string::npos);

  schema::NetlinkSocket all_nsid = r;
  all_nsid.opts = {uint64_t{SOL_NETLINK} << 48 | uint64_t{NETLINK_LISTEN_ALL_NSID} << 32 | 1};
  h.shared.netlink_sockets[5] = all_nsid;
  EXPECT_NE(message(Privileges::of(h).check(h)).find("NETLINK_LISTEN_ALL_NSID"), std::string::npos);
}

TEST(Privileges, HardRlimitAboveOursIsRefusedLowerIsNot) {
  rlimit ours{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &ours), 0);
  ASSERT_NE(ours.rlim_max, RLIM_INFINITY);
  TreeHead h = user_tree();
  h.procs[0].rlimits.emplace();
  auto& lim = h.procs[0].rlimits->limits;
  lim.assign(2 * RLIM_NLIMITS, 0);
  lim[2 * RLIMIT_NOFILE + 1] = ours.rlim_max;  // the same: fine
  EXPECT_TRUE(Privileges::of(h).check(h).ok());
  lim[2 * RLIMIT_NOFILE + 1] = ~0ull;
  Status st = Privileges::of(h).check(h);
  EXPECT_NE(message(st).find("hard RLIMIT_NOFILE of unlimited"), std::string::npos) << message(st);
}

TEST(Privileges, OnlyAllowlistedDevices) {
  for (auto [maj, min, ok] : {std::tuple{1u, 3u, true},
                              {1u, 9u, true},
                              {5u, 2u, true},
                              {136u, 7u, true},
                              {1u, 11u, false},
                              {1u, 1u, false},
                              {8u, 0u, false},
                              {4u, 1u, false}}) {
    TreeHead h = user_tree();
    schema::File d = file(1, schema::kFileDevice, "/dev/x");
    d.rdev = makedev(maj, min);
    h.shared.files[1] = d;
    EXPECT_EQ(Privileges::of(h).check(h).ok(), ok) << maj << ":" << min;
  }
}

TEST(Privileges, SetIdDeletedFileRefused) {
  TreeHead h = user_tree();
  schema::File g = file(1, schema::kFileDeleted, "/tmp/x (deleted)");
  g.mode = S_IFREG | 0644;
  h.shared.files[1] = g;
  EXPECT_TRUE(Privileges::of(h).check(h).ok());
  h.shared.files[1].mode = S_IFREG | 02755;
  EXPECT_NE(message(Privileges::of(h).check(h)).find("mode 2755"), std::string::npos);
}

TEST(Privileges, ChrootOnlyWithNoNewPrivs) {
  TreeHead h = user_tree();
  h.procs[0].fs.emplace();
  h.procs[0].fs->root = "/srv/jail";
  EXPECT_NE(message(Privileges::of(h).check(h)).find("root directory /srv/jail"),
            std::string::npos);
  h.procs[0].creds->no_new_privs = 1;
  EXPECT_TRUE(Privileges::of(h).check(h).ok());
}

// The scope's permission checks are the user's, and everything is back after it.
TEST(FsCredsScope, OpensAsTheUserThenAsRootAgain) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  char tmpl[] = "/tmp/privilege_test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  ASSERT_EQ(chmod(tmpl, 0755), 0);
  const std::string secret = std::string(tmpl) + "/secret";
  int fd = ::open(secret.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    auto s = FsCredsScope::enter({1001, 1001, {}});
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_LT(::open(secret.c_str(), O_RDONLY), 0);
    EXPECT_EQ(errno, EACCES);
    // What it creates is the user's.
    const std::string mine = std::string(tmpl) + "/mine";
    EXPECT_LT(::open(mine.c_str(), O_WRONLY | O_CREAT, 0600), 0) << "dir is root's 0755";
  }
  fd = ::open(secret.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << "root's rights not back";
  if (fd >= 0) ::close(fd);
  {
    // keep_caps: the owner is the user's, the checks root's.
    auto s = FsCredsScope::enter({1001, 1001, {}}, true);
    ASSERT_TRUE(s.ok()) << s.error().message;
    const std::string made = std::string(tmpl) + "/made";
    fd = ::open(made.c_str(), O_WRONLY | O_CREAT, 0600);
    EXPECT_GE(fd, 0);
    struct stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0);
    EXPECT_EQ(st.st_uid, 1001u);
    if (fd >= 0) ::close(fd);
    ::unlink(made.c_str());
  }
  ::unlink(secret.c_str());
  ::rmdir(tmpl);
}

}  // namespace
}  // namespace cr::restore
