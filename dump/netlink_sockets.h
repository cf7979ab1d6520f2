// AF_NETLINK sockets of the tree (netlink_sockets.cc): files.cc hands over every such fd;
// finish() describes each one from crdump's copy of it, or refuses it naming the fd.
#pragma once

#include <map>
#include <string_view>
#include <vector>

#include "common/scoped_fd.h"
#include "dump/dump_context.h"

namespace cr::dump {

class NetlinkSocketCollector {
 public:
  explicit NetlinkSocketCollector(DumpTree& tree) : tree_(tree) {}

  /// The NetlinkSocket object id of socket `fd` of `proc` (inode `ino`, `s` a copy of it),
  /// allocated on first sight.
  Result<uint32_t> add(DumpContext& proc, int fd, uint64_t ino, ScopedFd s);

  /// After every fd of the tree was added: NetlinkSocket records into tree.files, or a
  /// refusal naming the fd and the socket.
  Status finish();

 private:
  struct Entry {
    uint32_t id = 0;
    DumpContext* proc = nullptr;
    int fd = -1;
    ScopedFd s;
  };

  Status describe(Entry& e, uint64_t ino, schema::NetlinkSocket& rec);

  DumpTree& tree_;
  std::map<uint64_t, Entry> entries_;  // by inode
  std::vector<uint64_t> order_;        // inodes in the order first seen
};

/// "route", "generic", "protocol 21": a netlink protocol's name, for messages.
std::string netlink_protocol_name(uint32_t protocol);

/// The inodes of /proc/net/netlink's sockets whose dump (NLM_F_DUMP) is under way (its Dump
/// column, the kernel's cb_running), from the file's text.
Result<std::vector<uint64_t>> parse_netlink_dumping(std::string_view text);

}  // namespace cr::dump
