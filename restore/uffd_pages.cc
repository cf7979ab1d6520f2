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
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "common/text.h"

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

}  // namespace

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
  auto remote = ctx.call("userfaultfd", SYS_userfaultfd,
                         O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (!remote.ok()) return u;
  ScopedFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, ctx.pid(), 0)));
  ScopedFd fd(pidfd.valid() ? static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(),
                                                         static_cast<int>(*remote), 0))
                            : -1);
  auto closed = ctx.call("close", SYS_close, *remote);
  if (!fd.valid() || !closed.ok()) return u;
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(fd.get(), UFFDIO_API, &api) != 0) return u;
  for (const auto& v : ctx.img.vmas) {
    if (!eligible(v)) continue;
    uffdio_register reg{};
    reg.range.start = v.start;
    reg.range.len = v.end - v.start;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    // A mapping it refuses stays with write_mem.
    if (::ioctl(fd.get(), UFFDIO_REGISTER, &reg) == 0) u.ranges_.emplace_back(v.start, v.end);
  }
  if (!u.ranges_.empty()) u.fd_ = std::move(fd);
  return u;
}

Status UffdPages::place(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len) {
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
    CR_TRY(copy(ctx, addr, data, n));
    addr += n;
    data += n;
  }
  return {};
}

Status UffdPages::copy(RestoreContext& ctx, uint64_t addr, const uint8_t* data, uint64_t len) {
  while (len > 0) {
    uffdio_copy c{};
    c.dst = addr;
    c.src = reinterpret_cast<uint64_t>(data);
    c.len = len;
    if (::ioctl(fd_.get(), UFFDIO_COPY, &c) == 0) return {};
    const int err = errno;
    const uint64_t done = c.copy > 0 ? static_cast<uint64_t>(c.copy) : 0;
    addr += done;
    data += done;
    len -= done;
    if (err == EAGAIN || err == EINTR) continue;
    if (err == EEXIST) {
      // A page already there (the task's own stack under the injected calls): written over.
      CR_TRY(ctx.tracee.write_mem(addr, data, 4096));
      addr += 4096;
      data += 4096;
      len -= 4096;
      continue;
    }
    return make_error("UFFDIO_COPY into pid " + std::to_string(ctx.pid()) + " at " + hex(addr) +
                      ": " + std::strerror(err));
  }
  return {};
}

}  // namespace cr::restore
