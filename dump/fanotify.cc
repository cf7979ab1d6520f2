// A fanotify group: its fanotify_init flags and event_f_flags (the "fanotify flags:" line of
// its fdinfo) and one FanotifyMark per mark line. Inode marks are found again like inotify
// watches (by file handle on their filesystem; crdump opens each now to know restore can and
// takes its path); a mount mark is the mount of that id in crdump's mount namespace, kept as
// mount point, device and root; a filesystem mark is its device. Refused: events queued (a new
// group starts empty), permission classes (a process waiting on an answer would hang or be
// let through unanswered), permission events in a mask, marks on deleted inodes, a mount crdump
// cannot see, mark types and flags this build does not know.
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "dump/passes.h"
#include "sys/mounts.h"

namespace cr::dump {

namespace {

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

// The path an O_PATH fd is at, " (deleted)" taken off.
Result<std::string> path_of(int fd, const std::string& what) {
  char path[4096];
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(self.c_str(), path, sizeof path - 1);
  if (n < 0) return errno_error(what + ": readlink");
  std::string p(path, static_cast<size_t>(n));
  if (constexpr std::string_view kDeleted = " (deleted)"; p.ends_with(kDeleted))
    p.resize(p.size() - kDeleted.size());
  return p;
}

Status inode_mark(const FanotifyMark& m, schema::FanotifyMark& rec, const std::string& what) {
  if (m.handle.empty())
    return make_error(what + " (inode " + std::to_string(m.ino) +
                      "): its filesystem gives no file handle, restore could not find the "
                      "inode again: not supported");
  const dev_t dev = sys::user_dev(m.sdev);
  CR_TRY_ASSIGN(ScopedFd mnt, sys::open_mount_of(dev, "crdump's"));
  ScopedFd file(sys::open_by_handle(mnt.get(), m.handle_type, m.handle));
  if (!file.valid())
    return errno_error(what + " (inode " + std::to_string(m.ino) +
                       "): open_by_handle_at (a deleted file?): not supported");
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return errno_error(what + ": fstat");
  if (st.st_ino != m.ino || st.st_dev != dev)
    return make_error(what + ": its file handle opens inode " + std::to_string(st.st_ino) +
                      ", not " + std::to_string(m.ino));
  CR_TRY_ASSIGN(std::string p, path_of(file.get(), what));
  if (st.st_nlink == 0)
    return make_error(what + " on deleted file " + p +
                      " not supported (its inode cannot be found again)");
  // Restore marks it through /proc/self/fd/N, which a symlink would not be.
  if (S_ISLNK(st.st_mode))
    return make_error(what + " on symlink " + p + " (FAN_MARK_DONT_FOLLOW) not supported");
  rec.type = schema::kFanMarkInode;
  rec.ino = m.ino;
  rec.dev = dev;
  rec.handle_type = static_cast<uint32_t>(m.handle_type);
  rec.handle = m.handle;
  rec.path = std::move(p);
  return {};
}

Status mount_mark(const FanotifyMark& m, schema::FanotifyMark& rec, const std::string& what) {
  auto line = sys::find_mount(m.mnt_id, "crdump's");
  if (!line)
    return make_error(what + " on mount " + std::to_string(m.mnt_id) +
                      ": the mount cannot be found again (" + line.error().message +
                      "): not supported");
  const dev_t dev = makedev(line->major, line->minor);
  // Restore finds it by these: they must lead to this mount now.
  if (auto fd = sys::open_mount_at(line->mount_point, dev, line->root, "crdump's"); !fd)
    return make_error(what + " on mount " + std::to_string(m.mnt_id) + ": " + fd.error().message +
                      ": not supported");
  rec.type = schema::kFanMarkMount;
  rec.dev = dev;
  rec.path = line->mount_point;
  rec.root = line->root;
  return {};
}

Status filesystem_mark(const FanotifyMark& m, schema::FanotifyMark& rec, const std::string& what) {
  const dev_t dev = sys::user_dev(m.sdev);
  auto mnt = sys::open_mount_of(dev, "crdump's");
  if (!mnt)
    return make_error(what + " on filesystem " + std::to_string(major(dev)) + ":" +
                      std::to_string(minor(dev)) + ": " + mnt.error().message + ": not supported");
  rec.type = schema::kFanMarkFilesystem;
  rec.dev = dev;
  CR_TRY_ASSIGN(rec.path, path_of(mnt->get(), what));
  return {};
}

}  // namespace

Result<FanotifyState> read_fanotify(DumpContext& proc, int fd, const Fdinfo& info,
                                    const std::string& where) {
  CR_TRY_ASSIGN(ScopedFd copy, copy_task_fd(proc, fd));
  int queued = 0;
  if (::ioctl(copy.get(), FIONREAD, &queued) != 0) return errno_error(where + ": FIONREAD");
  if (queued > 0)
    return make_error(where + " with events queued (" + std::to_string(queued) +
                      " bytes not read) not supported");
  if ((info.fanotify_flags & (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT)) != 0)
    return make_error(where + ": a permission class group (flags " + hex(info.fanotify_flags) +
                      ") not supported: a process waiting on its answer could hang or be let "
                      "through");
  if ((info.fanotify_flags & ~schema::kFanotifyInitBits) != 0)
    return make_error(where + ": fanotify_init flags " + hex(info.fanotify_flags) +
                      " not supported");
  FanotifyState out;
  out.group.flags = info.fanotify_flags;
  out.group.event_flags = info.fanotify_event_flags;
  for (const FanotifyMark& m : info.fanotify_marks) {
    const std::string what = where + " mark";
    if (m.type == FanotifyMark::kUnknown)
      return make_error(what + " \"" + m.line + "\": this kind of mark not supported");
    if ((m.mflags & ~schema::kFanotifyMarkFlagBits) != 0)
      return make_error(what + " \"" + m.line + "\": mark flags " + hex(m.mflags) +
                        " not supported");
    // The kernel rejects these masks in a notification group; fdinfo could not show them.
    if (((m.mask | m.ignored_mask) & ~schema::kFanotifyMaskBits) != 0)
      return make_error(what + " \"" + m.line + "\": permission or unknown events in its masks " +
                        "not supported");
    schema::FanotifyMark rec;
    rec.mflags = m.mflags;
    rec.mask = m.mask;
    rec.ignored_mask = m.ignored_mask;
    switch (m.type) {
      case FanotifyMark::kInode:
        CR_TRY(inode_mark(m, rec, what));
        break;
      case FanotifyMark::kMount:
        CR_TRY(mount_mark(m, rec, what));
        break;
      case FanotifyMark::kFilesystem:
        CR_TRY(filesystem_mark(m, rec, what));
        break;
      case FanotifyMark::kUnknown:
        break;
    }
    out.marks.push_back(std::move(rec));
  }
  return out;
}

}  // namespace cr::dump
