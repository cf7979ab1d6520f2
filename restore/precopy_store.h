// The PrecopyPages of an image (crdump --pre-copy), kept while the tree is restored: they
// come before the tree's head, round after round, and a process's section says later which of
// them still hold (PagesPrecopied). One 4 KiB slot per (pid, page), overwritten by a later
// round's copy, in anonymous memory of crrestore's that goes with the store.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"

namespace cr::restore {

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
  uint64_t pages() const { return index_.size(); }
  bool empty() const { return index_.empty(); }

 private:
  struct KeyHash {
    size_t operator()(const std::pair<uint32_t, uint64_t>& k) const {
      return std::hash<uint64_t>()(k.second * 0x9E3779B97F4A7C15ull ^ k.first);
    }
  };
  uint8_t* slot();
  std::unordered_map<std::pair<uint32_t, uint64_t>, uint8_t*, KeyHash> index_;
  std::vector<ScopedMapping> chunks_;
  size_t used_in_last_ = 0;
  uint64_t limit_;
};

}  // namespace cr::restore
