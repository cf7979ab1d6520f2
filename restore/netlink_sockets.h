// Rebuilding a netlink socket of the tree (netlink_sockets.cc) in crrestore, for the process
// that inherits it: socket, options, its port id, its groups, its peer.
#pragma once

#include "common/result.h"
#include "common/scoped_fd.h"
#include "schema/records.h"

namespace cr::restore {

/// Creates the socket `r` describes (checked by image.cc). `restricted`: an image without a
/// root process (privilege.cc), whose buffer sizes stay within the system's maximum.
Result<ScopedFd> create_netlink_socket(const schema::NetlinkSocket& r, bool restricted);

}  // namespace cr::restore
