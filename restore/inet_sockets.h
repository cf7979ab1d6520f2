// Rebuilding the tree's internet sockets (inet_sockets.cc), all at once on first use, in
// crrestore: listeners and bound sockets first (a connection accepted from a listener shares
// its port), then established TCP connections through TCP_REPAIR (sequence numbers, options,
// queues, window), left live for the tree; UDP sockets connected again. Each process then
// inherits the sockets its Fds name.
#pragma once

#include <map>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "restore/image.h"
#include "restore/privilege.h"

namespace cr::restore {

/// Creates every InetSocket of the image; returns one fd per InetSocket id. With `tcp_close`
/// (crrestore --tcp-close) an established connection comes back closed: the program's next
/// read or write fails (ECONNABORTED) as if the connection had been reset.
Result<std::map<uint32_t, ScopedFd>> create_inet_sockets(
    const std::map<uint32_t, InetSocketImage>& sockets, const Privileges& priv, bool tcp_close);

}  // namespace cr::restore
