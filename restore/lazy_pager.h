// The pager of a lazy restore (crrestore --lazy): the tree runs before its private anonymous
// memory is in, and a thread of crrestore's puts the pages in behind it.
//
// Each process's eligible mappings are registered with a userfaultfd made in it (missing-page
// mode, kernel faults too: a read(2) into a missing page waits as the program's own access
// does) with the fork, mremap, madvise-remove and unmap events on. While the stream is read the
// pages are only noted (the reader's windows, or the pre-copy store, keep the bytes); once the
// process's section is read its faults are served. After the tree runs the thread also copies
// whatever is still missing, lowest address first, in 2 MiB steps. A fault on a page the image
// has gets it (and the next pages of its run, up to 64 KiB) with UFFDIO_COPY; one on a page the
// image does not have gets the zero page. What the program does to its memory meanwhile is
// followed from the events: a zapped or unmapped range is no longer filled, a moved one is
// filled where it went, a forked child gets its own copy of what is still missing. When nothing
// is missing any more the userfaultfds are closed, which unregisters the mappings.
//
// A LazyGuard (lazy_guard.h) holds a copy of every userfaultfd and kills the tree should
// crrestore die before the end.
#pragma once

#include <linux/userfaultfd.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "format/record_reader.h"
#include "restore/lazy_guard.h"
#include "restore/lazy_ranges.h"
#include "sys/tracee.h"

namespace cr::restore {

class LazyPager {
 public:
  struct Stats {
    uint64_t faults = 0;        // served from the image
    uint64_t zero_faults = 0;   // pages the image does not have
    uint64_t fault_bytes = 0;   // copied for faults
    uint64_t fill_bytes = 0;    // copied in the background
    uint64_t present_bytes = 0; // written at seal (there before the tree ran)
    uint64_t file_bytes = 0;    // read from the image file (deferred tails), checks included
    uint64_t forks = 0, remaps = 0, removes = 0, unmaps = 0;
    double fill_seconds = 0;    // from start_background() to the last page
  };

  /// Forks the guard (before any thread of crrestore's starts).
  static Result<std::unique_ptr<LazyPager>> create();
  /// Stops the thread and closes the userfaultfds; the guard, not released, kills the tree's
  /// processes first (a failed restore has killed them already).
  ~LazyPager();

  /// Process `pid`'s userfaultfd (API done with kFeatures, its mappings registered). The pager
  /// serves no fault of it before seal().
  Status add_mm(pid_t pid, ScopedFd uffd);
  /// Pages of `pid` for [addr, addr + len), bytes kept valid by `hold`. False when pending
  /// bytes of held windows reach the bound: the caller places them now (place_now).
  bool add(pid_t pid, uint64_t addr, const uint8_t* data, uint64_t len,
           std::shared_ptr<const void> hold, bool counted);
  /// Pages of `pid` at `addr` whose bytes are a deferred tail still in the image file: read
  /// when wanted, the record's checksum checked first. False: not taken (place them now).
  bool add_file(pid_t pid, uint64_t addr, const format::DeferredTail& tail);
  /// `pid`'s section is read: pages already present (the restore's own use of its stack) get
  /// their bytes now with `tracee`, and from now on its faults are served.
  Status seal(pid_t pid, const sys::Tracee& tracee);
  /// The tree runs: the thread copies in what is missing.
  void start_background();
  /// Waits until nothing is missing, closes the userfaultfds and releases the guard. An error
  /// (a page that could not be placed) leaves the guard to kill the tree.
  Status finish();

  LazyGuard& guard() { return guard_; }
  Stats stats() const;
  /// The userfaultfd features a lazy restore needs.
  static const uint64_t kFeatures;

 private:
  struct Mm;
  LazyPager() = default;
  Mm* find(pid_t pid);
  void run();
  void serve(Mm& mm);
  bool fault(Mm& mm, uint64_t addr);  // false: retry later (the address space is changing)
  // UFFDIO_COPY of a span; an in-file one's record is read and checked first.
  std::pair<uint64_t, int> place(Mm& mm, const LazyRanges::Span& s);
  // The bytes of a span (an in-file one's record read and checked into scratch_); null after
  // a failure, which is then in failed_.
  const uint8_t* bytes_of(const LazyRanges::Span& s);
  void fail(Error e);  // the first failure: every process of the tree is killed
  void event(Mm& mm, const uffd_msg& msg);
  void background_step();
  void drop_mm(Mm& mm);
  bool missing_anything() const;
  void wake_thread();

  LazyGuard guard_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // a mm's pages all in, or a failure
  std::vector<std::unique_ptr<Mm>> mms_;
  ScopedFd wake_;  // eventfd: the thread's poll set changed
  std::thread thread_;
  bool stop_ = false;
  bool background_ = false;
  size_t next_bg_ = 0;
  uint64_t held_bytes_ = 0;
  uint64_t held_limit_ = 0;
  std::optional<Error> failed_;
  // Deferred tails (crrestore --lazy from a file): the image file (our copy of the reader's fd),
  // the records by file offset, and the last one read.
  ScopedFd file_;
  std::vector<format::DeferredTail> records_;  // their fd is file_
  size_t loaded_ = SIZE_MAX;
  std::vector<uint8_t> scratch_;
  Stats stats_;
  std::optional<std::chrono::steady_clock::time_point> bg_start_;
};

}  // namespace cr::restore
