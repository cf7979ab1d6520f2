// The userfaultfd is made in the task (it belongs to the mm that creates it) and taken over with
// pidfd_getfd; crrestore's ioctls then work on that mm, reading the pages from its own buffer.
// The task's copy is closed at once, so ours is the last reference: closing it unregisters.
#include "restore/uffd_pages.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/text.h"
#include "restore/lazy_pager.h"

namespace cr::restore {

namespace {

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

// Transparent huge pages for every mapping ("always"), or only those that ask ("madvise").
bool thp_always() {
  static const bool always = [] {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string s;
    std::getline(f, s);
    return s.find("[always]") != std::string::npos;
  }();
  return always;
}

// A mapping that would have had huge pages keeps write_mem, whose faults make them.
bool eligible(const schema::Vma& v) {
  if (v.kind != schema::kVmaAnon && v.kind != schema::kVmaHeap && v.kind != schema::kVmaStack)
    return false;
  if ((v.madv & schema::kMadvHugepage) != 0) return false;
  return !thp_always() || (v.madv & schema::kMadvNoHugepage) != 0;
}

// Runs queued or being copied, at most: with 1 MiB Pages records the reader is at most a few
// records ahead, and holds a few windows (more would outgrow its spare windows and take fresh
// memory).
constexpr size_t kMaxQueued = 4;
// Copier threads that read records from the image file: one per core of this machine's two.
constexpr size_t kCopiers = 2;

// UFFDIO_COPY of `len` bytes; a page already there (EEXIST: the task's own stack under the
// injected calls) is written over with process_vm_writev.
Status copy_pages(int fd, pid_t pid, const sys::Tracee& tracee, uint64_t addr,
                  const uint8_t* data, uint64_t len) {
  while (len > 0) {
    uffdio_copy c{};
    c.dst = addr;
    c.src = reinterpret_cast<uint64_t>(data);
    c.len = len;
    if (::ioctl(fd, UFFDIO_COPY, &c) == 0) return {};
    const int err = errno;
    const uint64_t done = c.copy > 0 ? static_cast<uint64_t>(c.copy) : 0;
    addr += done;
    data += done;
    len -= done;
    if (err == EAGAIN || err == EINTR) continue;
    if (err == EEXIST) {
      // A page already there (the task's own stack under the injected calls): written over.
      CR_TRY(tracee.write_mem(addr, data, 4096));
      addr += 4096;
      data += 4096;
      len -= 4096;
      continue;
    }
    return make_error("UFFDIO_COPY into pid " + std::to_string(pid) + " at " + hex(addr) +
                      ": " + std::strerror(err));
  }
  return {};
}

}  // namespace

// The copier threads: UFFDIO_COPY of held runs, and of runs whose record is still in the image
// file (each thread reads such a record into a buffer of its own, checks it and copies from
// there, while the buffer is hot in its core's cache: two threads so on 2 cores placed 1 GiB in
// 236 ms against 273 for one copier beside a reading thread, which is faster than one
// UFFDIO_COPY alone). They only make ioctls, preads and process_vm_writev calls
// (Tracee::write_mem), never ptrace (which only the tracer thread may do), and they end before
// load_pages returns: crrestore forks its children later, and a fork while another thread may
// hold the allocator's lock would leave the child stuck.
struct UffdPages::Copier {
  struct Job {
    uint64_t addr;
    const uint8_t* data;  // null: the bytes are `file`'s
    uint64_t len;
    std::shared_ptr<const void> hold;
    format::DeferredTail file;
  };
  std::mutex mu;
  std::condition_variable cv;  // a job queued, a job done, or stop
  std::deque<Job> jobs;
  size_t busy = 0;  // jobs being copied: with those waiting, at most kMaxQueued hold bytes
  bool stop = false;   // finish (drain first) or destruction (drop the rest)
  bool drop = false;
  std::optional<Error> failed;
  std::vector<std::thread> threads;

  static Status copy_job(int fd, pid_t pid, const sys::Tracee& tracee, const Job& j,
                         std::vector<uint8_t>& scratch) {
    if (j.data != nullptr) return copy_pages(fd, pid, tracee, j.addr, j.data, j.len);
    scratch.resize(j.file.len);
    CR_TRY(format::read_deferred_tail(j.file, scratch.data()));
    return copy_pages(fd, pid, tracee, j.addr, scratch.data(), j.len);
  }

  void run(int fd, pid_t pid, const sys::Tracee& tracee) {
    std::vector<uint8_t> scratch;
    std::unique_lock lk(mu);
    for (;;) {
      cv.wait(lk, [&] { return !jobs.empty() || stop || failed; });
      if (jobs.empty() || drop || failed) break;
      Job j = std::move(jobs.front());
      jobs.pop_front();
      ++busy;
      lk.unlock();
      Status st = copy_job(fd, pid, tracee, j, scratch);
      j.hold.reset();
      lk.lock();
      --busy;
      if (!st.ok() && !failed)
        failed = std::move(st).error().wrap("pages of pid " + std::to_string(pid) + " at " +
                                            hex(j.addr));
      cv.notify_all();
    }
    cv.notify_all();
  }
  // Stops the threads; `drain`: after the queued jobs. The first failure, if any.
  Status end(bool drain) {
    {
      std::lock_guard lk(mu);
      stop = true;
      drop = !drain;
    }
    cv.notify_all();
    for (auto& t : threads)
      if (t.joinable()) t.join();
    jobs.clear();
    if (failed) return std::move(*failed);
    return {};
  }
};

UffdPages::UffdPages() = default;
UffdPages::UffdPages(UffdPages&&) noexcept = default;
UffdPages& UffdPages::operator=(UffdPages&&) noexcept = default;
UffdPages::~UffdPages() {
  if (copier_) (void)copier_->end(false);
}

Status UffdPages::finish() {
  Status st;
  if (copier_) st = copier_->end(true);
  copier_.reset();
  if (st.ok() && lazy_ != nullptr) st = lazy_->seal(pid_, *tracee_);
  fd_.reset();
  return st;
}

UffdPages UffdPages::start(RestoreContext& ctx) {
  UffdPages u;
  // Pages of the parent are copied in with write_mem while this runs: not with those.
  if ((ctx.img.process->flags & schema::kProcessParentPages) != 0 || ctx.preloaded) return u;
  // CR_RESTORE_UFFD=0: every page through write_mem (benchmarks compare the two).
  if (const char* e = std::getenv("CR_RESTORE_UFFD"); e != nullptr && std::string(e) == "0")
    return u;
  bool any = false;
  for (const auto& v : ctx.img.vmas) any = any || eligible(v);
  if (!any) return u;
  // --lazy: kernel faults too (a read(2) into a missing page waits like the program's own
  // access), which a task without CAP_SYS_PTRACE may not ask for: its pages go in now.
  bool lazy = ctx.lazy != nullptr;
  auto remote = ctx.call("userfaultfd", SYS_userfaultfd,
                         O_CLOEXEC | O_NONBLOCK | (lazy ? 0 : UFFD_USER_MODE_ONLY));
  if (!remote.ok() && lazy) {
    ctx.warn("--lazy: pid " + std::to_string(ctx.pid()) + " may not have a userfaultfd for "
             "kernel faults (" + remote.error().message + "): its memory is placed at once");
    lazy = false;
    remote = ctx.call("userfaultfd", SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  }
  if (!remote.ok()) return u;
  ScopedFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, ctx.pid(), 0)));
  ScopedFd fd(pidfd.valid() ? static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(),
                                                         static_cast<int>(*remote), 0))
                            : -1);
  auto closed = ctx.call("close", SYS_close, *remote);
  if (!fd.valid() || !closed.ok()) return u;
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = lazy ? LazyPager::kFeatures : 0;
  if (::ioctl(fd.get(), UFFDIO_API, &api) != 0) {
    if (lazy)
      ctx.warn("--lazy: pid " + std::to_string(ctx.pid()) + ": the userfaultfd events a lazy "
               "restore follows are not available (" + std::strerror(errno) +
               "): its memory is placed at once");
    return u;
  }
  for (const auto& v : ctx.img.vmas) {
    if (!eligible(v)) continue;
    uffdio_register reg{};
    reg.range.start = v.start;
    reg.range.len = v.end - v.start;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    // A mapping it refuses stays with write_mem.
    if (::ioctl(fd.get(), UFFDIO_REGISTER, &reg) == 0) u.ranges_.emplace_back(v.start, v.end);
  }
  if (u.ranges_.empty()) return u;
  if (lazy) {
    ScopedFd copy(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
    if (!copy.valid()) return u;
    if (Status st = ctx.lazy->add_mm(ctx.pid(), std::move(copy)); !st.ok()) {
      ctx.warn("--lazy: pid " + std::to_string(ctx.pid()) + ": " + st.error().message +
               ": its memory is placed at once");
      return u;
    }
    u.lazy_ = ctx.lazy;
    u.pid_ = ctx.pid();
    u.tracee_ = &ctx.tracee;
  }
  u.fd_ = std::move(fd);
  return u;
}

Status UffdPages::place(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len,
                        std::shared_ptr<const void> hold, bool from_store) {
  const uint64_t end = addr + len;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), std::make_pair(addr, UINT64_MAX));
  if (it != ranges_.begin()) --it;
  while (addr < end) {
    while (it != ranges_.end() && it->second <= addr) ++it;
    if (it == ranges_.end() || it->first >= end) {
      return ctx.tracee.write_mem(addr, data, end - addr);
    }
    if (it->first > addr) {  // the part before the next registered range
      const uint64_t n = it->first - addr;
      CR_TRY(ctx.tracee.write_mem(addr, data, n));
      addr += n;
      data += n;
    }
    const uint64_t n = std::min(end, it->second) - addr;
    // Lazy: noted for the pager while the bytes stay where they are (a held window, the
    // store); placed now without a hold or over the bound.
    if (lazy_ != nullptr && hold && lazy_->add(ctx.pid(), addr, data, n, hold, !from_store)) {
      // noted
    } else if (hold && lazy_ == nullptr) {
      CR_TRY(queue(ctx, addr, data, n, hold));
    } else {
      CR_TRY(copy_pages(fd_.get(), ctx.pid(), ctx.tracee, addr, data, n));
    }
    addr += n;
    data += n;
  }
  return {};
}

bool UffdPages::in_one_range(uint64_t addr, uint64_t len) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), std::make_pair(addr, UINT64_MAX));
  if (it == ranges_.begin()) return false;
  --it;
  return addr >= it->first && addr + len <= it->second;
}

Result<bool> UffdPages::place_from_file(RestoreContext& ctx, uint64_t addr,
                                        const format::DeferredTail& tail) {
  if (!active() || !in_one_range(addr, tail.len)) return false;
  if (lazy_ != nullptr) return lazy_->add_file(pid_, addr, tail);
  CR_TRY(queue(ctx, addr, nullptr, tail.len, nullptr, &tail));
  return true;
}

Status UffdPages::queue(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len,
                        const std::shared_ptr<const void>& hold,
                        const format::DeferredTail* file) {
  Copier::Job job{addr, data, len, hold, file != nullptr ? *file : format::DeferredTail{}};
  // Runs from the reader's window: one copier (the main thread reads, decompresses and checks
  // on the other core; a second copier only competed with it: 553 against 516 ms for 1 GiB
  // through a pipe). Records read by the copiers themselves: two.
  if (!copier_) copier_ = std::make_unique<Copier>();
  const size_t want = file != nullptr ? kCopiers : 1;
  while (copier_->threads.size() < want)
    copier_->threads.emplace_back([c = copier_.get(), fd = fd_.get(), pid = ctx.pid(),
                                   t = &ctx.tracee] { c->run(fd, pid, *t); });
  Copier& c = *copier_;
  std::unique_lock lk(c.mu);
  c.cv.wait(lk, [&] { return c.jobs.size() + c.busy < kMaxQueued || c.failed.has_value(); });
  if (c.failed) {
    Error e = std::move(*c.failed);
    c.failed.reset();
    c.stop = c.drop = true;
    c.cv.notify_all();
    return e;
  }
  c.jobs.push_back(std::move(job));
  c.cv.notify_all();
  return {};
}

}  // namespace cr::restore
