// The network lock: while a tree's TCP connections are dumped and until they are restored, the
// packets of each connection are dropped, both ways, by an nftables table of crtools' own. The
// peer then sees a pause (its packets go unanswered and are sent again later), never a reset
// from a port that has nobody behind it. The table is made and deleted with the `nft` tool
// (Debian's nftables), in one transaction each; the rules are text built by netlock_script so
// tests can read them.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace cr::sys {

/// One TCP connection as its packets show it: the local and remote address and port.
struct TcpTuple {
  int family = AF_INET;              // of the packets: AF_INET (also v4-mapped IPv6) or AF_INET6
  std::array<uint8_t, 16> src{}, dst{};  // 4 or 16 bytes used
  uint16_t sport = 0, dport = 0;
  bool operator==(const TcpTuple&) const = default;
};

/// The SO_MARK of the packets crrestore makes in a half-closed connection's name (the peer's
/// FIN, its ACK of ours): the lock's rules let them through, and nothing else is dropped less.
constexpr uint32_t kNetLockPassMark = 0x63724c4b;  // "crLK"

/// A table name no other dump uses at the same time: "crtools_lock_<pid>_<nanoseconds>".
std::string netlock_table_name();

/// The nft script that makes `table` (family inet) with input and output chains dropping every
/// packet of each connection, both ways, but those marked kNetLockPassMark.
std::string netlock_script(const std::string& table, const std::vector<TcpTuple>& conns);

/// Runs `nft -f -` with `script` on its stdin. Errors carry nft's own message.
Status run_nft(const std::string& script);

/// Deletes `table` if it exists (a table already gone is not an error).
Status netlock_delete(const std::string& table);

/// A lock in force: deleted on destruction unless keep() was called (crdump leaves it to the
/// restore when it kills the tree).
class NetLock {
 public:
  /// Makes table `table` (netlock_table_name()) dropping the connections' packets.
  static Result<NetLock> install(const std::vector<TcpTuple>& conns, const std::string& table);
  NetLock() = default;
  NetLock(NetLock&& o) noexcept : table_(std::move(o.table_)) { o.table_.clear(); }
  NetLock& operator=(NetLock&& o) noexcept;
  NetLock(const NetLock&) = delete;
  ~NetLock();

  const std::string& table() const { return table_; }
  bool active() const { return !table_.empty(); }
  /// Deletes the table now.
  Status release();
  /// Leaves the table in place for good.
  void keep() { table_.clear(); }

 private:
  std::string table_;
};

}  // namespace cr::sys
