// One thread serves every address space of the tree: the faults and events of each
// userfaultfd in the order the kernel gives them, then (once the tree runs) a step of the
// background copy. Its state is under one mutex, also held across the ioctls: the main
// thread only adds address spaces and pages, and seals them, before the tree runs.
#include "restore/lazy_pager.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/test_hook.h"
#include "common/text.h"
#include "format/crc32c.h"
#include "restore/precopy_store.h"
#include "sys/linux_abi.h"
#include "sys/pagemap_scan.h"

namespace cr::restore {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kFaultChunk = 64 * 1024;   // a fault brings its page and the next ones
constexpr uint64_t kFillChunk = 2 * 1024 * 1024;

// UFFDIO_COPY of [addr, addr + len): the bytes placed, and the errno that stopped it (0: all).
std::pair<uint64_t, int> copy(int fd, uint64_t addr, const uint8_t* data, uint64_t len) {
  uint64_t done = 0;
  while (done < len) {
    uffdio_copy c{};
    c.dst = addr + done;
    c.src = reinterpret_cast<uint64_t>(data + done);
    c.len = len - done;
    if (::ioctl(fd, UFFDIO_COPY, &c) == 0) return {len, 0};
    const int err = errno;
    if (c.copy > 0) {  // a part went in (the kernel says EAGAIN then): on from there
      done += static_cast<uint64_t>(c.copy);
      continue;
    }
    if (err == EINTR) continue;
    return {done, c.copy < 0 ? static_cast<int>(-c.copy) : err};
  }
  return {done, 0};
}

int zeropage(int fd, uint64_t addr) {
  uffdio_zeropage z{};
  z.range.start = addr;
  z.range.len = kPage;
  if (::ioctl(fd, UFFDIO_ZEROPAGE, &z) == 0) return 0;
  return z.zeropage < 0 ? static_cast<int>(-z.zeropage) : errno;
}

void wake(int fd, uint64_t addr) {
  uffdio_range r{addr, kPage};
  (void)::ioctl(fd, UFFDIO_WAKE, &r);
}

}  // namespace

const uint64_t LazyPager::kFeatures = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
                                      UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;

struct LazyPager::Mm {
  pid_t pid = 0;  // 0: a child forked while the pages came in
  ScopedFd fd;
  bool sealed = false;
  bool dead = false;  // its address space is gone (exit, exec): dropped at the loop's end
  LazyRanges ranges;
  std::vector<uint64_t> retry;  // faults to answer once the address space stops changing
};

Result<std::unique_ptr<LazyPager>> LazyPager::create() {
  std::unique_ptr<LazyPager> p(new LazyPager());
  CR_TRY_ASSIGN(p->guard_, LazyGuard::start());
  p->wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!p->wake_.valid()) return errno_error("lazy restore: eventfd");
  p->held_limit_ = half_of_memory();
  return p;
}

LazyPager::~LazyPager() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  wake_thread();
  if (thread_.joinable()) thread_.join();
  mms_.clear();
}

void LazyPager::wake_thread() {
  const uint64_t one = 1;
  if (wake_.valid()) (void)!::write(wake_.get(), &one, sizeof one);
}

LazyPager::Mm* LazyPager::find(pid_t pid) {
  for (auto& m : mms_)
    if (m->pid == pid && !m->dead) return m.get();
  return nullptr;
}

Status LazyPager::add_mm(pid_t pid, ScopedFd uffd) {
  std::lock_guard lk(mu_);  // the thread sends the guard a forked child's userfaultfd too
  CR_TRY(guard_.hold(uffd.get()));
  auto m = std::make_unique<Mm>();
  m->pid = pid;
  m->fd = std::move(uffd);
  mms_.push_back(std::move(m));
  // Started with the first address space: crrestore forks no more processes after that.
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  return {};
}

bool LazyPager::add(pid_t pid, uint64_t addr, const uint8_t* data, uint64_t len,
                    std::shared_ptr<const void> hold, bool counted) {
  std::lock_guard lk(mu_);
  Mm* m = find(pid);
  if (m == nullptr) return false;
  if (counted) {
    if (held_bytes_ + len > held_limit_) return false;
    held_bytes_ += len;
  }
  m->ranges.add(addr, data, len, std::move(hold));
  return true;
}

bool LazyPager::add_file(pid_t pid, uint64_t addr, const format::DeferredTail& tail) {
  std::lock_guard lk(mu_);
  Mm* m = find(pid);
  if (m == nullptr || tail.len == 0) return false;
  if (!file_.valid()) {
    file_.reset(::fcntl(tail.fd, F_DUPFD_CLOEXEC, 0));
    if (!file_.valid()) return false;
  }
  // In stream order, so by offset.
  if (!records_.empty() && records_.back().offset >= tail.offset) return false;
  records_.push_back(tail);
  records_.back().fd = file_.get();
  m->ranges.add(addr, reinterpret_cast<const uint8_t*>(tail.offset), tail.len, nullptr, true);
  return true;
}

void LazyPager::fail(Error e) {
  if (failed_) return;
  failed_ = std::move(e);
  // The tree must not run on: a process waiting on a page that will not come would wait
  // forever (crrestore's own injected calls among them, before the tree runs).
  for (const auto& m : mms_)
    if (m->pid > 0) (void)::kill(m->pid, SIGKILL);
  cv_.notify_all();
}

const uint8_t* LazyPager::bytes_of(const LazyRanges::Span& s) {
  if (!s.in_file) return s.data;
  const uint64_t off = reinterpret_cast<uint64_t>(s.data);
  auto it = std::upper_bound(records_.begin(), records_.end(), off,
                             [](uint64_t o, const format::DeferredTail& r) { return o < r.offset; });
  if (it == records_.begin() || off + s.len > (it - 1)->offset + (it - 1)->len) {
    fail(make_error("lazy restore: no pages record holds file offset " + std::to_string(off)));
    return nullptr;
  }
  --it;
  const size_t idx = static_cast<size_t>(it - records_.begin());
  if (loaded_ != idx) {
    loaded_ = SIZE_MAX;
    scratch_.resize(it->len);
    Status st = format::read_deferred_tail(*it, scratch_.data());
    stats_.file_bytes += it->len;
    if (!st.ok()) {
      Error e = std::move(st).error().wrap("lazy restore");
      e.message += " (the tree is killed)";
      fail(std::move(e));
      return nullptr;
    }
    loaded_ = idx;
  }
  return scratch_.data() + (off - it->offset);
}

std::pair<uint64_t, int> LazyPager::place(Mm& mm, const LazyRanges::Span& s) {
  const uint8_t* data = bytes_of(s);
  if (data == nullptr) return {0, EIO};
  return copy(mm.fd.get(), s.addr, data, s.len);
}

Status LazyPager::seal(pid_t pid, const sys::Tracee& tracee) {
  std::lock_guard lk(mu_);
  Mm* m = find(pid);
  if (m == nullptr) return make_error("lazy restore: pid " + std::to_string(pid) + " not known");
  const auto [lo, hi] = m->ranges.bounds();
  if (lo < hi) {
    // Pages the restore itself touched (its stack under the injected calls) are present: no
    // fault will ask for them, so their bytes go in now.
    const std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
    ScopedFd pm(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!pm.valid()) return errno_error("open " + path);
    CR_TRY_ASSIGN(auto present, sys::pagemap_scan(pm.get(), lo, hi, 0, 0));
    for (const auto& [start, end] : present) {
      for (uint64_t a = start; a < end;) {
        auto s = m->ranges.from(a, end);
        if (!s) break;
        const uint8_t* data = bytes_of(*s);
        if (data == nullptr) return *failed_;
        CR_TRY(tracee.write_mem(s->addr, data, s->len));
        stats_.present_bytes += s->len;
        m->ranges.drop(s->addr, s->addr + s->len);
        a = s->addr + s->len;
      }
    }
  }
  m->sealed = true;
  wake_thread();
  return {};
}

void LazyPager::start_background() {
  {
    std::lock_guard lk(mu_);
    if (background_) return;
  }
  // Tests: CR_TEST_LAZY_HOLD=FIFO holds the background copy back until the FIFO's writer
  // closes it, so that the program meets its memory missing (faults are served meanwhile).
  if (const char* hold = std::getenv("CR_TEST_LAZY_HOLD")) {
    ScopedFd f(::open(hold, O_RDONLY | O_CLOEXEC));
    for (char c; f.valid();) {
      const ssize_t n = ::read(f.get(), &c, 1);
      if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
  }
  {
    std::lock_guard lk(mu_);
    if (background_) return;
    background_ = true;
    bg_start_ = std::chrono::steady_clock::now();
  }
  wake_thread();
}

bool LazyPager::missing_anything() const {
  for (const auto& m : mms_)
    if (!m->dead && !m->ranges.empty()) return true;
  return false;
}

Status LazyPager::finish() {
  start_background();
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [this] { return failed_.has_value() || !missing_anything(); });
    stop_ = true;
  }
  wake_thread();
  if (thread_.joinable()) thread_.join();
  if (failed_) return *failed_;  // the guard, not released, kills the tree
  if (bg_start_)
    stats_.fill_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - *bg_start_).count();
  mms_.clear();  // unregisters: nothing is missing any more
  guard_.release();
  return {};
}

LazyPager::Stats LazyPager::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void LazyPager::drop_mm(Mm& mm) {
  mm.dead = true;
  mm.retry.clear();
}

// A fault at `addr`: its page from the image, or the zero page where the image has none.
bool LazyPager::fault(Mm& mm, uint64_t addr) {
  test_kill_point("lazy");
  const uint64_t page = addr & ~(kPage - 1);
  if (auto s = mm.ranges.at(page, kFaultChunk)) {
    auto [n, err] = place(mm, *s);
    if (failed_) return true;
    if (n > 0) {
      mm.ranges.drop(page, page + n);
      stats_.faults++;
      stats_.fault_bytes += n;
      return true;  // its page went in, which woke it
    }
    if (err == EAGAIN) return false;
    if (err == ESRCH) {
      drop_mm(mm);
      return true;
    }
    // EEXIST (there already: kept) or a page no mapping holds any more (ENOENT).
    mm.ranges.drop(page, page + kPage);
    wake(mm.fd.get(), page);
    return true;
  }
  const int err = zeropage(mm.fd.get(), page);
  if (err == 0) {
    stats_.zero_faults++;
    return true;
  }
  if (err == EAGAIN) return false;
  if (err == ESRCH) {
    drop_mm(mm);
    return true;
  }
  wake(mm.fd.get(), page);  // there already (a second thread's fault), or gone
  return true;
}

void LazyPager::event(Mm& mm, const uffd_msg& msg) {
  switch (msg.event) {
    case UFFD_EVENT_FORK: {
      // The child's copy of the address space misses what the parent misses now.
      auto child = std::make_unique<Mm>();
      child->fd.reset(static_cast<int>(msg.arg.fork.ufd));
      child->sealed = true;
      child->ranges = mm.ranges;
      Status held = guard_.hold(child->fd.get());
      if (!held.ok()) fail(std::move(held).error());
      mms_.push_back(std::move(child));
      stats_.forks++;
      break;
    }
    case UFFD_EVENT_REMAP:
      mm.ranges.move(msg.arg.remap.from, msg.arg.remap.to, msg.arg.remap.len);
      stats_.remaps++;
      break;
    case UFFD_EVENT_REMOVE:
      mm.ranges.drop(msg.arg.remove.start, msg.arg.remove.end);
      stats_.removes++;
      break;
    case UFFD_EVENT_UNMAP:
      mm.ranges.drop(msg.arg.remove.start, msg.arg.remove.end);
      stats_.unmaps++;
      break;
    default:
      break;
  }
}

void LazyPager::serve(Mm& mm) {
  uffd_msg msgs[32];
  while (!mm.dead) {
    const ssize_t r = ::read(mm.fd.get(), msgs, sizeof msgs);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // EAGAIN: all read
    for (size_t i = 0; i < static_cast<size_t>(r) / sizeof msgs[0]; ++i) {
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
        if (!fault(mm, msgs[i].arg.pagefault.address)) mm.retry.push_back(msgs[i].arg.pagefault.address);
      } else {
        event(mm, msgs[i]);
      }
    }
  }
  // Faults that met a changing address space, now that its events are read.
  std::vector<uint64_t> again;
  for (uint64_t a : mm.retry)
    if (!mm.dead && !fault(mm, a)) again.push_back(a);
  mm.retry = std::move(again);
}

void LazyPager::background_step() {
  test_kill_point("lazy");
  for (size_t tries = 0; tries < mms_.size(); ++tries) {
    Mm& mm = *mms_[next_bg_++ % mms_.size()];
    if (!mm.sealed || mm.dead || mm.ranges.empty()) continue;
    // Up to kFillChunk bytes, over as many runs as it takes (a pre-copy store's runs can be
    // short), lowest address first.
    for (uint64_t budget = kFillChunk; budget > 0 && !mm.ranges.empty();) {
      auto s = mm.ranges.first(budget);
      auto [n, err] = place(mm, *s);
      if (failed_) return;
      mm.ranges.drop(s->addr, s->addr + n);
      stats_.fill_bytes += n;
      budget -= std::min(budget, std::max<uint64_t>(n, kPage));
      if (err == 0) continue;
      if (err == EAGAIN) return;  // its events first
      if (err == ESRCH) {
        drop_mm(mm);
      } else if (err == EEXIST || err == ENOENT) {
        // There already, or no mapping there any more: nothing of ours goes there.
        mm.ranges.drop(s->addr + n, s->addr + n + kPage);
        continue;
      } else {
        fail(Error{"lazy restore: UFFDIO_COPY at " + hex(s->addr + n) + ": " + std::strerror(err),
                   err});
      }
      return;
    }
    return;
  }
}

void LazyPager::run() {
  std::unique_lock lk(mu_);
  while (!stop_ && !failed_) {
    std::vector<pollfd> pfds = {{wake_.get(), POLLIN, 0}};
    std::vector<Mm*> who = {nullptr};
    bool retry = false, work = false;
    for (auto& m : mms_) {
      if (!m->sealed || m->dead) continue;
      pfds.push_back({m->fd.get(), POLLIN, 0});
      who.push_back(m.get());
      retry = retry || !m->retry.empty();
      work = work || (background_ && !m->ranges.empty());
    }
    lk.unlock();
    const int n = ::poll(pfds.data(), pfds.size(), work ? 0 : retry ? 1 : -1);
    lk.lock();
    if (stop_) break;
    if (n > 0 && (pfds[0].revents & POLLIN) != 0) {
      uint64_t v;
      (void)!::read(wake_.get(), &v, sizeof v);
    }
    for (size_t i = 1; i < pfds.size(); ++i)
      if (pfds[i].revents != 0 || !who[i]->retry.empty()) serve(*who[i]);
    if (work) background_step();
    // Address spaces gone (exit, exec): their userfaultfds close.
    std::erase_if(mms_, [](const auto& m) { return m->dead; });
    if (!missing_anything() || failed_) cv_.notify_all();
  }
  cv_.notify_all();
}

}  // namespace cr::restore
