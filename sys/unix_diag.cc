#include "sys/unix_diag.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "common/scoped_fd.h"

namespace cr::sys {

namespace {

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Status parse_attrs(const uint8_t* p, size_t len, UnixDiag& d) {
  while (len >= sizeof(rtattr)) {
    auto a = load<rtattr>(p);
    if (a.rta_len < sizeof(rtattr) || a.rta_len > len)
      return make_error("unix_diag ino " + std::to_string(d.ino) + ": attribute " +
                        std::to_string(a.rta_type) + " of length " + std::to_string(a.rta_len) +
                        " overruns its message");
    const uint8_t* v = p + RTA_LENGTH(0);
    const size_t n = a.rta_len - RTA_LENGTH(0);
    auto need = [&](size_t want) -> Status {
      if (n < want)
        return make_error("unix_diag ino " + std::to_string(d.ino) + ": attribute " +
                          std::to_string(a.rta_type) + " has " + std::to_string(n) +
                          " bytes, wants " + std::to_string(want));
      return {};
    };
    switch (a.rta_type) {
      case UNIX_DIAG_NAME:
        d.name.assign(reinterpret_cast<const char*>(v), n);
        // A path name comes with its terminating NUL; an abstract one is all its bytes.
        if (!d.name.empty() && d.name[0] != '\0') d.name = d.name.substr(0, d.name.find('\0'));
        break;
      case UNIX_DIAG_VFS: {
        CR_TRY(need(sizeof(unix_diag_vfs)));
        auto vfs = load<unix_diag_vfs>(v);
        d.has_vfs = true;
        d.vfs_ino = vfs.udiag_vfs_ino;
        d.vfs_dev = vfs.udiag_vfs_dev;
        break;
      }
      case UNIX_DIAG_PEER:
        CR_TRY(need(4));
        d.has_peer = true;
        d.peer_ino = load<uint32_t>(v);
        break;
      case UNIX_DIAG_ICONS:
        for (size_t i = 0; i + 4 <= n; i += 4) d.icons.push_back(load<uint32_t>(v + i));
        break;
      case UNIX_DIAG_RQLEN: {
        CR_TRY(need(sizeof(unix_diag_rqlen)));
        auto q = load<unix_diag_rqlen>(v);
        d.has_rqlen = true;
        d.rqueue = q.udiag_rqueue;
        d.wqueue = q.udiag_wqueue;
        break;
      }
      case UNIX_DIAG_SHUTDOWN:
        CR_TRY(need(1));
        d.shutdown = v[0];
        break;
      default:
        break;  // UID, MEMINFO, newer attributes: not needed
    }
    const size_t step = RTA_ALIGN(a.rta_len);
    if (step >= len) break;
    p += step;
    len -= step;
  }
  return {};
}

}  // namespace

Result<bool> parse_unix_diag(std::span<const uint8_t> bytes, std::map<uint64_t, UnixDiag>& out) {
  const uint8_t* p = bytes.data();
  size_t len = bytes.size();
  while (len >= sizeof(nlmsghdr)) {
    auto h = load<nlmsghdr>(p);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > len)
      return make_error("sock_diag reply: message of length " + std::to_string(h.nlmsg_len) +
                        " with " + std::to_string(len) + " bytes left");
    if (h.nlmsg_type == NLMSG_DONE) return true;
    if (h.nlmsg_type == NLMSG_ERROR) {
      if (h.nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return make_error("sock_diag: short error");
      auto e = load<nlmsgerr>(p + NLMSG_HDRLEN);
      return errno_error("sock_diag unix dump", -e.error);
    }
    if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      if (h.nlmsg_len < NLMSG_LENGTH(sizeof(unix_diag_msg)))
        return make_error("sock_diag reply: unix_diag_msg cut short");
      auto m = load<unix_diag_msg>(p + NLMSG_HDRLEN);
      UnixDiag d;
      d.ino = m.udiag_ino;
      d.type = m.udiag_type;
      d.state = m.udiag_state;
      const size_t head = NLMSG_LENGTH(sizeof(unix_diag_msg));
      const size_t attrs = NLMSG_ALIGN(head);
      if (h.nlmsg_len > attrs) CR_TRY(parse_attrs(p + attrs, h.nlmsg_len - attrs, d));
      out[d.ino] = std::move(d);
    }
    const size_t step = NLMSG_ALIGN(h.nlmsg_len);
    if (step >= len) break;
    p += step;
    len -= step;
  }
  return false;
}

Result<std::map<uint64_t, UnixDiag>> query_unix_sockets() {
  ScopedFd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) return errno_error("socket(NETLINK_SOCK_DIAG)");
  struct {
    nlmsghdr h;
    unix_diag_req r;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = ~0u;
  req.r.udiag_show =
      UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN;
  // UDIAG_SHOW_SHUTDOWN is not a flag of its own: the kernel always sends UNIX_DIAG_SHUTDOWN.
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(nl.get(), &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) != static_cast<ssize_t>(sizeof req))
    return errno_error("sock_diag: send unix dump request");
  std::map<uint64_t, UnixDiag> out;
  std::vector<uint8_t> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::recv(nl.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("sock_diag: recv");
    if (n == 0) return make_error("sock_diag: the kernel closed the dump before NLMSG_DONE");
    CR_TRY_ASSIGN(bool done, parse_unix_diag({buf.data(), static_cast<size_t>(n)}, out));
    if (done) return out;
  }
}

}  // namespace cr::sys
