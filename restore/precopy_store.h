// The PrecopyPages of an image (crdump --pre-copy), kept while the tree is restored: they
// come before the tree's head, round after round, and a process's section says later which of
// them still hold (PagesPrecopied). Kept as runs, as the records bring them (one copy of a
// record's tail, one map entry), in chunks of crrestore's anonymous memory; a later round's
// copy of a page overwrites the earlier in place.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"

namespace cr::restore {

/// Half of this machine's memory (4 GiB if it cannot be read): what a stream may make crrestore
/// hold in its own memory, the pre-copy store and a live update's read-ahead each.
uint64_t half_of_memory();

class PrecopyStore {
 public:
  /// `limit`: the most bytes of distinct pages kept (a hostile stream could ask for any
  /// amount); 0 picks half of the machine's memory.
  explicit PrecopyStore(uint64_t limit = 0);
  /// A PrecopyPages record of `pid` at `vaddr` (page-aligned) whose tail is `data`.
  Status add(uint32_t pid, uint64_t vaddr, std::span<const uint8_t> data);
  /// Calls `fn(addr, bytes, len)` for the stored pages of [vaddr, vaddr + npages pages) of
  /// `pid`, in address order, in runs as long as the slots are consecutive. An error names the
  /// first page that has no copy.
  Status each_run(uint32_t pid, uint64_t vaddr, uint64_t npages,
                  const std::function<Status(uint64_t, const uint8_t*, uint64_t)>& fn) const;
  uint64_t pages() const { return bytes_ / 4096; }
  bool empty() const { return bytes_ == 0; }

 private:
  struct Run {
    uint64_t len;
    uint8_t* data;
  };
  // Room for `want` bytes (page multiple) in the current chunk, or a new one; sets `got`.
  uint8_t* alloc(uint64_t want, uint64_t& got);
  std::unordered_map<uint32_t, std::map<uint64_t, Run>> runs_;  // by pid, then start: disjoint
  std::vector<ScopedMapping> chunks_;
  size_t used_in_last_ = 0;
  uint64_t bytes_ = 0;
  uint64_t limit_;
};

}  // namespace cr::restore
