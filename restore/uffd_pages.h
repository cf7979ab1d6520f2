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
  /// active() is false and every page goes through write_mem.
  static UffdPages start(RestoreContext& ctx);

  UffdPages();
  UffdPages(UffdPages&&) noexcept;
  UffdPages& operator=(UffdPages&&) noexcept;
  ~UffdPages();  // stops the copier (what it had not copied is dropped), then unregisters

  bool active() const { return fd_.valid(); }
  /// Puts `len` bytes at `addr` in the task: UFFDIO_COPY where registered, write_mem elsewhere
  /// and on a page already there (EEXIST). With a `hold` token keeping `data` valid (the
  /// reader's hold()), the registered parts are copied by a thread of ours while the caller
  /// reads on: the stream is read and checked on one core while the kernel places the pages on
  /// the other. A failure of that thread is returned by a later place() or by finish().
  Status place(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len,
               std::shared_ptr<const void> hold = nullptr);
  /// Waits for the copier, then unregisters everything (closing the last reference to the
  /// userfaultfd does it), before anything else touches the task's memory: an access to a
  /// missing registered page would wait for a fault nobody serves.
  Status finish();

 private:
  struct Copier;
  Status queue(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len,
               const std::shared_ptr<const void>& hold);
  ScopedFd fd_;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // registered [start, end), in order
  std::unique_ptr<Copier> copier_;  // started by the first held place()
};

}  // namespace cr::restore
