// Page contents: PAGEMAP_SCAN (or /proc/PID/pagemap) picks the pages worth storing,
// process_vm_readv reads runs of them (many ranges per call) into a few reusable buffers, all-zero
// pages are marked while the data is still in cache, and the rest go out as Pages records whose
// tails point straight into the buffer. Reading runs on a second thread, so the copy out of the
// task overlaps the write of the previous buffer. The records' checksums (a fifth of the
// writer's time on a 1 GiB dump to tmpfs) are shared: the reader computes them, once a buffer is
// read, while the writer is busy with the one before; a writer that waits takes its share.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "common/io.h"
#include "common/text.h"
#include "dump/passes.h"
#include "dump/zero_page.h"
#include "format/crc32c.h"
#include "sys/linux_abi.h"

namespace cr::dump {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPmPresent = 1ull << 63;
constexpr uint64_t kPmSwapped = 1ull << 62;
constexpr uint64_t kPmFile = 1ull << 61;         // file page or shared anon: not copied-on-write
constexpr uint64_t kPmGuardRegion = 1ull << 58;  // a guard page (Linux 6.15): shows as swapped
constexpr size_t kBatchBytes = 1u << 20;         // one buffer fill; also the Pages record cap
constexpr size_t kMaxIov = 1024;                 // IOV_MAX
constexpr size_t kPagemapChunk = 1u << 16;       // entries per pagemap read (512 KiB)
constexpr size_t kBatchPages = kBatchBytes / kPage;
constexpr int kSlots = 3;  // buffers: one being planned, one being read, one being written
// Below this much anonymous memory the reader thread costs more in hand-offs (each a wake-up
// on a busy machine) than it saves.
constexpr uint64_t kThreadedFromBytes = 64ull << 20;

static_assert(kBatchBytes <= format::kPagesPerRecordBytes);

constexpr size_t kScanRegions = 1024;


// One Pages record a filled buffer makes: its first page in the buffer and how many.
struct RecordSpan {
  uint64_t vaddr;
  uint32_t first;
  uint32_t npages;
};

struct Run {
  uint64_t vaddr;
  uint64_t npages;
  // In a private file mapping a page of zeros is a copy too: left out, it would come back as
  // the file's page.
  bool keep_zero = false;
};

// One buffer's worth of pages: planned by the dumper, read by the reader thread, then written.
struct Batch {
  std::vector<Run> runs;
  size_t pages = 0;
  bool via_mem = false;  // read through /proc/PID/mem (unreadable mappings)
  ScopedMapping buf;
  bool zero[kBatchPages] = {};
  std::vector<RecordSpan> records;  // made by fill()
  // The records' tail CRCs. Either thread claims the next one to compute through next_crc (the
  // reader resets it, in fill()); crc_done says which are there.
  bool want_crc = false;
  uint32_t crc[kBatchPages] = {};
  std::atomic<bool> crc_done[kBatchPages] = {};
  std::atomic<size_t> next_crc{0};
  Status status;
  bool filled = false;

  // Computes record i's CRC (claimed through next_crc) and says it is there.
  void checksum(size_t i) {
    const uint8_t* base = static_cast<const uint8_t*>(buf.get());
    crc[i] = format::crc32c(base + size_t{records[i].first} * kPage,
                            size_t{records[i].npages} * kPage);
    crc_done[i].store(true, std::memory_order_release);
  }

  // Computes unclaimed CRCs until none is left, or `writer_idle` says the writer waits (for a
  // buffer the reader should be filling instead: the writer then checksums this one itself).
  void checksum_some(const std::atomic<bool>& writer_idle) {
    const size_t n = records.size();
    while (!writer_idle.load(std::memory_order_relaxed)) {
      const size_t i = next_crc.fetch_add(1);
      if (i >= n) return;
      checksum(i);
    }
  }

  // Record k's CRC: computes others meanwhile if some are unclaimed, else waits for the reader
  // that claimed k (a record is at most 1 MiB: microseconds).
  uint32_t crc_of(size_t k) {
    while (!crc_done[k].load(std::memory_order_acquire)) {
      const size_t i = next_crc.fetch_add(1);
      if (i < records.size())
        checksum(i);
      else
        std::this_thread::yield();
    }
    return crc[k];
  }

  void clear() {
    runs.clear();
    pages = 0;
    filled = false;
    status = {};
  }
};

// Lists the Pages records of a filled batch: the longest runs of pages worth writing (zero pages
// are left out, but where the mapping keeps them), and readies their CRCs to be claimed.
void plan_records(Batch& b) {
  b.records.clear();
  size_t page = 0;  // index in the buffer of the current run's first page
  for (const Run& r : b.runs) {
    uint64_t i = 0;
    while (i < r.npages) {
      while (i < r.npages && b.zero[page + i] && !r.keep_zero) ++i;
      uint64_t j = i;
      while (j < r.npages && (!b.zero[page + j] || r.keep_zero)) ++j;
      if (j > i)
        b.records.push_back(RecordSpan{r.vaddr + i * kPage, static_cast<uint32_t>(page + i),
                                       static_cast<uint32_t>(j - i)});
      i = j;
    }
    page += r.npages;
  }
  for (size_t k = 0; k < b.records.size(); ++k)
    b.crc_done[k].store(false, std::memory_order_relaxed);
  // Nothing to claim when the stream has no checksums.
  b.next_crc.store(b.want_crc ? 0 : b.records.size(), std::memory_order_release);
}

// Fills a batch's buffer from the task, marks its zero pages and lists its records. Runs on the
// reader thread (or inline for a small task).
Status fill(pid_t pid, int mem_fd, Batch& b) {
  uint8_t* dst = static_cast<uint8_t*>(b.buf.get());
  if (b.via_mem) {
    uint8_t* at = dst;
    for (const Run& r : b.runs) {
      CR_TRY(pread_full(mem_fd, at, r.npages * kPage, r.vaddr, "read /proc/PID/mem"));
      at += r.npages * kPage;
    }
  } else {
    iovec iov[kMaxIov];
    for (size_t i = 0; i < b.runs.size(); ++i)
      iov[i] = iovec{reinterpret_cast<void*>(b.runs[i].vaddr), b.runs[i].npages * kPage};
    const size_t total = b.pages * kPage;
    iovec local{dst, total};
    ssize_t n = ::process_vm_readv(pid, &local, 1, iov, b.runs.size(), 0);
    if (n < 0) return errno_error("process_vm_readv at " + hex(b.runs[0].vaddr));
    if (static_cast<size_t>(n) != total) {
      size_t off = static_cast<size_t>(n);  // name the page where it stopped
      uint64_t where = b.runs[0].vaddr;
      for (const Run& r : b.runs) {
        if (off < r.npages * kPage) {
          where = r.vaddr + off;
          break;
        }
        off -= r.npages * kPage;
      }
      return make_error("process_vm_readv: page at " + hex(where) + " unreadable");
    }
  }
  for (size_t p = 0; p < b.pages; ++p) b.zero[p] = page_is_zero(dst + p * kPage);
  plan_records(b);
  return {};
}

// Page-granular set operations on address-ordered runs (each list's runs disjoint).
std::vector<std::pair<uint64_t, uint64_t>> to_ranges(const std::vector<PageSpan>& v) {
  std::vector<std::pair<uint64_t, uint64_t>> r;
  for (const PageSpan& sp : v) r.emplace_back(sp.vaddr, sp.vaddr + sp.npages * kPage);
  return r;
}
std::vector<PageSpan> to_spans(const std::vector<std::pair<uint64_t, uint64_t>>& r) {
  std::vector<PageSpan> v;
  for (auto [s, e] : r)
    if (e > s) v.push_back(PageSpan{s, (e - s) / kPage, false});
  return v;
}
// a minus b.
std::vector<PageSpan> subtract_spans(const std::vector<PageSpan>& a, const std::vector<PageSpan>& b) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  const auto rb = to_ranges(b);
  size_t j = 0;
  for (auto [s, e] : to_ranges(a)) {
    while (j < rb.size() && rb[j].second <= s) ++j;
    uint64_t at = s;
    for (size_t k = j; k < rb.size() && rb[k].first < e; ++k) {
      if (rb[k].first > at) out.emplace_back(at, rb[k].first);
      at = std::max(at, rb[k].second);
    }
    if (at < e) out.emplace_back(at, e);
  }
  return to_spans(out);
}
// a or b, merged where they touch (the parent's `prefork` marks do not matter to the skip).
std::vector<PageSpan> union_spans(const std::vector<PageSpan>& a, const std::vector<PageSpan>& b) {
  auto r = to_ranges(a);
  const auto rb = to_ranges(b);
  r.insert(r.end(), rb.begin(), rb.end());
  std::sort(r.begin(), r.end());
  std::vector<std::pair<uint64_t, uint64_t>> m;
  for (auto [s, e] : r) {
    if (!m.empty() && s <= m.back().second)
      m.back().second = std::max(m.back().second, e);
    else
      m.emplace_back(s, e);
  }
  return to_spans(m);
}

class PageDumper {
 public:
  explicit PageDumper(DumpContext& ctx)
      : ctx_(ctx),
        use_scan_(ctx.opts.pagemap_scan),
        threaded_(ctx.status.rss_anon_kb * 1024 >= kThreadedFromBytes) {}
  ~PageDumper() {
    if (reader_.joinable()) {
      {
        std::lock_guard lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      reader_.join();
    }
  }

  Status run() {
    pagemap_.reset(::openat(ctx_.proc.fd(), "pagemap", O_RDONLY | O_CLOEXEC));
    if (!pagemap_.valid())
      return errno_error("open /proc/" + std::to_string(ctx_.pid) + "/pagemap");
    CR_TRY(ensure_buffer(planning()));
    for (int i = 1; i < kSlots; ++i) free_.push_back(i);
    for (Batch& b : slots_) b.want_crc = ctx_.out.wants_tail_crc();
    // The pages it shares with its parent first: the parent's section has their contents.
    const uint32_t pid = static_cast<uint32_t>(ctx_.pid);
    for (const PageSpan& sp : ctx_.parent_pages)
      CR_TRY(ctx_.out.write(schema::PagesParent{pid, sp.vaddr, sp.npages, sp.prefork ? 1u : 0u}));
    CR_TRY(write_prefork());
    // Then those whose pre-copied contents still hold (crdump --pre-copy): neither is read.
    skip_ = ctx_.parent_pages;
    if (!ctx_.precopied.empty()) {
      for (const PageSpan& sp : subtract_spans(ctx_.precopied, ctx_.parent_pages)) {
        CR_TRY(ctx_.out.write(schema::PagesPrecopied{pid, sp.vaddr, sp.npages}));
        ctx_.pages_precopied += sp.npages;
      }
      skip_ = union_spans(ctx_.parent_pages, ctx_.precopied);
    }
    for (const schema::Vma& v : ctx_.vmas) CR_TRY(dump_vma(v));
    CR_TRY(submit());
    if (!reader_.joinable() && !in_flight_.empty() && !slots_[in_flight_.front()].filled) {
      // Everything fitted in one buffer: read it here, no thread hand-off.
      CR_TRY(read_here(in_flight_.front()));
    }
    while (!in_flight_.empty()) CR_TRY(write_oldest());
    return {};
  }

 private:
  // The reader thread: fills submitted batches in order.
  void read_loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !todo_.empty(); });
      if (stop_) return;
      int slot = todo_.front();
      todo_.pop_front();
      lock.unlock();
      Status st = fill(ctx_.pid, mem_.get(), slots_[slot]);
      const bool ok = st.ok();
      lock.lock();
      slots_[slot].status = std::move(st);
      slots_[slot].filled = true;
      cv_.notify_all();
      if (!ok) continue;
      lock.unlock();
      slots_[slot].checksum_some(writer_waits_);  // the writer may take its share meanwhile
      lock.lock();
    }
  }

  Batch& planning() { return slots_[planning_]; }

  // Buffers are mapped on first use, populated at once: faulting 256 pages one by one costs
  // milliseconds in a VM.
  static Status ensure_buffer(Batch& b) {
    if (b.buf.get() != nullptr) return {};
    void* p = ::mmap(nullptr, kBatchBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) return errno_error("mmap page buffer");
    b.buf = ScopedMapping(p, kBatchBytes);
    return {};
  }

  Status read_here(int slot) {
    Batch& b = slots_[slot];
    b.status = fill(ctx_.pid, mem_.get(), b);
    b.filled = true;
    return {};
  }

  Status dump_vma(const schema::Vma& v) {
    bool file_private = false;
    switch (v.kind) {
      case schema::kVmaAnon:
      case schema::kVmaDroppable:
      case schema::kVmaHeap:
      case schema::kVmaStack:
        break;
      case schema::kVmaFilePrivate:
      case schema::kVmaShmemPrivate:  // a memfd's pages are file pages: only copies are ours
        file_private = true;
        break;
      default:
        return {};  // shared file (in the file), vdso/vvar (the restorer's own)
    }
    // Unreadable mappings (PROT_NONE) are read through /proc/PID/mem, which may force.
    bool via_mem = !(v.prot & PROT_READ);
    if (via_mem && !mem_.valid()) {
      mem_.reset(::openat(ctx_.proc.fd(), "mem", O_RDONLY | O_CLOEXEC));
      if (!mem_.valid()) return errno_error("open /proc/" + std::to_string(ctx_.pid) + "/mem");
    }
    keep_zero_ = file_private;
    if (via_mem != planning().via_mem) {
      CR_TRY(submit());
      planning().via_mem = via_mem;
    }
    if (use_scan_) {
      CR_TRY_ASSIGN(bool scanned, scan_vma(v, file_private));
      if (scanned) return {};
      use_scan_ = false;  // the kernel has no PAGEMAP_SCAN: read pagemap entries from now on
    }
    const uint64_t first = v.start / kPage, total = (v.end - v.start) / kPage;
    if (pm_.empty()) pm_.resize(kPagemapChunk);
    for (uint64_t done = 0; done < total;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(total - done, kPagemapChunk));
      CR_TRY(read_pagemap(first + done, n));
      for (size_t i = 0; i < n; ++i) {
        uint64_t e = pm_[i];
        if (!(e & (kPmPresent | kPmSwapped)) || (e & kPmGuardRegion)) continue;
        if (file_private && (e & kPmFile)) continue;
        CR_TRY(add_range((first + done + i) * kPage, 1));
      }
      done += n;
    }
    ctx_.pages_scanned += total;
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
    // Guard pages (which fault on any access, and have no contents) left out; a kernel that
    // does not know the category has none.
    arg.category_mask =
        kPageIsPfnZero | (file_private ? kPageIsFile : 0) | (scan_knows_guard_ ? kPageIsGuard : 0);
    arg.category_inverted = arg.category_mask;
    arg.return_mask = 0;  // merge every matching neighbour into one region
    uint64_t at = v.start;
    while (at < v.end) {
      arg.start = at;
      arg.end = v.end;
      arg.walk_end = 0;
      long n = ::ioctl(pagemap_.get(), kPagemapScan, &arg);
      if (n < 0 && errno == EINVAL && scan_knows_guard_ && at == v.start) {
        scan_knows_guard_ = false;
        arg.category_mask &= ~kPageIsGuard;
        arg.category_inverted = arg.category_mask;
        continue;
      }
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
    return pread_full(pagemap_.get(), pm_.data(), n * 8, page_index * 8, "read pagemap");
  }

  // What its children share and it no longer has, read from a child that has it (frozen, as
  // the whole tree): PagesPrefork records, up to a buffer each.
  Status write_prefork() {
    if (ctx_.prefork.empty()) return {};
    const uint32_t pid = static_cast<uint32_t>(ctx_.pid);
    uint8_t* buf = static_cast<uint8_t*>(slots_[planning_].buf.get());
    for (const PreforkSpan& sp : ctx_.prefork) {
      for (uint64_t done = 0; done < sp.npages;) {
        const uint64_t n = std::min<uint64_t>(sp.npages - done, kBatchPages);
        const uint64_t addr = sp.vaddr + done * kPage;
        iovec local{buf, n * kPage};
        iovec remote{reinterpret_cast<void*>(addr), n * kPage};
        ssize_t got = ::process_vm_readv(sp.source, &local, 1, &remote, 1, 0);
        if (got != static_cast<ssize_t>(n * kPage))
          return errno_error("process_vm_readv of pid " + std::to_string(sp.source) + " at " +
                                 hex(addr) + " (pages its siblings share)",
                             got < 0 ? errno : EIO);
        CR_TRY(ctx_.out.write(schema::PagesPrefork{pid, addr, static_cast<uint32_t>(n)},
                              std::span<const uint8_t>(buf, n * kPage)));
        done += n;
      }
    }
    return {};
  }

  // Plans `npages` pages from `addr` but those shared with the parent or pre-copied.
  Status add_range(uint64_t addr, uint64_t npages) {
    const auto& shared = skip_;  // address order
    if (shared.empty()) return add_own(addr, npages);
    // The first shared run that ends after addr.
    auto it = std::partition_point(shared.begin(), shared.end(), [addr](const PageSpan& sp) {
      return sp.vaddr + sp.npages * kPage <= addr;
    });
    while (npages > 0) {
      if (it != shared.end() && it->vaddr + it->npages * kPage <= addr) ++it;
      if (it == shared.end()) return add_own(addr, npages);
      const PageSpan& sp = *it;
      uint64_t n;
      if (sp.vaddr <= addr) {  // inside a shared run: skipped
        n = std::min(npages, (sp.vaddr + sp.npages * kPage - addr) / kPage);
      } else {
        n = std::min(npages, (sp.vaddr - addr) / kPage);
        CR_TRY(add_own(addr, n));
      }
      addr += n * kPage;
      npages -= n;
    }
    return {};
  }

  // Plans `npages` pages from `addr`, submitting the batch whenever its buffer or iovec array
  // is full.
  Status add_own(uint64_t addr, uint64_t npages) {
    while (npages > 0) {
      Batch& b = planning();
      uint64_t take = std::min<uint64_t>(npages, kBatchPages - b.pages);
      if (!b.runs.empty() && b.runs.back().vaddr + b.runs.back().npages * kPage == addr &&
          b.runs.back().keep_zero == keep_zero_) {
        b.runs.back().npages += take;
      } else {
        if (b.runs.size() == kMaxIov) {
          CR_TRY(submit());
          continue;
        }
        b.runs.push_back(Run{addr, take, keep_zero_});
      }
      b.pages += take;
      addr += take * kPage;
      npages -= take;
      if (b.pages == kBatchPages) CR_TRY(submit());
    }
    return {};
  }

  // Hands the planned batch to the reader and takes a free slot to plan the next one, writing
  // out the oldest batch first if none is free.
  Status submit() {
    if (planning().runs.empty()) return {};
    bool via_mem = planning().via_mem;
    in_flight_.push_back(planning_);
    // The reader thread starts with the second batch: a small dump (one buffer) is read
    // synchronously, without waiting for a thread to be scheduled.
    if (!threaded_) {
      CR_TRY(read_here(planning_));
      CR_TRY(write_oldest());
    } else if (reader_.joinable() || in_flight_.size() > 1) {
      {
        std::lock_guard lock(mu_);
        if (!reader_.joinable()) {
          todo_.assign(in_flight_.begin(), in_flight_.end());
        } else {
          todo_.push_back(planning_);
        }
      }
      if (!reader_.joinable()) reader_ = std::thread([this] { read_loop(); });
      cv_.notify_all();
    }
    if (free_.empty()) CR_TRY(write_oldest());
    planning_ = free_.front();
    free_.pop_front();
    CR_TRY(ensure_buffer(planning()));
    planning().via_mem = via_mem;
    return {};
  }

  // Waits for the oldest submitted batch and writes its non-zero pages as Pages records.
  Status write_oldest() {
    int slot = in_flight_.front();
    in_flight_.pop_front();
    Batch& b = slots_[slot];
    {
      std::unique_lock lock(mu_);
      if (!b.filled) {
        writer_waits_.store(true, std::memory_order_relaxed);
        cv_.wait(lock, [&] { return b.filled; });
        writer_waits_.store(false, std::memory_order_relaxed);
      }
    }
    CR_TRY(b.status);
    const uint8_t* base = static_cast<const uint8_t*>(b.buf.get());
    const uint32_t pid = static_cast<uint32_t>(ctx_.pid);
    uint64_t written = 0;
    for (size_t k = 0; k < b.records.size(); ++k) {
      const RecordSpan& r = b.records[k];
      const schema::Pages rec{pid, r.vaddr, r.npages};
      const std::span<const uint8_t> tail(base + size_t{r.first} * kPage, size_t{r.npages} * kPage);
      CR_TRY(b.want_crc ? ctx_.out.write(rec, tail, b.crc_of(k)) : ctx_.out.write(rec, tail));
      written += r.npages;
    }
    ctx_.pages_written += written;
    ctx_.pages_zero += b.pages - written;
    if (ctx_.opts.on_progress) ctx_.opts.on_progress(ctx_.pages_written * kPage);
    b.clear();
    free_.push_front(slot);  // reuse the buffer that is warm (a small dump uses only one)
    return {};
  }

  DumpContext& ctx_;
  std::vector<PageSpan> skip_;  // parent_pages and precopied: not read (address order)
  ScopedFd pagemap_, mem_;
  std::vector<uint64_t> pm_;
  std::vector<PageRegion> regions_;
  bool keep_zero_ = false;  // the VMA being planned is a private file mapping
  bool use_scan_;
  bool scan_knows_guard_ = true;  // PAGEMAP_SCAN takes PAGE_IS_GUARD (until EINVAL says not)
  bool threaded_;

  Batch slots_[kSlots];
  int planning_ = 0;
  std::deque<int> free_, in_flight_;  // in_flight_: submitted, in submission order

  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> todo_;  // guarded by mu_, as are Batch::filled and Batch::status
  // The writer is waiting for a buffer to be read: the reader leaves checksums to it.
  std::atomic<bool> writer_waits_{false};
  bool stop_ = false;
};

}  // namespace

Status write_pages(DumpContext& ctx) { return PageDumper(ctx).run(); }

}  // namespace cr::dump
