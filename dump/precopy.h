// Pre-copy (crdump --pre-copy): the tree's private anonymous memory goes out while the tree
// runs, in rounds, and the final (frozen) dump sends only what changed since.
//
// This kernel has no soft-dirty bits; writes are tracked with userfaultfd write-protect in
// async mode (UFFD_FEATURE_WP_ASYNC, 6.7+): a write to a protected page clears the page's
// protection in the fault handler, without waking anybody, and PAGEMAP_SCAN reports the page as
// PAGE_IS_WRITTEN. The userfaultfd must belong to the target's mm, so it is made by a call
// injected into each process during a short freeze at the start, and taken over with
// pidfd_getfd; every other operation (register, protect, scan) works on that mm from crdump.
//
// What makes a page's pre-copied contents trustworthy at the final freeze (settle()): it was
// sent in some round, it is present now, its protection is still set (not PAGE_IS_WRITTEN), and
// it is not the shared zero page. A write by the task, by the kernel on its behalf (read(2)
// into it), by process_vm_writev or /proc/PID/mem, a copy-on-write break after fork, an
// mremap (the moved pages lose their protection: no UFFD_FEATURE_EVENT_REMAP), MADV_DONTNEED
// and a fault afterwards (a write: unprotected; a read: the zero page) and an exec (a new mm
// without protections) each fail one of those. Anything else is sent in the final dump.
//
// The tracking ends when the userfaultfd closes (the kernel unregisters the mappings and drops
// the protections): settle() does it for each process it is asked about, stop() and the
// destructor for the rest, and crdump's death does it too.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "dump/dump.h"
#include "format/record_writer.h"

namespace cr::dump {

struct DumpContext;
struct PageSpan;

/// When the rounds stop: after `max_rounds` rounds (the first copies everything), or once a
/// round found at most `dirty_bytes` written since the one before, or more than it did.
struct PrecopyPolicy {
  unsigned max_rounds = 8;
  uint64_t dirty_bytes = 4ull << 20;
};

/// One round's figures.
struct PrecopyRound {
  unsigned round = 0;        // 0: the first, which copies every present page
  uint64_t dirty_bytes = 0;  // pages found written since the round before (all, in round 0)
  uint64_t sent_bytes = 0;   // the PrecopyPages tails written (zero pages are not sent)
  double seconds = 0;
};

/// The resident private anonymous memory of `root` and its descendants (RssAnon of each, read
/// without stopping anything: an estimate, for crdump's choice of pre-copy under
/// --leave-running), and how many processes they are. One that goes meanwhile counts nothing.
struct TreeMemory {
  uint64_t anon_bytes = 0;
  uint64_t processes = 0;
};
TreeMemory tree_memory(pid_t root);

class PreCopy {
 public:
  /// Freezes the tree of `root` (as a dump does, refusing what it refuses), gives each process
  /// a userfaultfd in write-protect async mode, registers and protects its private anonymous
  /// mappings, and lets the tree run on. PrecopyPages go to `out`, which must be fresh (its
  /// header written, nothing else).
  static Result<std::unique_ptr<PreCopy>> start(pid_t root, const DumpOptions& opts,
                                                format::RecordWriter& out);
  ~PreCopy();  // stop()
  PreCopy(const PreCopy&) = delete;
  PreCopy& operator=(const PreCopy&) = delete;

  /// Copies what was written since the previous round (in the first, every present page).
  Result<PrecopyRound> round();
  /// Rounds until the policy says stop; `on_round` hears of each, and an error of `before`
  /// (called before each round: crdump's cancel signals) ends them with it.
  Status run(const PrecopyPolicy& policy, const std::function<void(const PrecopyRound&)>& on_round,
             const std::function<Status()>& before = nullptr);

  /// At the final freeze (every thread of `ctx` stopped): the runs of its pages whose newest
  /// PrecopyPages still hold, in address order. Ends its tracking. A process that was not
  /// pre-copied, or whose mm is not the one that was (exec, a reused pid), has none.
  Result<std::vector<PageSpan>> settle(DumpContext& ctx);
  /// Ends the tracking of every process not settled yet.
  void stop();

  uint64_t sent_bytes() const { return sent_bytes_; }
  unsigned rounds() const { return rounds_; }

 private:
  struct Range;
  struct Proc;
  explicit PreCopy(format::RecordWriter& out);
  Status copy_runs(Proc& p, const std::vector<std::pair<uint64_t, uint64_t>>& runs,
                   PrecopyRound& r);
  format::RecordWriter& out_;
  std::vector<Proc> procs_;
  ScopedMapping buf_;
  unsigned rounds_ = 0;
  uint64_t sent_bytes_ = 0;
};

}  // namespace cr::dump
