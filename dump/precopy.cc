// Pre-copy rounds over userfaultfd write-protect (async) and PAGEMAP_SCAN; see precopy.h for
// why a page's pre-copied contents can be trusted at the final freeze.
#include "dump/precopy.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/test_hook.h"
#include "common/text.h"
#include "dump/passes.h"
#include "dump/zero_page.h"
#include "sys/linux_abi.h"
#include "sys/pagemap_scan.h"
#include "sys/remote_syscalls.h"

namespace cr::dump {

namespace {

// Linux 6.7; the system headers are 6.1's.
constexpr uint64_t kUffdFeatureWpAsync = 1ull << 15;
constexpr unsigned kUffdUserModeOnly = 1;  // UFFD_USER_MODE_ONLY: what a non-root task may make

constexpr uint64_t kPage = 4096;
constexpr size_t kBufPages = 256;  // 1 MiB: one read, and the largest record
constexpr size_t kMaxIov = 1024;

using Run = sys::PageRun;  // [start, end)

bool tracked_kind(const schema::Vma& v) {
  // Private anonymous memory: its pages are the process's own. (File pages and shared memory
  // go out in the final dump, as do unreadable mappings, which process_vm_readv cannot read.)
  return (v.kind == schema::kVmaAnon || v.kind == schema::kVmaHeap ||
          v.kind == schema::kVmaStack) &&
         (v.prot & PROT_READ) != 0;
}

}  // namespace

// A tracked mapping, as it was at the start, and which of its pages went out (newest round).
struct PreCopy::Range {
  uint64_t start = 0, end = 0;
  std::vector<uint64_t> sent;  // a bit per page

  bool contains(uint64_t a) const { return a >= start && a < end; }
  // Appends the runs of sent pages in [s, e) to `out` (address order, touching runs merged),
  // a 64-bit word of the bitmap at a time where it is all set or all clear.
  void sent_runs(uint64_t s, uint64_t e, std::vector<PageSpan>& out) const {
    uint64_t i = (std::max(s, start) - start) / kPage;
    const uint64_t last = (std::min(e, end) - start) / kPage;
    while (i < last) {
      const uint64_t set = sent[i / 64] >> (i % 64);
      if (set == 0) {  // nothing sent in the rest of this word
        i = (i / 64 + 1) * 64;
        continue;
      }
      i += static_cast<uint64_t>(__builtin_ctzll(set));
      if (i >= last) break;
      uint64_t j = i;
      while (j < last) {
        const uint64_t clear = ~sent[j / 64] >> (j % 64);
        if (clear == 0) {  // sent up to the end of this word
          j = (j / 64 + 1) * 64;
          continue;
        }
        j += static_cast<uint64_t>(__builtin_ctzll(clear));
        break;
      }
      j = std::min(j, last);
      const uint64_t a = start + i * kPage;
      if (!out.empty() && out.back().vaddr + out.back().npages * kPage == a)
        out.back().npages += j - i;
      else
        out.push_back(PageSpan{a, j - i, false});
      i = j;
    }
  }
  void mark(uint64_t a, bool on) {
    const uint64_t i = (a - start) / kPage;
    if (on)
      sent[i / 64] |= uint64_t{1} << (i % 64);
    else
      sent[i / 64] &= ~(uint64_t{1} << (i % 64));
  }
};

struct PreCopy::Proc {
  pid_t pid = 0;
  ScopedFd uffd;     // in the process's mm; closing it ends the tracking
  ScopedFd pagemap;  // opened at the start: its mm, not a later exec's
  std::vector<Range> ranges;
  bool settled = false;

  Range* range_of(uint64_t a) {
    for (Range& r : ranges)
      if (r.contains(a)) return &r;
    return nullptr;
  }
  void end_tracking() {
    uffd.reset();
    pagemap.reset();
    ranges.clear();
  }
};

namespace {

// The lowest fd number the process does not use (/proc/PID/fd of the frozen process).
Result<int> lowest_free_fd(DumpContext& ctx) {
  ScopedFd dir(::openat(ctx.proc.fd(), "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return errno_error("open /proc/" + std::to_string(ctx.pid) + "/fd");
  DIR* d = ::fdopendir(dir.get());
  if (d == nullptr) return errno_error("fdopendir /proc/" + std::to_string(ctx.pid) + "/fd");
  (void)dir.release();
  std::vector<int> used;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') used.push_back(std::atoi(e->d_name));
  ::closedir(d);
  std::sort(used.begin(), used.end());
  int lowest = 0;
  for (int f : used) {
    if (f == lowest) ++lowest;
    else if (f > lowest) break;
  }
  return lowest;
}

// Gives `ctx` a userfaultfd of its own mm (made by an injected call, copied out with
// pidfd_getfd, closed in the task again) in write-protect async mode, and lists the private
// anonymous mappings to track. The process is frozen; registering and protecting them waits
// until it runs again (protect_ranges): round 0 reads after that, so a write before it is
// read, and one after it shows as written.
Status track(DumpContext& ctx, ScopedFd& uffd, ScopedFd& pagemap,
             std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  const std::string who = "pid " + std::to_string(ctx.pid);
  ThreadState& leader = ctx.threads.front();
  {
    CR_TRY_ASSIGN(sys::RemoteSyscalls rs, injection_scope(ctx, leader));
    // The fd it will get is the lowest free one (the process is frozen, and so is every
    // process sharing its fd table): should crdump die after the call, the task closes it
    // before it goes back to its own code, and never holds crdump's userfaultfd.
    CR_TRY_ASSIGN(int lowest, lowest_free_fd(ctx));
    CR_TRY_ASSIGN(int64_t fd, rs.call_raw_undo(SYS_userfaultfd,
                                               O_CLOEXEC | O_NONBLOCK | kUffdUserModeOnly, 0,
                                               SYS_close, static_cast<uint64_t>(lowest)));
    if (fd < 0)
      return errno_error(who + ": userfaultfd for write tracking (made in the task)",
                         static_cast<int>(-fd));
    if (fd != lowest) {
      (void)rs.call("close", SYS_close, static_cast<uint64_t>(fd));
      return make_error(who + ": the injected userfaultfd got fd " + std::to_string(fd) +
                        ", not the lowest free one " + std::to_string(lowest));
    }
    auto copy = copy_task_fd(ctx, static_cast<int>(fd));
    CR_TRY(rs.call("close", SYS_close, static_cast<uint64_t>(fd)));
    CR_TRY(rs.finish());
    CR_TRY_ASSIGN(uffd, std::move(copy));
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kUffdFeatureWpAsync;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0)
    return errno_error("UFFDIO_API with UFFD_FEATURE_WP_ASYNC (Linux 6.7+): pre-copy needs it");
  pagemap.reset(::openat(ctx.proc.fd(), "pagemap", O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) return errno_error("open /proc/" + std::to_string(ctx.pid) + "/pagemap");
  for (const schema::Vma& v : ctx.vmas)
    if (tracked_kind(v)) ranges.emplace_back(v.start, v.end);
  return {};
}

// Registers and protects the mappings listed at the freeze, the tree running again. One that
// cannot be registered (one of the task's own userfaultfds has it, and the dump refuses that fd
// later; or it changed since the freeze) is not tracked: its pages go out in the final dump.
std::vector<std::pair<uint64_t, uint64_t>> protect_ranges(
    int uffd, const std::vector<std::pair<uint64_t, uint64_t>>& listed) {
  std::vector<std::pair<uint64_t, uint64_t>> tracked;
  for (auto [s, e] : listed) {
    uffdio_register reg{};
    reg.range = {s, e - s};
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    if (::ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) continue;
    uffdio_writeprotect wp{};
    wp.range = {s, e - s};
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    if (::ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0) {
      uffdio_range r{s, e - s};
      (void)::ioctl(uffd, UFFDIO_UNREGISTER, &r);
      continue;
    }
    tracked.emplace_back(s, e);
  }
  return tracked;
}

}  // namespace

TreeMemory tree_memory(pid_t root) {
  TreeMemory m;
  std::vector<pid_t> todo{root};
  // Bounded: a fork bomb's tree is not walked for ever (the dump itself would refuse it).
  for (size_t seen = 0; !todo.empty() && seen < 100000; ++seen) {
    const pid_t pid = todo.back();
    todo.pop_back();
    auto proc = sys::ProcDir::open(pid);
    if (!proc.ok()) continue;
    auto text = proc->read("status");
    if (!text.ok()) continue;
    auto st = sys::parse_status(*text);
    if (!st.ok()) continue;
    m.anon_bytes += st->rss_anon_kb << 10;
    ++m.processes;
    auto tids = proc->tasks();
    if (!tids.ok()) continue;
    for (pid_t tid : *tids) {
      auto kids = proc->read("task/" + std::to_string(tid) + "/children");
      if (!kids.ok()) continue;
      for (pid_t kid : sys::parse_children(*kids)) todo.push_back(kid);
    }
  }
  return m;
}

PreCopy::PreCopy(format::RecordWriter& out) : out_(out) {}
PreCopy::~PreCopy() { stop(); }

Result<std::unique_ptr<PreCopy>> PreCopy::start(pid_t root, const DumpOptions& opts,
                                                format::RecordWriter& out) {
  std::unique_ptr<PreCopy> pc(new PreCopy(out));
  void* buf = ::mmap(nullptr, kBufPages * kPage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (buf == MAP_FAILED) return errno_error("mmap pre-copy buffer");
  pc->buf_ = ScopedMapping(buf, kBufPages * kPage);
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> listed;
  Status st = with_frozen_tree(root, opts, out, [&](DumpTree& tree) -> Status {
    for (auto& c : tree.procs) {
      if (c->zombie) continue;
      Proc p;
      p.pid = c->pid;
      listed.emplace_back();
      CR_TRY(track(*c, p.uffd, p.pagemap, listed.back()));
      pc->procs_.push_back(std::move(p));
      test_kill_point("precopy");
    }
    return {};
  });
  if (!st.ok()) return std::move(st).error().wrap("pre-copy");
  for (size_t i = 0; i < pc->procs_.size(); ++i) {
    for (auto [s, e] : protect_ranges(pc->procs_[i].uffd.get(), listed[i])) {
      Range r;
      r.start = s;
      r.end = e;
      r.sent.assign(((e - s) / kPage + 63) / 64, 0);
      pc->procs_[i].ranges.push_back(std::move(r));
    }
    test_kill_point("precopy");
  }
  return pc;
}

void PreCopy::stop() {
  for (Proc& p : procs_) p.end_tracking();
}

Status PreCopy::copy_runs(Proc& p, const std::vector<Run>& runs, PrecopyRound& r) {
  uint8_t* buf = static_cast<uint8_t*>(buf_.get());
  const uint32_t pid = static_cast<uint32_t>(p.pid);
  std::vector<iovec> iov;
  std::vector<uint64_t> addrs;  // the page address of each buffer page
  auto flush = [&]() -> Status {
    if (addrs.empty()) return {};
    iovec local{buf, addrs.size() * kPage};
    ssize_t n = ::process_vm_readv(p.pid, &local, 1, iov.data(), iov.size(), 0);
    // The tree runs: a page unmapped or made unreadable meanwhile stops the read there. What
    // was not read is not marked sent (the final dump has it).
    const size_t got = n < 0 ? 0 : static_cast<size_t>(n) / kPage;
    size_t rec_first = 0, rec_n = 0;
    auto emit = [&]() -> Status {
      if (rec_n == 0) return {};
      CR_TRY(out_.write(schema::PrecopyPages{pid, addrs[rec_first], static_cast<uint32_t>(rec_n),
                                             rounds_},
                        std::span<const uint8_t>(buf + rec_first * kPage, rec_n * kPage)));
      r.sent_bytes += rec_n * kPage;
      rec_n = 0;
      return {};
    };
    for (size_t i = 0; i < addrs.size(); ++i) {
      Range* g = p.range_of(addrs[i]);
      const bool keep = i < got && !page_is_zero(buf + i * kPage);
      if (g != nullptr) g->mark(addrs[i], keep);
      if (keep && rec_n > 0 && addrs[rec_first] + rec_n * kPage == addrs[i]) {
        ++rec_n;
      } else {
        CR_TRY(emit());
        if (keep) {
          rec_first = i;
          rec_n = 1;
        }
      }
    }
    CR_TRY(emit());
    iov.clear();
    addrs.clear();
    return {};
  };
  for (auto [s, e] : runs) {
    for (uint64_t a = s; a < e; a += kPage) {
      if (addrs.size() == kBufPages) CR_TRY(flush());
      if (!iov.empty() && reinterpret_cast<uint64_t>(iov.back().iov_base) + iov.back().iov_len == a) {
        iov.back().iov_len += kPage;
      } else {
        if (iov.size() == kMaxIov) CR_TRY(flush());
        iov.push_back(iovec{reinterpret_cast<void*>(a), kPage});
      }
      addrs.push_back(a);
    }
  }
  return flush();
}

Result<PrecopyRound> PreCopy::round() {
  auto t0 = std::chrono::steady_clock::now();
  PrecopyRound r;
  r.round = rounds_;
  for (Proc& p : procs_) {
    if (!p.uffd.valid()) continue;
    test_kill_point("precopy");
    std::vector<Run> runs;
    bool gone = false;
    for (const Range& g : p.ranges) {
      // The first round takes every present page (all were protected at the start); later
      // ones those written since.
      auto found = sys::pagemap_scan(p.pagemap.get(), g.start, g.end, rounds_ == 0 ? 0 : sys::kPageIsWritten,
                        sys::kPageIsPfnZero);
      if (!found.ok()) {  // its mm is gone (exit, exec): nothing of it is tracked any more
        gone = true;
        break;
      }
      runs.insert(runs.end(), found->begin(), found->end());
    }
    if (gone) {
      p.end_tracking();
      continue;
    }
    std::vector<Run> protected_runs;
    for (auto [s, e] : runs) {
      r.dirty_bytes += e - s;
      if (rounds_ == 0) {
        protected_runs.emplace_back(s, e);
        continue;
      }
      // Protected again before they are read: a write after this shows in the next round.
      uffdio_writeprotect wp{};
      wp.range = {s, e - s};
      wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
      if (::ioctl(p.uffd.get(), UFFDIO_WRITEPROTECT, &wp) == 0) {
        protected_runs.emplace_back(s, e);
      } else {  // unmapped meanwhile: not sent, and not to be trusted later
        for (uint64_t a = s; a < e; a += kPage)
          if (Range* g = p.range_of(a)) g->mark(a, false);
      }
    }
    test_kill_point("precopy");  // protected again, not read yet
    CR_TRY(copy_runs(p, protected_runs, r));
  }
  ++rounds_;
  sent_bytes_ += r.sent_bytes;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

Status PreCopy::run(const PrecopyPolicy& policy,
                    const std::function<void(const PrecopyRound&)>& on_round,
                    const std::function<Status()>& before) {
  uint64_t last = UINT64_MAX;
  for (unsigned i = 0; i < std::max(1u, policy.max_rounds); ++i) {
    if (before) CR_TRY(before());
    CR_TRY_ASSIGN(PrecopyRound r, round());
    if (on_round) on_round(r);
    if (i > 0 && (r.dirty_bytes <= policy.dirty_bytes || r.dirty_bytes >= last)) break;
    last = r.dirty_bytes;
  }
  return {};
}

Result<std::vector<PageSpan>> PreCopy::settle(DumpContext& ctx) {
  std::vector<PageSpan> spans;
  Proc* p = nullptr;
  for (Proc& q : procs_)
    if (q.pid == ctx.pid && !q.settled) p = &q;
  if (p == nullptr) return spans;
  p->settled = true;
  if (!p->uffd.valid()) return spans;
  for (const Range& g : p->ranges) {
    // Present, still protected (not written since its newest copy), not the zero page.
    auto found = sys::pagemap_scan(p->pagemap.get(), g.start, g.end, 0,
                      sys::kPageIsWritten | sys::kPageIsPfnZero);
    if (!found.ok()) {  // not the mm that was pre-copied (exec, a reused pid): nothing holds
      spans.clear();
      break;
    }
    for (auto [s, e] : *found) g.sent_runs(s, e, spans);
  }
  test_kill_point("precopy");  // settled, still tracked
  p->end_tracking();
  return spans;
}

}  // namespace cr::dump
