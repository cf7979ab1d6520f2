// The order inside one connection follows what TCP_REPAIR allows: the queues' first sequence
// numbers are set while the socket is still closed; bind and connect then make it established
// without a packet; the negotiated options, the clock, the queues' bytes and the window follow;
// repair goes off last, and the bytes the program had written but the kernel never sent are
// written then, as any write. The peer's packets are still dropped by crdump's network lock
// until the tree runs (restorer.cc deletes it).
#include "restore/inet_sockets.h"

#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/text.h"
#include "restore/socket_options.h"
#include "sys/netlock.h"

namespace cr::restore {

namespace {

#ifndef TCP_REPAIR_WINDOW
#define TCP_REPAIR_WINDOW 29
#endif

struct RepairWindow {  // struct tcp_repair_window (Linux 4.8)
  uint32_t snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;
};

// Bytes per write into a queue in repair mode (each write is one buffer of the queue).
constexpr size_t kQueueChunk = 64 * 1024;

std::string text(const schema::InetSocket& r) {
  std::string proto = r.protocol == IPPROTO_TCP       ? "tcp"
                      : r.protocol == IPPROTO_UDP     ? "udp"
                      : r.protocol == IPPROTO_UDPLITE ? "udplite"
                                                      : "ping";
  if (r.family == AF_INET6) proto += "6";
  std::string s = "inet socket " + std::to_string(r.id) + " (" + proto;
  if (!r.src.empty()) s += " " + inet_endpoint_text(r.src, r.src_port);
  if (!r.dst.empty()) s += " -> " + inet_endpoint_text(r.dst, r.dst_port);
  return s + ")";
}

std::pair<sockaddr_storage, socklen_t> sockaddr_of(uint32_t family, const schema::bytes_t& a,
                                                   uint32_t port) {
  sockaddr_storage ss{};
  if (family == AF_INET) {
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(port));
    if (a.size() == 4) std::memcpy(&in.sin_addr, a.data(), 4);
    return {ss, sizeof(sockaddr_in)};
  }
  auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(static_cast<uint16_t>(port));
  if (a.size() == 16) std::memcpy(&in6.sin6_addr, a.data(), 16);
  return {ss, sizeof(sockaddr_in6)};
}

bool is_reuseaddr(uint64_t o) {
  const auto opt = schema::SocketOption::decode(o);
  return opt.level == SOL_SOCKET && opt.name == SO_REUSEADDR;
}

// A connection's SO_REUSEADDR waits until it leaves repair mode: TCP_REPAIR on makes the
// socket "force reuse" for its bind (the port is its listener's, or held by TIME_WAIT
// sockets), which setting SO_REUSEADDR would replace by plain reuse, and TCP_REPAIR off resets
// it to no reuse at all, losing the program's value.
Status set_options(int s, const schema::InetSocket& r, bool restricted, const std::string& what) {
  if (r.state == schema::kInetEstablished) {
    std::vector<uint64_t> opts;
    for (uint64_t o : r.opts)
      if (!is_reuseaddr(o)) opts.push_back(o);
    CR_TRY(set_socket_options(s, opts, restricted, what));
  } else {
    CR_TRY(set_socket_options(s, r.opts, restricted, what));
  }
  if (r.flags & schema::kInetLinger) {
    linger lg{1, static_cast<int>(r.linger)};
    if (::setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
      return errno_error("setsockopt SO_LINGER").wrap(what);
  }
  if (!r.bind_dev.empty() && ::setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, r.bind_dev.data(),
                                          static_cast<socklen_t>(r.bind_dev.size())) != 0)
    return errno_error("SO_BINDTODEVICE " + r.bind_dev).wrap(what);
  if (!r.congestion.empty() && ::setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, r.congestion.data(),
                                            static_cast<socklen_t>(r.congestion.size())) != 0)
    return errno_error("TCP_CONGESTION " + r.congestion).wrap(what);
  return {};
}

Status bind_to(int s, const schema::InetSocket& r, const std::string& what) {
  auto [ss, len] = sockaddr_of(r.family, r.src, r.src_port);
  if (::bind(s, reinterpret_cast<const sockaddr*>(&ss), len) == 0) return {};
  if (errno == EADDRINUSE)
    return make_error(what + ": the address is in use (another socket on this machine holds " +
                      inet_endpoint_text(r.src, r.src_port) + ")");
  return errno_error("bind").wrap(what);
}

Status connect_to(int s, const schema::InetSocket& r, const std::string& what) {
  auto [ss, len] = sockaddr_of(r.family, r.dst, r.dst_port);
  if (::connect(s, reinterpret_cast<const sockaddr*>(&ss), len) == 0) return {};
  if (errno == EADDRNOTAVAIL || errno == EADDRINUSE)
    return make_error(what + ": the connection's address pair is in use on this machine");
  return errno_error("connect").wrap(what);
}

Status repair(int s, int mode, const std::string& what) {
  return set_int(s, IPPROTO_TCP, TCP_REPAIR, mode, what + ": TCP_REPAIR");
}

// Writes `bytes` into the queue selected (repair mode), or as the program would (not).
Status fill(int s, const uint8_t* p, size_t n, const std::string& what) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::send(s, p + off, std::min(kQueueChunk, n - off), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return errno_error("write " + std::to_string(n) + " queued bytes").wrap(what);
    off += static_cast<size_t>(w);
  }
  return {};
}

bool fin_sent(uint32_t st) {
  return st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 || st == TCP_LAST_ACK || st == TCP_CLOSING;
}
bool fin_received(uint32_t st) {
  return st == TCP_CLOSE_WAIT || st == TCP_LAST_ACK || st == TCP_CLOSING;
}

bool v4_mapped(const std::vector<uint8_t>& a) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return a.size() == 16 && std::memcmp(a.data(), prefix, 12) == 0;
}

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2 != 0) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}

// The address `a` (4 bytes, 16, or a v4-mapped 16 when `v4`) with port 0.
std::pair<sockaddr_storage, socklen_t> ip_of(bool v4, const std::vector<uint8_t>& a) {
  if (!v4) return sockaddr_of(AF_INET6, a, 0);
  return sockaddr_of(AF_INET,
                     std::vector<uint8_t>(a.end() - std::min<size_t>(4, a.size()), a.end()), 0);
}

// A raw socket of `proto` bound to `from`, an address that may not be ours (IP_FREEBIND): what
// it sends comes from there, as from the peer or sender it stands for. IPv6 has the kernel
// write the checksum at `csum_at` of what is sent.
Result<ScopedFd> raw_socket_at(const sockaddr_storage& from, socklen_t len, int proto, int csum_at,
                               const std::string& what) {
  const bool v4 = from.ss_family == AF_INET;
  ScopedFd raw(::socket(from.ss_family, SOCK_RAW | SOCK_CLOEXEC, proto));
  if (!raw.valid()) return errno_error("raw socket").wrap(what);
  CR_TRY(set_int(raw.get(), v4 ? IPPROTO_IP : IPPROTO_IPV6,
                 v4 ? IP_FREEBIND : 78 /* IPV6_FREEBIND */, 1, what));
  if (!v4) CR_TRY(set_int(raw.get(), IPPROTO_IPV6, IPV6_CHECKSUM, csum_at, what));
  if (::bind(raw.get(), reinterpret_cast<const sockaddr*>(&from), len) != 0)
    return errno_error("bind a raw socket to the sender's address").wrap(what);
  return raw;
}

// A segment of the connection's peer, made here: a raw TCP socket bound to the peer's address
// (IP_FREEBIND: it may not be ours) sends it to the connection's own address, marked so that
// the network lock lets it through. TCP_REPAIR cannot set a half-closed state; the peer's FIN
// (or its ACK of ours) arriving does, as it did the first time. The checksum is ours on IPv4,
// the kernel's on IPv6 (IPV6_CHECKSUM).
Status inject_from_peer(const schema::InetSocket& r, uint8_t flags, uint32_t seq, uint32_t ack,
                        const std::string& what) {
  const bool v4 = r.dst.size() == 4 || v4_mapped(r.dst);
  const size_t off = r.dst.size() == 16 && v4 ? 12 : 0;
  if (r.src.size() != r.dst.size()) return make_error(what + ": addresses of two families");
  const auto [from, len] = ip_of(v4, r.dst);
  const auto to = ip_of(v4, r.src).first;
  CR_TRY_ASSIGN(ScopedFd raw,
                raw_socket_at(from, len, IPPROTO_TCP, 16, what + ": the peer's segment"));
  CR_TRY(set_int(raw.get(), SOL_SOCKET, SO_MARK, static_cast<int>(sys::kNetLockPassMark), what));
  uint8_t h[20] = {};
  auto put16 = [&](size_t at, uint32_t v) {
    h[at] = static_cast<uint8_t>(v >> 8);
    h[at + 1] = static_cast<uint8_t>(v);
  };
  auto put32 = [&](size_t at, uint32_t v) {
    put16(at, v >> 16);
    put16(at + 2, v & 0xffff);
  };
  put16(0, r.dst_port);
  put16(2, r.src_port);
  put32(4, seq);
  put32(8, ack);
  h[12] = 5 << 4;  // 20 bytes, no options
  h[13] = flags;
  // The window the peer offered (the segment updates ours from it).
  const uint32_t shift = (r.flags & schema::kInetTcpWscale) ? r.snd_wscale : 0;
  put16(14, std::min<uint32_t>(0xffff, r.snd_wnd >> shift));
  if (v4) {
    uint8_t pseudo[12] = {};
    std::memcpy(pseudo, r.dst.data() + off, 4);
    std::memcpy(pseudo + 4, r.src.data() + off, 4);
    pseudo[9] = IPPROTO_TCP;
    pseudo[11] = sizeof h;
    uint32_t acc = sum16(h, sizeof h, sum16(pseudo, sizeof pseudo, 0));
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    put16(16, ~acc & 0xffff);
  }
  if (::sendto(raw.get(), h, sizeof h, 0, reinterpret_cast<const sockaddr*>(&to), len) !=
      static_cast<ssize_t>(sizeof h))
    return errno_error("send the peer's segment").wrap(what);
  return {};
}

bool fin_after_unsent(const schema::InetSocket& r) {
  return r.tcp_state == TCP_FIN_WAIT1 && r.unsent_len > 0;
}

// Our FIN into the send queue, as shutdown() puts it there. Acknowledged already (FIN_WAIT2):
// put in as sent (TCP_REPAIR_QUEUE on the send queue), then acknowledged by the peer's ACK.
Status shut_in_repair(int s, bool acked, const std::string& what) {
  if (acked) CR_TRY(set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, what));
  if (::shutdown(s, SHUT_WR) != 0) return errno_error("shutdown(SHUT_WR)").wrap(what);
  return set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, what);
}

// A half-closed connection, once established in repair mode with its queues: the FINs as they
// happened. FIN_WAIT1, CLOSING: ours first (its retransmission is due, the lock drops it till
// the tree runs); CLOSE_WAIT, LAST_ACK, CLOSING: the peer's, then for LAST_ACK ours; FIN_WAIT2:
// ours as sent, and the peer's ACK of it.
Status half_close(int s, const schema::InetSocket& r, const std::string& what) {
  const uint32_t st = r.tcp_state;
  const uint32_t snd_una = r.snd_seq - (fin_sent(st) ? 1 : 0) - r.outq_len;
  // FIN_WAIT1 with bytes never sent: the FIN goes after them, once they are written again
  // (finish_connection); till then it is established.
  if (fin_after_unsent(r)) return {};
  if (st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 || st == TCP_CLOSING)
    CR_TRY(shut_in_repair(s, st == TCP_FIN_WAIT2, what));
  if (fin_received(st))
    CR_TRY(inject_from_peer(r, 0x11 /* FIN|ACK */, r.rcv_seq - 1, snd_una, what + ": peer's FIN"));
  if (st == TCP_LAST_ACK) CR_TRY(shut_in_repair(s, false, what));
  if (st == TCP_FIN_WAIT2)
    CR_TRY(inject_from_peer(r, 0x10 /* ACK */, r.rcv_seq, r.snd_seq, what + ": peer's ACK"));
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return errno_error("TCP_INFO");
  if (ti.tcpi_state != st)
    return make_error(what + ": half-closed state " + std::to_string(st) +
                      " did not come back (state " + std::to_string(ti.tcpi_state) +
                      "; the peer's segment was dropped?)");
  return {};
}

Status restore_connection(int s, const InetSocketImage& img, const std::string& what) {
  const schema::InetSocket& r = img.sock;
  if (img.recv_queue.size() != r.inq_len || img.send_queue.size() != r.outq_len)
    return make_error(what + ": queued bytes do not match the recorded queue lengths");
  const uint32_t st = r.tcp_state;
  if (st != 0 && !fin_sent(st) && !fin_received(st))
    return make_error(what + ": TCP state " + std::to_string(st) + " cannot be restored");
  // The FINs are not in the queues: they come after them, as the kernel makes them.
  const uint32_t snd_end = r.snd_seq - (fin_sent(st) ? 1 : 0);
  const uint32_t rcv_end = r.rcv_seq - (fin_received(st) ? 1 : 0);
  CR_TRY(set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, what));
  CR_TRY(set_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ, static_cast<int>(snd_end - r.outq_len), what));
  CR_TRY(set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, what));
  CR_TRY(set_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ, static_cast<int>(rcv_end - r.inq_len), what));
  CR_TRY(bind_to(s, r, what));
  // The segment size is worked out at connect from the clamp, which is the default 536 unless
  // the user's TCP_MAXSEG says otherwise; TCP_REPAIR_OPTIONS sets the clamp later but leaves
  // the size (a loopback connection would go on in 524-byte segments). The dumped one given
  // as the user's for the connect (at most 32767, the most TCP_MAXSEG takes), then taken back.
  CR_TRY(set_int(s, IPPROTO_TCP, TCP_MAXSEG,
                 static_cast<int>(std::clamp<uint32_t>(r.mss, 88, 32767)), what));
  CR_TRY(connect_to(s, r, what));
  CR_TRY(set_int(s, IPPROTO_TCP, TCP_MAXSEG, 0, what));

  std::vector<tcp_repair_opt> opts;
  opts.push_back({TCPOPT_MAXSEG, r.mss});
  if (r.flags & schema::kInetTcpWscale)
    opts.push_back({TCPOPT_WINDOW, r.snd_wscale | (r.rcv_wscale << 16)});
  if (r.flags & schema::kInetTcpSack) opts.push_back({TCPOPT_SACK_PERMITTED, 0});
  if (r.flags & schema::kInetTcpTimestamps) opts.push_back({TCPOPT_TIMESTAMP, 0});
  if (::setsockopt(s, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts.data(),
                   static_cast<socklen_t>(opts.size() * sizeof opts[0])) != 0)
    return errno_error("TCP_REPAIR_OPTIONS").wrap(what);
  if (r.flags & schema::kInetTcpTimestamps)
    CR_TRY(set_int(s, IPPROTO_TCP, TCP_TIMESTAMP, static_cast<int>(r.timestamp), what));

  if (!img.recv_queue.empty()) {
    CR_TRY(set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, what));
    CR_TRY(fill(s, img.recv_queue.data(), img.recv_queue.size(), what + ": receive queue"));
  }
  // The bytes sent and not acknowledged go in as sent (the peer may acknowledge them); the
  // rest after repair, as new writes.
  const size_t sent = r.outq_len - r.unsent_len;
  if (sent > 0) {
    CR_TRY(set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, what));
    CR_TRY(fill(s, img.send_queue.data(), sent, what + ": send queue"));
  }
  RepairWindow w{r.snd_wl1, r.snd_wnd, r.max_window, r.rcv_wnd, r.rcv_wup};
  if (fin_received(st)) {
    // The window as it was before the peer's FIN, which moves it on again when it arrives.
    --w.rcv_wup;
    ++w.rcv_wnd;
  }
  if (::setsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof w) != 0)
    return errno_error("TCP_REPAIR_WINDOW").wrap(what);
  CR_TRY(set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, what));
  if (st != 0) CR_TRY(half_close(s, r, what));
  return {};
}

// Once every listener has its port: repair off (the kernel probes the peer's window), then
// the bytes never sent, as the program's own writes.
// The program's SO_REUSEADDR on a connection, once it is out of repair mode.
Status set_reuseaddr_after_repair(int s, const schema::InetSocket& r, const std::string& what) {
  for (uint64_t o : r.opts)
    if (is_reuseaddr(o))
      return set_int(s, SOL_SOCKET, SO_REUSEADDR, schema::SocketOption::decode(o).value, what);
  return {};
}

Status finish_connection(int s, const InetSocketImage& img, const std::string& what) {
  const schema::InetSocket& r = img.sock;
  CR_TRY(repair(s, 0, what));
  CR_TRY(set_reuseaddr_after_repair(s, r, what));
  if (r.unsent_len == 0) return {};
  // The never-sent bytes fit the dumped send buffer as the kernel had packed them; written
  // again (the peer's window may be closed) they may take more of it, per-buffer overhead
  // differing. The buffer is made room for while they go in, then set back to the dumped
  // size (a grown buffer is locked at its size already: its SO_SNDBUF is in the image).
  int had = 0;
  socklen_t len = sizeof had;
  if (::getsockopt(s, SOL_SOCKET, SO_SNDBUF, &had, &len) != 0)
    return errno_error("getsockopt SO_SNDBUF").wrap(what);
  bool recorded = false;
  for (uint64_t o : r.opts) {
    const auto opt = schema::SocketOption::decode(o);
    recorded = recorded || (opt.level == SOL_SOCKET && opt.name == SO_SNDBUF);
  }
  const uint64_t room = std::min<uint64_t>(
      INT32_MAX / 2, static_cast<uint64_t>(had) + 2 * uint64_t{r.unsent_len} + (1 << 20));
  if (recorded) CR_TRY(set_int(s, SOL_SOCKET, SO_SNDBUFFORCE, static_cast<int>(room), what));
  CR_TRY(fill(s, img.send_queue.data() + (r.outq_len - r.unsent_len), r.unsent_len,
              what + ": unsent bytes"));
  // The kernel doubles what it is given: half of what it showed gives that back.
  if (recorded) CR_TRY(set_int(s, SOL_SOCKET, SO_SNDBUFFORCE, had / 2, what));
  // FIN_WAIT1 with bytes never sent: its FIN after them, as the program's shutdown queued it.
  if (fin_after_unsent(r) && ::shutdown(s, SHUT_WR) != 0)
    return errno_error("shutdown(SHUT_WR)").wrap(what);
  return {};
}

// bind() then listen() with SO_REUSEADDR on for both (each takes the port again): the port
// is shared with the connections accepted from it, which are in repair mode (whose "force
// reuse" only gives way to a socket that asks for reuse too). The program's own value after.
// `step` with SO_REUSEADDR on, then the value the socket had (the program's) again.
template <class F>
Status with_reuseaddr(int s, const std::string& what, F&& step) {
  int had = 0;
  socklen_t len = sizeof had;
  if (::getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &had, &len) != 0)
    return errno_error("getsockopt SO_REUSEADDR").wrap(what);
  CR_TRY(set_int(s, SOL_SOCKET, SO_REUSEADDR, 1, what));
  CR_TRY(step());
  if (had == 0) CR_TRY(set_int(s, SOL_SOCKET, SO_REUSEADDR, 0, what));
  return {};
}

Status bind_listener(int s, const schema::InetSocket& r, const std::string& what) {
  return with_reuseaddr(s, what, [&]() -> Status {
    CR_TRY(bind_to(s, r, what));
    if (::listen(s, static_cast<int>(r.backlog)) != 0) return errno_error("listen").wrap(what);
    return {};
  });
}

// A client of the tree whose connection was in its listener's accept queue: bound to its
// port again (SO_REUSEADDR for the bind: the dumped connection's end may linger), then a real
// connect() to the restored listener (blocking: over loopback the handshake is done when it
// returns), which queues the connection there again. Nothing had been sent on it.
Status connect_again(int s, const schema::InetSocket& r, const std::string& what) {
  return with_reuseaddr(s, what, [&]() -> Status {
    CR_TRY(bind_to(s, r, what));
    return connect_to(s, r, what);
  });
}

// --tcp-close: connected in repair mode (no packet), then disconnected in repair mode, which
// the kernel does silently and marks with ECONNABORTED for the program's next call.
Status restore_closed(int s, const schema::InetSocket& r, const std::string& what) {
  CR_TRY(connect_to(s, r, what));
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  if (::connect(s, &unspec, sizeof unspec) != 0)
    return errno_error("connect(AF_UNSPEC)").wrap(what);
  CR_TRY(repair(s, 0, what));
  return set_reuseaddr_after_repair(s, r, what);
}

bool all_zero(const std::vector<uint8_t>& a) {
  for (uint8_t b : a)
    if (b != 0) return false;
  return true;
}

// The Internet checksum of a UDP-Lite datagram over IPv4 that covers all of it (coverage 0):
// the pseudo-header (addresses, protocol, length), then header and data.
uint16_t udplite4_checksum(const std::vector<uint8_t>& src, const std::vector<uint8_t>& dst,
                           const std::vector<uint8_t>& pkt) {
  uint64_t sum = 0;
  auto add = [&sum](const uint8_t* p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t{p[i]} << 8) | p[i + 1];
    if (n % 2) sum += uint32_t{p[n - 1]} << 8;
  };
  add(src.data() + src.size() - 4, 4);  // a v4-mapped address's last four bytes
  add(dst.data() + dst.size() - 4, 4);
  sum += IPPROTO_UDPLITE + pkt.size();
  add(pkt.data(), pkt.size());
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const uint16_t c = static_cast<uint16_t>(~sum);
  return c == 0 ? 0xffff : c;  // 0 would mean "no checksum", which UDP-Lite does not allow
}

// A queued datagram goes back into the restored socket's queue as the kernel would have put it
// there: sent from its sender's address and port (a raw UDP or UDP-Lite socket bound to that
// address, IP_FREEBIND since it may not be ours, the header our own) to the socket's address
// (its loopback one when it is bound to any). IPv4 leaves the UDP checksum out (0: none); IPv6
// has the kernel compute it. UDP-Lite covers the whole datagram (the coverage the sender chose
// is not visible to the receiver, and the whole satisfies any UDPLITE_RECV_CSCOV); over IPv4
// its checksum, which it cannot leave out, is computed here.
Status replay_datagram(int target, const schema::InetSocket& r, const InetSocketImage::Datagram& d,
                       const std::string& what) {
  const bool v4 = d.from.size() == 4 || v4_mapped(d.from);
  const bool lite = r.protocol == IPPROTO_UDPLITE;
  // Sent to the socket's own address; bound to any (or, v4, to an IPv6 one): loopback.
  std::vector<uint8_t> at = r.src;
  if (v4 && (r.src.empty() || all_zero(r.src) || (r.src.size() == 16 && !v4_mapped(r.src))))
    at = {127, 0, 0, 1};
  if (!v4 && (r.src.size() != 16 || all_zero(r.src)))
    at = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const auto [src, len] = ip_of(v4, d.from);
  const auto dst = ip_of(v4, at).first;
  CR_TRY_ASSIGN(ScopedFd raw, raw_socket_at(src, len, lite ? IPPROTO_UDPLITE : IPPROTO_UDP, 6,
                                            what + ": a datagram from " +
                                                inet_endpoint_text(d.from, d.from_port)));
  std::vector<uint8_t> pkt(8 + d.bytes.size());
  const uint16_t sport = htons(static_cast<uint16_t>(d.from_port));
  const uint16_t dport = htons(static_cast<uint16_t>(r.src_port));
  // UDP's length field; UDP-Lite's checksum coverage, 0: all of it.
  const uint16_t ulen = lite ? 0 : htons(static_cast<uint16_t>(pkt.size()));
  std::memcpy(&pkt[0], &sport, 2);
  std::memcpy(&pkt[2], &dport, 2);
  std::memcpy(&pkt[4], &ulen, 2);
  if (!d.bytes.empty()) std::memcpy(&pkt[8], d.bytes.data(), d.bytes.size());
  if (lite && v4) {
    const uint16_t sum = htons(udplite4_checksum(d.from, at, pkt));
    std::memcpy(&pkt[6], &sum, 2);
  }
  if (::sendto(raw.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&dst),
               len) != static_cast<ssize_t>(pkt.size()))
    return errno_error("send a queued datagram again").wrap(what);
  (void)target;
  return {};
}

// Its multicast groups again (any source), on the device of the dumped name: its index may
// differ here.
Status join_groups(int s, const InetSocketImage& img, const std::string& what) {
  for (const auto& m : img.mcast) {
    const bool v4 = m.group.size() == 4;
    std::string group = inet_endpoint_text(m.group, 0);
    group.erase(group.rfind(':'));
    const unsigned ifindex = ::if_nametoindex(m.device.c_str());
    if (ifindex == 0)
      return errno_error("multicast group " + group + " on " + m.device + ": no such device")
          .wrap(what);
    group_req req{};
    req.gr_interface = ifindex;
    if (v4) {
      auto* a = reinterpret_cast<sockaddr_in*>(&req.gr_group);
      a->sin_family = AF_INET;
      std::memcpy(&a->sin_addr, m.group.data(), 4);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&req.gr_group);
      a->sin6_family = AF_INET6;
      std::memcpy(&a->sin6_addr, m.group.data(), 16);
    }
    const int level = v4 ? IPPROTO_IP : IPPROTO_IPV6;
    if (::setsockopt(s, level, MCAST_JOIN_GROUP, &req, sizeof req) != 0)
      return errno_error("join multicast group " + group + " on " + m.device).wrap(what);
    if (m.include == 0 && m.sources.empty()) continue;  // any source: as joined
    // The source filter, on the membership just made (the kernel wants one).
    const size_t step = m.group.size(), n = m.sources.size() / step;
    std::vector<uint8_t> buf(GROUP_FILTER_SIZE(n));
    auto* gf = reinterpret_cast<group_filter*>(buf.data());
    gf->gf_interface = ifindex;
    gf->gf_group = req.gr_group;
    gf->gf_fmode = m.include != 0 ? MCAST_INCLUDE : MCAST_EXCLUDE;
    gf->gf_numsrc = static_cast<uint32_t>(n);
    for (size_t i = 0; i < n; ++i) {
      if (v4) {
        auto* a = reinterpret_cast<sockaddr_in*>(&gf->gf_slist[i]);
        a->sin_family = AF_INET;
        std::memcpy(&a->sin_addr, m.sources.data() + i * step, 4);
      } else {
        auto* a = reinterpret_cast<sockaddr_in6*>(&gf->gf_slist[i]);
        a->sin6_family = AF_INET6;
        std::memcpy(&a->sin6_addr, m.sources.data() + i * step, 16);
      }
    }
    if (::setsockopt(s, level, MCAST_MSFILTER, gf, static_cast<socklen_t>(buf.size())) != 0)
      return errno_error("source filter of multicast group " + group + " on " + m.device)
          .wrap(what);
  }
  return {};
}

}  // namespace

Result<std::map<uint32_t, ScopedFd>> create_inet_sockets(
    const std::map<uint32_t, InetSocketImage>& sockets, const Privileges& priv, bool tcp_close) {
  std::map<uint32_t, ScopedFd> out;
  // Connections first, in repair mode: a connection accepted from a listener has the
  // listener's port, and a socket in repair mode binds to it only while no listener holds it.
  // Then the listeners and the rest; then the connections leave repair mode.
  // A client whose connection waited in a listener's accept queue connects last, to its
  // listener made by then, and is queued there again.
  for (int pass = 0; pass < 3; ++pass)
    for (const auto& [id, img] : sockets) {
      const schema::InetSocket& r = img.sock;
      const bool established = r.state == schema::kInetEstablished;
      const int its_pass = established ? 0 : r.state == schema::kInetConnecting ? 2 : 1;
      if (its_pass != pass) continue;
      const std::string what = text(r);
      ScopedFd s(::socket(static_cast<int>(r.family), static_cast<int>(r.type) | SOCK_CLOEXEC,
                          static_cast<int>(r.protocol)));
      if (!s.valid()) return errno_error("socket").wrap(what);
      if (established) CR_TRY(repair(s.get(), 1, what));
      CR_TRY(set_options(s.get(), r, priv.restricted(), what));
      switch (r.state) {
        case schema::kInetClosed:
          if (r.flags & schema::kInetBound) CR_TRY(bind_to(s.get(), r, what));
          break;
        case schema::kInetListening:
          CR_TRY(bind_listener(s.get(), r, what));
          break;
        case schema::kInetConnected:
          if (r.flags & schema::kInetBound) CR_TRY(bind_to(s.get(), r, what));
          CR_TRY(connect_to(s.get(), r, what));
          break;
        case schema::kInetEstablished:
          CR_TRY(tcp_close ? restore_closed(s.get(), r, what)
                           : restore_connection(s.get(), img, what));
          break;
        case schema::kInetConnecting: {
          // Only to a listener of the image: the connection waited in that one's queue.
          bool listener = false;
          for (const auto& [lid, l] : sockets)
            listener = listener ||
                       (l.sock.state == schema::kInetListening && l.sock.src_port == r.dst_port &&
                        l.sock.type == r.type && l.sock.protocol == r.protocol);
          if (!listener) return make_error(what + ": connecting to no listener of the image");
          CR_TRY(connect_again(s.get(), r, what));
          break;
        }
        default:
          return make_error(what + ": unknown state " + std::to_string(r.state));
      }
      CR_TRY(join_groups(s.get(), img, what));
      out[id] = std::move(s);
    }
  for (const auto& [id, img] : sockets) {
    if (img.datagrams.empty()) continue;
    if (!(img.sock.flags & schema::kInetBound) || img.sock.src_port == 0)
      return make_error(text(img.sock) + ": datagrams queued on a socket with no port");
    for (const auto& d : img.datagrams)
      CR_TRY(replay_datagram(out.at(id).get(), img.sock, d, text(img.sock)));
    // Loopback delivers as it sends (the receive runs before sendto returns): the queue must
    // show the first one now, or the datagrams went elsewhere.
    pollfd p{out.at(id).get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1)
      return make_error(text(img.sock) + ": its queued datagrams, sent again, did not arrive");
  }
  if (!tcp_close)
    for (const auto& [id, img] : sockets)
      if (img.sock.state == schema::kInetEstablished)
        CR_TRY(finish_connection(out.at(id).get(), img, text(img.sock)));
  return out;
}

}  // namespace cr::restore
