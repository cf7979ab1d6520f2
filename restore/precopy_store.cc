#include "restore/precopy_store.h"

#include <sys/mman.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/text.h"

namespace cr::restore {

namespace {
constexpr uint64_t kPage = 4096;
constexpr size_t kChunkBytes = 64u << 20;  // slots are handed out from chunks of this size
}  // namespace

uint64_t half_of_memory() {
  struct sysinfo si {};
  return ::sysinfo(&si) == 0 ? uint64_t{si.totalram} * si.mem_unit / 2 : (4ull << 30);
}

PrecopyStore::PrecopyStore(uint64_t limit) : limit_(limit != 0 ? limit : half_of_memory()) {}

uint8_t* PrecopyStore::alloc(uint64_t want, uint64_t& got) {
  if (chunks_.empty() || used_in_last_ == kChunkBytes) {
    void* p = ::mmap(nullptr, kChunkBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) return nullptr;
    // No MADV_HUGEPAGE: zeroing fresh huge pages cost 72% of a 1 GiB head read here (in a VM,
    // memory the guest never touched is populated by the host on first write), against 4 KiB
    // pages that come back warm from what was freed.
    chunks_.emplace_back(p, kChunkBytes);
    used_in_last_ = 0;
  }
  got = std::min<uint64_t>(want, kChunkBytes - used_in_last_);
  uint8_t* s = static_cast<uint8_t*>(chunks_.back().get()) + used_in_last_;
  used_in_last_ += got;
  return s;
}

Status PrecopyStore::add(uint32_t pid, uint64_t vaddr, std::span<const uint8_t> data) {
  if (vaddr % kPage != 0 || data.empty() || data.size() % kPage != 0 ||
      vaddr + data.size() < vaddr)
    return make_error("precopy pages of pid " + std::to_string(pid) + " at " + hex(vaddr) +
                      ": malformed run");
  auto& m = runs_[pid];
  const uint64_t end = vaddr + data.size();
  uint64_t a = vaddr;
  auto it = m.upper_bound(a);
  if (it != m.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second.len > a) it = prev;
  }
  while (a < end) {
    if (it != m.end() && it->first <= a) {  // a copy of these pages is here: replaced
      const uint64_t n = std::min(end, it->first + it->second.len) - a;
      std::memcpy(it->second.data + (a - it->first), data.data() + (a - vaddr), n);
      a += n;
      ++it;
      continue;
    }
    const uint64_t gap_end = it == m.end() ? end : std::min(end, it->first);
    while (a < gap_end) {
      if (bytes_ + (gap_end - a) > limit_)
        return make_error("precopy pages: more than " + std::to_string(limit_ >> 20) +
                          " MiB of distinct pages (half of this machine's memory)");
      uint64_t got = 0;
      uint8_t* d = alloc(gap_end - a, got);
      if (d == nullptr) return errno_error("mmap for precopy pages");
      std::memcpy(d, data.data() + (a - vaddr), got);
      m.emplace_hint(it, a, Run{got, d});
      bytes_ += got;
      a += got;
    }
  }
  return {};
}

Status PrecopyStore::each_run(
    uint32_t pid, uint64_t vaddr, uint64_t npages,
    const std::function<Status(uint64_t, const uint8_t*, uint64_t)>& fn) const {
  auto missing = [&](uint64_t a) {
    return make_error("pages_precopied of pid " + std::to_string(pid) + " at " + hex(a) +
                      ": no precopy_pages record holds that page");
  };
  if (npages > (uint64_t{1} << 40) || vaddr + npages * kPage < vaddr) return missing(vaddr);
  auto mit = runs_.find(pid);
  if (mit == runs_.end()) return missing(vaddr);
  const auto& m = mit->second;
  const uint64_t end = vaddr + npages * kPage;
  uint64_t a = vaddr;
  auto it = m.upper_bound(a);
  if (it != m.begin()) --it;
  uint64_t run_addr = 0, run_len = 0;
  const uint8_t* run_data = nullptr;
  while (a < end) {
    if (it == m.end() || it->first > a || it->first + it->second.len <= a) return missing(a);
    const uint64_t n = std::min(end, it->first + it->second.len) - a;
    const uint8_t* d = it->second.data + (a - it->first);
    if (run_len > 0 && run_data + run_len == d) {
      run_len += n;  // the next run's copy follows this one's in memory
    } else {
      if (run_len > 0) CR_TRY(fn(run_addr, run_data, run_len));
      run_addr = a;
      run_data = d;
      run_len = n;
    }
    a += n;
    ++it;
  }
  if (run_len > 0) CR_TRY(fn(run_addr, run_data, run_len));
  return {};
}

}  // namespace cr::restore
