// The restore of one process, as a list of named, timed passes over a RestoreContext.
#pragma once

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// Restores the process the reader's stream describes. On success the task runs, detached
/// from crrestore but still its child; returns its pid. On failure whatever was created is
/// killed and reaped. Pass timings land in ctx.pass_seconds, warnings in ctx.warnings.
Result<pid_t> restore(RestoreContext& ctx);

}  // namespace cr::restore
