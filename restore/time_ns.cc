#include "restore/time_ns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080  // Linux 5.6
#endif

namespace cr::restore {

Result<ScopedFd> make_time_ns_for_children(const schema::TimeNs& t) {
  if (::syscall(SYS_gettid) != ::getpid())
    return make_error("time namespace: made from a thread other than crrestore's main one");
  ScopedFd own(::open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC));
  if (!own.valid()) return errno_error("open /proc/self/ns/time");
  if (::unshare(CLONE_NEWTIME) != 0) return errno_error("unshare(CLONE_NEWTIME)");
  // One write, both clocks: "<clock> <seconds> <nanoseconds>" per line.
  const std::string text =
      "monotonic " + std::to_string(t.monotonic_sec) + " " + std::to_string(t.monotonic_nsec) +
      "\nboottime " + std::to_string(t.boottime_sec) + " " + std::to_string(t.boottime_nsec) + "\n";
  ScopedFd fd(::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open /proc/self/timens_offsets");
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return errno_error("time namespace: write its offsets to /proc/self/timens_offsets");
  return own;
}

Status leave_time_ns_for_children(const ScopedFd& own) {
  if (::setns(own.get(), CLONE_NEWTIME) != 0)
    return errno_error("setns back into crrestore's own time namespace");
  return {};
}

}  // namespace cr::restore
