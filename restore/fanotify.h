// A fanotify group made again with its marks. fanotify_init takes the dumped flags and
// event_f_flags as they were (fdinfo shows FAN_CLOEXEC and FAN_NONBLOCK too); the marks are
// added oldest first, so the kernel lists them in the dumped order: the mask with FAN_MARK_ADD,
// then the ignored mask with FAN_MARK_IGNORE (or the older FAN_MARK_IGNORED_MASK) and
// FAN_MARK_IGNORED_SURV_MODIFY as the mark had them, FAN_MARK_EVICTABLE on both. Each target is
// marked through /proc/self/fd/N of an O_PATH fd: an inode found by its file handle (a
// restricted image's by its recorded path, opened as the user), the mount found at its mount
// point with the same device and root, a mount of the filesystem.
//
// A restricted image (README "Trust model") gets what an unprivileged user gets from the
// kernel since 5.13: a group reporting file ids without the admin-only flags, inode marks only,
// each added as the user (fanotify_mark checks read permission on the inode).
#pragma once

#include <vector>

#include "common/result.h"
#include "restore/privilege.h"
#include "schema/records.h"

namespace cr::restore {

/// A new fanotify for kFileFanotify File `f` with group `g` and `marks` (its FanotifyMark
/// records in stream order: newest first); `as` is the holder's identity for a restricted
/// image (nullptr: crrestore's own). Returns the fd (close-on-exec), with the File's O_NONBLOCK.
Result<int> open_fanotify(const schema::File& f, const schema::FanotifyGroup& g,
                          const std::vector<const schema::FanotifyMark*>& marks,
                          const FsIdentity* as);

}  // namespace cr::restore
