// Rebuilding the tree's unix sockets (unix_sockets.cc), all at once before the tree is forked:
// pairs, bound names, listeners, connections accepted from them, queued data, shutdown states
// and options. Each process then inherits the sockets its Fds name.
#pragma once

#include <map>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "restore/image.h"

namespace cr::restore {

/// Creates every UnixSocket of the image; returns one fd per UnixSocket id.
Result<std::map<uint32_t, ScopedFd>> create_unix_sockets(
    const std::map<uint32_t, UnixSocketImage>& sockets);

}  // namespace cr::restore
