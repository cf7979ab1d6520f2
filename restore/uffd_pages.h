// Placing a process's pages with UFFDIO_COPY (uffd_pages.cc): the kernel allocates each page
// and copies into it, where a write through process_vm_writev first faults in a zeroed page
// and then copies over it. Used for the private anonymous mappings (anon, heap, stack) that
// do not ask for transparent huge pages (those fault in huge, as the original had them).
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "restore/context.h"

namespace cr::restore {

class UffdPages {
 public:
  /// Registers the process's eligible mappings with a userfaultfd made in it (missing-page
  /// mode, user faults only). A kernel or a process that cannot have one leaves it off:
  /// active() is false and every page goes through write_mem. With a lazy pager (--lazy) the
  /// userfaultfd takes kernel faults and the pager's events too, and the pager gets a copy: the
  /// registered pages are only noted, to be placed once the tree runs (a process whose task may
  /// not make such a userfaultfd, one without CAP_SYS_PTRACE, has its pages placed now).
  static UffdPages start(RestoreContext& ctx);

  UffdPages();
  UffdPages(UffdPages&&) noexcept;
  UffdPages& operator=(UffdPages&&) noexcept;
  ~UffdPages();  // stops the copier (what it had not copied is dropped), then unregisters

  bool active() const { return fd_.valid(); }
  /// Pages at `addr` whose bytes are a deferred tail still in the image file, if they lie in
  /// one registered range. Lazy: noted for the pager, which reads them when wanted. Otherwise
  /// queued for the copier threads, which read the record, check its checksum and place it (a
  /// damaged record fails finish() or a later place, before the tree runs). False: the caller
  /// reads them and places them (place()).
  Result<bool> place_from_file(RestoreContext& ctx, uint64_t addr,
                               const format::DeferredTail& tail);
  /// Puts `len` bytes at `addr` in the task: UFFDIO_COPY where registered, write_mem elsewhere
  /// and on a page already there (EEXIST). With a `hold` token keeping `data` valid (the
  /// reader's hold()), the registered parts are copied by a thread of ours while the caller
  /// reads on: the stream is read and checked on one core while the kernel places the pages on
  /// the other. A failure of that thread is returned by a later place() or by finish().
  /// `from_store`: the bytes are the pre-copy store's (they count against no bound).
  Status place(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len,
               std::shared_ptr<const void> hold = nullptr, bool from_store = false);
  /// Waits for the copier, then unregisters everything (closing the last reference to the
  /// userfaultfd does it), before anything else touches the task's memory: an access to a
  /// missing registered page would wait for a fault nobody serves. Lazy: seals the process in
  /// the pager, which serves its faults from now on (its copy keeps the registration).
  Status finish();

 private:
  struct Copier;
  // `data` null: the bytes are `file`'s, read by the copier.
  Status queue(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len,
               const std::shared_ptr<const void>& hold,
               const format::DeferredTail* file = nullptr);
  bool in_one_range(uint64_t addr, uint64_t len) const;
  ScopedFd fd_;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // registered [start, end), in order
  std::unique_ptr<Copier> copier_;  // started by the first held place()
  LazyPager* lazy_ = nullptr;       // --lazy, and this process's pages go through it
  pid_t pid_ = 0;
  const sys::Tracee* tracee_ = nullptr;
};

}  // namespace cr::restore
