// The threads of a multi-threaded process, other than the leader: created inside the restored
// task by clone3 with their dumped tids once its address space is back, traced from birth,
// given their per-thread state by the later passes and their registers by resume.
#pragma once

#include <sys/user.h>

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// clone3(CLONE_THREAD | CLONE_PTRACE | ..., set_tid = tid) in the leader, once per thread
/// record after the first; each new thread is adopted at its first stop and gets its own
/// remote-call scope. Must run while the task still has the privilege to choose tids
/// (before credentials).
Status create_threads(RestoreContext& ctx);

/// Puts each created thread's dumped registers, xsave area and signal mask in place (its
/// remote-call scope ends); they stay stopped until detach_threads.
Status set_thread_registers(RestoreContext& ctx);

/// Sets a thread's xsave area, moved from the dumping CPU's layout to this one's
/// (sys::translate_xstate); state this CPU cannot hold is an error naming it.
Status set_xstate(RestoreContext& ctx, sys::Tracee& tracee, const schema::Thread& t);

/// Lets the created threads run.
Status detach_threads(RestoreContext& ctx);

/// The dumped registers of a Thread record, checked for size.
Result<user_regs_struct> thread_regs(const schema::Thread& t);

}  // namespace cr::restore
