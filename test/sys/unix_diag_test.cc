#include "sys/unix_diag.h"

#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstring>
#include <string>
#include <vector>

namespace cr::sys {
namespace {

// Builds sock_diag replies the way the kernel lays them out.
class Reply {
 public:
  // Starts a SOCK_DIAG_BY_FAMILY message for one socket.
  Reply& sock(uint32_t ino, uint8_t type, uint8_t state) {
    start_ = bytes_.size();
    nlmsghdr h{};
    h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    put(&h, sizeof h);
    unix_diag_msg m{};
    m.udiag_family = AF_UNIX;
    m.udiag_type = type;
    m.udiag_state = state;
    m.udiag_ino = ino;
    put(&m, sizeof m);
    return end();
  }
  Reply& attr(uint16_t type, const void* p, size_t n) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<uint16_t>(RTA_LENGTH(n));
    put(&a, sizeof a);
    put(p, n);
    bytes_.resize(NLMSG_ALIGN(bytes_.size()));
    return end();
  }
  Reply& u32(uint16_t type, uint32_t v) { return attr(type, &v, sizeof v); }
  Reply& done() {
    nlmsghdr h{};
    h.nlmsg_len = sizeof h;
    h.nlmsg_type = NLMSG_DONE;
    put(&h, sizeof h);
    return *this;
  }
  Reply& error(int err) {
    start_ = bytes_.size();
    nlmsghdr h{};
    h.nlmsg_type = NLMSG_ERROR;
    put(&h, sizeof h);
    nlmsgerr e{};
    e.error = -err;
    put(&e, sizeof e);
    return end();
  }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  void put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  // Keeps the current message's nlmsg_len up to date.
  Reply& end() {
    const uint32_t len = static_cast<uint32_t>(bytes_.size() - start_);
    std::memcpy(bytes_.data() + start_, &len, sizeof len);
    return *this;
  }
  std::vector<uint8_t> bytes_;
  size_t start_ = 0;
};

TEST(UnixDiag, ListenerAndConnectedDgram) {
  Reply r;
  const char path[] = "srv.sock";  // the kernel sends the terminating NUL with a path
  unix_diag_vfs vfs{77, (8u << 20) | 2};
  uint32_t icons[2] = {501, 502};
  unix_diag_rqlen q{2, 16};
  r.sock(100, SOCK_STREAM, TCP_LISTEN)
      .attr(UNIX_DIAG_NAME, path, sizeof path)
      .attr(UNIX_DIAG_VFS, &vfs, sizeof vfs)
      .attr(UNIX_DIAG_ICONS, icons, sizeof icons)
      .attr(UNIX_DIAG_RQLEN, &q, sizeof q);
  const char abstract[] = {'\0', 'a', 'b', '\0', 'c'};  // abstract: every byte is the name
  const uint8_t shut = 2;
  r.sock(200, SOCK_DGRAM, TCP_ESTABLISHED)
      .attr(UNIX_DIAG_NAME, abstract, sizeof abstract)
      .u32(UNIX_DIAG_PEER, 201)
      .attr(UNIX_DIAG_SHUTDOWN, &shut, 1)
      .u32(99, 0)  // an attribute this build does not know
      .done();
  std::map<uint64_t, UnixDiag> out;
  auto done = parse_unix_diag(r.bytes(), out);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_TRUE(*done);
  ASSERT_EQ(out.size(), 2u);
  const UnixDiag& l = out.at(100);
  EXPECT_EQ(l.type, static_cast<uint32_t>(SOCK_STREAM));
  EXPECT_EQ(l.state, static_cast<uint32_t>(TCP_LISTEN));
  EXPECT_EQ(l.name, "srv.sock");
  EXPECT_TRUE(l.has_vfs);
  EXPECT_EQ(l.vfs_ino, 77u);
  EXPECT_EQ(l.vfs_dev, (8u << 20) | 2);
  EXPECT_EQ(l.icons, (std::vector<uint64_t>{501, 502}));
  EXPECT_TRUE(l.has_rqlen);
  EXPECT_EQ(l.rqueue, 2u);
  EXPECT_EQ(l.wqueue, 16u);
  EXPECT_FALSE(l.has_peer);
  const UnixDiag& d = out.at(200);
  EXPECT_EQ(d.name, std::string(abstract, sizeof abstract));
  EXPECT_TRUE(d.has_peer);
  EXPECT_EQ(d.peer_ino, 201u);
  EXPECT_EQ(d.shutdown, 2u);
  EXPECT_FALSE(d.has_vfs);
}

TEST(UnixDiag, MoreToComeWithoutDone) {
  Reply r;
  r.sock(5, SOCK_SEQPACKET, TCP_CLOSE);
  std::map<uint64_t, UnixDiag> out;
  auto done = parse_unix_diag(r.bytes(), out);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_FALSE(*done);
  ASSERT_EQ(out.count(5), 1u);
  EXPECT_TRUE(out.at(5).name.empty());
}

TEST(UnixDiag, KernelErrorCarriesErrno) {
  Reply r;
  r.error(EPERM);
  std::map<uint64_t, UnixDiag> out;
  auto done = parse_unix_diag(r.bytes(), out);
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.error().code, EPERM);
}

TEST(UnixDiag, MalformedRepliesAreErrors) {
  {
    Reply r;  // a VFS attribute too short for its struct
    uint32_t half = 1;
    r.sock(9, SOCK_STREAM, TCP_CLOSE).attr(UNIX_DIAG_VFS, &half, sizeof half);
    std::map<uint64_t, UnixDiag> out;
    auto done = parse_unix_diag(r.bytes(), out);
    ASSERT_FALSE(done.ok());
    EXPECT_NE(done.error().message.find("ino 9"), std::string::npos) << done.error().message;
  }
  {
    Reply r;  // a message longer than the bytes received
    r.sock(9, SOCK_STREAM, TCP_CLOSE).u32(UNIX_DIAG_PEER, 3);
    r.bytes().resize(r.bytes().size() - 4);
    std::map<uint64_t, UnixDiag> out;
    EXPECT_FALSE(parse_unix_diag(r.bytes(), out).ok());
  }
  {
    Reply r;  // an attribute overrunning its message
    r.sock(9, SOCK_STREAM, TCP_CLOSE).u32(UNIX_DIAG_PEER, 3);
    auto& b = r.bytes();
    const uint16_t big = 200;
    std::memcpy(b.data() + NLMSG_LENGTH(sizeof(unix_diag_msg)), &big, sizeof big);
    std::map<uint64_t, UnixDiag> out;
    auto done = parse_unix_diag(b, out);
    ASSERT_FALSE(done.ok());
    EXPECT_NE(done.error().message.find("overruns"), std::string::npos) << done.error().message;
  }
}

// The kernel's own answer: a socketpair of ours shows each end as the other's peer.
TEST(UnixDiag, LiveSocketpairPeers) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  ASSERT_EQ(shutdown(sv[0], SHUT_WR), 0);
  struct stat a {
  }, b{};
  ASSERT_EQ(fstat(sv[0], &a), 0);
  ASSERT_EQ(fstat(sv[1], &b), 0);
  auto all = query_unix_sockets();
  close(sv[0]);
  close(sv[1]);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->count(a.st_ino), 1u);
  ASSERT_EQ(all->count(b.st_ino), 1u);
  const UnixDiag& x = all->at(a.st_ino);
  const UnixDiag& y = all->at(b.st_ino);
  EXPECT_EQ(x.type, static_cast<uint32_t>(SOCK_SEQPACKET));
  EXPECT_EQ(x.state, static_cast<uint32_t>(TCP_ESTABLISHED));
  EXPECT_EQ(x.peer_ino, b.st_ino);
  EXPECT_EQ(y.peer_ino, a.st_ino);
  EXPECT_EQ(x.shutdown, 2u);  // SEND_SHUTDOWN
  EXPECT_EQ(y.shutdown, 1u);  // RCV_SHUTDOWN, from the peer's shutdown
}

}  // namespace
}  // namespace cr::sys
