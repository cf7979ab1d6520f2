// PAGEMAP_SCAN over a range of an address space, as runs: crdump's pre-copy rounds (written
// pages) and crrestore's lazy restore (pages present before the tree runs) ask it.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/result.h"

namespace cr::sys {

using PageRun = std::pair<uint64_t, uint64_t>;  // [start, end)

/// The runs of [start, end) whose pages are present, have every category of `want` and none of
/// `unwanted` (kPageIs* of linux_abi.h); `pagemap` is an open /proc/PID/pagemap.
Result<std::vector<PageRun>> pagemap_scan(int pagemap, uint64_t start, uint64_t end,
                                          uint64_t want, uint64_t unwanted);

}  // namespace cr::sys
