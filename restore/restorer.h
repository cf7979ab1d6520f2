// The restore of a process tree, as named, timed passes over one RestoreContext per process.
#pragma once

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// Restores the process tree the reader's stream describes. On success every process runs,
/// detached, the root still crrestore's child; returns the root's pid. On failure whatever was
/// created is killed and reaped. Pass timings (summed over the tree) land in ctx.pass_seconds,
/// warnings in ctx.warnings.
Result<pid_t> restore(RestoreContext& ctx);

/// --lazy: after restore() (the tree runs), waits until all of its memory is in and ends the
/// pager (its stats in ctx.lazy_stats). An error leaves the tree killed: a page could not go
/// in. Without --lazy: nothing.
Status finish_lazy(RestoreContext& ctx);

}  // namespace cr::restore
