#include "restore/task_state.h"

#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77  // Linux 6.17: timer_create takes the id to use
#endif

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1u << 31)  // Linux 4.7 (uapi/linux/signal.h)
#endif

namespace cr::restore {

namespace {

constexpr uint32_t kSigevThreadId = 4;  // SIGEV_THREAD_ID

Status wrap_call(Result<uint64_t> r, const std::string& what) {
  if (!r.ok()) return std::move(r).error().wrap(what);
  return {};
}

struct KernelSigaction {
  uint64_t handler, flags, restorer, mask;
};

struct KernelSigevent {  // struct sigevent as the kernel reads it (64 bytes)
  uint64_t value;
  int32_t signo;
  int32_t notify;
  int32_t tid;
  int32_t pad[11];
};
static_assert(sizeof(KernelSigevent) == 64);

}  // namespace

Status restore_signal_state(RestoreContext& ctx) {
  ctx.handlers_restored = true;
  for (const auto& sa : ctx.img.sigactions) {
    if (sa.signo == 0 || sa.signo > 64 || sa.signo == SIGKILL || sa.signo == SIGSTOP) continue;
    ctx.reset_scratch();
    KernelSigaction k{sa.handler, sa.flags, sa.restorer, sa.mask};
    CR_TRY_ASSIGN(uint64_t addr, ctx.put(&k, sizeof k));
    CR_TRY(wrap_call(ctx.call("rt_sigaction", SYS_rt_sigaction, sa.signo, addr, 0, 8),
                     "signal " + std::to_string(sa.signo)));
  }
  return {};
}

Status restore_timers(RestoreContext& ctx) {
  for (const auto& it : ctx.img.itimers) {
    if (it.value_us == 0 && it.interval_us == 0) continue;  // disarmed
    // An interval timer read as 0 left was caught at its expiry: it is armed, due now; give it
    // a full period rather than an extra immediate tick.
    const uint64_t value_us = it.value_us != 0 ? it.value_us : it.interval_us;
    ctx.reset_scratch();
    itimerval v{};
    v.it_interval = {static_cast<time_t>(it.interval_us / 1000000),
                     static_cast<suseconds_t>(it.interval_us % 1000000)};
    v.it_value = {static_cast<time_t>(value_us / 1000000),
                  static_cast<suseconds_t>(value_us % 1000000)};
    CR_TRY_ASSIGN(uint64_t addr, ctx.put(&v, sizeof v));
    CR_TRY(wrap_call(ctx.call("setitimer", SYS_setitimer, it.which, addr, 0),
                     "itimer " + std::to_string(it.which)));
  }
  if (ctx.img.posix_timers.empty()) return {};
  auto timers = ctx.img.posix_timers;
  std::sort(timers.begin(), timers.end(),
            [](const auto& a, const auto& b) { return a.timer_id < b.timer_id; });
  // Since 6.17 timer_create can be told the id; before, ids come out in order from 0, so
  // create fillers until the dumped id comes out and delete them.
  auto pr = ctx.remote->call_raw(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0);
  if (!pr.ok()) return std::move(pr).error();
  const bool by_id = *pr == 0;
  for (const auto& pt : timers) {
    ctx.reset_scratch();
    KernelSigevent sev{};
    sev.value = pt.sigval;
    sev.signo = static_cast<int32_t>(pt.signo);
    sev.notify = static_cast<int32_t>(pt.notify);
    // The thread it signals exists again by now (threads are created before timers).
    if ((pt.notify & kSigevThreadId) != 0)
      sev.tid =
          ctx.own_view_tid(pt.notify_tid != 0 ? pt.notify_tid : static_cast<uint64_t>(ctx.pid()));
    CR_TRY_ASSIGN(uint64_t sev_addr, ctx.put(&sev, sizeof sev));
    int32_t id = static_cast<int32_t>(pt.timer_id);
    CR_TRY_ASSIGN(uint64_t id_addr, ctx.put(&id, sizeof id));
    std::vector<int32_t> fillers;
    for (;;) {
      if (by_id) CR_TRY(ctx.tracee.write_mem(id_addr, &id, sizeof id));
      CR_TRY(wrap_call(ctx.call("timer_create", SYS_timer_create, pt.clock_id, sev_addr, id_addr),
                       "posix timer " + std::to_string(pt.timer_id)));
      int32_t got = -1;
      CR_TRY(ctx.tracee.read_mem(id_addr, &got, sizeof got));
      if (got == id) break;
      if (by_id || got > id || fillers.size() > 100000)
        return make_error("posix timer " + std::to_string(pt.timer_id) + ": kernel gave id " +
                          std::to_string(got));
      fillers.push_back(got);
    }
    for (int32_t f : fillers)
      (void)ctx.call("timer_delete", SYS_timer_delete, static_cast<uint64_t>(f));
    if (pt.value_ns != 0) {
      itimerspec spec{};
      spec.it_interval = {static_cast<time_t>(pt.interval_ns / 1000000000),
                          static_cast<long>(pt.interval_ns % 1000000000)};
      spec.it_value = {static_cast<time_t>(pt.value_ns / 1000000000),
                       static_cast<long>(pt.value_ns % 1000000000)};
      CR_TRY_ASSIGN(uint64_t spec_addr, ctx.put(&spec, sizeof spec));
      CR_TRY(wrap_call(
          ctx.call("timer_settime", SYS_timer_settime, static_cast<uint64_t>(id), 0, spec_addr, 0),
          "posix timer " + std::to_string(pt.timer_id)));
    }
  }
  if (by_id) (void)ctx.remote->call_raw(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0);
  return {};
}

Status restore_pending_signals(RestoreContext& ctx) {
  std::vector<ThreadView> threads = ctx.all_threads();
  for (const auto& ps : ctx.img.pending) {
    if (ps.siginfo.size() != sizeof(siginfo_t))
      return make_error("pending signal: siginfo of " + std::to_string(ps.siginfo.size()) +
                        " bytes");
    siginfo_t si;
    std::memcpy(&si, ps.siginfo.data(), sizeof si);
    ctx.reset_scratch();
    CR_TRY_ASSIGN(uint64_t addr, ctx.put(&si, sizeof si));
    // As the task names itself (its pid in the tree's own pid namespace).
    const uint64_t pid = static_cast<uint64_t>(ctx.own_view_tid(static_cast<uint64_t>(ctx.pid())));
    // The kernel lets a task queue any si_code only to itself, so a thread's own signals are
    // queued by that thread, the shared queue's by the leader.
    Result<uint64_t> r = make_error("no thread " + std::to_string(ps.tid));
    if (ps.tid == 0) {
      r = ctx.call("rt_sigqueueinfo", SYS_rt_sigqueueinfo, pid, si.si_signo, addr);
    } else {
      for (ThreadView& t : threads)
        if (t.rec.tid == ps.tid)
          r = t.remote.call("rt_tgsigqueueinfo", SYS_rt_tgsigqueueinfo, pid,
                            static_cast<uint64_t>(ctx.own_view_tid(ps.tid)), si.si_signo, addr);
    }
    CR_TRY(wrap_call(std::move(r), "pending signal " + std::to_string(si.si_signo)));
  }
  return {};
}

namespace {

Status restore_one_thread(RestoreContext& ctx, ThreadView& th) {
  const auto& t = th.rec;
  sys::RemoteSyscalls& rs = th.remote;
  const std::string who = "thread " + std::to_string(t.tid) + " ";
  if ((t.ss_flags & SS_DISABLE) == 0 && t.ss_size != 0) {
    ctx.reset_scratch();
    stack_t ss{};
    ss.ss_sp = reinterpret_cast<void*>(t.ss_sp);
    ss.ss_size = t.ss_size;
    ss.ss_flags = static_cast<int>(t.ss_flags & SS_AUTODISARM);
    CR_TRY_ASSIGN(uint64_t addr, ctx.put(&ss, sizeof ss));
    CR_TRY(wrap_call(rs.call("sigaltstack", SYS_sigaltstack, addr, 0), who + "altstack"));
  }
  if (t.robust_head != 0)
    CR_TRY(wrap_call(rs.call("set_robust_list", SYS_set_robust_list, t.robust_head, t.robust_len),
                     who + "robust list"));
  CR_TRY(wrap_call(rs.call("set_tid_address", SYS_set_tid_address, t.clear_child_tid),
                   who + "clear_child_tid"));
  if (t.rseq_addr != 0)
    CR_TRY(
        wrap_call(rs.call("rseq", SYS_rseq, t.rseq_addr, t.rseq_len, 0, t.rseq_sig), who + "rseq"));
  // Before the policy: a realtime thread ignores PR_SET_TIMERSLACK (its slack is 0, recorded
  // as "not set"). The default slack its children would inherit is not visible: not restored.
  if (t.timer_slack_ns != 0)
    CR_TRY(wrap_call(
        rs.call("prctl(PR_SET_TIMERSLACK)", SYS_prctl, PR_SET_TIMERSLACK, t.timer_slack_ns),
        who + "timer slack"));
  if (t.sched_policy != SCHED_OTHER || t.sched_priority != 0) {
    ctx.reset_scratch();
    sched_param sp{};
    sp.sched_priority = static_cast<int>(t.sched_priority);
    CR_TRY_ASSIGN(uint64_t addr, ctx.put(&sp, sizeof sp));
    CR_TRY(wrap_call(rs.call("sched_setscheduler", SYS_sched_setscheduler, 0, t.sched_policy, addr),
                     who + "scheduling policy"));
  }
  // The thread inherited crrestore's nice, which need not be the dumped one (nice is per
  // thread on Linux); asked from outside, so a thread that has it already costs no remote call.
  errno = 0;
  const int nice_now = ::getpriority(PRIO_PROCESS, static_cast<id_t>(th.tracee.tid()));
  if (errno != 0 || nice_now != t.nice)
    CR_TRY(wrap_call(rs.call("setpriority", SYS_setpriority, PRIO_PROCESS, 0,
                             static_cast<uint64_t>(static_cast<int64_t>(t.nice))),
                     who + "nice"));
  // Each thread has its own name; every one starts with the process's (set by child_main).
  if (!t.comm.empty() && t.comm != ctx.img.process->comm) {
    ctx.reset_scratch();
    CR_TRY_ASSIGN(uint64_t addr, ctx.put_str(t.comm));
    CR_TRY(wrap_call(rs.call("prctl(PR_SET_NAME)", SYS_prctl, PR_SET_NAME, addr), who + "comm"));
  }
  return {};
}

}  // namespace

Status restore_thread_state(RestoreContext& ctx) {
  for (ThreadView& t : ctx.all_threads()) CR_TRY(restore_one_thread(ctx, t));
  return {};
}

}  // namespace cr::restore
