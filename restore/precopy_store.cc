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

Status PrecopyStore::check_run(uint32_t pid, uint64_t vaddr, uint64_t len) const {
  if (vaddr % kPage != 0 || len == 0 || len % kPage != 0 || vaddr + len < vaddr)
    return make_error("precopy pages of pid " + std::to_string(pid) + " at " + hex(vaddr) +
                      ": malformed run");
  return {};
}

void PrecopyStore::carve(RunMap& m, uint64_t a, uint64_t end) {
  auto it = m.upper_bound(a);
  if (it != m.begin() && std::prev(it)->first + std::prev(it)->second.len > a) --it;
  while (it != m.end() && it->first < end) {
    const uint64_t s = it->first, e = s + it->second.len;
    const Run r = it->second;
    it = m.erase(it);
    pages_ -= (e - s) / kPage;
    if (s < a) {
      Run left = r;
      left.len = a - s;
      m.emplace(s, left);
      pages_ += left.len / kPage;
    }
    if (e > end) {  // the last one: what follows starts at or after e
      Run right = r;
      right.len = e - end;
      if (right.data != nullptr)
        right.data += end - s;
      else
        right.off += end - s;
      m.emplace(end, right);
      pages_ += right.len / kPage;
    }
  }
}

Status PrecopyStore::over_limit() const {
  return make_error("precopy pages: more than " + std::to_string(limit_ >> 20) +
                    " MiB of distinct pages (half of this machine's memory)");
}

Status PrecopyStore::add(uint32_t pid, uint64_t vaddr, std::span<const uint8_t> data) {
  CR_TRY(check_run(pid, vaddr, data.size()));
  auto& m = runs_[pid];
  const uint64_t end = vaddr + data.size();
  uint64_t a = vaddr;
  auto it = m.upper_bound(a);
  if (it != m.begin() && std::prev(it)->first + std::prev(it)->second.len > a) --it;
  while (a < end) {
    if (it != m.end() && it->first <= a) {  // a copy of these pages is here: replaced
      const uint64_t n = std::min(end, it->first + it->second.len) - a;
      if (it->second.data == nullptr) {
        // Its copy is in the file: the newer bytes are kept beside it and written over the
        // record's when it is read back, so its run stays whole (a later round's few pages
        // scattered over a first round's record would otherwise cut its run into many short
        // ones, each a copy of its own).
        const Run& r = it->second;
        for (uint64_t left = n; left > 0;) {
          if (bytes_ + left > limit_) return over_limit();
          uint64_t got = 0;
          uint8_t* d = alloc(left, got);
          if (d == nullptr) return errno_error("mmap for precopy pages");
          std::memcpy(d, data.data() + (a - vaddr), got);
          patches_[r.rec].push_back(Patch{r.off + (a - it->first), d, got});
          bytes_ += got;
          a += got;
          left -= got;
        }
        ++it;
        continue;
      }
      std::memcpy(it->second.data + (a - it->first), data.data() + (a - vaddr), n);
      a += n;
      ++it;
      continue;
    }
    const uint64_t gap_end = it == m.end() ? end : std::min(end, it->first);
    while (a < gap_end) {
      if (bytes_ + (gap_end - a) > limit_) return over_limit();
      uint64_t got = 0;
      uint8_t* d = alloc(gap_end - a, got);
      if (d == nullptr) return errno_error("mmap for precopy pages");
      std::memcpy(d, data.data() + (a - vaddr), got);
      m.emplace_hint(it, a, Run{got, d});
      bytes_ += got;
      pages_ += got / kPage;
      a += got;
    }
  }
  return {};
}

Status PrecopyStore::add_deferred(uint32_t pid, uint64_t vaddr, const format::DeferredTail& tail) {
  CR_TRY(check_run(pid, vaddr, tail.len));
  if (records_.size() >= UINT32_MAX) return make_error("precopy pages: too many records");
  auto& m = runs_[pid];
  carve(m, vaddr, vaddr + tail.len);
  records_.push_back(tail);
  m.emplace(vaddr, Run{tail.len, nullptr, static_cast<uint32_t>(records_.size() - 1), 0});
  pages_ += tail.len / kPage;
  return {};
}

Result<const PrecopyStore::Loaded*> PrecopyStore::load(uint32_t rec) {
  if (loaded_[0].rec == rec) return &loaded_[0];
  if (loaded_[1].rec == rec) {
    std::swap(loaded_[0], loaded_[1]);
    return &loaded_[0];
  }
  // The older one goes; a buffer no run and no copier holds any more is read into again
  // (fresh memory costs more than the read itself here).
  if (loaded_[1].buf && spare_bufs_.size() < 8) spare_bufs_.push_back(std::move(loaded_[1].buf));
  loaded_[1] = std::move(loaded_[0]);
  std::shared_ptr<std::vector<uint8_t>> buf;
  for (auto& b : spare_bufs_) {
    if (b.use_count() == 1) {
      buf = std::move(b);
      b = spare_bufs_.back();
      spare_bufs_.pop_back();
      break;
    }
  }
  if (!buf) buf = std::make_shared<std::vector<uint8_t>>();
  const format::DeferredTail& d = records_[rec];
  buf->resize(d.len);
  loaded_[0] = Loaded{};
  CR_TRY(format::read_deferred_tail(d, buf->data()));
  file_bytes_read_ += d.len;
  // Later rounds' copies of some of its pages, oldest first (checked as their records were).
  auto p = patches_.find(rec);
  if (p != patches_.end())
    for (const Patch& x : p->second) std::memcpy(buf->data() + x.off, x.data, x.len);
  loaded_[0] = Loaded{rec, std::move(buf)};
  return &loaded_[0];
}

Status PrecopyStore::each_run(uint32_t pid, uint64_t vaddr, uint64_t npages, const RunFn& fn) {
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
  std::shared_ptr<const void> run_hold;
  while (a < end) {
    if (it == m.end() || it->first > a || it->first + it->second.len <= a) return missing(a);
    const uint64_t n = std::min(end, it->first + it->second.len) - a;
    const uint8_t* d;
    std::shared_ptr<const void> hold;
    if (it->second.data != nullptr) {
      d = it->second.data + (a - it->first);
    } else {
      auto l = load(it->second.rec);
      if (!l.ok())
        return std::move(l).error().wrap("precopy pages of pid " + std::to_string(pid) + " at " +
                                         hex(a));
      d = (*l)->buf->data() + it->second.off + (a - it->first);
      hold = (*l)->buf;
    }
    if (run_len > 0 && run_data + run_len == d && run_hold == hold) {
      run_len += n;  // the next run's copy follows this one's
    } else {
      if (run_len > 0) CR_TRY(fn(run_addr, run_data, run_len, run_hold));
      run_addr = a;
      run_data = d;
      run_len = n;
      run_hold = std::move(hold);
    }
    a += n;
    ++it;
  }
  if (run_len > 0) CR_TRY(fn(run_addr, run_data, run_len, run_hold));
  return {};
}

}  // namespace cr::restore
