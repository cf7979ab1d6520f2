// Locked memory (mlock, mlock2(MLOCK_ONFAULT), mlockall): each locked mapping locked again once
// its pages are in, and mlockall(MCL_FUTURE) in force again, as the last change to the mm.
#pragma once

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// An image with a root process: locks its memory while the task still has crrestore's
/// privileges (a root process may have locked it with CAP_IPC_LOCK and dropped it since).
/// Nothing for a user's image.
Status lock_memory_as_root(RestoreContext& ctx);

/// A user's image (Privileges::restricted): locks its memory after the credentials, so the
/// kernel holds the task to its user's RLIMIT_MEMLOCK as it did the dumped one. Nothing for an
/// image with a root process.
Status lock_memory_as_user(RestoreContext& ctx);

}  // namespace cr::restore
