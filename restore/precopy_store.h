// The PrecopyPages of an image (crdump --pre-copy), kept while the tree is restored: they
// come before the tree's head, round after round, and a process's section says later which of
// them still hold (PagesPrecopied). Kept as runs, as the records bring them (one copy of a
// record's tail, one map entry), in chunks of crrestore's anonymous memory; a later round's
// copy of a page overwrites the earlier in place.
//
// From a plain image file the big records stay in the file (the reader's deferred tails): a run
// then names the record and where in it its pages are, and each_run reads the record (checking
// its checksum) when its pages are placed. A later round's small record (read whole) over some
// of its pages is kept as a patch, written over the record's bytes once they are read: its run
// stays whole. A later big record over them splits the run. Copying 1 GiB of first round into fresh memory of our
// own before placing it cost three times the plain restore's time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "format/record_reader.h"

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
  /// The same for a record whose tail was left in the image file (`tail`, whose fd must stay
  /// open while the store is used): only where it is is kept.
  Status add_deferred(uint32_t pid, uint64_t vaddr, const format::DeferredTail& tail);
  /// Bytes of a run and what keeps them valid (null: the store itself, for as long as it lives).
  using RunFn = std::function<Status(uint64_t addr, const uint8_t* bytes, uint64_t len,
                                     const std::shared_ptr<const void>& hold)>;
  /// Calls `fn` for the stored pages of [vaddr, vaddr + npages pages) of `pid`, in address
  /// order, in runs as long as the slots are consecutive. An error names the first page that
  /// has no copy, or a record in the file that cannot be read or fails its checksum.
  Status each_run(uint32_t pid, uint64_t vaddr, uint64_t npages, const RunFn& fn);
  uint64_t pages() const { return pages_; }
  bool empty() const { return pages_ == 0; }
  /// Bytes of deferred records read back so far (a record is read again if it is wanted again
  /// after two others).
  uint64_t file_bytes_read() const { return file_bytes_read_; }

 private:
  struct Run {
    uint64_t len;
    uint8_t* data;      // in a chunk; null for a run in the file
    uint32_t rec = 0;   // in the file: index in records_
    uint64_t off = 0;   // in the file: where in the record's tail the run starts
  };
  // Newer bytes of some pages of a record in the file: written over its tail once read.
  struct Patch {
    uint64_t off;  // in the record's tail
    const uint8_t* data;
    uint64_t len;
  };
  struct Loaded {
    uint32_t rec = UINT32_MAX;
    std::shared_ptr<std::vector<uint8_t>> buf;
  };
  using RunMap = std::map<uint64_t, Run>;
  // Room for `want` bytes (page multiple) in the current chunk, or a new one; sets `got`.
  uint8_t* alloc(uint64_t want, uint64_t& got);
  // Removes [a, end) from `m`, splitting runs that stick out of it.
  void carve(RunMap& m, uint64_t a, uint64_t end);
  Status check_run(uint32_t pid, uint64_t vaddr, uint64_t len) const;
  Status over_limit() const;
  // The bytes of deferred record `rec`, read and checked now unless one of the two last read.
  Result<const Loaded*> load(uint32_t rec);
  std::unordered_map<uint32_t, RunMap> runs_;  // by pid, then start: disjoint
  std::vector<ScopedMapping> chunks_;
  size_t used_in_last_ = 0;
  uint64_t bytes_ = 0;  // in chunks: bounded by limit_
  uint64_t pages_ = 0;  // pages added, in chunks or in the file
  uint64_t limit_;
  std::vector<format::DeferredTail> records_;
  std::unordered_map<uint32_t, std::vector<Patch>> patches_;  // by record
  Loaded loaded_[2];  // the last two records read; a buffer no run holds is read into again
  std::vector<std::shared_ptr<std::vector<uint8_t>>> spare_bufs_;
  uint64_t file_bytes_read_ = 0;
};

}  // namespace cr::restore
