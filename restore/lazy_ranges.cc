#include "restore/lazy_ranges.h"

#include <algorithm>
#include <vector>

namespace cr::restore {

void LazyRanges::split(uint64_t at) {
  auto it = runs_.upper_bound(at);
  if (it == runs_.begin()) return;
  --it;
  if (it->first >= at || it->second.end <= at) return;
  Run tail{it->second.end, it->second.data + (at - it->first), it->second.hold,
           it->second.in_file};
  it->second.end = at;
  runs_.emplace(at, std::move(tail));
}

void LazyRanges::drop(uint64_t start, uint64_t end) {
  if (start >= end) return;
  split(start);
  split(end);
  auto it = runs_.lower_bound(start);
  while (it != runs_.end() && it->first < end) {
    bytes_ -= it->second.end - it->first;
    it = runs_.erase(it);
  }
}

void LazyRanges::add(uint64_t addr, const uint8_t* data, uint64_t len,
                     std::shared_ptr<const void> hold, bool in_file) {
  if (len == 0) return;
  drop(addr, addr + len);
  runs_.emplace(addr, Run{addr + len, data, std::move(hold), in_file});
  bytes_ += len;
}

std::optional<LazyRanges::Span> LazyRanges::at(uint64_t addr, uint64_t max) const {
  auto it = runs_.upper_bound(addr);
  if (it == runs_.begin()) return std::nullopt;
  --it;
  if (it->second.end <= addr) return std::nullopt;
  return Span{addr, it->second.data + (addr - it->first), std::min(max, it->second.end - addr),
              it->second.in_file};
}

std::optional<LazyRanges::Span> LazyRanges::from(uint64_t addr, uint64_t end) const {
  if (auto s = at(addr, end > addr ? end - addr : 0); s && s->len > 0) return s;
  auto it = runs_.upper_bound(addr);
  if (it == runs_.end() || it->first >= end) return std::nullopt;
  return Span{it->first, it->second.data, std::min(end, it->second.end) - it->first,
              it->second.in_file};
}

std::pair<uint64_t, uint64_t> LazyRanges::bounds() const {
  if (runs_.empty()) return {0, 0};
  return {runs_.begin()->first, runs_.rbegin()->second.end};
}

std::optional<LazyRanges::Span> LazyRanges::first(uint64_t max) const {
  if (runs_.empty()) return std::nullopt;
  const auto& [start, r] = *runs_.begin();
  return Span{start, r.data, std::min(max, r.end - start), r.in_file};
}

void LazyRanges::move(uint64_t from, uint64_t to, uint64_t len) {
  if (len == 0 || from == to) return;
  split(from);
  split(from + len);
  std::vector<std::pair<uint64_t, Run>> moved;
  for (auto it = runs_.lower_bound(from); it != runs_.end() && it->first < from + len;) {
    bytes_ -= it->second.end - it->first;
    moved.emplace_back(it->first, std::move(it->second));
    it = runs_.erase(it);
  }
  drop(to, to + len);
  for (auto& [start, r] : moved) {
    const uint64_t n = r.end - start;
    add(start - from + to, r.data, n, std::move(r.hold), r.in_file);
  }
}

}  // namespace cr::restore
