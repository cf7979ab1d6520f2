#include "restore/restorer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "restore/address_space.h"
#include "restore/child_setup.h"
#include "restore/task_state.h"
#include "restore/threads.h"
#include "restore/trampoline.h"

namespace cr::restore {

namespace {

Status read_head(RestoreContext& ctx) {
  CR_TRY_ASSIGN(bool positioned, load_head(*ctx.reader, ctx.img));
  if (!positioned) return make_error("image ends before any page or thread record");
  return check_head(ctx.img);
}

Status create_task(RestoreContext& ctx) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe2");
  ScopedFd rd(p[0]), wr(p[1]);
  const int report_fd = p[1];
  CR_TRY_ASSIGN(ctx.child, clone_with_pid(ctx.pid(), [&ctx, &p, report_fd] {
                  ::close(p[0]);
                  child_main(ctx, report_fd);
                }));
  wr.reset();
  auto t =
      sys::Tracee::adopt_stopped_child(ctx.child.pid(), PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
  ChildReport rep = read_child_report(rd.get());
  for (auto& w : rep.warnings) ctx.warn(std::move(w));
  if (!rep.error.empty()) return make_error(rep.error);
  if (!t.ok()) return std::move(t).error();
  ctx.tracee = std::move(t).value();
  if (ctx.tracee.last_stop().stop_sig() != SIGSTOP)
    return make_error("new task stopped by " + ctx.tracee.last_stop().describe());
  return {};
}

Status restore_memory_layout(RestoreContext& ctx) {
  CR_TRY(move_vdso(ctx));
  return unmap_rest(ctx);
}

Status resume(RestoreContext& ctx) {
  const auto& t = ctx.img.leader();
  CR_TRY_ASSIGN(user_regs_struct regs, thread_regs(t));
  // The other threads' remote calls are over: their registers go in now, they run at detach.
  CR_TRY(set_thread_registers(ctx));
  // The last remote call: it returns into a page that is gone, but we stop at its exit first
  // and put the dumped registers in place before the task runs again.
  CR_TRY(remove_trampoline(ctx));
  ctx.remote->final_regs() = regs;
  ctx.remote->set_final_sigmask(t.sigmask);
  CR_TRY(ctx.remote->finish());
  CR_TRY(set_xstate(ctx, ctx.tracee, t));
  // A shell job in the foreground gets the terminal while still stopped, so its first read
  // does not meet SIGTTIN.
  const auto& p = *ctx.img.process;
  if (ctx.opts.foreground_tty >= 0 && p.pgid == p.pid &&
      ::tcsetpgrp(ctx.opts.foreground_tty, static_cast<pid_t>(p.pid)) != 0)
    ctx.warn(errno_error("tcsetpgrp").message + ": the task runs in the background");
  // Dumped in group stop: a SIGSTOP pending at detach stops it before it runs any code.
  if ((t.flags & schema::kThreadStopped) != 0 && ::kill(static_cast<pid_t>(p.pid), SIGSTOP) != 0)
    return errno_error("SIGSTOP for the stopped task");
  CR_TRY(detach_threads(ctx));
  CR_TRY(ctx.tracee.detach());
  return {};
}

}  // namespace

Result<pid_t> restore(RestoreContext& ctx) {
  struct Pass {
    const char* name;
    Status (*run)(RestoreContext&);
  };
  static constexpr Pass kPasses[] = {
      {"read image head", read_head},
      {"verify files", [](RestoreContext& c) { return verify_on_disk(c.img); }},
      {"create task", create_task},
      {"trampoline", setup_trampoline},
      {"vdso and unmap", restore_memory_layout},
      {"map vmas", map_vmas},
      {"pages", stream_pages},
      {"protections", set_protections},
      {"mm", set_mm},
      {"threads", create_threads},
      {"signals", restore_signal_state},
      {"timers", restore_timers},
      {"pending signals", restore_pending_signals},
      {"thread state", restore_thread_state},
      {"credentials", restore_creds},
      {"resume", resume},
  };
  for (const auto& pass : kPasses) {
    auto t0 = std::chrono::steady_clock::now();
    Status st = pass.run(ctx);
    ctx.pass_seconds.emplace_back(
        pass.name, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!st.ok()) {
      ctx.child.kill_and_reap();
      ctx.tracee.release();
      for (auto& t : ctx.threads) t->tracee.release();
      return std::move(st).error();
    }
  }
  return ctx.child.release();
}

}  // namespace cr::restore
