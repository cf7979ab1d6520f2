// An inotify made again with its watches. Each watched inode is found by its file handle
// (open_by_handle_at on a mount of its filesystem; a restricted image's by its recorded path,
// opened as the user: a handle reaches inodes whose path the user could not), and the watch is
// added through /proc/self/fd/N as the holder's user, which checks its read permission. The
// program keeps its watch descriptors: the kernel hands them out in increasing order from the
// last one given, so each is made by adding the watch and removing it again until the kernel
// gives the dumped number (the watches in ascending wd order); the IN_IGNORED events those
// removals queue are read off before the inotify is handed to the tree.
#pragma once

#include <vector>

#include "common/result.h"
#include "restore/privilege.h"
#include "schema/records.h"

namespace cr::restore {

/// A new inotify for kFileInotify File `f` with `watches` (its InotifyWatch records), each at
/// its dumped wd and mask; `as` is the holder's identity for a restricted image (nullptr:
/// crrestore's own). Returns the fd (close-on-exec), with the File's O_NONBLOCK.
Result<int> open_inotify(const schema::File& f,
                         const std::vector<const schema::InotifyWatch*>& watches,
                         const FsIdentity* as);

}  // namespace cr::restore
