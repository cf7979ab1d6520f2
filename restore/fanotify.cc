#include "restore/fanotify.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "sys/mounts.h"

namespace cr::restore {

namespace {

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

// The marked inode, held by an O_PATH fd, checked to be the dumped one.
Result<ScopedFd> find_inode(const schema::FanotifyMark& m, const FsIdentity* as,
                            const std::string& what) {
  ScopedFd file;
  if (as == nullptr) {
    CR_TRY_ASSIGN(ScopedFd mnt, sys::open_mount_of(static_cast<dev_t>(m.dev), "crrestore's"));
    file.reset(sys::open_by_handle(mnt.get(), static_cast<int>(m.handle_type), m.handle));
    if (!file.valid()) return errno_error(what + ": open_by_handle_at");
  } else {
    CR_TRY_ASSIGN(FsCredsScope creds, FsCredsScope::enter(*as));
    file.reset(::open(m.path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!file.valid()) return errno_error(what + ": open as uid " + std::to_string(as->fsuid));
  }
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return errno_error(what + ": fstat");
  if (st.st_ino != m.ino || st.st_dev != static_cast<dev_t>(m.dev))
    return make_error(what + ": inode " + std::to_string(st.st_ino) + " there now, not the " +
                      "marked " + std::to_string(m.ino));
  return file;
}

Result<ScopedFd> find_target(const schema::FanotifyMark& m, const FsIdentity* as,
                             const std::string& what) {
  switch (m.type) {
    case schema::kFanMarkInode:
      return find_inode(m, as, what);
    case schema::kFanMarkMount: {
      auto fd = sys::open_mount_at(m.path, static_cast<dev_t>(m.dev), m.root, "crrestore's");
      if (!fd) return make_error(what + ": " + fd.error().message);
      return fd;
    }
    default:
      return sys::open_mount_of(static_cast<dev_t>(m.dev), "crrestore's");
  }
}

unsigned type_flag(uint32_t type) {
  if (type == schema::kFanMarkMount) return FAN_MARK_MOUNT;
  if (type == schema::kFanMarkFilesystem) return FAN_MARK_FILESYSTEM;
  return FAN_MARK_INODE;
}

}  // namespace

Result<int> open_fanotify(const schema::File& f, const schema::FanotifyGroup& g,
                          const std::vector<const schema::FanotifyMark*>& marks,
                          const FsIdentity* as) {
  const std::string who = as == nullptr ? "" : " as uid " + std::to_string(as->fsuid);
  if (as != nullptr) {
    // What fanotify_init and fanotify_mark let a process without CAP_SYS_ADMIN do.
    if ((g.flags & ~schema::kFanotifyUserInitBits) != 0 ||
        (g.flags & schema::kFanotifyFidBits) == 0)
      return make_error("fanotify group with flags " + hex(g.flags) +
                        ": its user could not make it (only a group reporting file ids, "
                        "without admin flags, is open to users)");
    for (const schema::FanotifyMark* m : marks)
      if (m->type != schema::kFanMarkInode)
        return make_error("fanotify mount or filesystem mark on " + m->path +
                          ": its user could not add it (needs CAP_SYS_ADMIN)");
  }
  ScopedFd fan(::fanotify_init(g.flags, g.event_flags));
  if (!fan.valid())
    return errno_error("fanotify_init flags " + hex(g.flags) + " event flags " +
                       hex(g.event_flags));
  // FAN_CLOEXEC is kept as dumped (fdinfo shows it); crrestore's own copy is close-on-exec.
  if (::fcntl(fan.get(), F_SETFD, FD_CLOEXEC) != 0) return errno_error("fanotify: F_SETFD");
  for (auto it = marks.rbegin(); it != marks.rend(); ++it) {
    const schema::FanotifyMark& m = **it;
    const std::string what = "fanotify mark on " + m.path;
    CR_TRY_ASSIGN(ScopedFd target, find_target(m, as, what));
    const std::string via = "/proc/self/fd/" + std::to_string(target.get());
    std::optional<FsCredsScope> creds;
    if (as != nullptr) {
      CR_TRY_ASSIGN(FsCredsScope s, FsCredsScope::enter(*as));
      creds.emplace(std::move(s));
    }
    const unsigned base = FAN_MARK_ADD | type_flag(m.type) | (m.mflags & FAN_MARK_EVICTABLE);
    if (m.mask != 0 && ::fanotify_mark(fan.get(), base, m.mask, AT_FDCWD, via.c_str()) != 0)
      return errno_error(what + ": fanotify_mark mask " + hex(m.mask) + who);
    if (m.ignored_mask != 0 || (m.mflags & FAN_MARK_IGNORED_SURV_MODIFY) != 0) {
      const unsigned ignore =
          (m.mflags & FAN_MARK_IGNORE) != 0 ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
      const unsigned flags = base | ignore | (m.mflags & FAN_MARK_IGNORED_SURV_MODIFY);
      if (::fanotify_mark(fan.get(), flags, m.ignored_mask, AT_FDCWD, via.c_str()) != 0)
        return errno_error(what + ": fanotify_mark ignored mask " + hex(m.ignored_mask) + who);
    }
  }
  const int fl = ::fcntl(fan.get(), F_GETFL);
  if (fl < 0) return errno_error("fanotify: F_GETFL");
  const int want = (fl & ~O_NONBLOCK) | (static_cast<int>(f.flags) & O_NONBLOCK);
  if (want != fl && ::fcntl(fan.get(), F_SETFL, want) != 0) return errno_error("fanotify: F_SETFL");
  return fan.release();
}

}  // namespace cr::restore
