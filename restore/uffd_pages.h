// Placing a process's pages with UFFDIO_COPY (uffd_pages.cc): the kernel allocates each page
// and copies into it, where a write through process_vm_writev first faults in a zeroed page
// and then copies over it. Used for the private anonymous mappings (anon, heap, stack) that
// do not ask for transparent huge pages (those fault in huge, as the original had them).
#pragma once

#include <cstdint>
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

  bool active() const { return fd_.valid(); }
  /// Puts `len` bytes at `addr` in the task: UFFDIO_COPY where registered, write_mem elsewhere
  /// and on a page already there (EEXIST).
  Status place(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len);
  /// Unregisters everything (closing the last reference to the userfaultfd does it), before
  /// anything else touches the task's memory: an access to a missing registered page would
  /// wait for a fault nobody serves.
  void finish() { fd_.reset(); }

 private:
  Status copy(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len);
  ScopedFd fd_;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // registered [start, end), in order
};

}  // namespace cr::restore
