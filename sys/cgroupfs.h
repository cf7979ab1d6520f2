// cgroup hierarchies as this mount namespace shows them, and the control files crtools keeps.
//
// A task's cgroups come from /proc/PID/cgroup: one line per hierarchy, the hierarchy named by
// its controllers ("cpu,cpuacct", "name=systemd", "" for cgroup v2) and the cgroup by a path
// from the reader's cgroup namespace root. The directory of that cgroup is found through the
// hierarchy's mount (mountinfo): its mount point, less the mount's root.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "sys/proc_parse.h"

namespace cr::sys {

/// One mounted cgroup hierarchy.
struct CgroupMount {
  bool v2 = false;
  std::vector<std::string> names;  // v1: the controllers and "name=..." in its super options
  std::string mount_point;
  std::string root;  // the cgroup the mount shows at its mount point ("/" usually)
};

/// Every cgroup and cgroup2 mount in `mounts`; of a hierarchy mounted twice, the first.
std::vector<CgroupMount> cgroup_mounts(const std::vector<MountLine>& mounts);

/// The mount of the hierarchy /proc/PID/cgroup calls `controllers`, or nullptr.
const CgroupMount* find_cgroup_mount(const std::vector<CgroupMount>& mounts,
                                     std::string_view controllers);

/// The directory of cgroup `path` in `m`; nullopt when the mount shows only another subtree.
std::optional<std::string> cgroup_dir(const CgroupMount& m, std::string_view path);

/// The root of a cgroup namespace in one hierarchy, from a task's cgroup there seen from
/// outside (`outer`) and from inside the namespace (`inner`, relative to its root): `outer`
/// less `inner`'s tail. nullopt when they do not fit (`inner` above the namespace root, "/..").
std::optional<std::string> cgroup_ns_root(std::string_view outer, std::string_view inner);

/// An absolute cgroup path without empty, "." or ".." parts and without NUL or newline ("/" is
/// one): what an image may name.
bool valid_cgroup_path(std::string_view path);
/// A hierarchy name as /proc/PID/cgroup shows it: "", or comma-separated [a-z0-9_=.-] names.
bool valid_cgroup_controllers(std::string_view controllers);

/// Whether `name` is one of the control files kept for a cgroup of a v2 or a v1 hierarchy (what
/// an image may ask to write), in the form they are written back.
bool known_cgroup_property(bool v2, std::string_view name);

/// The settings of the cgroup at `dir` worth giving a new cgroup of the same name, in the order
/// they are written back, each as (control file, one line to write). Files the cgroup lacks (a
/// controller not enabled) are left out; so are values that are derived or only reported:
/// `cgroup.subtree_control` becomes "+cpu +memory", `memory.oom_control` its oom_kill_disable,
/// `devices.list` a "devices.deny a" and one "devices.allow" per line (nothing when it allows
/// everything), `cgroup.type` only "threaded".
Result<std::vector<std::pair<std::string, std::string>>> read_cgroup_properties(
    const std::string& dir, bool v2);

}  // namespace cr::sys
