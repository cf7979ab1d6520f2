// rtnetlink (NETLINK_ROUTE) for a net namespace of the tree's own: its links, addresses,
// routes and rules read (dump), and set again in a new namespace (restore). A socket works in
// the namespace its creator was in when it made it, wherever it is used from.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"

namespace cr::sys {

/// The sysctls of a net namespace crtools keeps, below /proc/sys/net, in the order restore
/// writes them (ip_forward before the per-device forwarding it sets).
inline constexpr const char* kNetSysctls[] = {
    "ipv4/ip_forward",          "ipv4/conf/all/forwarding",        "ipv4/conf/default/forwarding",
    "ipv4/ping_group_range",    "ipv4/ip_unprivileged_port_start", "ipv4/ip_local_port_range",
    "ipv6/conf/all/forwarding", "ipv6/conf/default/forwarding",    "core/somaxconn",
};

inline bool net_sysctl_known(std::string_view name) {
  for (const char* k : kNetSysctls)
    if (name == k) return true;
  return false;
}

struct NlLink {
  int ifindex = 0;
  std::string name;
  std::string kind;    // IFLA_INFO_KIND ("veth", "bridge"...); empty for lo and kind-less links
  unsigned flags = 0;  // IFF_*
  uint32_t mtu = 0;
  std::vector<uint8_t> address;  // IFLA_ADDRESS (a MAC), empty when the link has none
  int link = 0;                  // IFLA_LINK: a veth's peer's ifindex (in the peer's namespace)
  int link_netnsid = -1;         // IFLA_LINK_NETNSID: the peer's namespace, -1: this one
  int master = 0;                // IFLA_MASTER: the bridge it is a port of, 0: none
};

struct NlAddr {
  int ifindex = 0;
  int family = 0;
  unsigned prefixlen = 0;
  uint32_t flags = 0;  // IFA_FLAGS (or ifa_flags)
  unsigned scope = 0;
  std::vector<uint8_t> address, local;
  unsigned proto = 0;  // IFA_PROTO: IFAPROT_KERNEL_LL for the link-local address the kernel made
};

struct NlRoute {
  int family = 0;
  unsigned dst_len = 0;
  uint32_t table = 0;  // RTA_TABLE (or rtm_table)
  unsigned type = 0, scope = 0, protocol = 0;
  uint32_t flags = 0;  // rtm_flags (RTM_F_CLONED...)
  int oif = 0;
  uint32_t priority = 0;
  std::vector<uint8_t> dst, gateway, prefsrc, metrics;
  bool multipath = false;    // RTA_MULTIPATH: not kept
  bool other_attrs = false;  // an attribute a route the user added may carry that is not kept
                             // (RTA_ENCAP, RTA_VIA, RTA_NH_ID...)
};

struct NlRule {
  int family = 0;
  uint32_t priority = 0;
  uint32_t table = 0;
};

/// A NETLINK_ROUTE socket of the namespace its caller is in.
class Rtnl {
 public:
  static Result<Rtnl> open();

  Result<std::vector<NlLink>> links();
  Result<std::vector<NlAddr>> addrs();
  Result<std::vector<NlRoute>> routes();  // IPv4 and IPv6, every table
  Result<std::vector<NlRule>> rules();    // IPv4 and IPv6

  /// Sets IFF_UP as `up` says and the MTU (0: left).
  Status set_link(int ifindex, bool up, uint32_t mtu);
  Status add_addr(const NlAddr& a);  // an address already there is no error
  Status del_addr(const NlAddr& a);
  Status add_route(const NlRoute& r);
  /// Makes a veth pair: `name` here, its peer `peer` in the net namespace of `peer_ns` (an fd
  /// of /proc/.../ns/net; -1: here). Each end gets its MAC unless empty, both `mtu` unless 0.
  Status add_veth(const std::string& name, const std::vector<uint8_t>& address, uint32_t mtu,
                  const std::string& peer, const std::vector<uint8_t>& peer_address, int peer_ns);
  /// Makes link `ifindex` a port of the bridge `master`, and up.
  Status set_master_up(int ifindex, int master);

 private:
  explicit Rtnl(ScopedFd fd) : fd_(std::move(fd)) {}
  // Sends one request and reads its replies: each message of a dump handed to `each`, or the
  // acknowledgement of a change (an error reply: errno).
  Status exchange(std::vector<uint8_t> req, bool dump,
                  const std::function<Status(const ::nlmsghdr&)>& each);
  ScopedFd fd_;
  uint32_t seq_ = 1;
};

}  // namespace cr::sys
