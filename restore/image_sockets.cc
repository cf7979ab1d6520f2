// Socket records into the image: each decoded, checked against what socket(), bind() and the
// repair calls take (a hostile image gets a one-line error here, not a strange syscall later),
// and tied to the socket it names.
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "common/text.h"
#include "restore/image_stash.h"

namespace cr::restore {

namespace {

// The values an InetSocket may hold: what socket(), bind() and the repair calls accept.
Status check_inet_socket(const schema::InetSocket& u) {
  const std::string what = "inet_socket " + std::to_string(u.id) + ": ";
  if (u.family != AF_INET && u.family != AF_INET6)
    return make_error(what + "family " + std::to_string(u.family));
  const size_t alen = u.family == AF_INET ? 4 : 16;
  if ((!u.src.empty() && u.src.size() != alen) || (!u.dst.empty() && u.dst.size() != alen) ||
      u.src_port > 65535 || u.dst_port > 65535)
    return make_error(what + "address or port out of range");
  const bool tcp = u.type == SOCK_STREAM && u.protocol == IPPROTO_TCP;
  const bool dgram =
      u.type == SOCK_DGRAM && (u.protocol == IPPROTO_UDP || u.protocol == IPPROTO_UDPLITE ||
                               u.protocol == IPPROTO_ICMP || u.protocol == IPPROTO_ICMPV6);
  if (!tcp && !dgram)
    return make_error(what + "type " + std::to_string(u.type) + " protocol " +
                      std::to_string(u.protocol));
  if (u.state > schema::kInetConnecting || (u.state == schema::kInetListening && !tcp) ||
      (u.state == schema::kInetEstablished && !tcp) || (u.state == schema::kInetConnected && tcp) ||
      (u.state == schema::kInetConnecting && (!tcp || (u.flags & schema::kInetBound) == 0)))
    return make_error(what + "state " + std::to_string(u.state));
  if ((u.state == schema::kInetEstablished || u.state == schema::kInetConnected ||
       u.state == schema::kInetConnecting) &&
      (u.dst.empty() || u.src.empty()))
    return make_error(what + "connected without both addresses");
  if (u.unsent_len > u.outq_len) return make_error(what + "more unsent bytes than queued");
  if (u.bind_dev.size() >= 16) return make_error(what + "device name too long");
  if (u.congestion.size() >= 16) return make_error(what + "congestion control name too long");
  return {};
}

// The values a NetlinkSocket may hold: the protocols crdump writes, the socket types netlink
// takes, groups the kernel could have given, and only the options crdump reads.
Status check_netlink_socket(const schema::NetlinkSocket& n) {
  const std::string what = "netlink_socket " + std::to_string(n.id) + ": ";
  if (n.protocol != NETLINK_ROUTE && n.protocol != NETLINK_GENERIC &&
      n.protocol != NETLINK_KOBJECT_UEVENT && n.protocol != NETLINK_AUDIT)
    return make_error(what + "protocol " + std::to_string(n.protocol));
  if (n.type != SOCK_RAW && n.type != SOCK_DGRAM)
    return make_error(what + "type " + std::to_string(n.type));
  if ((n.flags & ~uint32_t{schema::kNetlinkBound | schema::kNetlinkConnected}) != 0)
    return make_error(what + "flags " + hex(n.flags));
  // A socket with a port id 0 is unbound; connect() binds first.
  if (((n.flags & schema::kNetlinkBound) != 0) != (n.portid != 0) ||
      ((n.flags & schema::kNetlinkConnected) && !(n.flags & schema::kNetlinkBound)))
    return make_error(what + "port id " + std::to_string(n.portid) + " with flags " + hex(n.flags));
  if (!(n.flags & schema::kNetlinkConnected) && (n.dst_portid != 0 || n.dst_group != 0))
    return make_error(what + "a peer without kNetlinkConnected");
  // The kernel's group numbers are below 2^16 for every protocol crdump takes.
  if (n.groups.size() > 4096) return make_error(what + std::to_string(n.groups.size()) + " groups");
  for (uint64_t g : n.groups)
    if (g == 0 || g > 65536) return make_error(what + "group " + std::to_string(g));
  // getpeername shows the peer's group as a mask of one bit.
  if ((n.dst_group & (n.dst_group - 1)) != 0)
    return make_error(what + "peer group mask " + hex(n.dst_group));
  for (uint64_t o : n.opts) {
    const auto [level, name, value] = schema::SocketOption::decode(o);
    const bool flag = level == SOL_NETLINK &&
                      (name == NETLINK_PKTINFO || name == NETLINK_BROADCAST_ERROR ||
                       name == NETLINK_NO_ENOBUFS || name == NETLINK_LISTEN_ALL_NSID ||
                       name == 10 || name == 11 || name == 12);  // CAP_ACK, EXT_ACK, GET_STRICT_CHK
    const bool buf = level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_RCVBUF);
    if ((!flag && !buf) || (flag && value != 0 && value != 1) || (buf && value < 0))
      return make_error(what + "option " + std::to_string(level) + "/" + std::to_string(name) +
                        " = " + std::to_string(value));
  }
  return {};
}

}  // namespace

Result<bool> stash_socket_record(const format::RecordReader& reader, ProcessImage& img) {
  switch (reader.type()) {
    case schema::UnixSocket::kType: {
      CR_TRY_ASSIGN(auto u, reader.decode<schema::UnixSocket>());
      const uint32_t id = u.id;
      img.unix_sockets[id].sock = std::move(u);
      return true;
    }
    case schema::UnixSocketData::kType: {
      CR_TRY_ASSIGN(auto d, reader.decode<schema::UnixSocketData>());
      auto it = img.unix_sockets.find(d.socket);
      if (it == img.unix_sockets.end())
        return make_error("unix_socket_data names object " + std::to_string(d.socket) +
                          ", not a unix socket");
      auto tail = reader.tail();
      CR_TRY(add_stashed_bytes(img, tail.size(), "unix socket data"));
      it->second.queue.emplace_back(tail.begin(), tail.end());
      it->second.senders.push_back(std::move(d.sender));
      return true;
    }
    case schema::UnixSocketRights::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::UnixSocketRights>());
      auto it = img.unix_sockets.find(r.socket);
      if (it == img.unix_sockets.end() || r.message >= it->second.queue.size() ||
          it->second.rights.count(r.message) != 0 || r.files.empty() || r.files.size() > 253)
        return make_error("unix_socket_rights names no queued message of a unix socket (socket " +
                          std::to_string(r.socket) + ", message " + std::to_string(r.message) +
                          ")");
      std::vector<uint32_t> ids;
      for (uint64_t f : r.files) {
        auto fit = img.files.find(static_cast<uint32_t>(f));
        if (f > UINT32_MAX || fit == img.files.end() || fit->second.kind == schema::kFileProcPid ||
            fit->second.kind == schema::kFilePidfd)
          return make_error("unix_socket_rights: file " + std::to_string(f) +
                            " is not a file of the image that can be in flight");
        ids.push_back(static_cast<uint32_t>(f));
      }
      it->second.rights[r.message] = std::move(ids);
      return true;
    }
    case schema::UnixSocketCreds::kType: {
      CR_TRY_ASSIGN(auto c, reader.decode<schema::UnixSocketCreds>());
      auto it = img.unix_sockets.find(c.socket);
      if (it == img.unix_sockets.end() || c.message >= it->second.queue.size() ||
          it->second.creds.count(c.message) != 0 || c.pid == 0 || c.pid > INT32_MAX)
        return make_error("unix_socket_creds names no queued message of a unix socket (socket " +
                          std::to_string(c.socket) + ", message " + std::to_string(c.message) +
                          ", pid " + std::to_string(c.pid) + ")");
      it->second.creds[c.message] = c;
      return true;
    }
    case schema::InetSocket::kType: {
      CR_TRY_ASSIGN(auto u, reader.decode<schema::InetSocket>());
      CR_TRY(check_inet_socket(u));
      const uint32_t id = u.id;
      img.inet_sockets[id].sock = std::move(u);
      return true;
    }
    case schema::NetlinkSocket::kType: {
      CR_TRY_ASSIGN(auto n, reader.decode<schema::NetlinkSocket>());
      CR_TRY(check_netlink_socket(n));
      const uint32_t id = n.id;
      img.netlink_sockets[id] = std::move(n);
      return true;
    }
    case schema::InetSocketData::kType: {
      CR_TRY_ASSIGN(auto d, reader.decode<schema::InetSocketData>());
      auto it = img.inet_sockets.find(d.socket);
      if (it == img.inet_sockets.end())
        return make_error("inet_socket_data names object " + std::to_string(d.socket) +
                          ", not an inet socket");
      if (d.queue != schema::kInetRecvQueue && d.queue != schema::kInetSendQueue &&
          d.queue != schema::kInetDatagram)
        return make_error("inet_socket_data: unknown queue " + std::to_string(d.queue));
      auto tail = reader.tail();
      CR_TRY(add_stashed_bytes(img, tail.size(), "inet socket data"));
      if (d.queue == schema::kInetDatagram) {
        const schema::InetSocket& u = it->second.sock;
        if (u.type != SOCK_DGRAM || (u.protocol != IPPROTO_UDP && u.protocol != IPPROTO_UDPLITE) ||
            tail.size() > 65507 || (d.from.size() != 4 && d.from.size() != 16) ||
            d.from_port > 65535 || (u.family == AF_INET && d.from.size() != 4))
          return make_error("inet_socket_data: datagram of inet socket " +
                            std::to_string(d.socket) + " with a bad sender or size");
        it->second.datagrams.push_back(
            {{tail.begin(), tail.end()}, std::move(d.from), d.from_port});
        return true;
      }
      auto& q = d.queue == schema::kInetRecvQueue ? it->second.recv_queue : it->second.send_queue;
      q.insert(q.end(), tail.begin(), tail.end());
      return true;
    }
    case schema::InetMcast::kType: {
      CR_TRY_ASSIGN(auto m, reader.decode<schema::InetMcast>());
      auto it = img.inet_sockets.find(m.socket);
      if (it == img.inet_sockets.end())
        return make_error("inet_mcast names object " + std::to_string(m.socket) +
                          ", not an inet socket");
      const schema::InetSocket& u = it->second.sock;
      const size_t want = u.family == AF_INET ? 4 : 16;
      if (u.type != SOCK_DGRAM || m.group.size() != want || m.device.empty() ||
          m.device.size() >= IFNAMSIZ || it->second.mcast.size() >= 256 || m.include > 1 ||
          m.sources.size() % want != 0 || m.sources.size() / want > 64 ||
          (m.include == 1 && m.sources.empty()))
        return make_error("inet_mcast of inet socket " + std::to_string(m.socket) +
                          ": not a datagram socket's group, or a bad group or device");
      it->second.mcast.push_back(std::move(m));
      return true;
    }
    case schema::NetLock::kType: {
      CR_TRY_ASSIGN(auto l, reader.decode<schema::NetLock>());
      // It names an nftables table that crrestore deletes: only crtools' own names.
      if (!l.table.starts_with("crtools_lock_") || l.table.size() > 64 ||
          l.table.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
        return make_error("net_lock names table '" + l.table + "', not one crdump makes");
      img.net_lock = std::move(l.table);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace cr::restore
