// cgroups: every process and thread goes back to the cgroups it was dumped in, in every
// hierarchy mounted here. A cgroup that does not exist is created, and only then given the
// settings it had (an existing one is someone else's to set: CRIU's "soft" mode). The
// settings that fail to apply are warnings (the program runs, with other limits); a task that
// cannot join its cgroup fails the restore.
//
// For an image without a root process (README "Trust model"), directories are created and
// settings written with that process's fs identity, and a task joins only a cgroup whose
// cgroup.procs its user could write: what the user could have done.
#pragma once

#include "common/result.h"
#include "format/record_reader.h"
#include "restore/context.h"
#include "restore/image.h"

namespace cr::restore {

/// Stashes a Cgroup, CgroupProperty or CgroupMember record of the image head into
/// head.shared, refusing what an image may not ask for: a path with "..", a control file
/// outside the kept list, a member of no process.
Status stash_cgroup_record(const format::RecordReader& reader, TreeHead& head);

/// Before the root is made, for a tree with its own cgroup namespace: the roots of the
/// namespace made where missing, their cgroup.procs files in root.cgroup_ns_procs.
Status prepare_cgroup_ns(RestoreContext& root);

/// The root, made a moment ago: joins the namespace's roots (through crrestore's mounts),
/// then, once its own mount namespace is rebuilt, unshares CLONE_NEWCGROUP, so that the
/// namespace's root is where it was (its own cgroups come with join_cgroups). In between, the
/// rebuild reads its mountinfo as crdump did, from outside the namespace (inside, the roots of
/// the host's cgroup mounts would read relative to the namespace's).
Status join_cgroup_ns_roots(const RestoreContext& root);
Status enter_cgroup_ns(const RestoreContext& root);

/// Tree pass, once every process exists and before its memory: each process joins its cgroups
/// (`only`: that process alone, for memory placed while the tree is created).
Status join_cgroups(RestoreContext& root, pid_t only = 0);

/// Tree pass, once every thread exists: the threads in other cgroups than their process's.
Status join_thread_cgroups(RestoreContext& root);

}  // namespace cr::restore
