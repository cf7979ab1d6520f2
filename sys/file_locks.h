// Parsers for the lines the kernel prints for a file lock (fs/locks.c lock_get_status), in
// /proc/locks and as "lock:" lines of /proc/PID/fdinfo/N. Text in, structs out.
//
//   1: POSIX  ADVISORY  WRITE 11855 fe:00:10953497 5 14
//   2: -> POSIX  ADVISORY  WRITE 11860 fe:00:10953497 0 EOF     (a waiter, /proc/locks only)
//   3: OFDLCK ADVISORY  READ -1 fe:00:10953498 3 9
//   4: FLOCK  ADVISORY  WRITE 11855 fe:00:10953496 0 EOF
//   5: LEASE  ACTIVE    READ 11855 fe:00:10953499 0 EOF
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cr::sys {

/// One lock line. `kind` and `mode` are the kernel's words ("POSIX", "OFDLCK", "FLOCK",
/// "LEASE", "DELEG", "ACCESS"; "ADVISORY", "ACTIVE", "BREAKING", "BREAKER", ...), kept as text
/// so the caller decides what it supports and can name the rest.
struct LockLine {
  bool blocked = false;  // "->": a request waiting for this lock, not a lock held
  std::string kind;
  std::string mode;
  std::string type;  // "READ", "WRITE", "UNLCK"
  int64_t pid = 0;   // -1 for OFD locks (they belong to an open file description)
  std::string dev;   // "fe:00": the superblock's device, hex major:minor as the kernel prints
  uint64_t ino = 0;
  uint64_t start = 0;
  uint64_t end = 0;  // last byte; kToEof for "EOF"

  static constexpr uint64_t kToEof = ~0ull;
  /// The line as the kernel printed it, less the id: for messages.
  std::string text() const;
};

/// One lock line without its leading "lock:\t" ("1: POSIX ...").
Result<LockLine> parse_lock_line(std::string_view line);
/// Every line of /proc/locks.
Result<std::vector<LockLine>> parse_proc_locks(std::string_view text);
/// The "lock:" lines of an fdinfo file: the locks held through that open file description
/// (flock, OFD, lease) or by the reading process's fd table through it (POSIX).
Result<std::vector<LockLine>> parse_fdinfo_locks(std::string_view text);

}  // namespace cr::sys
