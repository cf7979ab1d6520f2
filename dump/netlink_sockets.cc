// AF_NETLINK sockets: read through crdump's copy of each (pidfd_getfd), the very socket the
// task holds. A netlink socket's state is its port id, its multicast groups, the peer it is
// connected to, a few flags and what is queued. The queue holds the kernel's answers and
// notifications: nothing can put them back at restore, so a socket with anything queued (or
// with a dump still being produced into it) is refused. Protocols are taken one by one: only
// those whose socket holds no state beyond the above in the kernel.
#include "dump/netlink_sockets.h"

#include <linux/netlink.h>
#include <sys/socket.h>

#include <cstdio>
#include <set>

#include "common/text.h"
#include "dump/passes.h"
#include "sys/proc_parse.h"

namespace cr::dump {

namespace {

#ifndef NETLINK_LIST_MEMBERSHIPS
#define NETLINK_LIST_MEMBERSHIPS 9
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

struct IntOpt {
  int level, name;
};
// The options a program sets on a netlink socket; each written when it differs from a new
// socket's of the same protocol.
constexpr IntOpt kOpts[] = {
    {SOL_NETLINK, NETLINK_PKTINFO},
    {SOL_NETLINK, NETLINK_BROADCAST_ERROR},
    {SOL_NETLINK, NETLINK_NO_ENOBUFS},
    {SOL_NETLINK, NETLINK_LISTEN_ALL_NSID},
    {SOL_NETLINK, NETLINK_CAP_ACK},
    {SOL_NETLINK, NETLINK_EXT_ACK},
    {SOL_NETLINK, NETLINK_GET_STRICT_CHK},
    {SOL_SOCKET, SO_SNDBUF},
    {SOL_SOCKET, SO_RCVBUF},
};

// Supported: protocols whose kernel side keeps nothing per socket that a new socket with the
// same port id, groups and flags would not have. NETLINK_GENERIC's multicast group numbers
// are handed out as families register (they may differ on another boot or machine), so its
// sockets are kept without groups only.
bool supported(uint32_t protocol) {
  return protocol == NETLINK_ROUTE || protocol == NETLINK_GENERIC ||
         protocol == NETLINK_KOBJECT_UEVENT || protocol == NETLINK_AUDIT;
}

Result<int> get_int(int s, int level, int name) {
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(s, level, name, &v, &len) != 0)
    return errno_error("getsockopt(" + std::to_string(level) + ", " + std::to_string(name) + ")");
  return v;
}

// The values of kOpts on a new socket of `protocol`, made once per protocol.
Result<std::vector<int>> defaults_of(uint32_t type, uint32_t protocol) {
  static std::map<std::pair<uint32_t, uint32_t>, std::vector<int>> cache;
  auto key = std::make_pair(type, protocol);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  ScopedFd s(
      ::socket(AF_NETLINK, static_cast<int>(type) | SOCK_CLOEXEC, static_cast<int>(protocol)));
  if (!s.valid()) return errno_error("socket (for the default options)");
  std::vector<int> v;
  for (const IntOpt& o : kOpts) {
    auto r = get_int(s.get(), o.level, o.name);
    v.push_back(r.ok() ? *r : -1);
  }
  return cache.emplace(key, std::move(v)).first->second;
}

// Every group the socket joined, 1-based: the kernel's bitmap, which bind() shows only the
// first 32 of.
Result<std::vector<uint64_t>> memberships(int s) {
  std::vector<uint32_t> words(8);
  for (;;) {
    socklen_t len = static_cast<socklen_t>(words.size() * sizeof(uint32_t));
    if (::getsockopt(s, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words.data(), &len) != 0)
      return errno_error("getsockopt NETLINK_LIST_MEMBERSHIPS");
    // The kernel says how much it needed; with too small a buffer, ask again.
    if (len <= words.size() * sizeof(uint32_t)) {
      words.resize(len / sizeof(uint32_t));
      break;
    }
    words.resize((len + sizeof(uint32_t) - 1) / sizeof(uint32_t));
  }
  std::vector<uint64_t> groups;
  for (size_t w = 0; w < words.size(); ++w)
    for (unsigned b = 0; b < 32; ++b)
      if (words[w] & (1u << b)) groups.push_back(w * 32 + b + 1);
  return groups;
}

Result<std::set<uint64_t>> dumping_inodes() {
  FILE* f = std::fopen("/proc/net/netlink", "re");
  if (!f) return errno_error("/proc/net/netlink");
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  CR_TRY_ASSIGN(auto v, parse_netlink_dumping(text));
  return std::set<uint64_t>(v.begin(), v.end());
}

}  // namespace

std::string netlink_protocol_name(uint32_t protocol) {
  switch (protocol) {
    case NETLINK_ROUTE:
      return "route";
    case NETLINK_USERSOCK:
      return "usersock";
    case NETLINK_FIREWALL:
      return "firewall";
    case NETLINK_SOCK_DIAG:
      return "sock_diag";
    case NETLINK_NFLOG:
      return "nflog";
    case NETLINK_XFRM:
      return "xfrm";
    case NETLINK_SELINUX:
      return "selinux";
    case NETLINK_ISCSI:
      return "iscsi";
    case NETLINK_AUDIT:
      return "audit";
    case NETLINK_FIB_LOOKUP:
      return "fib_lookup";
    case NETLINK_CONNECTOR:
      return "connector";
    case NETLINK_NETFILTER:
      return "netfilter";
    case NETLINK_IP6_FW:
      return "ip6_fw";
    case NETLINK_DNRTMSG:
      return "dnrtmsg";
    case NETLINK_KOBJECT_UEVENT:
      return "kobject_uevent";
    case NETLINK_GENERIC:
      return "generic";
    case NETLINK_SCSITRANSPORT:
      return "scsitransport";
    case NETLINK_ECRYPTFS:
      return "ecryptfs";
    case NETLINK_RDMA:
      return "rdma";
    case NETLINK_CRYPTO:
      return "crypto";
    case NETLINK_SMC:
      return "smc";
    default:
      return "protocol " + std::to_string(protocol);
  }
}

Result<std::vector<uint64_t>> parse_netlink_dumping(std::string_view text) {
  // "sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode", a header line first.
  std::vector<uint64_t> out;
  auto lines = sys::split_lines(text);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string_view> f;
    std::string_view l = lines[i];
    while (!l.empty()) {
      size_t b = l.find_first_not_of(' ');
      if (b == std::string_view::npos) break;
      l.remove_prefix(b);
      size_t e = l.find(' ');
      f.push_back(l.substr(0, e));
      l.remove_prefix(e == std::string_view::npos ? l.size() : e);
    }
    if (f.empty()) continue;
    auto dump = f.size() >= 10 ? sys::parse_uint(f[6]) : std::nullopt;
    auto ino = f.size() >= 10 ? sys::parse_uint(f[9]) : std::nullopt;
    if (!dump || !ino)
      return make_error("/proc/net/netlink line " + std::to_string(i + 1) + ": unexpected format");
    if (*dump != 0) out.push_back(*ino);
  }
  return out;
}

Result<uint32_t> NetlinkSocketCollector::add(DumpContext& proc, int fd, uint64_t ino, ScopedFd s) {
  if (auto it = entries_.find(ino); it != entries_.end()) return it->second.id;
  Entry e;
  e.id = tree_.next_obj_id++;
  e.proc = &proc;
  e.fd = fd;
  e.s = std::move(s);
  entries_[ino] = std::move(e);
  order_.push_back(ino);
  return entries_[ino].id;
}

Status NetlinkSocketCollector::describe(Entry& e, uint64_t ino, schema::NetlinkSocket& rec) {
  const int s = e.s.get();
  rec.id = e.id;
  rec.ino = ino;
  CR_TRY_ASSIGN(int type, get_int(s, SOL_SOCKET, SO_TYPE));
  CR_TRY_ASSIGN(int protocol, get_int(s, SOL_SOCKET, SO_PROTOCOL));
  rec.type = static_cast<uint32_t>(type);
  rec.protocol = static_cast<uint32_t>(protocol);
  const std::string what = "netlink " + netlink_protocol_name(rec.protocol) + " socket";
  if (!supported(rec.protocol)) return make_error(what + " not supported yet");
  if (type != SOCK_RAW && type != SOCK_DGRAM)
    return make_error(what + " of type " + std::to_string(type) + " not supported yet");

  sockaddr_nl a{};
  socklen_t len = sizeof a;
  if (::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return errno_error("getsockname");
  // Port id 0 is the kernel's: a socket shows it until it is bound (or autobound by its first
  // send or connect).
  if (a.nl_pid != 0) {
    rec.flags |= schema::kNetlinkBound;
    rec.portid = a.nl_pid;
  }
  sockaddr_nl p{};
  len = sizeof p;
  // getpeername never fails on netlink: an unconnected socket shows port 0, group 0.
  if (::getpeername(s, reinterpret_cast<sockaddr*>(&p), &len) == 0 &&
      (p.nl_pid != 0 || p.nl_groups != 0)) {
    rec.flags |= schema::kNetlinkConnected;
    rec.dst_portid = p.nl_pid;
    rec.dst_group = p.nl_groups;
  }
  CR_TRY_ASSIGN(rec.groups, memberships(s));
  if (rec.protocol == NETLINK_GENERIC && !rec.groups.empty())
    return make_error(what +
                      " in multicast groups not supported yet (their numbers are given "
                      "out as generic netlink families register)");

  // A message queued, even an empty one, peeks as a length; an empty queue as EAGAIN.
  char b;
  if (::recv(s, &b, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) >= 0)
    return make_error(what + " with messages queued not supported yet");
  len = 0;
  if (::getsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, nullptr, &len) == 0 && len != 0)
    return make_error(what + " with a socket filter (SO_ATTACH_FILTER) not supported yet");

  CR_TRY_ASSIGN(auto defs, defaults_of(rec.type, rec.protocol));
  for (size_t i = 0; i < std::size(kOpts); ++i) {
    auto v = get_int(s, kOpts[i].level, kOpts[i].name);
    if (!v.ok() || *v == defs[i]) continue;
    rec.opts.push_back(schema::SocketOption{kOpts[i].level, kOpts[i].name, *v}.encode());
  }
  return {};
}

Status NetlinkSocketCollector::finish() {
  if (order_.empty()) return {};
  auto where = [&](const Entry& e) {
    return (e.proc == tree_.procs.front().get() ? ""
                                                : "pid " + std::to_string(e.proc->pid) + ": ") +
           fd_name(e.fd);
  };
  // A dump the program asked for and has not read to its end goes on filling the queue as
  // the program reads: the kernel's callback state is not something a restore can rebuild.
  CR_TRY_ASSIGN(auto dumping, dumping_inodes());
  for (uint64_t ino : order_) {
    Entry& e = entries_.at(ino);
    schema::NetlinkSocket rec;
    auto st = describe(e, ino, rec);
    if (st.ok() && dumping.count(ino) != 0)
      st = make_error("netlink " + netlink_protocol_name(rec.protocol) +
                      " socket with a dump (NLM_F_DUMP) under way not supported yet");
    if (!st.ok()) {
      CR_TRY(tree_.refuse(e.proc->pid, std::move(st).error().wrap(where(e))));
      continue;  // a dry run: the next socket
    }
    tree_.files.netlink_sockets.push_back(std::move(rec));
  }
  return {};
}

}  // namespace cr::dump
