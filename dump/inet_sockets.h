// AF_INET and AF_INET6 sockets of the tree (inet_sockets.cc): files.cc hands over every such
// fd; finish() describes each one, and an established TCP connection (with --tcp-established)
// through TCP_REPAIR, after the network lock (sys/netlock.h) stops its packets.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "common/scoped_fd.h"
#include "dump/dump_context.h"

namespace cr::dump {

class InetSocketCollector {
 public:
  explicit InetSocketCollector(DumpTree& tree) : tree_(tree) {}

  /// The InetSocket object id of socket `fd` of `proc` (inode `ino`, `s` a copy of it, family
  /// `family`), allocated on first sight.
  Result<uint32_t> add(DumpContext& proc, int fd, uint64_t ino, ScopedFd s, int family);

  /// After every fd of the tree was added: InetSocket and InetSocketData records into
  /// tree.files, or a refusal naming the fd and the socket.
  Status finish();

 private:
  struct Entry {
    uint32_t id = 0;
    DumpContext* proc = nullptr;
    int fd = -1;
    int family = 0;
    ScopedFd s;
  };

  Status describe(Entry& e, schema::InetSocket& rec);
  Status find_pending_clients();
  Status read_connection(Entry& e, schema::InetSocket& rec);
  Status peek_datagrams(int s, const schema::InetSocket& rec);
  Status check_memberships(int s, int family, const schema::InetSocket& rec);

  // The multicast groups joined on this machine (/proc/net/igmp, igmp6), read on first need.
  std::optional<std::vector<sys::McastGroup>> groups_;

  DumpTree& tree_;
  std::map<uint64_t, Entry> entries_;  // by inode
  std::vector<uint64_t> order_;        // inodes in the order first seen
  // A listener whose accept queue holds one connection from a client of the tree that has
  // sent nothing, and that client (kInetConnecting): by inode.
  std::set<uint64_t> listeners_with_pending_, pending_clients_;
};

/// "fd 5: tcp 127.0.0.1:8080 -> 127.0.0.1:41234": a socket of a record, for messages.
std::string inet_socket_text(const schema::InetSocket& rec);

}  // namespace cr::dump
