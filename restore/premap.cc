#include "restore/premap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iterator>

#include "common/test_hook.h"
#include "common/text.h"
#include "restore/cgroups.h"
#include "restore/context.h"
#include "restore/layout.h"
#include "restore/trampoline.h"
#include "sys/remote_syscalls.h"
#include "sys/tracee.h"

namespace cr::restore {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMargin = 1ull << 20;
constexpr uint64_t kHuge = 2ull << 20;

bool anon_kind(uint32_t kind) {
  return kind == schema::kVmaAnon || kind == schema::kVmaHeap || kind == schema::kVmaStack;
}

// The path a private file mapping's slot opens, written into the process's copy of this
// buffer (it is a copy of crrestore until it forks).
char kPathBuf[4096];

// Runs up to this long are overwritten with zeros rather than dropped by an injected madvise:
// one process_vm_writev takes a thousand of them, an injected call costs tens of
// microseconds. (The page then exists, holding zeros, as a page the process wrote would.)
constexpr uint64_t kZeroFill = 16 * kPage;

class ZeroFill {
 public:
  explicit ZeroFill(pid_t pid) : pid_(pid) {}
  Status add(uint64_t addr, uint64_t len) {
    if (remote_.size() == kIov) CR_TRY(flush());
    remote_.push_back(iovec{reinterpret_cast<void*>(addr), len});
    local_.push_back(iovec{const_cast<uint8_t*>(kZeros), len});
    total_ += len;
    return {};
  }
  Status flush() {
    if (remote_.empty()) return {};
    ssize_t n = ::process_vm_writev(pid_, local_.data(), local_.size(), remote_.data(),
                                    remote_.size(), 0);
    if (n < 0 || static_cast<uint64_t>(n) != total_)
      return errno_error("process_vm_writev of zeros into pid " + std::to_string(pid_) + " at " +
                             hex(reinterpret_cast<uint64_t>(remote_.front().iov_base)),
                         n < 0 ? errno : EIO);
    local_.clear();
    remote_.clear();
    total_ = 0;
    return {};
  }

 private:
  static constexpr size_t kIov = 1024;  // IOV_MAX
  static constexpr uint8_t kZeros[kZeroFill] = {};
  pid_t pid_;
  std::vector<iovec> local_, remote_;
  uint64_t total_ = 0;
};

using Slots = std::map<uint64_t, PremapSlot>;
using Run = std::pair<uint64_t, uint64_t>;  // [first, end)

// Sorted, overlapping and touching runs joined.
std::vector<Run> merged(std::vector<Run> v) {
  std::sort(v.begin(), v.end());
  std::vector<Run> out;
  for (const Run& r : v) {
    if (!out.empty() && r.first <= out.back().second) {
      out.back().second = std::max(out.back().second, r.second);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

// `a` less `b`, both merged.
std::vector<Run> subtract(const std::vector<Run>& a, const std::vector<Run>& b) {
  std::vector<Run> out;
  size_t j = 0;
  for (Run r : a) {
    while (j < b.size() && b[j].second <= r.first) ++j;
    for (size_t k = j; k < b.size() && b[k].first < r.second; ++k) {
      if (b[k].first > r.first) out.emplace_back(r.first, b[k].first);
      r.first = std::max(r.first, b[k].second);
    }
    if (r.first < r.second) out.push_back(r);
  }
  return out;
}

// The slot of the mapping holding `addr`, or null.
const PremapSlot* slot_at(const Slots& slots, uint64_t addr) {
  auto it = slots.upper_bound(addr);
  if (it == slots.begin()) return nullptr;
  --it;
  return addr < it->second.end ? &it->second : nullptr;
}

// Calls fn(addr, len, slot or null) for the pieces of [addr, addr+len) split at slot edges.
template <class Fn>
Status for_each_piece(const Slots& slots, uint64_t addr, uint64_t len, Fn&& fn) {
  const uint64_t end = addr + len;
  while (addr < end) {
    const PremapSlot* s = slot_at(slots, addr);
    uint64_t stop = end;
    if (s != nullptr) {
      stop = std::min(end, s->end);
    } else {
      auto next = slots.upper_bound(addr);
      if (next != slots.end()) stop = std::min(end, next->second.start);
    }
    CR_TRY(fn(addr, stop - addr, s));
    addr = stop;
  }
  return {};
}

}  // namespace

void PreforkStore::add(uint32_t pid, uint64_t addr, std::span<const uint8_t> bytes) {
  runs[pid][addr].assign(bytes.begin(), bytes.end());
}

Status PreforkStore::read(uint32_t pid, uint64_t addr, uint64_t len, uint8_t* out) const {
  auto p = runs.find(pid);
  uint64_t done = 0;
  while (p != runs.end() && done < len) {
    const uint64_t at = addr + done;
    auto it = p->second.upper_bound(at);
    if (it == p->second.begin()) break;
    --it;
    const uint64_t end = it->first + it->second.size();
    if (at >= end) break;
    const uint64_t n = std::min(len - done, end - at);
    std::memcpy(out + done, it->second.data() + (at - it->first), n);
    done += n;
  }
  if (done < len)
    return make_error("pid " + std::to_string(pid) + " has no prefork pages at " +
                      hex(addr + done));
  return {};
}

Status drop_pages(sys::RemoteSyscalls& rs, pid_t pid,
                  const std::vector<std::pair<uint64_t, uint64_t>>& runs, bool anonymous) {
  ZeroFill zeros(pid);
  for (const auto& [first, end] : runs) {
    if (anonymous && end - first <= kZeroFill) {
      CR_TRY(zeros.add(first, end - first));  // a page or a few: written over, many to a call
      continue;
    }
    auto r = rs.call("madvise", SYS_madvise, first, end - first, MADV_DONTNEED);
    if (!r.ok()) return std::move(r).error().wrap("drop " + hex(first));
  }
  return zeros.flush();
}

const PremapSlot* Premap::find(uint32_t pid, uint64_t start) const {
  auto p = slots.find(pid);
  if (p == slots.end()) return nullptr;
  auto s = p->second.find(start);
  return s == p->second.end() ? nullptr : &s->second;
}

Result<std::unique_ptr<Premap>> plan_premap(const TreeHead& head) {
  bool wanted = false;
  for (const auto& p : head.procs) wanted |= (p.process->flags & schema::kProcessParentPages) != 0;
  if (!wanted || !head.premap_area) return std::unique_ptr<Premap>();
  const auto& a = *head.premap_area;
  if (a.start >= a.end || a.start < kMinPlaceAddr + kMargin || a.end > kTaskSize - kMargin ||
      ((a.start | a.end) & (kPage - 1)) != 0)
    return make_error("premap_area " + hex(a.start) + "-" + hex(a.end) + " is not a usable range");
  CR_TRY_ASSIGN(auto own, read_task_maps(::getpid()));
  const Range area{a.start - kMargin, a.end + kMargin};
  for (const auto& m : own)
    if (m.range.overlaps(area)) return std::unique_ptr<Premap>();  // ours is there: copies
  auto pm = std::make_unique<Premap>();
  pm->area_start = a.start;
  pm->next = a.start;
  pm->end = a.end;
  return pm;
}

Status premap_process(RestoreContext& root, RestoreContext& x, int release_fd) {
  test_kill_point("pass");  // crrestore killed with processes waiting here: none may be left
  Premap& pm = *root.premap;
  const pid_t pid = x.pid();
  const std::string who = "pid " + std::to_string(pid);
  auto& reader = *x.reader;
  // Pages are charged to the memory cgroup of the task they are placed in: its own first.
  CR_TRY(join_cgroups(root, pid));
  CR_TRY_ASSIGN(bool positioned, load_body_head(reader, x.img));
  if (!positioned) return make_error(who + ": image ends after its memory map");
  CR_TRY(check_memory(x.img));
  const auto& proc = *x.img.process;
  Slots& mine = pm.slots[proc.pid];
  const bool inherits = (proc.flags & schema::kProcessParentPages) != 0;
  const Slots* theirs = nullptr;
  if (inherits && pm.slots.count(proc.ppid) != 0) theirs = &pm.slots[proc.ppid];
  // A private file mapping gets a slot too (its copied pages are shared like anonymous ones),
  // mapping the file as root: only for an image restored with root's rights. A user's image
  // maps its files as the user, later (map_vmas): copies there.
  const bool file_slots = !root.privileges.restricted();
  for (const auto& v : x.img.vmas) {
    if (v.start < pm.end && pm.area_start < v.end)
      return make_error(who + ": vma " + hex(v.start) + " lies in the image's premap area");
    const bool file = v.kind == schema::kVmaFilePrivate && file_slots && !v.path.empty();
    if (!anon_kind(v.kind) && !file) continue;
    PremapSlot s;
    s.start = v.start;
    s.end = v.end;
    s.kind = v.kind;
    s.growsdown = v.kind == schema::kVmaStack || (v.flags & MAP_GROWSDOWN) != 0;
    if (file) {
      s.path = v.path;
      s.pgoff = v.pgoff;
      s.file_rw = (v.file_open_mode & S_IWUSR) != 0;
      // Within the parent's mapping of the same file at the same offsets: inherited.
      const PremapSlot* p = theirs ? slot_at(*theirs, v.start) : nullptr;
      if (p != nullptr && p->kind == v.kind && v.end <= p->end && p->path == v.path &&
          p->pgoff + (v.start - p->start) / kPage == v.pgoff) {
        s.slot = p->slot + (v.start - p->start);
        s.inherited = true;
      }
    } else if (theirs != nullptr) {
      // Within one of the parent's (or grown past its end since the fork, as a heap by brk:
      // then the part in the parent's slot is inherited, the rest mapped fresh by map_vmas).
      // A stack must lie within (it cannot grow up past the parent's).
      const PremapSlot* p = slot_at(*theirs, v.start);
      if (p != nullptr && p->kind == v.kind && p->growsdown == s.growsdown &&
          (!s.growsdown || v.end <= p->end)) {
        s.slot = p->slot + (v.start - p->start);
        s.end = std::min(v.end, p->end);
        s.inherited = true;
      }
    }
    if (!s.inherited) {
      // The same offset in a 2 MiB page as the mapping's: huge pages placed in the slot stay
      // aligned once it moves. A page between slots: they never merge.
      const uint64_t len = v.end - v.start;
      const uint64_t at = ((pm.next + kHuge - 1) & ~(kHuge - 1)) + (v.start & (kHuge - 1));
      // No room left (an image that did not count this mapping): mapped in place later, its
      // pages written then, what it shared copied.
      if (at < pm.next || at > pm.end || pm.end - at < len) continue;
      s.slot = at;
      s.madv = v.madv;
      pm.next = std::min(pm.end, at + len + kPage);
    }
    mine[v.start] = s;
  }

  CR_TRY_ASSIGN(sys::Tracee t, sys::Tracee::seize(pid, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL));
  CR_TRY_ASSIGN(auto rs, sys::RemoteSyscalls::create(t, own_syscall_insn()));
  // Its new slots lie one after the other: one mapping covers them all (the gaps between go
  // with unmap_rest), a stack's is mapped again over it with MAP_GROWSDOWN.
  uint64_t span_start = ~0ull, span_end = 0;
  for (const auto& [start, s] : mine)
    if (!s.inherited) {
      span_start = std::min(span_start, s.slot);
      span_end = std::max(span_end, s.slot + (s.end - s.start));
    }
  if (span_start < span_end) {
    auto r = rs.call("mmap premap slots", SYS_mmap, span_start, span_end - span_start,
                     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                     static_cast<uint64_t>(-1), 0);
    if (!r.ok()) return std::move(r).error().wrap(who + ": premap slots " + hex(span_start));
    if (*r != span_start) return make_error(who + ": premap slots mapped at " + hex(*r));
  }
  for (const auto& [start, s] : mine) {
    if (s.inherited) continue;
    if (s.growsdown) {
      auto r = rs.call("mmap premap slot", SYS_mmap, s.slot, s.end - s.start,
                       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN,
                       static_cast<uint64_t>(-1), 0);
      if (!r.ok()) return std::move(r).error().wrap(who + ": vma " + hex(start));
      if (*r != s.slot) return make_error(who + ": premap slot mapped at " + hex(*r));
    }
    // Huge pages or not as the mapping had, before its pages go in (map_vmas advises again).
    const int advice = (s.madv & schema::kMadvHugepage) != 0     ? MADV_HUGEPAGE
                       : (s.madv & schema::kMadvNoHugepage) != 0 ? MADV_NOHUGEPAGE
                                                                 : -1;
    if (advice >= 0) {
      auto m = rs.call("madvise premap slot", SYS_madvise, s.slot, s.end - s.start,
                       static_cast<uint64_t>(advice));
      if (!m.ok()) return std::move(m).error().wrap(who + ": vma " + hex(start));
    }
  }
  // Private file mappings over their part of the span: the file opened in the process (its
  // path written into its copy of kPathBuf) and mapped at the slot.
  for (const auto& [start, s] : mine) {
    if (s.inherited || s.path.empty()) continue;
    if (s.path.size() >= sizeof kPathBuf) return make_error(who + ": path too long: " + s.path);
    CR_TRY(t.write_mem(reinterpret_cast<uint64_t>(kPathBuf), s.path.c_str(), s.path.size() + 1));
    auto fd = rs.call("open premap file", SYS_openat, static_cast<uint64_t>(AT_FDCWD),
                      reinterpret_cast<uint64_t>(kPathBuf),
                      (s.file_rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (!fd.ok()) return std::move(fd).error().wrap(who + ": " + s.path);
    auto r = rs.call("mmap premap file", SYS_mmap, s.slot, s.end - s.start,
                     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, *fd, s.pgoff * kPage);
    (void)rs.call("close", SYS_close, *fd);
    if (!r.ok()) return std::move(r).error().wrap(who + ": vma " + hex(start) + " " + s.path);
    if (*r != s.slot) return make_error(who + ": premap slot mapped at " + hex(*r));
  }

  // What each slot holds of the process's own: the runs it kept from the parent and the
  // pages written there. In an inherited slot, what the parent's held beyond that the process
  // did not have (a page it dropped, a page of zeros, a page the parent touched after the
  // fork): dropped once the section is read. Only where the parent's slot has pages, so a
  // process sharing nearly everything costs few calls.
  Premap::Runs& have = pm.held[proc.pid];
  bool pages_seen = false;
  std::vector<Run> prefork_runs, own_runs;  // address order, as the records come
  auto drop_unshared = [&]() -> Status {
    for (auto& [start, runs] : have) runs = merged(std::move(runs));
    const auto parent_held = pm.held.find(proc.ppid);
    for (const auto& [start, s] : mine) {
      if (!s.inherited || parent_held == pm.held.end()) continue;
      std::vector<Run> theirs;
      for (const auto& [ps, pruns] : parent_held->second)
        for (const Run& r : pruns)
          if (r.second > s.start && r.first < s.end)
            theirs.emplace_back(std::max(r.first, s.start), std::min(r.second, s.end));
      std::vector<Run> drop = subtract(merged(std::move(theirs)), have[start]);
      for (Run& z : drop) z = {s.slot + (z.first - s.start), s.slot + (z.second - s.start)};
      // In a file mapping a page it did not have shows the file: dropped, never zeros.
      auto st = drop_pages(rs, pid, drop, s.path.empty());
      if (!st.ok()) return std::move(st).error().wrap(who + ": vma " + hex(start));
    }
    return {};
  };

  // A run of its own pages (a Pages record's, or pre-copied ones from the store).
  auto own_pages = [&](uint64_t vaddr, const uint8_t* data, uint64_t len) -> Status {
    return for_each_piece(mine, vaddr, len, [&](uint64_t a, uint64_t n, const PremapSlot* s) -> Status {
      const uint8_t* d = data + (a - vaddr);
      own_runs.emplace_back(a, a + n);
      if (s == nullptr) {
        x.pending_pages.emplace_back(a, std::vector<uint8_t>(d, d + n));
        return {};
      }
      // Over what its children get: written once they are forked.
      const std::vector<Run> now = subtract({{a, a + n}}, prefork_runs);
      for (const Run& r : subtract({{a, a + n}}, now))
        x.pending_pages.emplace_back(r.first,
                                     std::vector<uint8_t>(d + (r.first - a), d + (r.second - a)));
      for (const Run& r : now) {
        have[s->start].push_back(r);
        CR_TRY(t.write_mem(s->slot + (r.first - s->start), d + (r.first - a), r.second - r.first));
      }
      return {};
    });
  };

  size_t hint = 0;
  bool more = true;
  while (more) {
    if (reader.type() == schema::Mm::kType) break;  // the next process's section
    if (reader.type() == schema::PagesParent::kType) {
      CR_TRY_ASSIGN(auto p, reader.decode<schema::PagesParent>());
      if (!inherits || pages_seen || p.pid != proc.pid || p.npages == 0 || p.npages > (1ull << 36))
        return make_error(who + ": pages of the parent at " + hex(p.vaddr) + " out of place");
      const uint64_t len = p.npages * kPage;
      CR_TRY_ASSIGN(hint, check_pages(x.img.vmas, p.vaddr, len, hint));
      CR_TRY(for_each_piece(mine, p.vaddr, len,
                            [&](uint64_t a, uint64_t n, const PremapSlot* s) -> Status {
                              if (s != nullptr && s->inherited) {
                                have[s->start].emplace_back(a, a + n);
                              } else {  // copied from the parent's memory once it is in place
                                x.pending_parent.push_back({proc.pid, a, n / kPage});
                              }
                              return {};
                            }));
    } else if (reader.type() == schema::PagesPrefork::kType) {
      // What its children share: into its slots now, before they are forked.
      CR_TRY_ASSIGN(auto p, reader.decode<schema::PagesPrefork>());
      auto tail = reader.tail();
      const uint64_t len = uint64_t{p.npages} * kPage;
      if (pages_seen || p.pid != proc.pid || tail.size() != len || len == 0)
        return make_error(who + ": prefork pages at " + hex(p.vaddr) + " out of place");
      CR_TRY_ASSIGN(hint, check_pages(x.img.vmas, p.vaddr, len, hint));
      x.prefork->add(proc.pid, p.vaddr, tail);
      const uint8_t* data = tail.data();
      CR_TRY(for_each_piece(mine, p.vaddr, len,
                            [&](uint64_t a, uint64_t n, const PremapSlot* s) -> Status {
                              if (s == nullptr) return {};  // its children copy it
                              have[s->start].emplace_back(a, a + n);
                              prefork_runs.emplace_back(a, a + n);
                              return t.write_mem(s->slot + (a - s->start), data + (a - p.vaddr), n);
                            }));
    } else if (reader.type() == schema::Pages::kType ||
               reader.type() == schema::PagesPrecopied::kType) {
      if (!pages_seen) prefork_runs = merged(std::move(prefork_runs));
      pages_seen = true;
      if (reader.type() == schema::PagesPrecopied::kType) {
        // Their contents came before the head (crdump --pre-copy): placed as Pages would be.
        CR_TRY_ASSIGN(auto p, reader.decode<schema::PagesPrecopied>());
        if ((proc.flags & schema::kProcessPrecopied) == 0 || p.pid != proc.pid || p.npages == 0 ||
            p.npages > (uint64_t{1} << 36))
          return make_error(who + ": pages_precopied at " + hex(p.vaddr) + " out of place");
        CR_TRY_ASSIGN(hint, check_pages(x.img.vmas, p.vaddr, p.npages * kPage, hint));
        CR_TRY(x.precopy->each_run(p.pid, p.vaddr, p.npages,
                                   [&](uint64_t a, const uint8_t* d, uint64_t n,
                                       const std::shared_ptr<const void>&) {
                                     return own_pages(a, d, n);  // copied at once
                                   }));
        x.page_bytes += p.npages * kPage;
      } else {
        CR_TRY_ASSIGN(auto p, reader.decode<schema::Pages>());
        CR_TRY(reader.load_tail());  // read whole (a deferred tail of --lazy is read now)
        auto tail = reader.tail();
        const uint64_t len = uint64_t{p.npages} * kPage;
        if (tail.size() != len)
          return make_error("pages at " + hex(p.vaddr) + ": " + std::to_string(tail.size()) +
                            " bytes for " + std::to_string(p.npages) + " pages");
        CR_TRY_ASSIGN(hint, check_pages(x.img.vmas, p.vaddr, len, hint));
        CR_TRY(own_pages(p.vaddr, tail.data(), len));
        x.page_bytes += len;
      }
      if (x.opts.on_progress) x.opts.on_progress(x.page_bytes);
    } else {
      auto st = stash_tail_record(reader, x.img);
      if (!st.ok()) return std::move(st).error().wrap("offset " + std::to_string(reader.offset()));
    }
    CR_TRY_ASSIGN(more, reader.next());
  }
  CR_TRY(drop_unshared());
  // Where its children got pages it did not have itself: dropped once they are forked.
  x.pending_drop = subtract(merged(std::move(prefork_runs)), merged(std::move(own_runs)));
  x.stream_ended = !more;
  x.preloaded = true;
  CR_TRY(check_threads(x.img));
  CR_TRY(rs.finish());
  CR_TRY(t.detach());
  // It goes on: forks its children, which inherit the slots.
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(release_fd);
  ScopedFd go(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!go.valid()) return errno_error(who + ": open " + path);
  if (::write(go.get(), "G", 1) != 1) return errno_error(who + ": release");
  return {};
}

}  // namespace cr::restore
