// The tree's own mount namespace, made again by its root in the new namespace it was cloned
// into (CLONE_NEWNS: a copy of crrestore's), before anything else of the restore uses a path.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "schema/records.h"

namespace cr::restore {

/// Makes every mount private, detaches what no kMountHost record matches (deepest first),
/// mounts the other records in order (a tmpfs filled from its entries at once, before what is
/// mounted inside it), and checks the result against the records.
Status rebuild_mount_ns(
    const std::vector<schema::Mount>& mounts,
    const std::vector<std::pair<schema::TmpfsEntry, std::vector<uint8_t>>>& tmpfs);

/// The files crrestore opened by path in its own namespace (regular files, directories,
/// devices, O_PATH fds: `carriers`, File id -> fd), opened again by the root in the rebuilt
/// one and put in their place (same fd, flags, position), so that their mounts are the tree's
/// and not crrestore's (a directory fd on crrestore's mount would show what the tree
/// unmounted). Each must be the same file (device and inode) as crrestore's open.
Status reopen_in_namespace(const std::map<uint32_t, schema::File>& files,
                           const std::map<uint32_t, int>& carriers);

}  // namespace cr::restore
