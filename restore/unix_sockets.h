// Rebuilding the tree's unix sockets (unix_sockets.cc), all at once before the tree is forked:
// pairs, bound names, listeners, connections accepted from them, queued data, shutdown states
// and options. Each process then inherits the sockets its Fds name.
#pragma once

#include <map>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "restore/image.h"
#include "restore/privilege.h"

namespace cr::restore {

/// Creates every UnixSocket of the image; returns one fd per UnixSocket id. Names are bound
/// and connected to as `priv` says (restricted image: as the process holding the socket), the
/// file of a bound name made with its dumped owner and mode from the start.
Result<std::map<uint32_t, ScopedFd>> create_unix_sockets(
    const std::map<uint32_t, UnixSocketImage>& sockets, const Privileges& priv);

}  // namespace cr::restore
