#include "restore/socket_options.h"

#include <sys/socket.h>

#include "schema/records.h"

namespace cr::restore {

Status set_int(int s, int level, int name, int value, const std::string& what) {
  if (::setsockopt(s, level, name, &value, sizeof value) != 0)
    return errno_error("setsockopt(" + std::to_string(level) + ", " + std::to_string(name) +
                       ", " + std::to_string(value) + ")")
        .wrap(what);
  return {};
}

Status set_socket_options(int s, const std::vector<uint64_t>& opts, bool restricted,
                          const std::string& what) {
  for (uint64_t o : opts) {
    auto [level, name, value] = schema::SocketOption::decode(o);
    // getsockopt shows a buffer size doubled (the kernel's bookkeeping share).
    if (level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_RCVBUF)) {
      value /= 2;
      if (!restricted) name = name == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;
    }
    CR_TRY(set_int(s, level, name, value, what));
  }
  return {};
}

}  // namespace cr::restore
