// The trampoline: a few pages mapped in the task at an address free in both its current layout
// (a copy of crrestore) and the dumped one, holding a `syscall` instruction and scratch space.
// Remote calls run from it while everything else in the task is torn down and rebuilt; it is
// unmapped as the very last remote call.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "restore/context.h"
#include "restore/layout.h"

namespace cr::restore {

/// Address of `syscall; ret` in crrestore's own text: the same in the forked child, so it is
/// the first instruction remote calls use.
uint64_t own_syscall_insn();

/// The task's current mappings (/proc/PID/maps).
Result<std::vector<MapsEntry>> read_task_maps(pid_t pid);

/// Starts remote calls on the stopped child and maps the trampoline.
Status setup_trampoline(RestoreContext& ctx);

/// munmaps the trampoline: call last, then only registers may be set.
Status remove_trampoline(RestoreContext& ctx);

}  // namespace cr::restore
