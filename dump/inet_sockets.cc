// AF_INET and AF_INET6 sockets: read through crdump's copy of each (pidfd_getfd), which is the
// very socket the task holds. Options are compared with a new socket's of the same kind, so
// only what the program changed is written (and set again at restore). An established TCP
// connection is read with TCP_REPAIR, which shows what no other interface does: the sequence
// numbers, both queues (the send queue too, acknowledged or not), the window and the options
// negotiated with the peer. Before that, the network lock stops every packet of every such
// connection, so nothing moves under the reading and the peer is never answered by a closed
// port while the tree is away.
#include "dump/inet_sockets.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <tuple>

#include "common/text.h"
#include "dump/passes.h"
#include "sys/kernel_features.h"

namespace cr::dump {

namespace {

#ifndef TCP_REPAIR_WINDOW
#define TCP_REPAIR_WINDOW 29
#endif
#ifndef SIOCOUTQNSD
#define SIOCOUTQNSD 0x894B
#endif
#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

// Datagrams written per socket at most: a queue is bounded by its receive buffer anyway.
constexpr size_t kMaxDatagrams = 65536;

struct RepairWindow {  // struct tcp_repair_window (Linux 4.8)
  uint32_t snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;
};

// The integer options written when they differ from a new socket's, by level (the IPv6 ones
// for AF_INET6 only, TCP and UDP ones for their protocol). TCP_WINDOW_CLAMP is not among them:
// a connection's own clamp is the kernel's, set again with the window at restore.
struct IntOpt {
  int level, name;
  const char* text;
};
constexpr IntOpt kSocketOpts[] = {
    {SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"},     {SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT"},
    {SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE"},     {SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST"},
    {SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF"},           {SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF"},
    {SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY"},       {SOL_SOCKET, SO_MARK, "SO_MARK"},
    {SOL_SOCKET, SO_RCVLOWAT, "SO_RCVLOWAT"},       {SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE"},
    {SOL_SOCKET, SO_DONTROUTE, "SO_DONTROUTE"},     {SOL_SOCKET, SO_TIMESTAMP, "SO_TIMESTAMP"},
    {SOL_SOCKET, SO_TIMESTAMPNS, "SO_TIMESTAMPNS"},
};
constexpr IntOpt kIpOpts[] = {
    {IPPROTO_IP, IP_TOS, "IP_TOS"},
    {IPPROTO_IP, IP_TTL, "IP_TTL"},
    {IPPROTO_IP, IP_FREEBIND, "IP_FREEBIND"},
    {IPPROTO_IP, IP_TRANSPARENT, "IP_TRANSPARENT"},
    {IPPROTO_IP, IP_RECVERR, "IP_RECVERR"},
    {IPPROTO_IP, IP_PKTINFO, "IP_PKTINFO"},
    {IPPROTO_IP, IP_RECVTTL, "IP_RECVTTL"},
    {IPPROTO_IP, IP_RECVTOS, "IP_RECVTOS"},
    {IPPROTO_IP, IP_MTU_DISCOVER, "IP_MTU_DISCOVER"},
    {IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, "IP_BIND_ADDRESS_NO_PORT"},
};
// Multicast options: datagram sockets only (a TCP socket shows values it refuses to take).
constexpr IntOpt kMulticastOpts[] = {
    {IPPROTO_IP, IP_MULTICAST_TTL, "IP_MULTICAST_TTL"},
    {IPPROTO_IP, IP_MULTICAST_LOOP, "IP_MULTICAST_LOOP"},
};
constexpr IntOpt kMulticast6Opts[] = {
    {IPPROTO_IPV6, IPV6_MULTICAST_HOPS, "IPV6_MULTICAST_HOPS"},
    {IPPROTO_IPV6, IPV6_MULTICAST_LOOP, "IPV6_MULTICAST_LOOP"},
};
constexpr IntOpt kIpv6Opts[] = {
    {IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY"},
    {IPPROTO_IPV6, IPV6_TCLASS, "IPV6_TCLASS"},
    {IPPROTO_IPV6, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS"},
    {IPPROTO_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO"},
    {IPPROTO_IPV6, IPV6_RECVERR, "IPV6_RECVERR"},
    {IPPROTO_IPV6, IPV6_MTU_DISCOVER, "IPV6_MTU_DISCOVER"},
    {IPPROTO_IPV6, 75 /* IPV6_TRANSPARENT */, "IPV6_TRANSPARENT"},
    {IPPROTO_IPV6, 78 /* IPV6_FREEBIND */, "IPV6_FREEBIND"},
};
constexpr IntOpt kTcpOpts[] = {
    {IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"},
    {IPPROTO_TCP, TCP_CORK, "TCP_CORK"},
    {IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE"},
    {IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL"},
    {IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT"},
    {IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT"},
    {IPPROTO_TCP, TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT"},
    {IPPROTO_TCP, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT"},
    {IPPROTO_TCP, TCP_FASTOPEN, "TCP_FASTOPEN"},
    {IPPROTO_TCP, TCP_LINGER2, "TCP_LINGER2"},
    {IPPROTO_TCP, TCP_SYNCNT, "TCP_SYNCNT"},
    {IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, "TCP_THIN_LINEAR_TIMEOUTS"},
};
constexpr IntOpt kUdpOpts[] = {
    {IPPROTO_UDP, UDP_CORK, "UDP_CORK"},
    {IPPROTO_UDP, 103 /* UDP_SEGMENT */, "UDP_SEGMENT"},
    {IPPROTO_UDP, 104 /* UDP_GRO */, "UDP_GRO"},
};
// UDP-Lite's checksum coverage, sent and required (0: the whole datagram).
constexpr IntOpt kUdpliteOpts[] = {
    {IPPROTO_UDPLITE, 10 /* UDPLITE_SEND_CSCOV */, "UDPLITE_SEND_CSCOV"},
    {IPPROTO_UDPLITE, 11 /* UDPLITE_RECV_CSCOV */, "UDPLITE_RECV_CSCOV"},
};

const char* tcp_state_name(int st) {
  static const char* const names[] = {
      "?",     "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",   "TIME_WAIT",
      "CLOSE", "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",   "NEW_SYN_RECV"};
  return st >= 0 && st < 13 ? names[st] : "?";
}

std::string proto_name(const schema::InetSocket& r) {
  const bool v6 = r.family == AF_INET6;
  switch (r.protocol) {
    case IPPROTO_TCP:
      return v6 ? "tcp6" : "tcp";
    case IPPROTO_UDP:
      return v6 ? "udp6" : "udp";
    case IPPROTO_UDPLITE:
      return v6 ? "udplite6" : "udplite";
    case IPPROTO_ICMP:
      return "ping";
    case IPPROTO_ICMPV6:
      return "ping6";
    default:
      return (v6 ? "inet6 protocol " : "inet protocol ") + std::to_string(r.protocol);
  }
}

// The states a connection is kept in (with --tcp-established): established or half closed.
bool connection_state(uint32_t st) {
  return st == TCP_ESTABLISHED || st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 ||
         st == TCP_CLOSE_WAIT || st == TCP_LAST_ACK || st == TCP_CLOSING;
}

bool fin_sent(uint32_t st) {
  return st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 || st == TCP_LAST_ACK || st == TCP_CLOSING;
}

Result<int> get_int(int s, int level, int name, const char* text) {
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(s, level, name, &v, &len) != 0)
    return errno_error(std::string("getsockopt ") + text);
  return v;
}

// Address bytes and host-order port of a sockaddr (v4: 4 bytes, v6: 16).
std::pair<std::vector<uint8_t>, uint32_t> endpoint(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    const auto* b = reinterpret_cast<const uint8_t*>(&a.sin_addr);
    return {{b, b + 4}, ntohs(a.sin_port)};
  }
  const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
  const auto* b = reinterpret_cast<const uint8_t*>(&a.sin6_addr);
  return {{b, b + 16}, ntohs(a.sin6_port)};
}

bool all_zero(const std::vector<uint8_t>& v) {
  for (uint8_t b : v)
    if (b != 0) return false;
  return true;
}

// What a lock rule matches: a v4-mapped IPv6 address is an IPv4 packet.
sys::TcpTuple tuple_of(const schema::InetSocket& r) {
  sys::TcpTuple t;
  auto mapped = [](const std::vector<uint8_t>& a) {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return a.size() == 16 && std::memcmp(a.data(), prefix, 12) == 0;
  };
  const bool v4 = r.src.size() == 4 || (mapped(r.src) && mapped(r.dst));
  t.family = v4 ? AF_INET : AF_INET6;
  const size_t off = r.src.size() == 16 && v4 ? 12 : 0;
  std::memcpy(t.src.data(), r.src.data() + off, r.src.size() - off);
  std::memcpy(t.dst.data(), r.dst.data() + off, r.dst.size() - off);
  t.sport = static_cast<uint16_t>(r.src_port);
  t.dport = static_cast<uint16_t>(r.dst_port);
  return t;
}

// A new socket of the same kind: the defaults options are compared with.
class Defaults {
 public:
  Result<std::vector<std::pair<const IntOpt*, int>>> of(int family, int type, int protocol,
                                                        std::string* congestion) {
    auto key = std::make_tuple(family, type, protocol);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      ScopedFd s(::socket(family, type | SOCK_CLOEXEC, protocol));
      if (!s.valid()) return errno_error("socket (for the default options)");
      Entry e;
      for_each_opt(family, protocol, [&](const IntOpt& o) {
        int v = 0;
        socklen_t len = sizeof v;
        if (::getsockopt(s.get(), o.level, o.name, &v, &len) == 0) e.values.emplace_back(&o, v);
      });
      if (protocol == IPPROTO_TCP) {
        char cc[32] = {};
        socklen_t len = sizeof cc;
        if (::getsockopt(s.get(), IPPROTO_TCP, TCP_CONGESTION, cc, &len) == 0) e.congestion = cc;
      }
      it = cache_.emplace(key, std::move(e)).first;
    }
    if (congestion) *congestion = it->second.congestion;
    return it->second.values;
  }

  template <class F>
  static void for_each_opt(int family, int protocol, F&& f) {
    for (const IntOpt& o : kSocketOpts) f(o);
    // An IPv6 socket also takes the IPv4 options (its v4-mapped traffic uses them).
    for (const IntOpt& o : kIpOpts) f(o);
    if (family == AF_INET6)
      for (const IntOpt& o : kIpv6Opts) f(o);
    if (protocol == IPPROTO_TCP)
      for (const IntOpt& o : kTcpOpts) f(o);
    if (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE)
      for (const IntOpt& o : kUdpOpts) f(o);
    if (protocol == IPPROTO_UDPLITE)
      for (const IntOpt& o : kUdpliteOpts) f(o);
    if (protocol != IPPROTO_TCP) {
      for (const IntOpt& o : kMulticastOpts) f(o);
      if (family == AF_INET6)
        for (const IntOpt& o : kMulticast6Opts) f(o);
    }
  }

 private:
  struct Entry {
    std::vector<std::pair<const IntOpt*, int>> values;
    std::string congestion;
  };
  std::map<std::tuple<int, int, int>, Entry> cache_;
};

Defaults& defaults() {
  static Defaults d;
  return d;
}

// Every byte of the queue TCP_REPAIR_QUEUE selected, `len` of them, without consuming any.
Result<std::vector<uint8_t>> peek_tcp_queue(int s, uint32_t len, const char* which) {
  std::vector<uint8_t> buf(len);
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::recv(s, buf.data() + got, len - got, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(std::string("recv(MSG_PEEK) of the ") + which + " queue");
    if (n == 0) break;
    got += static_cast<size_t>(n);
    // A peek reads from the start each time: one call must take it all.
    if (got < len)
      return make_error(std::string("the ") + which + " queue gave " + std::to_string(got) +
                        " of its " + std::to_string(len) + " bytes to one read");
  }
  if (got != len)
    return make_error(std::string("the ") + which + " queue holds " + std::to_string(got) +
                      " bytes, " + std::to_string(len) + " expected");
  return buf;
}

Status set_queue(int s, int q) {
  if (::setsockopt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) != 0)
    return errno_error("setsockopt TCP_REPAIR_QUEUE");
  return {};
}

}  // namespace

std::string inet_socket_text(const schema::InetSocket& r) {
  std::string s = proto_name(r) + " ";
  s += r.src.empty() ? std::string("(unbound)") : inet_endpoint_text(r.src, r.src_port);
  if (!r.dst.empty()) s += " -> " + inet_endpoint_text(r.dst, r.dst_port);
  return s;
}

Status NetState::resume() {
  Status first;
  for (Repaired& r : repaired) {
    int off = 0;  // TCP_REPAIR_OFF: the connection carries on (the kernel probes the window)
    if (::setsockopt(r.s.get(), IPPROTO_TCP, TCP_REPAIR, &off, sizeof off) != 0 && first.ok())
      first = errno_error("setsockopt TCP_REPAIR off");
    // Repair off leaves SO_REUSEADDR off (the kernel's repair mode forces reuse, then drops it).
    if (::setsockopt(r.s.get(), SOL_SOCKET, SO_REUSEADDR, &r.reuse, sizeof r.reuse) != 0 &&
        first.ok())
      first = errno_error("setsockopt SO_REUSEADDR");
  }
  repaired.clear();
  Status st = lock.release();
  if (!st.ok() && first.ok()) first = std::move(st).error().wrap("network unlock");
  return first;
}

void NetState::leave_for_restore() {
  repaired.clear();
  lock.keep();
}

Result<uint32_t> InetSocketCollector::add(DumpContext& proc, int fd, uint64_t ino, ScopedFd s,
                                          int family) {
  if (auto it = entries_.find(ino); it != entries_.end()) return it->second.id;
  Entry e;
  e.id = tree_.next_obj_id++;
  e.proc = &proc;
  e.fd = fd;
  e.family = family;
  e.s = std::move(s);
  entries_[ino] = std::move(e);
  order_.push_back(ino);
  return entries_[ino].id;
}

Status InetSocketCollector::describe(Entry& e, schema::InetSocket& rec) {
  const int s = e.s.get();
  rec.id = e.id;
  rec.family = static_cast<uint32_t>(e.family);
  CR_TRY_ASSIGN(int type, get_int(s, SOL_SOCKET, SO_TYPE, "SO_TYPE"));
  CR_TRY_ASSIGN(int protocol, get_int(s, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL"));
  rec.type = static_cast<uint32_t>(type);
  rec.protocol = static_cast<uint32_t>(protocol);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return errno_error("getsockname");
  std::tie(rec.src, rec.src_port) = endpoint(ss);
  len = sizeof ss;
  const bool has_peer = ::getpeername(s, reinterpret_cast<sockaddr*>(&ss), &len) == 0;
  if (has_peer) std::tie(rec.dst, rec.dst_port) = endpoint(ss);
  if (rec.src_port == 0 && all_zero(rec.src)) rec.src.clear();  // never bound

  // The program's own peek offset would move with crdump's peeks (and a restore could not
  // say where it was in the queue).
  auto peek = get_int(s, SOL_SOCKET, SO_PEEK_OFF, "SO_PEEK_OFF");
  if (peek.ok() && *peek >= 0)
    return make_error(inet_socket_text(rec) + " with SO_PEEK_OFF set not supported yet");
  const bool tcp = type == SOCK_STREAM && protocol == IPPROTO_TCP;
  const bool dgram =
      type == SOCK_DGRAM && (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE ||
                             protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6);
  if (!tcp && !dgram) {
    if (type == SOCK_RAW) return make_error("raw socket (SOCK_RAW) not supported yet");
    return make_error(proto_name(rec) + " socket of type " + std::to_string(type) +
                      " not supported yet");
  }
  if (tcp) {
    tcp_info ti{};
    len = sizeof ti;
    if (::getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return errno_error("TCP_INFO");
    switch (ti.tcpi_state) {
      case TCP_CLOSE:
        rec.state = schema::kInetClosed;
        break;
      case TCP_LISTEN:
        // For a listener tcp_info counts its accept queue (unacked) and backlog (sacked).
        // Their sockets have no fd before accept(), and a connection's sequence numbers
        // cannot be put into a new listener's queue: kept they cannot be.
        // One from a client of the tree that has sent nothing: it connects again.
        if (ti.tcpi_unacked != 0 && !e.proc->opts.skip_in_flight &&
            listeners_with_pending_.count(rec.ino) == 0)
          return make_error("listening " + inet_socket_text(rec) + " with " +
                            std::to_string(ti.tcpi_unacked) +
                            " connections not yet accepted (kept only for one from a client of "
                            "the tree that has sent nothing; dump with --skip-in-flight to "
                            "leave them out: their clients see a reset and connect again)");
        rec.state = schema::kInetListening;
        rec.backlog = ti.tcpi_sacked;
        break;
      case TCP_ESTABLISHED:
        if (pending_clients_.count(rec.ino) != 0) {
          rec.state = schema::kInetConnecting;
          break;
        }
        [[fallthrough]];
      case TCP_FIN_WAIT1:
      case TCP_FIN_WAIT2:
      case TCP_CLOSE_WAIT:
      case TCP_LAST_ACK:
      case TCP_CLOSING:
        if (!e.proc->opts.tcp_established)
          return make_error(
              std::string(ti.tcpi_state == TCP_ESTABLISHED ? "established" : "half-closed") +
              " connection " + inet_socket_text(rec) +
              (ti.tcpi_state == TCP_ESTABLISHED
                   ? ""
                   : " (" + std::string(tcp_state_name(ti.tcpi_state)) + ")") +
              " (dump with --tcp-established to keep it)");
        rec.state = schema::kInetEstablished;
        if (ti.tcpi_state != TCP_ESTABLISHED) {
          rec.tcp_state = ti.tcpi_state;
          tree_.procs.front()->process.flags |= schema::kProcessTcpHalfClosed;
        }
        break;
      default:
        return make_error(inet_socket_text(rec) + " in TCP state " + tcp_state_name(ti.tcpi_state) +
                          " not supported yet");
    }
  } else {
    rec.state = has_peer ? schema::kInetConnected : schema::kInetClosed;
    // A datagram queued, even of zero bytes, peeks as a length; an empty queue as EAGAIN.
    char b;
    ssize_t n = ::recv(s, &b, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
    // A ping socket's queue cannot be walked: its kernel side has no SO_PEEK_OFF, so only the
    // first reply can be read without taking it from the program.
    if (n >= 0 && protocol != IPPROTO_UDP && protocol != IPPROTO_UDPLITE)
      return make_error(inet_socket_text(rec) +
                        " with echo replies queued not supported (the kernel cannot peek past "
                        "the first)");
    if (n >= 0) CR_TRY(peek_datagrams(s, rec));
    int outq = 0;
    if (::ioctl(s, SIOCOUTQ, &outq) == 0 && outq > 0)
      return make_error(inet_socket_text(rec) + " with " + std::to_string(outq) +
                        " bytes corked or not yet sent not supported yet");
  }
  if (!rec.src.empty() && rec.state != schema::kInetEstablished) rec.flags |= schema::kInetBound;

  // Options: each one that differs from a new socket's.
  std::string default_cc;
  CR_TRY_ASSIGN(auto defs, defaults().of(e.family, type, protocol, &default_cc));
  for (const auto& [o, dv] : defs) {
    int v = 0;
    socklen_t l = sizeof v;
    if (::getsockopt(s, o->level, o->name, &v, &l) != 0) continue;
    if (v == dv) continue;
    rec.opts.push_back(schema::SocketOption{o->level, o->name, v}.encode());
  }
  linger lg{};
  len = sizeof lg;
  if (::getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff != 0) {
    rec.flags |= schema::kInetLinger;
    rec.linger = static_cast<uint32_t>(lg.l_linger);
  }
  char dev[IFNAMSIZ + 1] = {};
  len = IFNAMSIZ;
  if (::getsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, dev, &len) == 0) rec.bind_dev = dev;
  if (tcp) {
    char cc[32] = {};
    len = sizeof cc;
    if (::getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &len) == 0 && default_cc != cc)
      rec.congestion = cc;
  }
  // Shown nowhere but by asking: IP options (not restored yet), multicast memberships.
  if (e.family == AF_INET) {
    uint8_t ipopts[40];
    len = sizeof ipopts;
    if (::getsockopt(s, IPPROTO_IP, IP_OPTIONS, ipopts, &len) == 0 && len > 0)
      return make_error(inet_socket_text(rec) + " with IP options (IP_OPTIONS) not supported yet");
  }
  if (!tcp) CR_TRY(check_memberships(s, e.family, rec));
  // What cannot be read back is refused: a filter program, and peek offsets (a peek at
  // restore would move them).
  len = 0;
  if (::getsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, nullptr, &len) == 0 && len != 0)
    return make_error(inet_socket_text(rec) +
                      " with a socket filter (SO_ATTACH_FILTER) not supported yet");
  if (rec.state == schema::kInetEstablished && !tree_.dry_run) CR_TRY(read_connection(e, rec));
  return {};
}

// The multicast groups of a socket: no interface lists them, so each group some socket joined on
// this machine (/proc/net/igmp, igmp6) is asked about: MCAST_MSFILTER answers for a member
// only, with its source filter. Each membership becomes an InetMcast with that filter.
Status InetSocketCollector::check_memberships(int s, int family, const schema::InetSocket& rec) {
  if (!groups_) {
    CR_TRY_ASSIGN(ProcDir self, ProcDir::open(::getpid()));
    groups_.emplace();
    for (const char* file : {"net/igmp", "net/igmp6"}) {
      auto text = self.read(file);
      if (!text.ok()) continue;  // no IPv4 or IPv6 on this machine: no groups of it either
      auto parsed =
          std::string_view(file) == "net/igmp" ? sys::parse_igmp(*text) : sys::parse_igmp6(*text);
      if (!parsed.ok()) return std::move(parsed).error();
      groups_->insert(groups_->end(), parsed->begin(), parsed->end());
    }
  }
  for (const sys::McastGroup& g : *groups_) {
    const bool v4 = g.group.size() == 4;
    if ((family == AF_INET) != v4) continue;
    // Room for kMaxSources sources: more than the kernel's default limit (igmp_max_msf 10).
    constexpr uint32_t kMaxSources = 64;
    std::vector<uint8_t> buf(GROUP_FILTER_SIZE(kMaxSources));
    auto* gf = reinterpret_cast<group_filter*>(buf.data());
    gf->gf_interface = static_cast<uint32_t>(g.ifindex);
    gf->gf_numsrc = kMaxSources;  // in: room for so many (the kernel copies no more); out: all
    if (v4) {
      auto* a = reinterpret_cast<sockaddr_in*>(&gf->gf_group);
      a->sin_family = AF_INET;
      std::memcpy(&a->sin_addr, g.group.data(), 4);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&gf->gf_group);
      a->sin6_family = AF_INET6;
      std::memcpy(&a->sin6_addr, g.group.data(), 16);
    }
    socklen_t len = static_cast<socklen_t>(buf.size());
    if (::getsockopt(s, v4 ? IPPROTO_IP : IPPROTO_IPV6, MCAST_MSFILTER, gf, &len) != 0)
      continue;  // not a member
    std::string group = inet_endpoint_text(g.group, 0);
    group.erase(group.rfind(':'));
    if (gf->gf_numsrc > kMaxSources)
      return make_error(inet_socket_text(rec) + " is in multicast group " + group + " on " +
                        g.device + " with over " + std::to_string(kMaxSources) +
                        " sources in its filter: not supported");
    // The filter: include only, or exclude, these sources.
    schema::InetMcast m{rec.id, g.group, g.device, gf->gf_fmode == MCAST_INCLUDE ? 1u : 0u, {}};
    for (uint32_t i = 0; i < gf->gf_numsrc; ++i) {
      const auto& src = gf->gf_slist[i];
      const auto* b = v4 ? reinterpret_cast<const uint8_t*>(
                               &reinterpret_cast<const sockaddr_in*>(&src)->sin_addr)
                         : reinterpret_cast<const uint8_t*>(
                               &reinterpret_cast<const sockaddr_in6*>(&src)->sin6_addr);
      m.sources.insert(m.sources.end(), b, b + (v4 ? 4 : 16));
    }
    tree_.files.inet_mcast.push_back(std::move(m));
  }
  return {};
}

// Every datagram queued on UDP socket `s`, oldest first, with its sender, none consumed: the
// walk moves SO_PEEK_OFF (off before, as describe() checked) from one datagram to the next,
// and turns it off again on every path.
Status InetSocketCollector::peek_datagrams(int s, const schema::InetSocket& rec) {
  int zero = 0, off = -1;
  CR_TRY(tree_.undo.on_death_setopt(s, SOL_SOCKET, SO_PEEK_OFF, off));
  if (::setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) != 0)
    return errno_error("setsockopt SO_PEEK_OFF");
  struct Restore {
    int s, off;
    ~Restore() { ::setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off); }
  } restore{s, off};
  std::vector<uint8_t> buf(65536);
  for (size_t count = 0;; ++count) {
    if (count >= kMaxDatagrams)
      return make_error(inet_socket_text(rec) + " with over " + std::to_string(kMaxDatagrams) +
                        " datagrams queued not supported yet");
    sockaddr_storage from{};
    iovec iov{buf.data(), buf.size()};
    msghdr m{};
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t n = ::recvmsg(s, &m, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return errno_error("recvmsg(MSG_PEEK)");
    if ((m.msg_flags & MSG_TRUNC) != 0) return make_error("a queued datagram over 64 KiB");
    FileTable::InetQueued q{rec.id, schema::kInetDatagram, {buf.begin(), buf.begin() + n}, {}, 0};
    std::tie(q.from, q.from_port) = endpoint(from);
    tree_.files.inet_data.push_back(std::move(q));
  }
  return {};
}

Status InetSocketCollector::read_connection(Entry& e, schema::InetSocket& rec) {
  const int s = e.s.get();
  CR_TRY_ASSIGN(int reuse, get_int(s, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"));
  ScopedFd held(::fcntl(s, F_DUPFD_CLOEXEC, 0));
  if (!held.valid()) return errno_error("dup");
  // Should crdump die from here on, its guardian turns repair off and puts SO_REUSEADDR back.
  CR_TRY(tree_.undo.on_death_setopt(s, SOL_SOCKET, SO_REUSEADDR, reuse));
  CR_TRY(tree_.undo.on_death_setopt(s, IPPROTO_TCP, TCP_REPAIR, 0));
  int on = 1;
  if (::setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != 0)
    return errno_error("setsockopt TCP_REPAIR (needs CAP_NET_ADMIN)");
  // From here on NetState turns repair off again if the dump does not kill the tree.
  tree_.net.repaired.push_back({std::move(held), reuse});

  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return errno_error("TCP_INFO");
  const uint32_t want = rec.tcp_state != 0 ? rec.tcp_state : uint32_t{TCP_ESTABLISHED};
  if (ti.tcpi_state != want)
    return make_error(inet_socket_text(rec) + " left " + std::string(tcp_state_name(want)) + " (" +
                      tcp_state_name(ti.tcpi_state) + ") while it was dumped");
  if (ti.tcpi_options & TCPI_OPT_SACK) rec.flags |= schema::kInetTcpSack;
  if (ti.tcpi_options & TCPI_OPT_WSCALE) {
    rec.flags |= schema::kInetTcpWscale;
    rec.snd_wscale = ti.tcpi_snd_wscale;
    rec.rcv_wscale = ti.tcpi_rcv_wscale;
  }
  CR_TRY_ASSIGN(int mss, get_int(s, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG"));
  rec.mss = static_cast<uint32_t>(mss);
  if (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) {
    rec.flags |= schema::kInetTcpTimestamps;
    CR_TRY_ASSIGN(int ts, get_int(s, IPPROTO_TCP, TCP_TIMESTAMP, "TCP_TIMESTAMP"));
    rec.timestamp = static_cast<uint32_t>(ts);
  }
  RepairWindow w{};
  len = sizeof w;
  if (::getsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) != 0)
    return errno_error("getsockopt TCP_REPAIR_WINDOW");
  rec.snd_wl1 = w.snd_wl1;
  rec.snd_wnd = w.snd_wnd;
  rec.max_window = w.max_window;
  rec.rcv_wnd = w.rcv_wnd;
  rec.rcv_wup = w.rcv_wup;

  int n = 0;
  CR_TRY(set_queue(s, TCP_RECV_QUEUE));
  CR_TRY_ASSIGN(int rseq, get_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ, "TCP_QUEUE_SEQ"));
  rec.rcv_seq = static_cast<uint32_t>(rseq);
  if (::ioctl(s, SIOCINQ, &n) != 0) return errno_error("SIOCINQ");
  rec.inq_len = static_cast<uint32_t>(n);
  if (n > 0) {
    CR_TRY_ASSIGN(auto bytes, peek_tcp_queue(s, rec.inq_len, "receive"));
    tree_.files.inet_data.push_back({rec.id, schema::kInetRecvQueue, std::move(bytes)});
  }
  CR_TRY(set_queue(s, TCP_SEND_QUEUE));
  CR_TRY_ASSIGN(int sseq, get_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ, "TCP_QUEUE_SEQ"));
  rec.snd_seq = static_cast<uint32_t>(sseq);
  if (::ioctl(s, SIOCOUTQ, &n) != 0) return errno_error("SIOCOUTQ");
  rec.outq_len = static_cast<uint32_t>(n);
  if (::ioctl(s, SIOCOUTQNSD, &n) != 0) return errno_error("SIOCOUTQNSD");
  rec.unsent_len = static_cast<uint32_t>(n);
  // Our FIN is in the queue's sequence space (write_seq counts it) but carries no byte: the
  // lengths leave it out (acknowledged, it is out of SIOCOUTQ already; unsent, it is in both).
  if (fin_sent(rec.tcp_state)) {
    if (rec.outq_len > 0) --rec.outq_len;
    if (rec.unsent_len > 0) --rec.unsent_len;
  }
  if (rec.outq_len > 0) {
    CR_TRY_ASSIGN(auto bytes, peek_tcp_queue(s, rec.outq_len, "send"));
    tree_.files.inet_data.push_back({rec.id, schema::kInetSendQueue, std::move(bytes)});
  }
  return set_queue(s, TCP_NO_QUEUE);
}

namespace {
// An address as 4 bytes when it is IPv4 or v4-mapped IPv6 (a dual-stack listener's child).
std::vector<uint8_t> v4_folded(const std::vector<uint8_t>& a) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.size() == 16 && std::equal(kMapped, kMapped + 12, a.begin()))
    return {a.begin() + 12, a.end()};
  return a;
}
}  // namespace

// A listener's accept queue: its connections have no fd before accept() and their sequence
// numbers cannot be put into a new listener's queue. One whose client is a socket of the tree
// that has sent nothing (the connection's server end, /proc/PID/net/tcp's line with no inode,
// has nothing queued, nor has the client) can be made again, by that client connecting to the
// restored listener: the connection carries nothing a new one would not. Several are left
// refused: the order accept() would take them in shows nowhere.
Status InetSocketCollector::find_pending_clients() {
  for (uint64_t ino : order_) {
    Entry& l = entries_.at(ino);
    tcp_info ti{};
    socklen_t len = sizeof ti;
    if (::getsockopt(l.s.get(), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        ti.tcpi_state != TCP_LISTEN || ti.tcpi_unacked != 1)
      continue;
    sockaddr_storage a{};
    socklen_t la = sizeof a;
    if (::getsockname(l.s.get(), reinterpret_cast<sockaddr*>(&a), &la) != 0) continue;
    const auto [laddr, lport] = endpoint(a);
    auto text = l.proc->proc.read(l.family == AF_INET6 ? "net/tcp6" : "net/tcp");
    if (!text.ok()) continue;  // the listener is refused as it was
    auto lines = sys::parse_proc_net_tcp(*text);
    if (!lines.ok()) return std::move(lines).error().wrap("pid " + std::to_string(l.proc->pid));
    std::vector<const sys::ProcTcpSocket*> children;
    for (const sys::ProcTcpSocket& t : *lines)
      if (t.state == TCP_ESTABLISHED && t.inode == 0 && t.local_port == lport &&
          (all_zero(laddr) || v4_folded(t.local) == v4_folded(laddr)))
        children.push_back(&t);
    if (children.size() != 1 || children[0]->rx_queue != 0 || children[0]->tx_queue != 0) continue;
    const sys::ProcTcpSocket& child = *children[0];
    for (uint64_t cino : order_) {
      Entry& c = entries_.at(cino);
      tcp_info ci{};
      len = sizeof ci;
      sockaddr_storage ca{}, cb{};
      socklen_t lca = sizeof ca, lcb = sizeof cb;
      if (::getsockopt(c.s.get(), IPPROTO_TCP, TCP_INFO, &ci, &len) != 0 ||
          ci.tcpi_state != TCP_ESTABLISHED ||
          ::getsockname(c.s.get(), reinterpret_cast<sockaddr*>(&ca), &lca) != 0 ||
          ::getpeername(c.s.get(), reinterpret_cast<sockaddr*>(&cb), &lcb) != 0)
        continue;
      const auto [caddr, cport] = endpoint(ca);
      const auto [paddr, pport] = endpoint(cb);
      int outq = -1;
      if (cport != child.remote_port || pport != child.local_port ||
          v4_folded(caddr) != v4_folded(child.remote) ||
          v4_folded(paddr) != v4_folded(child.local) || ::ioctl(c.s.get(), SIOCOUTQ, &outq) != 0 ||
          outq != 0)
        continue;
      listeners_with_pending_.insert(ino);
      pending_clients_.insert(cino);
    }
  }
  return {};
}

Status InetSocketCollector::finish() {
  auto where = [&](const Entry& e) {
    return (e.proc == tree_.procs.front().get() ? ""
                                                : "pid " + std::to_string(e.proc->pid) + ": ") +
           fd_name(e.fd);
  };
  CR_TRY(find_pending_clients());
  // The lock goes on before any connection is read: every established one, both ways.
  std::vector<sys::TcpTuple> conns;
  for (uint64_t ino : order_) {
    Entry& e = entries_.at(ino);
    if (pending_clients_.count(ino) != 0) continue;  // connects again: nothing to hold
    tcp_info ti{};
    socklen_t len = sizeof ti;
    if (::getsockopt(e.s.get(), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        !connection_state(ti.tcpi_state) || !e.proc->opts.tcp_established)
      continue;
    schema::InetSocket r;
    sockaddr_storage a{}, b{};
    socklen_t la = sizeof a, lb = sizeof b;
    if (::getsockname(e.s.get(), reinterpret_cast<sockaddr*>(&a), &la) != 0 ||
        ::getpeername(e.s.get(), reinterpret_cast<sockaddr*>(&b), &lb) != 0)
      continue;  // describe() says what is wrong with it
    std::tie(r.src, r.src_port) = endpoint(a);
    std::tie(r.dst, r.dst_port) = endpoint(b);
    conns.push_back(tuple_of(r));
  }
  if (tree_.ns.own_net) {
    // The connections are inside the tree's own net namespace, which holds only lo and no
    // process but the tree's (net_ns.cc refuses the rest): nothing outside can send them a
    // packet, so there is nothing to lock (a lock in crdump's namespace would not see them).
  } else if (!conns.empty() && tree_.dry_run) {
    // No lock, no repair mode: the connections run on. Whether the lock would work is asked.
    if (const sys::KernelFeature nft = sys::probe_nft(); !nft.ok)
      CR_TRY(tree_.refuse(tree_.procs.front()->pid, make_error(nft.detail)));
  } else if (!conns.empty()) {
    const std::string table = sys::netlock_table_name();
    CR_TRY(tree_.undo.on_death_delete_table(table));
    auto lock = sys::NetLock::install(conns, table);
    if (!lock.ok())
      return std::move(lock).error().wrap("network lock for " + std::to_string(conns.size()) +
                                          " TCP connections");
    tree_.net.lock = std::move(lock).value();
  }
  for (uint64_t ino : order_) {
    Entry& e = entries_.at(ino);
    schema::InetSocket rec;
    rec.ino = ino;
    auto st = describe(e, rec);
    if (!st.ok()) {
      CR_TRY(tree_.refuse(e.proc->pid, std::move(st).error().wrap(where(e))));
      continue;  // a dry run: the next socket
    }
    tree_.files.inet_sockets.push_back(std::move(rec));
  }
  return {};
}

}  // namespace cr::dump
