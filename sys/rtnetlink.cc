#include "sys/rtnetlink.h"

#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace cr::sys {

namespace {

// A request: the header, a fixed part, then attributes, each aligned to 4 bytes.
class Msg {
 public:
  Msg(uint16_t type, uint16_t flags) {
    buf_.resize(NLMSG_HDRLEN);
    hdr().nlmsg_type = type;
    hdr().nlmsg_flags = flags | NLM_F_REQUEST;
  }
  template <class T>
  void fixed(const T& v) {
    put(&v, sizeof v);
  }
  void attr(uint16_t type, const void* p, size_t n) {
    rtattr a{static_cast<unsigned short>(RTA_LENGTH(n)), type};
    put(&a, sizeof a);
    put(p, n);
  }
  void attr(uint16_t type, const std::vector<uint8_t>& v) { attr(type, v.data(), v.size()); }
  void attr_u32(uint16_t type, uint32_t v) { attr(type, &v, sizeof v); }
  void attr_str(uint16_t type, const std::string& v) { attr(type, v.c_str(), v.size() + 1); }
  // A nested attribute: begin() gives its offset, end() sets its length once its parts are in.
  size_t begin(uint16_t type) {
    const size_t at = buf_.size();
    rtattr a{0, type};
    put(&a, sizeof a);
    return at;
  }
  void end(size_t at) {
    reinterpret_cast<rtattr*>(buf_.data() + at)->rta_len =
        static_cast<unsigned short>(buf_.size() - at);
  }
  std::vector<uint8_t> done(uint32_t seq) {
    hdr().nlmsg_len = static_cast<uint32_t>(buf_.size());
    hdr().nlmsg_seq = seq;
    return std::move(buf_);
  }

 private:
  nlmsghdr& hdr() { return *reinterpret_cast<nlmsghdr*>(buf_.data()); }
  void put(const void* p, size_t n) {
    const size_t at = buf_.size();
    buf_.resize(at + NLMSG_ALIGN(n));
    std::memcpy(buf_.data() + at, p, n);
  }
  std::vector<uint8_t> buf_;
};

// The attributes after a message's fixed part of `fixed` bytes: (type, payload).
template <class F>
void each_attr(const nlmsghdr& h, size_t fixed, F&& f) {
  const auto* base = reinterpret_cast<const uint8_t*>(&h);
  size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(fixed);
  while (off + sizeof(rtattr) <= h.nlmsg_len) {
    const auto* a = reinterpret_cast<const rtattr*>(base + off);
    if (a->rta_len < sizeof(rtattr) || off + a->rta_len > h.nlmsg_len) break;
    f(a->rta_type & NLA_TYPE_MASK, base + off + RTA_LENGTH(0), a->rta_len - RTA_LENGTH(0));
    off += RTA_ALIGN(a->rta_len);
  }
}

std::vector<uint8_t> bytes(const uint8_t* p, size_t n) { return {p, p + n}; }

uint32_t u32(const uint8_t* p, size_t n) {
  uint32_t v = 0;
  std::memcpy(&v, p, std::min(n, sizeof v));
  return v;
}

}  // namespace

Result<Rtnl> Rtnl::open() {
  ScopedFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.valid()) return errno_error("socket(NETLINK_ROUTE)");
  const int one = 1;
  // Errors with the message that caused them trimmed; strict checking of dump requests.
  (void)::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return errno_error("bind(NETLINK_ROUTE)");
  return Rtnl(std::move(fd));
}

Status Rtnl::exchange(std::vector<uint8_t> req, bool dump,
                      const std::function<Status(const nlmsghdr&)>& each) {
  const uint32_t seq = seq_ - 1;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) != static_cast<ssize_t>(req.size()))
    return errno_error("rtnetlink send");
  std::vector<uint8_t> buf(1 << 16);
  Status first{};  // the callback's first error; the dump is read to its end anyway
  for (;;) {
    const ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("rtnetlink recv");
    }
    size_t off = 0;
    while (off + NLMSG_HDRLEN <= static_cast<size_t>(n)) {
      const auto* h = reinterpret_cast<const nlmsghdr*>(buf.data() + off);
      if (h->nlmsg_len < NLMSG_HDRLEN || off + h->nlmsg_len > static_cast<size_t>(n))
        return make_error("rtnetlink: a truncated reply");
      off += NLMSG_ALIGN(h->nlmsg_len);
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return first;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h));
        if (e->error == 0 && !dump) return first;  // the acknowledgement
        if (e->error != 0) return errno_error("rtnetlink", -e->error);
        continue;
      }
      if (first.ok()) first = each(*h);
    }
  }
}

Result<std::vector<NlLink>> Rtnl::links() {
  Msg m(RTM_GETLINK, NLM_F_DUMP);
  m.fixed(ifinfomsg{});
  std::vector<NlLink> out;
  CR_TRY(exchange(m.done(seq_++), true, [&](const nlmsghdr& h) -> Status {
    if (h.nlmsg_type != RTM_NEWLINK) return {};
    const auto* ifi = reinterpret_cast<const ifinfomsg*>(NLMSG_DATA(&h));
    NlLink l;
    l.ifindex = ifi->ifi_index;
    l.flags = ifi->ifi_flags;
    each_attr(h, sizeof(ifinfomsg), [&](unsigned type, const uint8_t* p, size_t n) {
      if (type == IFLA_IFNAME)
        l.name.assign(reinterpret_cast<const char*>(p),
                      strnlen(reinterpret_cast<const char*>(p), n));
      if (type == IFLA_MTU) l.mtu = u32(p, n);
      if (type == IFLA_ADDRESS) l.address = bytes(p, n);
      if (type == IFLA_LINK) l.link = static_cast<int>(u32(p, n));
      if (type == IFLA_LINK_NETNSID) l.link_netnsid = static_cast<int>(u32(p, n));
      if (type == IFLA_MASTER) l.master = static_cast<int>(u32(p, n));
      if (type == IFLA_LINKINFO) {
        // Nested: IFLA_INFO_KIND first.
        size_t off = 0;
        while (off + sizeof(rtattr) <= n) {
          const auto* a = reinterpret_cast<const rtattr*>(p + off);
          if (a->rta_len < sizeof(rtattr) || off + a->rta_len > n) break;
          if ((a->rta_type & NLA_TYPE_MASK) == IFLA_INFO_KIND) {
            const char* s = reinterpret_cast<const char*>(p + off + RTA_LENGTH(0));
            l.kind.assign(s, strnlen(s, a->rta_len - RTA_LENGTH(0)));
          }
          off += RTA_ALIGN(a->rta_len);
        }
      }
    });
    out.push_back(std::move(l));
    return {};
  }));
  return out;
}

Result<std::vector<NlAddr>> Rtnl::addrs() {
  Msg m(RTM_GETADDR, NLM_F_DUMP);
  m.fixed(ifaddrmsg{});
  std::vector<NlAddr> out;
  CR_TRY(exchange(m.done(seq_++), true, [&](const nlmsghdr& h) -> Status {
    if (h.nlmsg_type != RTM_NEWADDR) return {};
    const auto* ifa = reinterpret_cast<const ifaddrmsg*>(NLMSG_DATA(&h));
    NlAddr a;
    a.ifindex = static_cast<int>(ifa->ifa_index);
    a.family = ifa->ifa_family;
    a.prefixlen = ifa->ifa_prefixlen;
    a.flags = ifa->ifa_flags;
    a.scope = ifa->ifa_scope;
    each_attr(h, sizeof(ifaddrmsg), [&](unsigned type, const uint8_t* p, size_t n) {
      if (type == IFA_ADDRESS) a.address = bytes(p, n);
      if (type == IFA_LOCAL) a.local = bytes(p, n);
      if (type == IFA_FLAGS) a.flags = u32(p, n);
      if (type == IFA_PROTO && n >= 1) a.proto = p[0];
    });
    out.push_back(std::move(a));
    return {};
  }));
  return out;
}

Result<std::vector<NlRoute>> Rtnl::routes() {
  std::vector<NlRoute> out;
  for (const int family : {AF_INET, AF_INET6}) {
    Msg m(RTM_GETROUTE, NLM_F_DUMP);
    rtmsg rt{};
    rt.rtm_family = static_cast<unsigned char>(family);
    m.fixed(rt);
    CR_TRY(exchange(m.done(seq_++), true, [&](const nlmsghdr& h) -> Status {
      if (h.nlmsg_type != RTM_NEWROUTE) return {};
      const auto* r = reinterpret_cast<const rtmsg*>(NLMSG_DATA(&h));
      NlRoute o;
      o.family = r->rtm_family;
      o.dst_len = r->rtm_dst_len;
      o.table = r->rtm_table;
      o.type = r->rtm_type;
      o.scope = r->rtm_scope;
      o.protocol = r->rtm_protocol;
      o.flags = r->rtm_flags;
      if (r->rtm_src_len != 0 || r->rtm_tos != 0) o.other_attrs = true;
      each_attr(h, sizeof(rtmsg), [&](unsigned type, const uint8_t* p, size_t n) {
        switch (type) {
          case RTA_TABLE:
            o.table = u32(p, n);
            break;
          case RTA_DST:
            o.dst = bytes(p, n);
            break;
          case RTA_GATEWAY:
            o.gateway = bytes(p, n);
            break;
          case RTA_PREFSRC:
            o.prefsrc = bytes(p, n);
            break;
          case RTA_OIF:
            o.oif = static_cast<int>(u32(p, n));
            break;
          case RTA_PRIORITY:
            o.priority = u32(p, n);
            break;
          case RTA_METRICS:
            o.metrics = bytes(p, n);
            break;
          case RTA_MULTIPATH:
            o.multipath = true;
            break;
          case RTA_CACHEINFO:
          case RTA_PREF:  // IPv6 router preference: medium unless a router advertised it
            break;
          default:
            o.other_attrs = true;
            break;
        }
      });
      out.push_back(std::move(o));
      return {};
    }));
  }
  return out;
}

Result<std::vector<NlRule>> Rtnl::rules() {
  std::vector<NlRule> out;
  for (const int family : {AF_INET, AF_INET6}) {
    Msg m(RTM_GETRULE, NLM_F_DUMP);
    fib_rule_hdr fr{};
    fr.family = static_cast<uint8_t>(family);
    m.fixed(fr);
    CR_TRY(exchange(m.done(seq_++), true, [&](const nlmsghdr& h) -> Status {
      if (h.nlmsg_type != RTM_NEWRULE) return {};
      const auto* f = reinterpret_cast<const fib_rule_hdr*>(NLMSG_DATA(&h));
      NlRule o;
      o.family = f->family;
      o.table = f->table;
      each_attr(h, sizeof(fib_rule_hdr), [&](unsigned type, const uint8_t* p, size_t n) {
        if (type == FRA_PRIORITY) o.priority = u32(p, n);
        if (type == FRA_TABLE) o.table = u32(p, n);
      });
      out.push_back(o);
      return {};
    }));
  }
  return out;
}

Status Rtnl::set_link(int ifindex, bool up, uint32_t mtu) {
  Msg m(RTM_NEWLINK, NLM_F_ACK);
  ifinfomsg ifi{};
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = up ? IFF_UP : 0;
  ifi.ifi_change = IFF_UP;
  m.fixed(ifi);
  if (mtu != 0) m.attr_u32(IFLA_MTU, mtu);
  return exchange(m.done(seq_++), false, [](const nlmsghdr&) { return Status{}; });
}

namespace {
std::vector<uint8_t> addr_msg(uint16_t type, uint16_t flags, const NlAddr& a, uint32_t seq) {
  Msg m(type, flags | NLM_F_ACK);
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<unsigned char>(a.family);
  ifa.ifa_prefixlen = static_cast<unsigned char>(a.prefixlen);
  ifa.ifa_flags = static_cast<unsigned char>(a.flags & 0xff);
  ifa.ifa_scope = static_cast<unsigned char>(a.scope);
  ifa.ifa_index = static_cast<unsigned>(a.ifindex);
  m.fixed(ifa);
  if (!a.local.empty()) m.attr(IFA_LOCAL, a.local);
  if (!a.address.empty()) m.attr(IFA_ADDRESS, a.address);
  if (type == RTM_NEWADDR) m.attr_u32(IFA_FLAGS, a.flags);
  return m.done(seq);
}
}  // namespace

Status Rtnl::add_addr(const NlAddr& a) {
  Status st = exchange(addr_msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, a, seq_++), false,
                       [](const nlmsghdr&) { return Status{}; });
  if (!st.ok() && st.error().code == EEXIST) return {};
  return st;
}

Status Rtnl::del_addr(const NlAddr& a) {
  return exchange(addr_msg(RTM_DELADDR, 0, a, seq_++), false,
                  [](const nlmsghdr&) { return Status{}; });
}

Status Rtnl::add_route(const NlRoute& r) {
  Msg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
  rtmsg rt{};
  rt.rtm_family = static_cast<unsigned char>(r.family);
  rt.rtm_dst_len = static_cast<unsigned char>(r.dst_len);
  rt.rtm_table = r.table < 256 ? static_cast<unsigned char>(r.table)
                               : static_cast<unsigned char>(RT_TABLE_UNSPEC);
  rt.rtm_protocol = static_cast<unsigned char>(r.protocol);
  rt.rtm_scope = static_cast<unsigned char>(r.scope);
  rt.rtm_type = static_cast<unsigned char>(r.type);
  m.fixed(rt);
  m.attr_u32(RTA_TABLE, r.table);
  if (!r.dst.empty()) m.attr(RTA_DST, r.dst);
  if (!r.gateway.empty()) m.attr(RTA_GATEWAY, r.gateway);
  if (!r.prefsrc.empty()) m.attr(RTA_PREFSRC, r.prefsrc);
  if (r.oif != 0) m.attr_u32(RTA_OIF, static_cast<uint32_t>(r.oif));
  if (r.priority != 0) m.attr_u32(RTA_PRIORITY, r.priority);
  if (!r.metrics.empty()) m.attr(RTA_METRICS, r.metrics);
  return exchange(m.done(seq_++), false, [](const nlmsghdr&) { return Status{}; });
}

Status Rtnl::add_veth(const std::string& name, const std::vector<uint8_t>& address, uint32_t mtu,
                      const std::string& peer, const std::vector<uint8_t>& peer_address,
                      int peer_ns) {
  Msg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
  m.fixed(ifinfomsg{});
  m.attr_str(IFLA_IFNAME, name);
  if (!address.empty()) m.attr(IFLA_ADDRESS, address);
  if (mtu != 0) m.attr_u32(IFLA_MTU, mtu);
  const size_t info = m.begin(IFLA_LINKINFO);
  m.attr_str(IFLA_INFO_KIND, "veth");
  const size_t data = m.begin(IFLA_INFO_DATA);
  const size_t pe = m.begin(VETH_INFO_PEER);
  m.fixed(ifinfomsg{});  // the peer's own header, then its attributes
  m.attr_str(IFLA_IFNAME, peer);
  if (!peer_address.empty()) m.attr(IFLA_ADDRESS, peer_address);
  if (mtu != 0) m.attr_u32(IFLA_MTU, mtu);
  if (peer_ns >= 0) m.attr_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_ns));
  m.end(pe);
  m.end(data);
  m.end(info);
  return exchange(m.done(seq_++), false, [](const nlmsghdr&) { return Status{}; });
}

Status Rtnl::set_master_up(int ifindex, int master) {
  Msg m(RTM_NEWLINK, NLM_F_ACK);
  ifinfomsg ifi{};
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  m.fixed(ifi);
  if (master != 0) m.attr_u32(IFLA_MASTER, static_cast<uint32_t>(master));
  return exchange(m.done(seq_++), false, [](const nlmsghdr&) { return Status{}; });
}

}  // namespace cr::sys
