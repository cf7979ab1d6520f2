// Per-task state set by remote calls once the address space is back: signal dispositions,
// alternate stack, interval and POSIX timers, pending signals, robust list, clear_child_tid,
// rseq, scheduling, name, root and (last) credentials.
#pragma once

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// rt_sigaction for each dumped disposition (process-wide).
Status restore_signal_state(RestoreContext& ctx);
/// setitimer and timer_create/timer_settime with the dumped ids.
Status restore_timers(RestoreContext& ctx);
/// Queues the dumped pending signals: the shared queue's from the leader, a thread's own from
/// that thread (a task may queue any si_code to itself).
Status restore_pending_signals(RestoreContext& ctx);
/// In every thread: sigaltstack, robust list, clear_child_tid, rseq, scheduling policy and
/// nice, comm.
Status restore_thread_state(RestoreContext& ctx);
/// chroot (once: the fs context is shared), then in every thread (credentials are per thread
/// in the kernel): bounding set, groups, gids, uids, capabilities, securebits, no_new_privs.
Status restore_creds(RestoreContext& ctx);

}  // namespace cr::restore
