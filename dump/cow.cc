// Pages a forked child still shares copy-on-write with its parent. After fork both processes
// map the same physical page until one of them writes it; /proc/PID/pagemap shows that page's
// frame number (to CAP_SYS_ADMIN) in both at the same address. Such a page is stored once, in
// the parent's section, and the child's section names the run (PagesParent): a server that
// forked 16 workers from a big parent writes its memory once, not 17 times.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>
#include <unordered_map>

#include "common/io.h"
#include "common/text.h"
#include "dump/passes.h"
#include "sys/linux_abi.h"

namespace cr::dump {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPmPresent = 1ull << 63;
constexpr uint64_t kPmFile = 1ull << 61;       // a file page (or shared anon): not a copy
constexpr uint64_t kPmExclusive = 1ull << 56;  // mapped exactly once: not shared
constexpr uint64_t kPfnMask = (1ull << 55) - 1;
constexpr size_t kChunk = 1u << 15;  // entries per pagemap read (256 KiB)

// The mappings whose pages are the process's own copies (and are dumped as such).
bool private_pages(uint32_t kind) {
  switch (kind) {
    case schema::kVmaAnon:
    case schema::kVmaHeap:
    case schema::kVmaStack:
    case schema::kVmaFilePrivate:
    case schema::kVmaShmemPrivate:
      return true;
    default:
      return false;  // shared (not in Pages at all), vdso, droppable (the kernel may drop them)
  }
}

class Pagemap {
 public:
  Status open(const DumpContext& ctx) {
    if (fd_.valid()) return {};
    fd_.reset(::openat(ctx.proc.fd(), "pagemap", O_RDONLY | O_CLOEXEC));
    if (!fd_.valid()) return errno_error("open /proc/" + std::to_string(ctx.pid) + "/pagemap");
    return {};
  }
  // Entries of `n` pages from page index `first` into `out`.
  Status read(uint64_t first, size_t n, uint64_t* out) const {
    return pread_full(fd_.get(), out, n * 8, first * 8, "read pagemap");
  }
  // The ranges of [start, end) with present pages (PAGEMAP_SCAN: the kernel walks only the
  // page tables there is, so a reserved terabyte costs nothing), or false without the ioctl.
  Result<bool> present(uint64_t start, uint64_t end,
                       std::vector<std::pair<uint64_t, uint64_t>>& out) {
    if (!scan_) return false;
    if (regions_.empty()) regions_.resize(1024);
    sys::PmScanArg arg{};
    arg.size = sizeof arg;
    arg.vec = reinterpret_cast<uint64_t>(regions_.data());
    arg.vec_len = regions_.size();
    arg.category_anyof_mask = sys::kPageIsPresent;
    for (uint64_t at = start; at < end;) {
      arg.start = at;
      arg.end = end;
      arg.walk_end = 0;
      const long n = ::ioctl(fd_.get(), sys::kPagemapScan, &arg);
      if (n < 0 && (errno == ENOTTY || errno == EINVAL) && at == start) {
        scan_ = false;
        return false;
      }
      if (n < 0) return errno_error("PAGEMAP_SCAN at " + hex(at));
      for (long i = 0; i < n; ++i) out.emplace_back(regions_[i].start, regions_[i].end);
      if (arg.walk_end <= at) return make_error("PAGEMAP_SCAN made no progress at " + hex(at));
      at = arg.walk_end;
    }
    return true;
  }

 private:
  ScopedFd fd_;
  bool scan_ = true;
  std::vector<sys::PageRegion> regions_;
};

bool shared(uint64_t child, uint64_t parent) {
  constexpr uint64_t kNeed = kPmPresent;
  constexpr uint64_t kNot = kPmFile | kPmExclusive;
  if ((child & kNeed) != kNeed || (parent & kNeed) != kNeed) return false;
  if ((child & kNot) != 0 || (parent & kNot) != 0) return false;
  // A frame number of 0 is what pagemap shows without CAP_SYS_ADMIN: nothing can be told then.
  return (child & kPfnMask) != 0 && (child & kPfnMask) == (parent & kPfnMask);
}

// A page of the child that another child may share: present, a copy (not a file page), not
// mapped by this process alone.
bool maybe_shared(uint64_t e) {
  return (e & kPmPresent) != 0 && (e & (kPmFile | kPmExclusive)) == 0 && (e & kPfnMask) != 0;
}

void add(std::vector<PageSpan>& spans, uint64_t vaddr, bool prefork = false) {
  if (!spans.empty() && spans.back().vaddr + spans.back().npages * kPage == vaddr &&
      spans.back().prefork == prefork) {
    ++spans.back().npages;
  } else {
    spans.push_back(PageSpan{vaddr, 1, prefork});
  }
}

bool anon_kind(uint32_t kind) {
  return kind == schema::kVmaAnon || kind == schema::kVmaHeap || kind == schema::kVmaStack;
}

// The spans of [start, end) where the child's and the parent's pages are one; with
// `candidates`, the child's other pages that a sibling may share (address, frame).
Status compare_range(Pagemap& child, Pagemap& parent, uint64_t start, uint64_t end,
                     std::vector<uint64_t>& a, std::vector<uint64_t>& b,
                     std::vector<PageSpan>& out,
                     std::vector<std::pair<uint64_t, uint64_t>>* candidates) {
  for (uint64_t at = start / kPage; at < end / kPage;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(end / kPage - at, kChunk));
    CR_TRY(child.read(at, n, a.data()));
    CR_TRY(parent.read(at, n, b.data()));
    for (size_t i = 0; i < n; ++i) {
      if (shared(a[i], b[i])) {
        add(out, (at + i) * kPage);
      } else if (candidates != nullptr && maybe_shared(a[i])) {
        candidates->emplace_back((at + i) * kPage, a[i] & kPfnMask);
      }
    }
    at += n;
  }
  return {};
}

// Only where the child has pages: a mapping reserved huge and barely touched (sanitizer
// shadow, a runtime's heap reservation) would otherwise cost a pagemap entry per page.
Status compare(Pagemap& child, Pagemap& parent, uint64_t start, uint64_t end,
               std::vector<uint64_t>& a, std::vector<uint64_t>& b, std::vector<PageSpan>& out,
               std::vector<std::pair<uint64_t, uint64_t>>* candidates) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  CR_TRY_ASSIGN(bool scanned, child.present(start, end, ranges));
  if (!scanned) return compare_range(child, parent, start, end, a, b, out, candidates);
  for (const auto& [s, e] : ranges) CR_TRY(compare_range(child, parent, s, e, a, b, out, candidates));
  return {};
}

Status find_in(DumpContext& child, DumpContext& parent) {
  Pagemap cm, pm;
  std::vector<uint64_t> a, b;
  auto by_address = [](std::vector<schema::Vma> v) {
    std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.start < y.start; });
    return v;
  };
  const std::vector<schema::Vma> cv = by_address(child.vmas), pv = by_address(parent.vmas);
  // Both lists in address order: walk them together over their overlaps.
  for (size_t i = 0, j = 0; i < cv.size() && j < pv.size();) {
    const uint64_t s = std::max(cv[i].start, pv[j].start);
    const uint64_t e = std::min(cv[i].end, pv[j].end);
    if (s < e && private_pages(cv[i].kind) && private_pages(pv[j].kind)) {
      CR_TRY(cm.open(child));
      CR_TRY(pm.open(parent));
      if (a.empty()) {
        a.resize(kChunk);
        b.resize(kChunk);
      }
      // Pages siblings share are placed in the parent's slot before the fork, which only
      // anonymous mappings of both have (restore/premap.cc).
      const bool anon = anon_kind(cv[i].kind) && anon_kind(pv[j].kind);
      CR_TRY(compare(cm, pm, s, e, a, b, child.parent_pages, anon ? &child.cow_candidates : nullptr));
    }
    if (cv[i].end <= pv[j].end) {
      ++i;
    } else {
      ++j;
    }
  }
  return {};
}

// Pages that children of `parent` still share among themselves but no longer with it (it wrote
// its own copy after forking them): each address's frame is counted over the children, and one
// held by two or more is stored once, in the parent's section (PagesPrefork, read from the
// first child that has it), for crrestore to place before the parent forks; each child names
// it as a PagesParent run marked prefork.
void find_sibling_pages(DumpTree& tree, DumpContext& parent) {
  struct Seen {
    uint64_t pfn;
    uint32_t count;
    pid_t source;
  };
  std::unordered_map<uint64_t, Seen> seen;
  std::vector<DumpContext*> kids;
  for (auto& c : tree.procs)
    if (!c->zombie && c->parent == parent.pid && !c->cow_candidates.empty()) kids.push_back(c.get());
  if (kids.size() < 2) {
    for (DumpContext* k : kids) k->cow_candidates.clear();
    return;
  }
  for (DumpContext* k : kids)
    for (const auto& [addr, pfn] : k->cow_candidates) {
      auto [it, fresh] = seen.try_emplace(addr, Seen{pfn, 0, k->pid});
      if (it->second.pfn == pfn) ++it->second.count;
    }
  // Not where the parent's own page is its parent's (restore keeps that one in its slot).
  auto parents_own = [&parent](uint64_t addr) {
    const auto& v = parent.parent_pages;
    auto it = std::upper_bound(v.begin(), v.end(), addr,
                               [](uint64_t a, const PageSpan& s) { return a < s.vaddr; });
    return it != v.begin() && addr < std::prev(it)->vaddr + std::prev(it)->npages * kPage;
  };
  std::vector<std::pair<uint64_t, pid_t>> prefork;
  for (auto& [addr, s] : seen) {
    if (s.count >= 2 && parents_own(addr)) s.count = 0;
    if (s.count >= 2) prefork.emplace_back(addr, s.source);
  }
  std::sort(prefork.begin(), prefork.end());
  for (const auto& [addr, source] : prefork) {
    auto& v = parent.prefork;
    if (!v.empty() && v.back().vaddr + v.back().npages * kPage == addr && v.back().source == source) {
      ++v.back().npages;
    } else {
      v.push_back(PreforkSpan{addr, 1, source});
    }
  }
  for (DumpContext* k : kids) {
    std::vector<PageSpan> theirs;
    for (const auto& [addr, pfn] : k->cow_candidates) {
      auto it = seen.find(addr);
      if (it != seen.end() && it->second.pfn == pfn && it->second.count >= 2) add(theirs, addr, true);
    }
    k->cow_candidates.clear();
    k->cow_candidates.shrink_to_fit();
    if (theirs.empty()) continue;
    std::vector<PageSpan> all;
    std::merge(k->parent_pages.begin(), k->parent_pages.end(), theirs.begin(), theirs.end(),
               std::back_inserter(all),
               [](const PageSpan& x, const PageSpan& y) { return x.vaddr < y.vaddr; });
    k->parent_pages = std::move(all);
  }
}

// The lowest range of `size` bytes in [kAreaLow, kAreaHigh) that no process of the tree maps,
// with a MiB free on each side. The window starts above the 16 TiB an ASan shadow takes and
// ends below where the kernel puts PIE executables and top-down mappings; crrestore's own
// layout is like any process's, so it is free there too (crrestore checks).
constexpr uint64_t kAreaLow = 0x110000000000ull, kAreaHigh = 0x550000000000ull;
constexpr uint64_t kMargin = 1ull << 20;

void choose_premap_area(DumpTree& tree) {
  uint64_t size = 0;
  std::vector<std::pair<uint64_t, uint64_t>> used;
  for (const auto& p : tree.procs) {
    if (p->zombie) continue;
    for (const auto& v : p->vmas) {
      used.emplace_back(v.start, v.end);
      // Each slot starts at its mapping's offset in a 2 MiB page, a page after the last.
      if (anon_kind(v.kind) || v.kind == schema::kVmaFilePrivate)
        size += v.end - v.start + (2ull << 20) + kPage;
    }
  }
  std::sort(used.begin(), used.end());
  uint64_t at = kAreaLow;
  for (const auto& [s, e] : used) {
    if (e + kMargin <= at) continue;
    if (s >= at + size + kMargin) break;
    at = std::max(at, e + kMargin);
  }
  if (at + size <= kAreaHigh) tree.premap = {at, at + size};
}

}  // namespace

Status find_parent_pages(DumpTree& tree) {
  for (auto& c : tree.procs) {
    if (c->zombie || c->parent == 0) continue;
    DumpContext* p = tree.find(c->parent);
    if (p == nullptr || p->zombie) continue;
    auto st = find_in(*c, *p);
    if (!st.ok())
      return std::move(st).error().wrap("pid " + std::to_string(c->pid) +
                                        ": pages shared with its parent");
  }
  for (auto& p : tree.procs)
    if (!p->zombie) find_sibling_pages(tree, *p);
  bool any = false;
  for (auto& c : tree.procs)
    if (!c->parent_pages.empty()) {
      c->process.flags |= schema::kProcessParentPages;
      any = true;
    }
  if (any) choose_premap_area(tree);
  return {};
}

}  // namespace cr::dump
