#include "restore/precopy_store.h"

#include <sys/mman.h>
#include <sys/sysinfo.h>

#include <cstring>
#include <string>

#include "common/text.h"

namespace cr::restore {

namespace {
constexpr uint64_t kPage = 4096;
constexpr size_t kChunkBytes = 64u << 20;  // slots are handed out from chunks of this size
}  // namespace

PrecopyStore::PrecopyStore(uint64_t limit) : limit_(limit) {
  if (limit_ == 0) {
    struct sysinfo si {};
    limit_ = ::sysinfo(&si) == 0 ? uint64_t{si.totalram} * si.mem_unit / 2 : (4ull << 30);
  }
}

uint8_t* PrecopyStore::slot() {
  if (chunks_.empty() || used_in_last_ == kChunkBytes) {
    void* p = ::mmap(nullptr, kChunkBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) return nullptr;
    chunks_.emplace_back(p, kChunkBytes);
    used_in_last_ = 0;
  }
  uint8_t* s = static_cast<uint8_t*>(chunks_.back().get()) + used_in_last_;
  used_in_last_ += kPage;
  return s;
}

Status PrecopyStore::add(uint32_t pid, uint64_t vaddr, std::span<const uint8_t> data) {
  if (vaddr % kPage != 0 || data.empty() || data.size() % kPage != 0 ||
      vaddr + data.size() < vaddr)
    return make_error("precopy pages of pid " + std::to_string(pid) + " at " + hex(vaddr) +
                      ": malformed run");
  for (uint64_t off = 0; off < data.size(); off += kPage) {
    uint8_t*& s = index_[{pid, vaddr + off}];
    if (s == nullptr) {
      if ((index_.size()) * kPage > limit_) {
        index_.erase({pid, vaddr + off});
        return make_error("precopy pages: more than " + std::to_string(limit_ >> 20) +
                          " MiB of distinct pages (half of this machine's memory)");
      }
      s = slot();
      if (s == nullptr) {
        index_.erase({pid, vaddr + off});
        return errno_error("mmap for precopy pages");
      }
    }
    std::memcpy(s, data.data() + off, kPage);
  }
  return {};
}

Status PrecopyStore::each_run(
    uint32_t pid, uint64_t vaddr, uint64_t npages,
    const std::function<Status(uint64_t, const uint8_t*, uint64_t)>& fn) const {
  uint64_t run_addr = 0, run_len = 0;
  const uint8_t* run_data = nullptr;
  for (uint64_t i = 0; i < npages; ++i) {
    const uint64_t a = vaddr + i * kPage;
    auto it = index_.find({pid, a});
    if (it == index_.end())
      return make_error("pages_precopied of pid " + std::to_string(pid) + " at " + hex(a) +
                        ": no precopy_pages record holds that page");
    if (run_len > 0 && run_data + run_len == it->second) {
      run_len += kPage;
      continue;
    }
    if (run_len > 0) CR_TRY(fn(run_addr, run_data, run_len));
    run_addr = a;
    run_data = it->second;
    run_len = kPage;
  }
  if (run_len > 0) CR_TRY(fn(run_addr, run_data, run_len));
  return {};
}

}  // namespace cr::restore
