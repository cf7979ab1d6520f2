// The tree's own net namespace (kProcessOwnNetNs): its links, addresses, routes and sysctls,
// read by a thread of crdump's that joined the namespace (setns changes the calling thread
// only; a socket, and /proc/sys/net opened by that thread, are the namespace's). What restore
// could not make again is refused by name: links other than lo and veth, routes of other tables or
// with attributes not kept, policy rules, nftables tables and iptables tables, a process
// outside the tree in the namespace.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <thread>

#include "dump/passes.h"
#include "sys/rtnetlink.h"

namespace cr::dump {

namespace {

// What the thread inside reads: the namespace as rtnetlink and /proc/sys/net show it.
struct NetView {
  std::vector<sys::NlLink> links;
  std::vector<sys::NlAddr> addrs;
  std::vector<sys::NlRoute> routes;
  std::vector<sys::NlRule> rules;
  std::vector<schema::NetSysctl> sysctls;
  std::vector<std::string> nft_tables;  // "family name"
  std::string iptables;                 // /proc/net/ip_tables_names and ip6_tables_names
};

// Each nftables table of the namespace (NFT_MSG_GETTABLE dump over NETLINK_NETFILTER).
Result<std::vector<std::string>> nft_tables() {
  ScopedFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!fd.valid()) {
    if (errno == EPROTONOSUPPORT) return std::vector<std::string>{};  // no nfnetlink: no tables
    return errno_error("socket(NETLINK_NETFILTER)");
  }
  struct {
    nlmsghdr h;
    nfgenmsg g;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.g.nfgen_family = AF_UNSPEC;
  req.g.version = NFNETLINK_V0;
  if (::send(fd.get(), &req, sizeof req, 0) != static_cast<ssize_t>(sizeof req))
    return errno_error("send NFT_MSG_GETTABLE");
  std::vector<std::string> out;
  std::vector<uint8_t> buf(1 << 16);
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("recv NFT_MSG_GETTABLE");
    }
    for (size_t off = 0; off + NLMSG_HDRLEN <= static_cast<size_t>(n);) {
      const auto* h = reinterpret_cast<const nlmsghdr*>(buf.data() + off);
      if (h->nlmsg_len < NLMSG_HDRLEN || off + h->nlmsg_len > static_cast<size_t>(n))
        return make_error("NFT_MSG_GETTABLE: a truncated reply");
      off += NLMSG_ALIGN(h->nlmsg_len);
      if (h->nlmsg_type == NLMSG_DONE) return out;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const int err = -reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        if (err == 0) continue;
        if (err == ENOENT || err == EOPNOTSUPP) return out;  // nf_tables not loaded: no tables
        return errno_error("NFT_MSG_GETTABLE", err);
      }
      const auto* g = reinterpret_cast<const nfgenmsg*>(NLMSG_DATA(h));
      std::string name = "?";
      const auto* base = reinterpret_cast<const uint8_t*>(h);
      for (size_t a = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
           a + NLA_HDRLEN <= h->nlmsg_len;) {
        const auto* at = reinterpret_cast<const nlattr*>(base + a);
        if (at->nla_len < NLA_HDRLEN || a + at->nla_len > h->nlmsg_len) break;
        if ((at->nla_type & NLA_TYPE_MASK) == NFTA_TABLE_NAME) {
          const char* s = reinterpret_cast<const char*>(base + a + NLA_HDRLEN);
          name.assign(s, strnlen(s, at->nla_len - NLA_HDRLEN));
        }
        a += NLA_ALIGN(at->nla_len);
      }
      const char* fam = g->nfgen_family == NFPROTO_INET     ? "inet"
                        : g->nfgen_family == NFPROTO_IPV4   ? "ip"
                        : g->nfgen_family == NFPROTO_IPV6   ? "ip6"
                        : g->nfgen_family == NFPROTO_ARP    ? "arp"
                        : g->nfgen_family == NFPROTO_BRIDGE ? "bridge"
                        : g->nfgen_family == NFPROTO_NETDEV ? "netdev"
                                                            : "?";
      out.push_back(std::string(fam) + " " + name);
    }
  }
}

std::string read_text(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  char buf[256];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n')) s.pop_back();
  return s;
}

Result<NetView> read_inside(const std::string& ns_path) {
  ScopedFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return errno_error("open " + ns_path);
  Result<NetView> out = make_error("no reader");
  std::thread reader([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      out = errno_error("setns into " + ns_path);
      return;
    }
    out = [&]() -> Result<NetView> {
      NetView v;
      CR_TRY_ASSIGN(sys::Rtnl nl, sys::Rtnl::open());
      CR_TRY_ASSIGN(v.links, nl.links());
      CR_TRY_ASSIGN(v.addrs, nl.addrs());
      CR_TRY_ASSIGN(v.routes, nl.routes());
      CR_TRY_ASSIGN(v.rules, nl.rules());
      for (const char* name : sys::kNetSysctls) {
        std::string value = read_text(std::string("/proc/sys/net/") + name);
        if (!value.empty()) v.sysctls.push_back({name, std::move(value)});
      }
      CR_TRY_ASSIGN(v.nft_tables, nft_tables());
      // The legacy tables a namespace has once ip_tables is loaded and someone used it (the
      // files list the tables made in this namespace: none until then).
      v.iptables = read_text("/proc/thread-self/net/ip_tables_names");
      const std::string six = read_text("/proc/thread-self/net/ip6_tables_names");
      if (!six.empty()) v.iptables += (v.iptables.empty() ? "" : " ") + six;
      return v;
    }();
  });
  reader.join();
  return out;
}

bool default_rule(const sys::NlRule& r) {
  // A new namespace's: 0 local, 32766 main, 32767 default (IPv4 only).
  return (r.priority == 0 && r.table == RT_TABLE_LOCAL) ||
         (r.priority == 32766 && r.table == RT_TABLE_MAIN) ||
         (r.priority == 32767 && r.table == RT_TABLE_DEFAULT && r.family == AF_INET);
}

std::string text_of(int family, const std::vector<uint8_t>& a) {
  char buf[64] = "?";
  if ((family == AF_INET && a.size() == 4) || (family == AF_INET6 && a.size() == 16))
    ::inet_ntop(family, a.data(), buf, sizeof buf);
  return buf;
}

// Any process outside the tree in its net namespace: the restored namespace is a new one.
Status check_net_leaks(DumpTree& tree) {
  CR_TRY_ASSIGN(std::vector<int> pids, ProcDir::all_pids());
  for (int pid : pids) {
    if (tree.find(pid) != nullptr) continue;
    auto proc = ProcDir::open(pid);
    if (!proc.ok()) continue;  // gone meanwhile
    auto m = proc->readlink("ns/net");
    if (!m.ok() || *m != tree.ns.net_link) continue;
    std::string comm = "?";
    if (auto s = proc->read("stat"); s.ok())
      if (auto st = parse_stat(*s); st.ok()) comm = st->comm;
    CR_TRY(tree.refuse(tree.procs.front()->pid,
                       make_error("pid " + std::to_string(pid) + " ('" + comm +
                                  "'), outside the tree, is in the tree's own net namespace: "
                                  "the restored namespace would not hold it, nor its sockets "
                                  "(not supported)")));
  }
  return {};
}

// A veth of the tree's namespace, with its other end's name when that is in the namespace too
// (both ends come back there) or in crdump's own (the peer's ifindex and its link back agree;
// its bridge is kept). An end elsewhere is left nameless: crrestore's --external names it.
Result<schema::NetLink> veth_link(const sys::NlLink& l, const std::vector<sys::NlLink>& inside,
                                  const std::vector<sys::NlLink>& host) {
  schema::NetLink out{static_cast<uint32_t>(l.ifindex),
                      l.name,
                      schema::kNetLinkVeth,
                      l.flags & IFF_UP,
                      l.mtu,
                      l.address,
                      "",
                      ""};
  if (l.link_netnsid < 0) {
    for (const sys::NlLink& p : inside)
      if (p.ifindex == l.link && p.kind == "veth") out.peer = p.name;
    if (out.peer.empty())
      return make_error("veth '" + l.name + "': its peer (ifindex " + std::to_string(l.link) +
                        ") is not among the namespace's links");
    return out;
  }
  for (const sys::NlLink& p : host) {
    if (p.kind != "veth" || p.ifindex != l.link || p.link != l.ifindex || p.link_netnsid < 0)
      continue;
    out.peer = p.name;
    for (const sys::NlLink& b : host)
      if (p.master != 0 && b.ifindex == p.master) out.peer_master = b.name;
  }
  return out;
}

}  // namespace

Status collect_net_ns(DumpTree& tree) {
  if (!tree.ns.own_net) return {};
  const pid_t root = tree.procs.front()->pid;
  const std::string who = "pid " + std::to_string(root) + ": net namespace: ";
  auto refuse = [&](const std::string& what) { return tree.refuse(root, make_error(who + what)); };
  auto read = read_inside("/proc/" + std::to_string(root) + "/ns/net");
  if (!read.ok()) return std::move(read).error().wrap("pid " + std::to_string(root));
  NetView& v = *read;
  // crdump's own namespace's links: where a veth's outside end usually is.
  std::vector<sys::NlLink> host_links;
  if (auto nl = sys::Rtnl::open(); nl.ok())
    if (auto l = nl->links(); l.ok()) host_links = std::move(*l);
  std::set<int> kept;  // ifindexes of the links kept
  for (const sys::NlLink& l : v.links) {
    if ((l.flags & IFF_LOOPBACK) != 0 && l.kind.empty() && l.name == "lo") {
      kept.insert(l.ifindex);
      tree.ns.net_links.push_back(schema::NetLink{static_cast<uint32_t>(l.ifindex), l.name,
                                                  schema::kNetLinkLoopback, l.flags & IFF_UP,
                                                  l.mtu});
      continue;
    }
    if (l.kind == "veth") {
      auto veth = veth_link(l, v.links, host_links);
      if (!veth.ok()) {
        CR_TRY(refuse(veth.error().message));
        continue;
      }
      kept.insert(l.ifindex);
      tree.ns.net_links.push_back(std::move(*veth));
      continue;
    }
    CR_TRY(refuse("link '" + l.name + "'" + (l.kind.empty() ? "" : " (" + l.kind + ")") +
                  ": only loopback and veth links are supported"));
  }
  for (const sys::NlAddr& a : v.addrs) {
    if (kept.count(a.ifindex) == 0) continue;  // a refused link's
    // The link-local address the kernel made from a veth's MAC: made again from the MAC kept
    // (and still tentative, for DAD, for a second after the link came up).
    if (a.family == AF_INET6 && a.proto == IFAPROT_KERNEL_LL) continue;
    if ((a.family != AF_INET && a.family != AF_INET6) ||
        (a.family == AF_INET6 && (a.flags & (IFA_F_TEMPORARY | IFA_F_TENTATIVE)) != 0)) {
      CR_TRY(refuse("address " + text_of(a.family, a.address) + " of family " +
                    std::to_string(a.family) + " or in a state not supported"));
      continue;
    }
    tree.ns.net_addrs.push_back(schema::NetAddr{static_cast<uint32_t>(a.ifindex),
                                                static_cast<uint32_t>(a.family), a.prefixlen,
                                                a.flags, a.scope, a.address, a.local});
  }
  for (const sys::NlRoute& r : v.routes) {
    if ((r.flags & RTM_F_CLONED) != 0 || r.protocol == RTPROT_KERNEL) continue;  // the kernel's
    const std::string what = "route " + text_of(r.family, r.dst) + "/" + std::to_string(r.dst_len) +
                             " (table " + std::to_string(r.table) + ")";
    if (r.table == RT_TABLE_LOCAL && r.family == AF_INET6 && r.type == RTN_MULTICAST) continue;
    if (r.table != RT_TABLE_MAIN) {
      CR_TRY(refuse(what + ": routes of tables other than main are not supported"));
      continue;
    }
    if (r.multipath || r.other_attrs ||
        (r.type != RTN_UNICAST && r.type != RTN_BLACKHOLE && r.type != RTN_UNREACHABLE &&
         r.type != RTN_PROHIBIT) ||
        (r.oif != 0 && kept.count(r.oif) == 0)) {
      CR_TRY(
          refuse(what + ": multipath, a source or tos match, encapsulation, a route type " +
                 "other than unicast, blackhole, unreachable and prohibit, or a device not kept: "
                 "not supported"));
      continue;
    }
    tree.ns.net_routes.push_back(schema::NetRoute{
        static_cast<uint32_t>(r.family), r.dst_len, r.type, r.scope, r.protocol,
        static_cast<uint32_t>(r.oif), r.priority, r.dst, r.gateway, r.prefsrc, r.metrics});
  }
  for (const sys::NlRule& r : v.rules)
    if (!default_rule(r))
      CR_TRY(refuse("policy rule " + std::to_string(r.priority) + " (table " +
                    std::to_string(r.table) + "): rules are not supported"));
  for (const std::string& t : v.nft_tables)
    CR_TRY(refuse("nftables table '" + t + "': firewall rules are not supported"));
  if (!v.iptables.empty())
    CR_TRY(refuse("iptables tables '" + v.iptables + "': firewall rules are not supported"));
  tree.ns.net_sysctls = std::move(v.sysctls);
  return check_net_leaks(tree);
}

}  // namespace cr::dump
