#include "restore/fd_plan.h"

#include <fcntl.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <string>

namespace cr::restore {

Result<FdPlan> plan_fd_table(const std::vector<FdSource>& sources,
                             const std::vector<FdTarget>& targets, int keep, int max_open) {
  int top = std::max(max_open, keep);
  for (const auto& s : sources) top = std::max(top, s.fd);
  for (const auto& t : targets) {
    if (t.fd < 0) return make_error("fd plan: negative target fd");
    top = std::max(top, t.fd);
  }
  // Sorted, not pairwise: an image may hold a few hundred thousand fds.
  std::vector<int> fds;
  fds.reserve(targets.size());
  for (const auto& t : targets) fds.push_back(t.fd);
  std::sort(fds.begin(), fds.end());
  for (size_t i = 1; i < fds.size(); ++i)
    if (fds[i] == fds[i - 1])
      return make_error("fd " + std::to_string(fds[i]) + " appears twice in the image");
  // The lifted copies go above every fd: base, then one per source file. Refuse numbers that
  // would overflow an int there instead of wrapping into negative fds.
  const int64_t highest = int64_t{top} + 1 + static_cast<int64_t>(sources.size());
  if (highest > INT_MAX)
    return make_error("fd " + std::to_string(top) +
                      " is too high to restore: the fd table would need fd numbers beyond " +
                      std::to_string(INT_MAX));
  FdPlan plan;
  const int base = top + 1;
  std::map<uint32_t, int> lifted;  // file id -> lifted fd
  if (keep >= 0) {
    plan.ops.push_back({FdOp::kDup3, keep, base, O_CLOEXEC});
    plan.keep_fd = base;
  }
  int next = base + 1;
  for (const auto& s : sources) {
    if (lifted.count(s.file_id) != 0) continue;
    lifted[s.file_id] = next;
    plan.ops.push_back({FdOp::kDup3, s.fd, next, O_CLOEXEC});
    ++next;
  }
  // Everything that was open before (temporaries, crrestore's own fds) goes at once.
  if (base > 0) plan.ops.push_back({FdOp::kCloseRange, 0, base - 1, 0});
  for (const auto& t : targets) {
    auto it = lifted.find(t.file_id);
    if (it == lifted.end())
      return make_error("fd " + std::to_string(t.fd) + ": file " + std::to_string(t.file_id) +
                        " was not opened");
    plan.ops.push_back({FdOp::kDup3, it->second, t.fd, t.cloexec ? O_CLOEXEC : 0});
  }
  if (next > base + 1) plan.ops.push_back({FdOp::kCloseRange, base + 1, INT_MAX, 0});
  return plan;
}

}  // namespace cr::restore
