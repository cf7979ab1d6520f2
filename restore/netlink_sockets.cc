// Each netlink socket is made on its own, when its File is opened: a netlink connect() only
// records the peer's port id (the kernel looks nothing up), so no socket needs another to
// exist first. The order within one socket: options (a buffer size before anything can be
// queued), bind with the dumped port id, every group joined by NETLINK_ADD_MEMBERSHIP (bind
// takes only the first 32), connect.
#include "restore/netlink_sockets.h"
#include "restore/socket_options.h"

#include <linux/netlink.h>
#include <sys/socket.h>

#include <string>

namespace cr::restore {

namespace {

std::string text(const schema::NetlinkSocket& r) {
  static const char* const names[] = {"route",  "",      "", "", "", "", "", "",
                                      "",       "audit", "", "", "", "", "", "kobject_uevent",
                                      "generic"};
  std::string proto = r.protocol < 17 && names[r.protocol][0] != '\0'
                          ? names[r.protocol]
                          : "protocol " + std::to_string(r.protocol);
  std::string s = "netlink " + proto + " socket " + std::to_string(r.id);
  if (r.flags & schema::kNetlinkBound) s += " (port id " + std::to_string(r.portid) + ")";
  return s;
}


}  // namespace

Result<ScopedFd> create_netlink_socket(const schema::NetlinkSocket& r, bool restricted) {
  const std::string what = text(r);
  ScopedFd s(
      ::socket(AF_NETLINK, static_cast<int>(r.type) | SOCK_CLOEXEC, static_cast<int>(r.protocol)));
  if (!s.valid()) return errno_error("socket").wrap(what);
  CR_TRY(set_socket_options(s.get(), r.opts, restricted, what));
  if (r.flags & schema::kNetlinkBound) {
    sockaddr_nl a{};
    a.nl_family = AF_NETLINK;
    a.nl_pid = r.portid;
    if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      if (errno == EADDRINUSE)
        return make_error(what + ": port id " + std::to_string(r.portid) +
                          " is in use (another netlink socket on this machine holds it)");
      return errno_error("bind").wrap(what);
    }
  }
  for (uint64_t g : r.groups)
    CR_TRY(set_int(s.get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, static_cast<int>(g),
                   what + ": join group " + std::to_string(g)));
  if (r.flags & schema::kNetlinkConnected) {
    sockaddr_nl d{};
    d.nl_family = AF_NETLINK;
    d.nl_pid = r.dst_portid;
    d.nl_groups = r.dst_group;
    if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&d), sizeof d) != 0)
      return errno_error("connect to port id " + std::to_string(r.dst_portid) + " group " +
                         std::to_string(r.dst_group))
          .wrap(what);
  }
  return s;
}

}  // namespace cr::restore
