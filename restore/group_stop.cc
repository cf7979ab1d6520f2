#include "restore/group_stop.h"

#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys/process_groups.h"

namespace cr::restore {

namespace {

constexpr int kEventStop = 128;  // PTRACE_EVENT_STOP
// Signals already queued for the leader that its mask lets through are delivered on the way
// (as without us); a few at most, so a bound keeps a bad image from looping.
constexpr int kMaxRounds = 64;

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// Why the kernel would not stop the process by `sig` (SIGTSTP, SIGTTIN, SIGTTOU) here, or "".
// Its default action is the stop, taken only if the process neither catches nor ignores it,
// and it is discarded for a process in an orphaned group (kernel/signal.c, get_signal).
Result<std::string> no_stop_by(const RestoreContext& ctx, int sig) {
  for (const auto& sa : ctx.img.sigactions)
    if (static_cast<int>(sa.signo) == sig) return std::string("the image catches or ignores it");
  const pid_t pgid = ::getpgid(ctx.pid());
  if (pgid < 0) return errno_error("getpgid(" + std::to_string(ctx.pid()) + ")");
  CR_TRY_ASSIGN(bool orphaned, sys::pgrp_orphaned_now(pgid));
  if (orphaned) return "its process group " + std::to_string(pgid) + " is orphaned here";
  return std::string();
}

}  // namespace

Status stop_again(RestoreContext& ctx, std::string& warning) {
  const schema::Thread& leader = ctx.img.leader();
  // Images before stop_signo have 0: SIGSTOP.
  int sig = leader.stop_signo != 0 ? static_cast<int>(leader.stop_signo) : SIGSTOP;
  if (sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
    return make_error("stop signal " + std::to_string(sig) + " is not a stop signal");
  if (sig != SIGSTOP) {
    CR_TRY_ASSIGN(std::string why, no_stop_by(ctx, sig));
    if (!why.empty()) {
      warning = "stopped by SIGSTOP, not " + signal_name(sig) + ": " + why +
                ", where the kernel does not stop a process by that signal";
      sig = SIGSTOP;
    }
  }
  // The group stop starts while every thread is still ours: the leader takes the signal at
  // once (only it unblocked: the others queued for it stay queued, as in the dumped process),
  // and every other thread gets the stop pending before it can run. Sent after detach instead,
  // a thread blocking the signal ran on until another one stopped the group.
  const uint64_t only_sig = ~(uint64_t{1} << (sig - 1));
  CR_TRY(ctx.tracee.set_sigmask(only_sig));
  if (::syscall(SYS_tgkill, ctx.pid(), ctx.pid(), sig) != 0)
    return errno_error("tgkill(" + std::to_string(ctx.pid()) + ", " + signal_name(sig) + ")");
  int deliver = 0;
  for (int round = 0; round < kMaxRounds; ++round) {
    CR_TRY_ASSIGN(sys::WaitStatus ws, ctx.tracee.cont_and_wait(deliver));
    if (!ws.stopped())
      return make_error("pid " + std::to_string(ctx.pid()) + " " + ws.describe() +
                        " while being stopped by " + signal_name(sig));
    if (ws.ptrace_event() == kEventStop && ws.stop_sig() == sig) {
      // In the group stop: its own mask back (the stop does not look at it).
      return ctx.tracee.set_sigmask(leader.sigmask);
    }
    // The signal's delivery stop: let the kernel take it (the stop). A SIGTRAP event stop is
    // a trap of ours (a notification), nothing to deliver.
    deliver = ws.ptrace_event() == 0 ? ws.stop_sig() : 0;
  }
  return make_error("pid " + std::to_string(ctx.pid()) + ": not stopped by " + signal_name(sig) +
                    " after " + std::to_string(kMaxRounds) + " rounds");
}

}  // namespace cr::restore
