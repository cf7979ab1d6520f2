// Rebuilding the tree's unix sockets (unix_sockets.cc), all at once before the tree is forked:
// pairs, bound names, listeners, connections accepted from them, queued data, shutdown states
// and options. Each process then inherits the sockets its Fds name.
#pragma once

#include <functional>
#include <map>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "restore/image.h"
#include "restore/privilege.h"

namespace cr::restore {

/// Creates every UnixSocket of the image; returns one fd per UnixSocket id. Names are bound
/// and connected to as `priv` says (restricted image: as the process holding the socket), the
/// file of a bound name made with its dumped owner and mode from the start.
/// Fds in flight (UnixSocketRights) are sent with their messages: a unix socket of the image
/// as itself, any other File through `open_file`, which opens it once for good (the caller
/// hands that description to its holders later) and lends its fd.
using FileOpener = std::function<Result<int>(const schema::File&)>;
Result<std::map<uint32_t, ScopedFd>> create_unix_sockets(
    const std::map<uint32_t, UnixSocketImage>& sockets, const Privileges& priv,
    const std::map<uint32_t, schema::File>& files, const FileOpener& open_file);

}  // namespace cr::restore
