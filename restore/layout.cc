#include "restore/layout.h"

#include <algorithm>

namespace cr::restore {

namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

Result<uint64_t> choose_free_range(const std::vector<Range>& a, const std::vector<Range>& b,
                                   uint64_t size) {
  std::vector<Range> all(a);
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end(),
            [](const Range& x, const Range& y) { return x.start < y.start; });
  uint64_t x = kMinPlaceAddr;
  for (const auto& r : all) {
    if (r.end + kPage <= x) continue;
    if (x + size + kPage <= r.start) return x;
    x = std::max(x, r.end + kPage);
  }
  if (x + size + kPage <= kTaskSize) return x;
  return make_error("no free address range of " + std::to_string(size) +
                    " bytes in both the current and the dumped layout");
}

Result<std::vector<Move>> plan_vdso_moves(const std::vector<VdsoPiece>& pieces,
                                          const std::vector<Range>& avoid) {
  struct Pending {
    Range current;
    Range target;
  };
  std::vector<Pending> pending;
  std::vector<Range> reserved(avoid);
  for (const auto& p : pieces) {
    Range target{p.target, p.target + p.current.size()};
    reserved.push_back(p.current);
    reserved.push_back(target);
    if (p.current.start != p.target) pending.push_back({p.current, target});
  }
  std::vector<Move> moves;
  // Each round either finishes a piece or parks one at a temporary address, after which it
  // blocks nobody; so 2n rounds always suffice.
  for (size_t round = 0; !pending.empty(); ++round) {
    if (round > 2 * pieces.size() + 2) return make_error("vdso move plan does not converge");
    bool progressed = false;
    for (size_t i = 0; i < pending.size(); ++i) {
      const Range& t = pending[i].target;
      bool blocked = t.overlaps(pending[i].current);
      for (size_t j = 0; j < pending.size() && !blocked; ++j)
        if (j != i && t.overlaps(pending[j].current)) blocked = true;
      if (blocked) continue;
      moves.push_back({pending[i].current.start, t.start, t.size()});
      pending.erase(pending.begin() + static_cast<long>(i));
      progressed = true;
      break;
    }
    if (progressed) continue;
    Pending& p = pending.front();
    CR_TRY_ASSIGN(uint64_t tmp, choose_free_range(reserved, {}, p.current.size()));
    moves.push_back({p.current.start, tmp, p.current.size()});
    p.current = Range{tmp, tmp + p.current.size()};
    reserved.push_back(p.current);
  }
  return moves;
}

std::vector<Range> unmap_ranges(std::vector<Range> keep, uint64_t limit) {
  std::sort(keep.begin(), keep.end(),
            [](const Range& x, const Range& y) { return x.start < y.start; });
  std::vector<Range> out;
  uint64_t x = 0;
  for (const auto& k : keep) {
    if (k.start > x) out.push_back({x, std::min(k.start, limit)});
    x = std::max(x, k.end);
    if (x >= limit) break;
  }
  if (x < limit) out.push_back({x, limit});
  return out;
}

}  // namespace cr::restore
