// RemoteBatch: many system calls run inside a stopped tracee for one resume and one stop.
//
// A remote call (RemoteSyscalls::call) costs a resume and two syscall stops: tens of
// microseconds of scheduling for a call of one. A batch instead writes a list of calls into
// an area of the tracee's, points the task at a small loop (batch_code(), copied into an
// executable page of the task's) that runs them one after the other, storing each result, and
// lets it run (PTRACE_CONT) to the `int3` that ends the loop: one round trip for all of them.
//
//   area:  [ entry 0 | entry 1 | ... ->          free          <- ... data (paths, structs) ]
//   entry: nr, a1..a6, result, flags, subst      (80 bytes, kEntrySize)
//
// The loop stops at the first call that fails (a result in -4095..-1) unless that call may
// fail (kMayFail). An argument can be the result of an earlier call of the batch (an fd
// opened, then mapped and closed): the loop copies it in just before the call.
//
// The stop is a SIGTRAP the kernel forces through (int3). A SIGTRAP blocked or ignored would
// have its handler reset to SIG_DFL (and be unblocked), so the batch runs with every signal
// blocked but SIGTRAP; the signal is discarded at its delivery stop, and the next single call
// blocks everything again. What is left to the caller: a task whose SIGTRAP is ignored (it
// would be reset) or pending (it would be delivered, first) must not run batches; crrestore's
// tasks run them only before their handlers and pending signals are restored, while SIGTRAP
// is at its default and none is queued.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "sys/remote_syscalls.h"
#include "sys/tracee.h"

namespace cr::sys {

/// The loop's machine code, position independent: copy it into an executable page of the task.
std::span<const uint8_t> batch_code();

class RemoteBatch {
 public:
  static constexpr uint64_t kEntrySize = 80;
  /// The call may fail; the batch goes on (its result is still kept).
  static constexpr uint64_t kMayFail = 1;

  /// Runs through `rs` (which must be the only scope active on the task) with the loop at
  /// `code` and [area, area + area_size) of the task's writable memory for entries and data.
  RemoteBatch(RemoteSyscalls& rs, uint64_t code, uint64_t area, uint64_t area_size);

  /// Makes room for `calls` calls and `bytes` bytes of data (each put rounds up to 16): runs
  /// what is queued first if they do not fit beside it. Call it before the puts and adds of an
  /// item whose calls refer to each other (a put's address, an earlier call's result).
  Status reserve(size_t calls, size_t bytes);
  /// Copies data the calls read into the area; its address in the task.
  Result<uint64_t> put(const void* data, size_t len);
  Result<uint64_t> put_str(const std::string& s) { return put(s.c_str(), s.size() + 1); }
  /// Queues a call; returns its index (counted over every run of the batch). `what`, if not
  /// empty, is put before its error message.
  Result<size_t> add(const char* name, long nr, std::array<uint64_t, 6> args, std::string what = {},
                     uint64_t flags = 0);
  /// Argument `arg` (0..5) of queued call `call` is the result of call `from`, an earlier one.
  Status use_result(size_t call, int arg, size_t from);
  /// Runs what is queued. The first call that failed (not kMayFail) is the error, as
  /// RemoteSyscalls::call says it, wrapped by its `what`; the calls after it did not run.
  Status run();
  /// The raw result (rax) of a call that ran.
  int64_t result(size_t call) const { return results_.at(call); }
  /// Calls queued or run so far.
  size_t size() const { return results_.size() + queued_.size(); }

 private:
  struct Entry {
    uint64_t nr;
    uint64_t args[6];
    int64_t result;
    uint64_t flags;
    uint64_t subst;  // (arg slot 1..6) << 32 | index of the source call in this run; 0: none
  };
  static_assert(sizeof(Entry) == kEntrySize);
  struct Meta {
    const char* name;
    std::string what;
  };

  RemoteSyscalls& rs_;
  uint64_t code_, area_, size_;
  std::vector<Entry> queued_;
  std::vector<Meta> meta_;        // of every call, run or queued
  std::vector<int64_t> results_;  // of the calls run
  std::vector<uint8_t> data_;     // the area's top, growing down: data_[0] is at area_+size_-len
};

}  // namespace cr::sys
