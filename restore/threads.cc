#include "restore/threads.h"

#include <linux/sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>

#include <cstring>

#include "sys/xstate.h"

namespace cr::restore {

Result<user_regs_struct> thread_regs(const schema::Thread& t) {
  user_regs_struct regs{};
  if (t.regs.size() * sizeof(uint64_t) != sizeof regs)
    return make_error("thread " + std::to_string(t.tid) + " record has " +
                      std::to_string(t.regs.size()) + " register words, expected " +
                      std::to_string(sizeof regs / sizeof(uint64_t)));
  std::memcpy(&regs, t.regs.data(), sizeof regs);
  return regs;
}

namespace {

// The flags pthread_create uses, plus CLONE_PTRACE: the thread is traced by us from its first
// instruction and starts with a SIGSTOP, so it never runs on the leader's stack. No
// CLONE_SETTLS/CHILD_*TID: fs base, clear_child_tid and the robust list are set from the record.
constexpr uint64_t kThreadFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                                  CLONE_THREAD | CLONE_SYSVSEM | CLONE_PTRACE;

Status create_one(RestoreContext& ctx, const schema::Thread& rec) {
  const std::string tid_s = std::to_string(rec.tid);
  ctx.reset_scratch();
  const pid_t want = static_cast<pid_t>(rec.tid);
  // In the tree's own pid namespace the thread has a tid there too (innermost first), and
  // clone3 returns that one: it runs in the task.
  const pid_t seen = ctx.own_view_tid(rec.tid);
  if (seen == 0) return make_error("thread " + tid_s + " has no id in its pid namespace");
  const pid_t tids[2] = {seen, want};
  CR_TRY_ASSIGN(uint64_t tid_addr, ctx.put(tids, sizeof tids));
  clone_args args{};
  args.flags = kThreadFlags;
  args.set_tid = tid_addr;
  args.set_tid_size = ctx.img.ns_ids ? 2 : 1;
  CR_TRY_ASSIGN(uint64_t args_addr, ctx.put(&args, sizeof args));
  auto r = ctx.remote->call_raw(SYS_clone3, args_addr, sizeof args);
  if (!r.ok()) return std::move(r).error().wrap("thread " + tid_s);
  if (*r == -EEXIST) return Error{"thread id " + tid_s + " is in use", EEXIST};
  if (*r < 0)
    return Error{"remote clone3 for thread " + tid_s + ": " + std::strerror(static_cast<int>(-*r)),
                 static_cast<int>(-*r)};
  if (*r != seen) {
    if (!ctx.img.ns_ids) ctx.child.add_thread(static_cast<pid_t>(*r));
    return make_error("clone3 gave thread id " + std::to_string(*r) + " instead of " +
                      std::to_string(seen));
  }
  ctx.child.add_thread(want);

  auto ctl = std::make_unique<ThreadCtl>();
  ctl->rec = &rec;
  // Options (TRACESYSGOOD, EXITKILL) are inherited from the leader's tracing.
  CR_TRY_ASSIGN(ctl->tracee,
                sys::Tracee::adopt_stopped_child(want, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL));
  // Traced from birth: a PTRACE_EVENT_STOP under PTRACE_SEIZE (a SIGSTOP under TRACEME).
  const sys::WaitStatus& first = ctl->tracee.last_stop();
  if (first.ptrace_event() != 128 /* PTRACE_EVENT_STOP */ && first.stop_sig() != SIGSTOP)
    return make_error("new thread " + tid_s + " stopped by " + ctl->tracee.last_stop().describe());
  CR_TRY_ASSIGN(auto rs, sys::RemoteSyscalls::create(ctl->tracee, ctx.tramp.addr));
  ctl->remote.emplace(std::move(rs));
  ctx.threads.push_back(std::move(ctl));
  return {};
}

}  // namespace

Status create_threads(RestoreContext& ctx) {
  for (size_t i = 1; i < ctx.img.threads.size(); ++i)
    CR_TRY(create_one(ctx, ctx.img.threads[i]));
  return {};
}

Status set_xstate(RestoreContext& ctx, sys::Tracee& tracee, const schema::Thread& t) {
  if (t.xsave.empty()) return {};
  if (ctx.xsave_size == 0) {
    CR_TRY_ASSIGN(std::vector<uint8_t> cur, tracee.get_xstate());
    ctx.xsave_size = cur.size();
  }
  auto area = sys::translate_xstate(t.xsave, t.xsave_layout, sys::host_xstate_layout(),
                                    ctx.xsave_size);
  if (!area.ok())
    return std::move(area).error().wrap("thread " + std::to_string(t.tid) + " FPU/vector state");
  return tracee.set_xstate(*area);
}

Status set_thread_registers(RestoreContext& ctx) {
  for (auto& t : ctx.threads) {
    CR_TRY_ASSIGN(user_regs_struct regs, thread_regs(*t->rec));
    t->remote->final_regs() = regs;
    t->remote->set_final_sigmask(t->rec->sigmask);
    CR_TRY(t->remote->finish());
    CR_TRY(set_xstate(ctx, t->tracee, *t->rec));
  }
  return {};
}

Status detach_threads(RestoreContext& ctx) {
  for (auto& t : ctx.threads) {
    t->remote.reset();
    CR_TRY(t->tracee.detach());
  }
  return {};
}

}  // namespace cr::restore
