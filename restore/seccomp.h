// Seccomp filters and strict mode put back into a restored process's threads by injected
// calls, before the credentials (a task whose uids are dropped may install a filter only under
// no_new_privs; until then it holds crrestore's privileges).
#pragma once

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// Every thread of the process that has seccomp gets PTRACE_O_SUSPEND_SECCOMP (kept until it
/// is detached: no later injected call meets its filters), then its chain, oldest first: the
/// filters every thread shares from the leader with SECCOMP_FILTER_FLAG_TSYNC, so the threads
/// share them again, the rest in each thread; strict mode last, in its thread.
Status restore_seccomp(RestoreContext& ctx);

}  // namespace cr::restore
