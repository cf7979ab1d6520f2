// The tree's own mount namespace, made again by its root in the new namespace it was cloned
// into (CLONE_NEWNS: a copy of crrestore's), before anything else of the restore uses a path.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include <string>

#include "common/result.h"
#include "schema/records.h"
#include "sys/proc_parse.h"

namespace cr::restore {

/// Makes every mount private, detaches what no kMountHost record matches (deepest first),
/// mounts the other records in order (a tmpfs filled from its entries at once, before what is
/// mounted inside it), and checks the result against the records. `external` (mount point ->
/// path, crrestore --external mnt[...]) makes those mounts binds of the given paths instead.
Status rebuild_mount_ns(
    const std::vector<schema::Mount>& mounts,
    const std::vector<std::pair<schema::TmpfsEntry, std::vector<uint8_t>>>& tmpfs,
    const std::map<std::string, std::string>& external = {});

/// The records with `external` applied: each named mount (a bind or a host copy; the root
/// only where it is a bind, pivoted) becomes a bind of its path, with the filesystem type and
/// root of the mount of `lines` (crrestore's) the path is on. An entry that names no such
/// mount is an error, or skipped with `where_found`.
Result<std::vector<schema::Mount>> apply_external_mounts(
    std::vector<schema::Mount> mounts, const std::map<std::string, std::string>& external,
    const std::vector<sys::MountLine>& lines, bool where_found);

/// The tree's bind mounts of its own cgroups moved where it is restored: `moved` maps a
/// hierarchy ("cpu,cpuacct", "name=systemd", "" for cgroup2) to (its cgroup at the dump, its
/// cgroup now). A cgroup bind of that hierarchy whose root is that cgroup or below it binds the
/// same place below the new one; its host path keeps the hierarchy's mount. Others stay.
std::vector<schema::Mount> move_cgroup_binds(
    std::vector<schema::Mount> mounts,
    const std::map<std::string, std::pair<std::string, std::string>>& moved);

struct RestoreContext;

/// In crrestore, once the head is read: the root's new place (opts.root) and the external
/// mounts (opts.external_mounts, then cleared) applied to root.shared.mounts, so that the
/// paths crrestore opens for a pivoted tree (sys::host_path) and the namespace its root
/// rebuilds agree.
Status prepare_mounts(RestoreContext& root);

/// The files crrestore opened by path in its own namespace (regular files, directories,
/// devices, O_PATH fds: `carriers`, File id -> fd), opened again by the root in the rebuilt
/// one and put in their place (same fd, flags, position), so that their mounts are the tree's
/// and not crrestore's (a directory fd on crrestore's mount would show what the tree
/// unmounted). Each must be the same file (device and inode) as crrestore's open.
Status reopen_in_namespace(const std::map<uint32_t, schema::File>& files,
                           const std::map<uint32_t, int>& carriers);

}  // namespace cr::restore
