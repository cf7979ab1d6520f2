// Setting socket options again (socket_options.cc): the integer options an InetSocket or a
// NetlinkSocket lists (schema::SocketOption), shared by both kinds of socket.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace cr::restore {

/// setsockopt of one int; errors name the option and `what` (the socket).
Status set_int(int s, int level, int name, int value, const std::string& what);

/// Sets every option of `opts` on `s`. Buffer sizes are given as getsockopt showed them
/// (doubled); unless `restricted`, the FORCE variants pass the system maximum, as the dumped
/// socket may have (only root may ask for that).
Status set_socket_options(int s, const std::vector<uint64_t>& opts, bool restricted,
                          const std::string& what);

}  // namespace cr::restore
