// The mount list of a tree's own mount namespace against crdump's (what is a copy of a host
// mount, what is new and how to make it again), and, on restore, against the copy of
// crrestore's namespace the root starts in. Pure functions over parsed mountinfo.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "schema/records.h"
#include "sys/proc_parse.h"

namespace cr::sys {

/// Each mount of `tree` (its root's mountinfo) as a Mount record, parents first: kMountHost where
/// crdump's namespace `host` has the same mount at the same place (and its parent is such a copy
/// too), else a new mount of a supported kind. What cannot be made again is an error naming the
/// mount: shared or slave propagation, options changed on a copy, a root that is not a copy of
/// crdump's, fs types other than proc, sysfs and tmpfs unless they bind a host filesystem.
Result<std::vector<schema::Mount>> classify_mounts(const std::vector<MountLine>& tree,
                                                   const std::vector<MountLine>& host);

/// The lines of `lines` each record of `records` is (record id -> line id): a record matches
/// a line with its mount point and fs type (kMountHost and kMountBind: also its root; kMountHost:
/// its source) whose parent is its parent's match (the root: the line without a parent in the
/// list). With `host_only`, only kMountHost records are matched (the copy before the rebuild).
std::map<uint32_t, uint32_t> match_mounts(const std::vector<schema::Mount>& records,
                                          const std::vector<MountLine>& lines, bool host_only);

/// The tree's root mount is not a copy of crdump's but a bind of a directory of a host
/// filesystem (pivot_root: containers).
bool pivoted_root(const std::vector<schema::Mount>& mounts);

/// Where `path` (absolute, as the tree sees it) is in crdump's (or crrestore's) namespace: the
/// path itself unless the root is pivoted; then through the mount holding it, a bind's source
/// plus the rest below its mount point. nullopt when that mount is one of the tree's own
/// (tmpfs, proc, devpts, ...), which only the tree's namespace shows.
std::optional<std::string> host_path(const std::vector<schema::Mount>& mounts,
                                     const std::string& path);

/// Per-mount options as mount(2) flags (MS_RDONLY, MS_NOSUID, ...); the rest is ignored.
unsigned long mount_flags(const std::string& options);

/// A relative path inside a tmpfs is safe to create below its root: no "..", ".", empty or
/// absolute components.
bool safe_relative_path(const std::string& path);

}  // namespace cr::sys
