// Pages a forked child still shares copy-on-write with its parent. After fork both processes
// map the same physical page until one of them writes it; /proc/PID/pagemap shows that page's
// frame number (to CAP_SYS_ADMIN) in both at the same address. Such a page is stored once, in
// the parent's section, and the child's section names the run (PagesParent): a server that
// forked 16 workers from a big parent writes its memory once, not 17 times.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "common/text.h"
#include "dump/passes.h"

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
    size_t want = n * 8, got = 0;
    auto* dst = reinterpret_cast<uint8_t*>(out);
    while (got < want) {
      ssize_t r = ::pread(fd_.get(), dst + got, want - got, static_cast<off_t>(first * 8 + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return errno_error("read pagemap at " + hex(first * kPage), r == 0 ? EIO : errno);
      got += static_cast<size_t>(r);
    }
    return {};
  }

 private:
  ScopedFd fd_;
};

bool shared(uint64_t child, uint64_t parent) {
  constexpr uint64_t kNeed = kPmPresent;
  constexpr uint64_t kNot = kPmFile | kPmExclusive;
  if ((child & kNeed) != kNeed || (parent & kNeed) != kNeed) return false;
  if ((child & kNot) != 0 || (parent & kNot) != 0) return false;
  // A frame number of 0 is what pagemap shows without CAP_SYS_ADMIN: nothing can be told then.
  return (child & kPfnMask) != 0 && (child & kPfnMask) == (parent & kPfnMask);
}

void add(std::vector<PageSpan>& spans, uint64_t vaddr) {
  if (!spans.empty() && spans.back().vaddr + spans.back().npages * kPage == vaddr) {
    ++spans.back().npages;
  } else {
    spans.push_back(PageSpan{vaddr, 1});
  }
}

// The spans of [start, end) where the child's and the parent's pages are one.
Status compare(Pagemap& child, Pagemap& parent, uint64_t start, uint64_t end,
               std::vector<uint64_t>& a, std::vector<uint64_t>& b, std::vector<PageSpan>& out) {
  for (uint64_t at = start / kPage; at < end / kPage;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(end / kPage - at, kChunk));
    CR_TRY(child.read(at, n, a.data()));
    CR_TRY(parent.read(at, n, b.data()));
    for (size_t i = 0; i < n; ++i)
      if (shared(a[i], b[i])) add(out, (at + i) * kPage);
    at += n;
  }
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
      CR_TRY(compare(cm, pm, s, e, a, b, child.parent_pages));
    }
    if (cv[i].end <= pv[j].end) {
      ++i;
    } else {
      ++j;
    }
  }
  return {};
}

bool anon_kind(uint32_t kind) {
  return kind == schema::kVmaAnon || kind == schema::kVmaHeap || kind == schema::kVmaStack;
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
      if (anon_kind(v.kind)) size += v.end - v.start + (2ull << 20) + kPage;
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
    for (const PageSpan& s : c->parent_pages) c->pages_parent += s.npages;
    if (!c->parent_pages.empty()) c->process.flags |= schema::kProcessParentPages;
  }
  for (const auto& c : tree.procs)
    if (!c->parent_pages.empty()) {
      choose_premap_area(tree);
      break;
    }
  return {};
}

}  // namespace cr::dump
