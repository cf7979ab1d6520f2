// The pages of one address space that a lazy restore (crrestore --lazy) has not placed yet:
// runs of [addr, addr + len) with where their bytes are (a held window of the reader, or the
// pre-copy store). The pager takes pages out as it places them, and follows what the program
// does to its memory meanwhile: a zapped or unmapped range is dropped (it reads zeros now, or
// nothing), a moved one moves, and a fork gives the child a copy of what is still missing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>

namespace cr::restore {

class LazyRanges {
 public:
  struct Span {
    uint64_t addr;
    const uint8_t* data;  // in_file: the offset in the image file, not a pointer
    uint64_t len;
    bool in_file = false;
  };
  /// `len` bytes for [addr, addr + len), page-aligned; `hold` keeps `data` valid. What was
  /// there before is replaced (a later copy of a page wins). `in_file`: the bytes are still
  /// in the image file, and `data` is their offset there (a deferred tail).
  void add(uint64_t addr, const uint8_t* data, uint64_t len, std::shared_ptr<const void> hold,
           bool in_file = false);
  /// The pending bytes from `addr` on, at most `max`, as far as they run on without a gap.
  std::optional<Span> at(uint64_t addr, uint64_t max) const;
  /// The first pending bytes at or above `addr` and below `end`, as far as they run on.
  std::optional<Span> from(uint64_t addr, uint64_t end) const;
  /// The lowest pending bytes, at most `max` of them.
  std::optional<Span> first(uint64_t max) const;
  /// Forgets [start, end): placed, zapped or unmapped.
  void drop(uint64_t start, uint64_t end);
  /// mremap moved [from, from + len) to `to`: what was pending there is pending at `to` now,
  /// and what was pending at `to` is gone (the move unmapped it).
  void move(uint64_t from, uint64_t to, uint64_t len);
  uint64_t bytes() const { return bytes_; }
  /// [lowest, highest) pending address; {0, 0} when empty.
  std::pair<uint64_t, uint64_t> bounds() const;
  bool empty() const { return runs_.empty(); }
  size_t runs() const { return runs_.size(); }

 private:
  struct Run {
    uint64_t end;
    const uint8_t* data;
    std::shared_ptr<const void> hold;
    bool in_file = false;
  };
  // Splits the run that contains `at` (strictly inside) in two.
  void split(uint64_t at);
  std::map<uint64_t, Run> runs_;  // by start; disjoint
  uint64_t bytes_ = 0;
};

}  // namespace cr::restore
