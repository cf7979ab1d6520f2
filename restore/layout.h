// Address-space planning for the restored task, as pure functions over address ranges so the
// tricky parts (where the trampoline goes, in which order the vDSO pieces move) are unit-tested
// without a process.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cr::restore {

/// x86_64 user address space end (TASK_SIZE with 4-level paging).
inline constexpr uint64_t kTaskSize = 0x7ffffffff000ull;
/// Lowest address we place anything at (above vm.mmap_min_addr).
inline constexpr uint64_t kMinPlaceAddr = 0x10000000ull;

struct Range {
  uint64_t start = 0, end = 0;
  uint64_t size() const { return end - start; }
  bool overlaps(const Range& o) const { return start < o.end && o.start < end; }
  bool operator==(const Range&) const = default;
};

/// One line of /proc/PID/maps: the range and the name column ("[vdso]", a path, or empty).
struct MapsEntry {
  Range range;
  std::string name;
};


/// Finds `size` bytes free in both layouts (with a free page on each side, so the trampoline
/// never merges with a neighbour), at or above kMinPlaceAddr, the lowest such address.
Result<uint64_t> choose_free_range(const std::vector<Range>& a, const std::vector<Range>& b,
                                   uint64_t size);

/// One vDSO piece: where the kernel put it in the new task and where the dump had it.
struct VdsoPiece {
  std::string name;  // "[vvar]", "[vvar_vclock]", "[vdso]"
  Range current;
  uint64_t target = 0;
};

/// One mremap(from, size, size, MREMAP_MAYMOVE|MREMAP_FIXED, to).
struct Move {
  uint64_t from = 0, to = 0, size = 0;
  bool operator==(const Move&) const = default;
};

/// Orders the moves so that no mremap lands on a piece that has not moved yet and none
/// overlaps its own source (mremap refuses that): a piece that is blocked goes to a
/// temporary address first, chosen free in `avoid` and away from every piece's source and
/// target. Pieces already in place produce no move.
Result<std::vector<Move>> plan_vdso_moves(const std::vector<VdsoPiece>& pieces,
                                          const std::vector<Range>& avoid);

/// The complement of `keep` inside [0, limit): what to munmap so only `keep` stays.
std::vector<Range> unmap_ranges(std::vector<Range> keep, uint64_t limit = kTaskSize);

}  // namespace cr::restore
