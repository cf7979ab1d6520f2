#include "restore/inotify.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "sys/mounts.h"

namespace cr::restore {

namespace {

// fds on a mount of each filesystem the watches are on, by device.
class Mounts {
 public:
  Result<int> of(dev_t dev) {
    if (auto it = fds_.find(dev); it != fds_.end()) return it->second.get();
    CR_TRY_ASSIGN(ScopedFd fd, sys::open_mount_of(dev, "crrestore's"));
    const int got = fd.get();
    fds_.emplace(dev, std::move(fd));
    return got;
  }

 private:
  std::map<dev_t, ScopedFd> fds_;
};

// The watched inode, held by an O_PATH fd, checked to be the dumped one.
Result<ScopedFd> find_inode(const schema::InotifyWatch& w, const FsIdentity* as, Mounts& mounts,
                            const std::string& what) {
  ScopedFd file;
  if (as == nullptr) {
    CR_TRY_ASSIGN(int mnt, mounts.of(static_cast<dev_t>(w.dev)));
    file.reset(sys::open_by_handle(mnt, static_cast<int>(w.handle_type), w.handle));
    if (!file.valid()) return errno_error(what + ": open_by_handle_at");
  } else {
    CR_TRY_ASSIGN(FsCredsScope creds, FsCredsScope::enter(*as));
    file.reset(::open(w.path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!file.valid()) return errno_error(what + ": open as uid " + std::to_string(as->fsuid));
  }
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return errno_error(what + ": fstat");
  if (st.st_ino != w.ino || st.st_dev != static_cast<dev_t>(w.dev))
    return make_error(what + ": inode " + std::to_string(st.st_ino) + " there now, not the " +
                      "watched " + std::to_string(w.ino));
  return file;
}

// Reads off every event queued (the fd is non-blocking).
Status drain(int fd) {
  alignas(inotify_event) char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return {};
    return errno_error("inotify: read the events of the watches removed");
  }
}

}  // namespace

Result<int> open_inotify(const schema::File& f,
                         const std::vector<const schema::InotifyWatch*>& watches,
                         const FsIdentity* as) {
  ScopedFd in(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!in.valid()) return errno_error("inotify_init1");
  std::vector<const schema::InotifyWatch*> sorted = watches;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->wd < b->wd; });
  Mounts mounts;
  const std::string who = as == nullptr ? "" : " as uid " + std::to_string(as->fsuid);
  for (const schema::InotifyWatch* w : sorted) {
    const std::string what = "inotify watch wd " + std::to_string(w->wd) + " on " + w->path;
    CR_TRY_ASSIGN(ScopedFd file, find_inode(*w, as, mounts, what));
    const std::string via = "/proc/self/fd/" + std::to_string(file.get());
    std::optional<FsCredsScope> creds;
    if (as != nullptr) {
      CR_TRY_ASSIGN(FsCredsScope s, FsCredsScope::enter(*as));
      creds.emplace(std::move(s));
    }
    for (;;) {
      const int wd = ::inotify_add_watch(in.get(), via.c_str(), w->mask);
      if (wd < 0) return errno_error(what + ": inotify_add_watch" + who);
      if (static_cast<uint32_t>(wd) == w->wd) break;
      // Ascending order on a new inotify: the kernel can only be below the wanted number.
      if (static_cast<uint32_t>(wd) > w->wd)
        return make_error(what + ": the kernel gave wd " + std::to_string(wd));
      if (::inotify_rm_watch(in.get(), wd) != 0)
        return errno_error(what + ": inotify_rm_watch " + std::to_string(wd));
    }
  }
  CR_TRY(drain(in.get()));
  if ((f.flags & O_NONBLOCK) == 0 && ::fcntl(in.get(), F_SETFL, 0) != 0)
    return errno_error("inotify: F_SETFL");
  return in.release();
}

}  // namespace cr::restore
