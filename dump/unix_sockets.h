// AF_UNIX sockets of the tree (unix_sockets.cc): files.cc hands over every socket fd, this
// module gives each its UnixSocket object and, once every fd is known, checks that each peer
// and listener is inside the tree, resolves bound names, and peeks at the queued data.
#pragma once

#include <functional>
#include <map>
#include <optional>

#include "dump/dump_context.h"
#include "sys/unix_diag.h"

namespace cr::dump {

class UnixSocketCollector {
 public:
  explicit UnixSocketCollector(DumpTree& tree) : tree_(tree) {}

  /// Whether socket inode `ino` is a unix socket of this network namespace (sock_diag).
  Result<bool> knows(uint64_t ino);

  /// The UnixSocket object id of socket `fd` of `proc` (inode `ino`), allocated on first sight.
  /// Sockets of other families are refused, naming the family and the fd.
  Result<uint32_t> add(DumpContext& proc, int fd, uint64_t ino);

  /// After every fd of the tree was added: the UnixSocket and UnixSocketData records into
  /// tree.files, or a refusal naming the fd. `file_of` gives the File id of the open file
  /// description behind one of crdump's own fds (an fd in flight, received by peeking), or
  /// an error when no fd of the tree holds it.
  Status finish(const std::function<Result<uint32_t>(int)>& file_of);

 private:
  struct Entry {
    uint32_t id = 0;
    DumpContext* proc = nullptr;
    int fd = -1;
    sys::UnixDiag diag;
  };

  Status describe(const Entry& e, schema::UnixSocket& rec,
                  const std::function<Result<uint32_t>(int)>& file_of);
  Status describe_external(const Entry& e, schema::UnixSocket& rec);
  Status describe_pending(const Entry& e, schema::UnixSocket& rec);
  Status describe_connecting(const Entry& e, const sys::UnixDiag& listener,
                             schema::UnixSocket& rec);
  const sys::UnixDiag* pending_on(uint64_t ino) const;
  Status resolve_name(const Entry& e, schema::UnixSocket& rec) const;
  const Entry* listener_named(const Entry& e) const;

  DumpTree& tree_;
  std::optional<std::map<uint64_t, sys::UnixDiag>> diag_;  // every unix socket, asked once
  std::map<uint64_t, Entry> entries_;                      // by inode
  std::vector<uint64_t> order_;                            // inodes in the order first seen
};

}  // namespace cr::dump
