// Freezing the task: the refusals that need no stop, PTRACE_SEIZE, and the per-thread state
// that ptrace reads directly.
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "dump/passes.h"

namespace cr::dump {

namespace {

constexpr int kEventStop = 128;  // PTRACE_EVENT_STOP

// Refusals that are read from /proc alone.
Status check_supported(DumpContext& ctx) {
  CR_TRY_ASSIGN(std::string text, ctx.proc.read("status"));
  CR_TRY_ASSIGN(ctx.status, parse_status(text));
  std::string pid = std::to_string(ctx.pid);
  if (ctx.status.threads > 1)
    return make_error("pid " + pid + " has " + std::to_string(ctx.status.threads) +
                      " threads: multi-threaded processes are not supported yet");
  if (ctx.status.seccomp != 0) return make_error("pid " + pid + ": seccomp not supported yet");
  CR_TRY_ASSIGN(std::string children, ctx.proc.read("task/" + pid + "/children"));
  std::vector<std::string> kids;
  std::string_view rest = children;
  while (!rest.empty()) {
    size_t b = rest.find_first_not_of(" \n");
    if (b == std::string_view::npos) break;
    rest.remove_prefix(b);
    size_t e = rest.find_first_of(" \n");
    kids.emplace_back(rest.substr(0, e));
    rest.remove_prefix(e == std::string_view::npos ? rest.size() : e);
  }
  if (!kids.empty()) {
    std::string list = kids[0];
    if (kids.size() > 1) list += ", ...";
    return make_error("pid " + pid + " has children (" + list +
                      "): process trees are not supported yet");
  }
  return {};
}

// After PTRACE_SEIZE + PTRACE_INTERRUPT the first stop can be a signal that was already being
// delivered. Let it be delivered (as it would have been without us) until the task reaches
// the interrupt's event stop, or a group stop.
Status settle(DumpContext& ctx) {
  for (int round = 0; round < 64; ++round) {
    const sys::WaitStatus& ws = ctx.tracee.last_stop();
    if (ws.ptrace_event() == kEventStop) {
      ctx.group_stopped = ws.stop_sig() != SIGTRAP;
      return {};
    }
    CR_TRY_ASSIGN(sys::WaitStatus next, ctx.tracee.cont_and_wait(ws.stop_sig()));
    if (!next.stopped())
      return make_error("pid " + std::to_string(ctx.pid) + " " + next.describe() +
                        " while being frozen");
  }
  return make_error("pid " + std::to_string(ctx.pid) + ": signals keep arriving, cannot freeze");
}

}  // namespace

Status freeze(DumpContext& ctx) {
  CR_TRY_ASSIGN(ctx.proc, ProcDir::open(ctx.pid));
  CR_TRY(check_supported(ctx));
  CR_TRY_ASSIGN(ctx.tracee, sys::Tracee::seize(ctx.pid, PTRACE_O_TRACESYSGOOD));
  CR_TRY(settle(ctx));
  // Again, now that it cannot clone any more.
  CR_TRY(check_supported(ctx));

  CR_TRY_ASSIGN(ctx.raw_regs, ctx.tracee.get_regs());
  ctx.regs = ctx.raw_regs;
  ctx.restart_note = sys::restart_fixup(ctx.regs);
  ctx.regs_valid = true;
  CR_TRY_ASSIGN(ctx.xsave, ctx.tracee.get_xstate());
  CR_TRY_ASSIGN(ctx.sigmask, ctx.tracee.get_sigmask());
  auto rseq = ctx.tracee.get_rseq();
  if (rseq.ok()) {
    ctx.rseq = *rseq;
  } else if (rseq.error().code != EINVAL && rseq.error().code != EIO) {
    return std::move(rseq).error();
  }
  // get_robust_list works on another task with ptrace access; it is not a ptrace request.
  long head = 0;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, ctx.pid, &head, &len) != 0)
    return errno_error("get_robust_list(" + std::to_string(ctx.pid) + ")");
  ctx.robust_head = static_cast<uint64_t>(head);
  ctx.robust_len = len;

  for (bool shared : {false, true}) {
    CR_TRY_ASSIGN(std::vector<siginfo_t> infos, ctx.tracee.peek_siginfo(shared));
    for (const siginfo_t& si : infos) {
      schema::PendingSignal ps;
      ps.pid = static_cast<uint32_t>(ctx.pid);
      ps.tid = shared ? 0 : static_cast<uint32_t>(ctx.pid);
      const auto* p = reinterpret_cast<const uint8_t*>(&si);
      ps.siginfo.assign(p, p + sizeof si);
      ctx.pending.push_back(std::move(ps));
    }
  }
  return {};
}

}  // namespace cr::dump
