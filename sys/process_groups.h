// Whether a process group is orphaned, as the kernel decides it. The kernel discards SIGTSTP,
// SIGTTIN and SIGTTOU (their default action, a stop) for a process in an orphaned group: a stop
// by one of them cannot be made again there, so dump and restore both ask.
#pragma once

#include <sys/types.h>

#include <span>

#include "common/result.h"
#include "sys/proc_parse.h"

namespace cr::sys {

/// The kernel's rule (kernel/exit.c, will_become_orphaned_pgrp): group `pgid` is orphaned when
/// no live member has its parent in another group of the same session. `all` is every process
/// (their stats); children of the global init (`global_init`, 0 when it is not in view) do not
/// count, nor do members whose parent is not in `all` (outside our pid namespace).
bool pgrp_orphaned(pid_t pgid, std::span<const ProcStat> all, pid_t global_init);

/// The same, now, from /proc (walks every process).
Result<bool> pgrp_orphaned_now(pid_t pgid);

}  // namespace cr::sys
