#include "dump/netlink_sockets.h"

#include <gtest/gtest.h>

namespace cr::dump {
namespace {

// /proc/net/netlink as the kernel prints it: the Dump column is its cb_running.
TEST(NetlinkSockets, DumpColumnParsed) {
  const char* text =
      "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n"
      "ffff8881003fa000 0   1234       00000001 0        0        0     2        0        5001\n"
      "ffff8881003fb000 0   4294963000 00000000 4352     0        1     2        0        5002\n";
  auto r = parse_netlink_dumping(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, std::vector<uint64_t>{5002});
  EXPECT_FALSE(parse_netlink_dumping("header\nffff 0 1 0 0 0 x 2 0 5\n").ok());
  EXPECT_TRUE(parse_netlink_dumping("header only\n").ok());
}

TEST(NetlinkSockets, ProtocolNames) {
  EXPECT_EQ(netlink_protocol_name(0), "route");
  EXPECT_EQ(netlink_protocol_name(4), "sock_diag");
  EXPECT_EQ(netlink_protocol_name(12), "netfilter");
  EXPECT_EQ(netlink_protocol_name(99), "protocol 99");
}

}  // namespace
}  // namespace cr::dump
