// A process dumped in a group stop is stopped again, by the same signal, before it is let go.
#pragma once

#include <string>

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// Puts the process (every thread traced and at its final registers) in a group stop by its
/// dumped stop signal, so that once detached no thread runs and its parent's
/// waitpid(WUNTRACED) reports that signal. Where the kernel would not stop it by a SIGTSTP,
/// SIGTTIN or SIGTTOU (its process group is orphaned here, or the image has a handler for it)
/// it is stopped by SIGSTOP and `warning` says so.
Status stop_again(RestoreContext& ctx, std::string& warning);

}  // namespace cr::restore
