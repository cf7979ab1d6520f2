// A tree's own time namespace (TimeNs): made before its root, with the dumped clock offsets.
#pragma once

#include "common/result.h"
#include "common/scoped_fd.h"
#include "schema/records.h"

namespace cr::restore {

/// Makes a new time namespace for crrestore's next children (unshare(CLONE_NEWTIME): the
/// caller stays in its own) and gives it `t`'s offsets, which the kernel takes only before a
/// task enters it: the root, made next, is the first. Call on crrestore's main thread (the
/// offsets file is per process and names the main thread's namespace for children). Returns
/// crrestore's own time namespace, for leave_time_ns_for_children.
Result<ScopedFd> make_time_ns_for_children(const schema::TimeNs& t);

/// Once the root is made: crrestore makes its children in its own time namespace (`own`) again.
/// A crrestore that stayed making them in the tree's would be a process outside the tree in
/// the tree's time namespace (a dump of the restored tree refuses that). The kernel allows it
/// only to a single-threaded process: crrestore has no other thread yet.
Status leave_time_ns_for_children(const ScopedFd& own);

}  // namespace cr::restore
