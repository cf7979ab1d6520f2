// The watches of an inotify: one InotifyWatch per "inotify wd:" line of its fdinfo. The line
// gives the watched inode as a file handle on a filesystem named by its device; crdump opens it
// by that handle now (a mount of that device from mountinfo) to know restore can, and takes its
// path for crit and messages. Events queued and not yet read cannot be queued again: refused.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>

#include "dump/passes.h"
#include "sys/mounts.h"

namespace cr::dump {

namespace {

std::string wd_name(const std::string& where, int wd) {
  return where + " watch wd " + std::to_string(wd);
}

}  // namespace

Result<std::vector<schema::InotifyWatch>> read_inotify_watches(DumpContext& proc, int fd,
                                                               const Fdinfo& info,
                                                               const std::string& where) {
  // Events it holds would be lost (a new instance starts empty) and cannot be put back.
  CR_TRY_ASSIGN(ScopedFd copy, copy_task_fd(proc, fd));
  int queued = 0;
  if (::ioctl(copy.get(), FIONREAD, &queued) != 0) return errno_error(where + ": FIONREAD");
  if (queued > 0)
    return make_error(where + " with events queued (" + std::to_string(queued) +
                      " bytes not read) not supported");
  std::vector<schema::InotifyWatch> out;
  for (const InotifyWatch& w : info.inotify_watches) {
    const std::string what = wd_name(where, w.wd);
    if (static_cast<uint32_t>(w.wd) > schema::kMaxInotifyWd)
      return make_error(what + ": a watch descriptor above " +
                        std::to_string(schema::kMaxInotifyWd) +
                        " not supported (restore makes each number by adding and removing "
                        "watches up to it)");
    if ((w.mask & ~schema::kInotifyMaskBits) != 0 || (w.mask & IN_ALL_EVENTS) == 0)
      return make_error(what + ": mask " + std::to_string(w.mask) + " not supported");
    if (w.ignored_mask != 0)
      return make_error(what + ": ignored_mask " + std::to_string(w.ignored_mask) +
                        " not supported");
    if (w.handle.empty())
      return make_error(what + " (inode " + std::to_string(w.ino) +
                        "): its filesystem gives no file handle, restore could not find the "
                        "inode again: not supported");
    const dev_t dev = sys::user_dev(w.sdev);
    CR_TRY_ASSIGN(ScopedFd mnt, sys::open_mount_of(dev, "crdump's"));
    ScopedFd file(sys::open_by_handle(mnt.get(), w.handle_type, w.handle));
    if (!file.valid())
      return errno_error(what + " (inode " + std::to_string(w.ino) +
                         "): open_by_handle_at (a deleted file?): not supported");
    struct stat st {};
    if (::fstat(file.get(), &st) != 0) return errno_error(what + ": fstat");
    if (st.st_ino != w.ino || st.st_dev != dev)
      return make_error(what + ": its file handle opens inode " + std::to_string(st.st_ino) +
                        ", not " + std::to_string(w.ino));
    char path[4096];
    const std::string self = "/proc/self/fd/" + std::to_string(file.get());
    const ssize_t n = ::readlink(self.c_str(), path, sizeof path - 1);
    if (n < 0) return errno_error(what + ": readlink");
    std::string p(path, static_cast<size_t>(n));
    if (constexpr std::string_view kDeleted = " (deleted)"; p.ends_with(kDeleted))
      p.resize(p.size() - kDeleted.size());
    // Restore adds the watch through /proc/self/fd/N, which a symlink would not be.
    if (S_ISLNK(st.st_mode))
      return make_error(what + " on symlink " + p + " (IN_DONT_FOLLOW) not supported");
    if (st.st_nlink == 0)
      return make_error(what + " on deleted file " + p +
                        " not supported (its inode cannot be found again)");
    schema::InotifyWatch rec;
    rec.wd = static_cast<uint32_t>(w.wd);
    rec.mask = w.mask;
    rec.ino = w.ino;
    rec.dev = dev;
    rec.handle_type = static_cast<uint32_t>(w.handle_type);
    rec.handle = w.handle;
    rec.path = p;
    out.push_back(std::move(rec));
  }
  return out;
}

}  // namespace cr::dump
