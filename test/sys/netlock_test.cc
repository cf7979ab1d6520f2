#include "sys/netlock.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

namespace cr::sys {
namespace {

TcpTuple tuple(int family, const char* a, uint16_t ap, const char* b, uint16_t bp) {
  TcpTuple t;
  t.family = family;
  inet_pton(family, a, t.src.data());
  inet_pton(family, b, t.dst.data());
  t.sport = ap;
  t.dport = bp;
  return t;
}

// Both directions of every connection are dropped, on the way in and out, before anything
// else sees them; only crrestore's own marked packets pass.
TEST(NetLock, ScriptDropsEachConnectionBothWays) {
  std::string s = netlock_script(
      "crtools_lock_1_2", {tuple(AF_INET, "127.0.0.1", 8080, "127.0.0.2", 40000),
                           tuple(AF_INET6, "::1", 443, "2001:db8::7", 5555)});
  EXPECT_EQ(s,
            "table inet crtools_lock_1_2 {\n"
            "  chain input {\n"
            "    type filter hook input priority -300; policy accept;\n"
            "    meta mark 1668435019 accept\n"
            "    ip saddr 127.0.0.1 tcp sport 8080 ip daddr 127.0.0.2 tcp dport 40000 drop\n"
            "    ip saddr 127.0.0.2 tcp sport 40000 ip daddr 127.0.0.1 tcp dport 8080 drop\n"
            "    ip6 saddr ::1 tcp sport 443 ip6 daddr 2001:db8::7 tcp dport 5555 drop\n"
            "    ip6 saddr 2001:db8::7 tcp sport 5555 ip6 daddr ::1 tcp dport 443 drop\n"
            "  }\n"
            "  chain output {\n"
            "    type filter hook output priority -300; policy accept;\n"
            "    meta mark 1668435019 accept\n"
            "    ip saddr 127.0.0.1 tcp sport 8080 ip daddr 127.0.0.2 tcp dport 40000 drop\n"
            "    ip saddr 127.0.0.2 tcp sport 40000 ip daddr 127.0.0.1 tcp dport 8080 drop\n"
            "    ip6 saddr ::1 tcp sport 443 ip6 daddr 2001:db8::7 tcp dport 5555 drop\n"
            "    ip6 saddr 2001:db8::7 tcp sport 5555 ip6 daddr ::1 tcp dport 443 drop\n"
            "  }\n"
            "}\n");
}

TEST(NetLock, NamesAreCrtoolsOwnAndDistinct) {
  std::string a = netlock_table_name(), b = netlock_table_name();
  EXPECT_TRUE(a.starts_with("crtools_lock_")) << a;
  EXPECT_NE(a, b);
}

// A lock made and deleted through nft leaves nothing; deleting it again is not an error.
TEST(NetLock, InstallAndReleaseWithNft) {
  if (access("/usr/sbin/nft", X_OK) != 0) GTEST_SKIP() << "nft (Debian nftables) not installed";
  auto lock = NetLock::install({tuple(AF_INET, "127.0.0.1", 1, "127.0.0.1", 2)},
                               netlock_table_name());
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  const std::string table = lock->table();
  Status st = lock->release();
  EXPECT_TRUE(st.ok()) << st.error().message;
  EXPECT_FALSE(lock->active());
  st = netlock_delete(table);
  EXPECT_TRUE(st.ok()) << st.error().message;
}

TEST(NetLock, NftErrorsComeBackAsOneLine) {
  if (access("/usr/sbin/nft", X_OK) != 0) GTEST_SKIP() << "nft (Debian nftables) not installed";
  Status st = run_nft("this is not nft\n");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().message.starts_with("nft: ")) << st.error().message;
  EXPECT_EQ(st.error().message.find('\n'), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace cr::sys
