// The fd-table plan: how the child turns the files it opened (at whatever numbers the kernel
// gave) into the dumped fd table, as a list of dup3/close_range operations computed by a pure
// function, so the collision cases are unit-tested.
//
// The plan never has to order dup3 calls around each other: every source is first lifted to a
// number above all targets and all fds open now, everything below that is closed in one
// close_range, then each target is a dup3 from a lifted source (which no target can hit), and
// the lifted copies are closed. One fd (the child's error pipe) is kept, lifted to `base`.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"

namespace cr::restore {

/// A file the child has open at `fd`; `file_id` names the dumped File.
struct FdSource {
  uint32_t file_id = 0;
  int fd = -1;
};

/// One slot of the dumped fd table.
struct FdTarget {
  int fd = -1;
  uint32_t file_id = 0;
  bool cloexec = false;
};

struct FdOp {
  enum Kind { kDup3, kCloseRange } kind = kDup3;
  int a = 0, b = 0;  // dup3(a, b, flags) / close_range(a, b)
  int flags = 0;     // O_CLOEXEC or 0
  bool operator==(const FdOp&) const = default;
};

struct FdPlan {
  std::vector<FdOp> ops;
  int keep_fd = -1;  // where the kept fd ends up
};

/// `max_open` is the highest fd open in the child now (sources and keep included);
/// `keep` the fd to carry through (or -1). Every target must name a source's file_id.
Result<FdPlan> plan_fd_table(const std::vector<FdSource>& sources,
                             const std::vector<FdTarget>& targets, int keep, int max_open);

}  // namespace cr::restore
