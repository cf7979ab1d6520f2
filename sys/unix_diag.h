// What the kernel says about AF_UNIX sockets through NETLINK_SOCK_DIAG: type, state, bound name,
// peer, pending connections, queue lengths and shutdown bits, by inode. The reply is parsed from
// bytes (parse_unix_diag), so tests feed canned netlink messages; query_unix_sockets() asks the
// kernel for every unix socket of our network namespace.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace cr::sys {

/// One unix socket as sock_diag describes it.
struct UnixDiag {
  uint64_t ino = 0;
  uint32_t type = 0;   // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  uint32_t state = 0;  // TCP_ESTABLISHED (1), TCP_CLOSE (7), TCP_LISTEN (10)
  std::string name;    // sun_path as bound (abstract: starting with '\0'); empty: unnamed
  bool has_vfs = false;
  uint64_t vfs_ino = 0, vfs_dev = 0;  // the bound file (a path name), as the kernel sees it
  bool has_peer = false;
  uint64_t peer_ino = 0;        // 0 with has_peer: the peer has been closed
  std::vector<uint64_t> icons;  // a listener's connections not yet accepted
  bool has_rqlen = false;
  uint32_t rqueue = 0, wqueue = 0;  // listener: accept queue length and backlog
  uint32_t shutdown = 0;            // RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2
};

/// Parses a sock_diag reply (one or more netlink messages, as recv() returns them) into `out`,
/// by inode. Returns true when NLMSG_DONE was seen. Errors name what is malformed.
Result<bool> parse_unix_diag(std::span<const uint8_t> bytes, std::map<uint64_t, UnixDiag>& out);

/// Every unix socket of the caller's network namespace, by inode.
Result<std::map<uint64_t, UnixDiag>> query_unix_sockets();

}  // namespace cr::sys
