// Rebuilding the tree's unix sockets (unix_sockets.cc), all at once before the tree is forked:
// pairs, bound names, listeners, connections accepted from them, queued data, shutdown states
// and options. Each process then inherits the sockets its Fds name.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

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

/// The queues whose messages carry credentials (SCM_CREDENTIALS, UnixSocketCreds): the kernel
/// takes a message's pid only while that process exists, so these are sent once every process
/// of the tree does, crrestore still holding every socket then (its carriers, whose fd numbers
/// these are). The shutdowns and options that must follow their data (both ends') come after.
class LateUnixQueues {
 public:
  struct Queue {
    std::string what;  // the receiver, for errors
    const UnixSocketImage* img = nullptr;
    int from = -1;   // the peer (or `ghost`) that sends it
    ScopedFd ghost;  // a stand-in for a peer gone, closed once it has sent
    const schema::UnixSocket* from_rec = nullptr;  // the peer's record (its buffers), or null
  };
  struct Finish {
    std::string what;
    int fd = -1;
    const schema::UnixSocket* rec = nullptr;
  };
  bool empty() const { return queues.empty(); }
  /// Sends every queue, each message's credentials naming one of `tree_pids`, then finishes
  /// the sockets. Once.
  Status send(const std::set<pid_t>& tree_pids);

  std::vector<Queue> queues;
  std::vector<Finish> finishes;
};

/// `late` gets the queues with credentials and the sockets whose finish waits for them.
Result<std::map<uint32_t, ScopedFd>> create_unix_sockets(
    const std::map<uint32_t, UnixSocketImage>& sockets, const Privileges& priv,
    const std::map<uint32_t, schema::File>& files, const FileOpener& open_file,
    LateUnixQueues& late);

}  // namespace cr::restore
