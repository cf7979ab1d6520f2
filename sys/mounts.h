// Mounts of crtools' own mount namespace, for what is found by file handle (inotify watches,
// fanotify marks) or is a mount itself (fanotify mount marks).
#pragma once

#include <sys/sysmacros.h>
#include <sys/types.h>

#include <cstdint>
#include <span>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "sys/proc_parse.h"

namespace cr::sys {

/// The kernel's s_dev as fdinfo and sock_diag print it (major << 20 | minor) as user space's
/// dev_t (what stat() gives).
inline dev_t user_dev(uint64_t kdev) {
  return makedev(static_cast<unsigned>(kdev >> 20), static_cast<unsigned>(kdev & 0xfffff));
}

/// A directory fd on a mount of the filesystem of device `dev`, one whose root is the
/// filesystem's root if there is one (a handle resolves below any mount with
/// CAP_DAC_READ_SEARCH, but the path read back is then the whole one). `who` names the caller's
/// mount namespace in the error ("crdump's").
Result<ScopedFd> open_mount_of(dev_t dev, const char* who);

/// The line of mount `id` (mountinfo's first field) in crtools' own mount namespace; an error
/// naming `who` when it is not there.
Result<MountLine> find_mount(uint32_t id, const char* who);

/// An O_PATH fd on the mount at `mount_point` of device `dev` whose root in its filesystem is
/// `root`, in crtools' own mount namespace: the last such line of mountinfo (the top of a
/// stack), checked by statx to be the mount the path reaches (not one mounted over it).
Result<ScopedFd> open_mount_at(const std::string& mount_point, dev_t dev, const std::string& root,
                               const char* who);

/// open_by_handle_at(mount_fd, {type, handle}, O_PATH | O_CLOEXEC); -1 and errno on failure.
int open_by_handle(int mount_fd, int type, std::span<const uint8_t> handle);

}  // namespace cr::sys
