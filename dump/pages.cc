// Page contents: /proc/PID/pagemap picks the pages worth storing, process_vm_readv reads runs
// of them (many ranges per call) into one reusable buffer, all-zero pages are dropped while the
// data is still in cache, and the rest go out as Pages records whose tails point straight into
// the buffer.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "dump/passes.h"

namespace cr::dump {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPmPresent = 1ull << 63;
constexpr uint64_t kPmSwapped = 1ull << 62;
constexpr uint64_t kPmFile = 1ull << 61;    // file page or shared anon: not copied-on-write
constexpr size_t kBatchBytes = 1u << 20;    // one buffer fill; also the Pages record cap
constexpr size_t kMaxIov = 1024;            // IOV_MAX
constexpr size_t kPagemapChunk = 1u << 16;  // entries per pagemap read (512 KiB)

static_assert(kBatchBytes <= format::kPagesPerRecordBytes);

// PAGEMAP_SCAN (Linux 6.7; newer than the 6.1 headers): the kernel walks the page tables and
// returns only the ranges that match, so sparse or huge reserved mappings cost nothing.
struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
      category_mask, category_anyof_mask, return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPageIsFile = 1 << 2;
constexpr uint64_t kPageIsPresent = 1 << 3;
constexpr uint64_t kPageIsSwapped = 1 << 4;
constexpr uint64_t kPageIsPfnZero = 1 << 5;
constexpr size_t kScanRegions = 1024;

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

bool page_is_zero(const uint8_t* p) {
  // Blocks of 256 bytes: a non-zero page usually stops in the first block; the OR inside a
  // block has no branch, so it vectorises.
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t b = 0; b < kPage / 8; b += 32) {
    uint64_t acc = 0;
    for (size_t i = 0; i < 32; ++i) acc |= w[b + i];
    if (acc != 0) return false;
  }
  return true;
}

class PageDumper {
 public:
  explicit PageDumper(DumpContext& ctx) : ctx_(ctx), use_scan_(ctx.opts.pagemap_scan) {}

  Status run() {
    pagemap_.reset(::openat(ctx_.proc.fd(), "pagemap", O_RDONLY | O_CLOEXEC));
    if (!pagemap_.valid())
      return errno_error("open /proc/" + std::to_string(ctx_.pid) + "/pagemap");
    void* b =
        ::mmap(nullptr, kBatchBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) return errno_error("mmap page buffer");
    buf_ = ScopedMapping(b, kBatchBytes);
    for (const schema::Vma& v : ctx_.vmas) CR_TRY(dump_vma(v));
    return flush();
  }

 private:
  struct Run {
    uint64_t vaddr;
    uint64_t npages;
  };

  Status dump_vma(const schema::Vma& v) {
    bool file_private = false;
    switch (v.kind) {
      case schema::kVmaAnon:
      case schema::kVmaHeap:
      case schema::kVmaStack:
        break;
      case schema::kVmaFilePrivate:
        file_private = true;
        break;
      default:
        return {};  // shared file (in the file), vdso/vvar (the restorer's own)
    }
    // Unreadable mappings (PROT_NONE) are read through /proc/PID/mem, which may force.
    bool via_mem = !(v.prot & PROT_READ);
    if (via_mem != via_mem_) {
      CR_TRY(flush());
      via_mem_ = via_mem;
    }
    if (use_scan_) {
      CR_TRY_ASSIGN(bool scanned, scan_vma(v, file_private));
      if (scanned) return {};
      use_scan_ = false;  // the kernel has no PAGEMAP_SCAN: read pagemap entries from now on
    }
    const uint64_t first = v.start / kPage, total = (v.end - v.start) / kPage;
    for (uint64_t done = 0; done < total;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(total - done, kPagemapChunk));
      if (pm_.empty()) pm_.resize(kPagemapChunk);
      CR_TRY(read_pagemap(first + done, n));
      ctx_.pages_scanned += n;
      for (size_t i = 0; i < n; ++i) {
        uint64_t e = pm_[i];
        if (!(e & (kPmPresent | kPmSwapped))) continue;
        if (file_private && (e & kPmFile)) continue;
        CR_TRY(add_range((first + done + i) * kPage, 1));
      }
      done += n;
    }
    return {};
  }

  // Returns false (and nothing added) if PAGEMAP_SCAN is not available.
  Result<bool> scan_vma(const schema::Vma& v, bool file_private) {
    if (regions_.empty()) regions_.resize(kScanRegions);
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.vec = reinterpret_cast<uint64_t>(regions_.data());
    arg.vec_len = regions_.size();
    // Present or swapped, never the shared zero page, and in a private file mapping only
    // the pages copied on write (not file pages).
    arg.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
    arg.category_mask = kPageIsPfnZero | (file_private ? kPageIsFile : 0);
    arg.category_inverted = arg.category_mask;
    arg.return_mask = 0;  // merge every matching neighbour into one region
    uint64_t at = v.start;
    while (at < v.end) {
      arg.start = at;
      arg.end = v.end;
      arg.walk_end = 0;
      long n = ::ioctl(pagemap_.get(), kPagemapScan, &arg);
      if (n < 0) {
        if ((errno == ENOTTY || errno == EINVAL) && at == v.start) return false;
        return errno_error("PAGEMAP_SCAN at " + hex(at));
      }
      for (long i = 0; i < n; ++i)
        CR_TRY(add_range(regions_[i].start, (regions_[i].end - regions_[i].start) / kPage));
      if (arg.walk_end <= at) return make_error("PAGEMAP_SCAN made no progress at " + hex(at));
      at = arg.walk_end;
    }
    ctx_.pages_scanned += (v.end - v.start) / kPage;
    return true;
  }

  Status read_pagemap(uint64_t page_index, size_t n) {
    size_t want = n * 8, got = 0;
    auto* dst = reinterpret_cast<uint8_t*>(pm_.data());
    while (got < want) {
      ssize_t r =
          ::pread(pagemap_.get(), dst + got, want - got, static_cast<off_t>(page_index * 8 + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0)
        return errno_error("read pagemap at " + hex(page_index * kPage), r == 0 ? EIO : errno);
      got += static_cast<size_t>(r);
    }
    return {};
  }

  // Queues `npages` pages from `addr` for reading, flushing whenever the buffer or the iovec
  // array is full.
  Status add_range(uint64_t addr, uint64_t npages) {
    while (npages > 0) {
      uint64_t room = kBatchBytes / kPage - batch_pages_;
      uint64_t take = std::min(npages, room);
      if (!runs_.empty() && runs_.back().vaddr + runs_.back().npages * kPage == addr) {
        runs_.back().npages += take;
      } else {
        if (runs_.size() == kMaxIov) {
          CR_TRY(flush());
          continue;
        }
        runs_.push_back(Run{addr, take});
      }
      batch_pages_ += take;
      addr += take * kPage;
      npages -= take;
      if (batch_pages_ * kPage == kBatchBytes) CR_TRY(flush());
    }
    return {};
  }

  Status fill_buffer() {
    uint8_t* dst = static_cast<uint8_t*>(buf_.get());
    if (via_mem_) {
      if (!mem_.valid()) {
        mem_.reset(::openat(ctx_.proc.fd(), "mem", O_RDONLY | O_CLOEXEC));
        if (!mem_.valid()) return errno_error("open /proc/" + std::to_string(ctx_.pid) + "/mem");
      }
      for (const Run& r : runs_) {
        size_t len = r.npages * kPage, got = 0;
        while (got < len) {
          ssize_t n = ::pread(mem_.get(), dst + got, len - got, static_cast<off_t>(r.vaddr + got));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0)
            return errno_error("read /proc/PID/mem at " + hex(r.vaddr + got), n == 0 ? EIO : errno);
          got += static_cast<size_t>(n);
        }
        dst += len;
      }
      return {};
    }
    iov_.resize(runs_.size());
    for (size_t i = 0; i < runs_.size(); ++i)
      iov_[i] = iovec{reinterpret_cast<void*>(runs_[i].vaddr), runs_[i].npages * kPage};
    const size_t total = batch_pages_ * kPage;
    iovec local{dst, total};
    ssize_t n = ::process_vm_readv(ctx_.pid, &local, 1, iov_.data(), iov_.size(), 0);
    if (n < 0) return errno_error("process_vm_readv at " + hex(runs_[0].vaddr));
    if (static_cast<size_t>(n) != total) {
      // Find the run where it stopped, to name it.
      size_t off = static_cast<size_t>(n);
      uint64_t where = runs_[0].vaddr;
      for (const Run& r : runs_) {
        if (off < r.npages * kPage) {
          where = r.vaddr + off;
          break;
        }
        off -= r.npages * kPage;
      }
      return make_error("process_vm_readv: page at " + hex(where) + " unreadable");
    }
    return {};
  }

  Status flush() {
    if (runs_.empty()) return {};
    CR_TRY(fill_buffer());
    const uint8_t* base = static_cast<const uint8_t*>(buf_.get());
    // One pass over the buffer marks the zero pages while it is still in cache.
    for (size_t p = 0; p < batch_pages_; ++p) zero_[p] = page_is_zero(base + p * kPage);
    size_t page = 0;  // index in the buffer of the current run's first page
    const uint32_t pid = static_cast<uint32_t>(ctx_.pid);
    for (const Run& r : runs_) {
      // Emit maximal sub-runs of non-zero pages.
      uint64_t i = 0;
      while (i < r.npages) {
        while (i < r.npages && zero_[page + i]) {
          ++ctx_.pages_zero;
          ++i;
        }
        uint64_t j = i;
        while (j < r.npages && !zero_[page + j]) ++j;
        if (j > i) {
          schema::Pages rec{pid, r.vaddr + i * kPage, static_cast<uint32_t>(j - i)};
          CR_TRY(ctx_.out.write(
              rec, std::span<const uint8_t>(base + (page + i) * kPage, (j - i) * kPage)));
          ctx_.pages_written += j - i;
        }
        i = j;
      }
      page += r.npages;
    }
    runs_.clear();
    batch_pages_ = 0;
    return {};
  }

  DumpContext& ctx_;
  ScopedFd pagemap_, mem_;
  ScopedMapping buf_;
  std::vector<uint64_t> pm_;
  std::vector<PageRegion> regions_;
  bool use_scan_;
  std::vector<Run> runs_;
  std::vector<iovec> iov_;
  size_t batch_pages_ = 0;
  bool via_mem_ = false;
  bool zero_[kBatchBytes / kPage] = {};
};

}  // namespace

Status write_pages(DumpContext& ctx) { return PageDumper(ctx).run(); }

}  // namespace cr::dump
