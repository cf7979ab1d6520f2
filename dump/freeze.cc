// Freezing one process of the tree: the refusals that need no stop, PTRACE_SEIZE of every thread
// (re-scanning task/ until no thread appears that is not stopped), its children (final once it
// is stopped), and the per-thread state ptrace reads.
#include <linux/kcmp.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "dump/passes.h"
#include "sys/process_groups.h"

namespace cr::dump {

namespace {

constexpr int kEventStop = 128;  // PTRACE_EVENT_STOP
// Seizing threads while others keep creating new ones converges in a few rounds in practice;
// a process that outruns this many is refused rather than dumped inconsistently.
constexpr int kMaxSeizeRounds = 200;

// Refusals that are read from /proc alone (a dead leader), and (`children`) the
// children of every thread: they are dumped too, as part of the tree.
Status check_supported(DumpContext& ctx, bool children) {
  CR_TRY_ASSIGN(std::string text, ctx.proc.read("status"));
  CR_TRY_ASSIGN(ctx.status, parse_status(text));
  std::string pid = std::to_string(ctx.pid);
  if (ctx.status.state == 'Z')
    return make_error(
        "pid " + pid +
        (ctx.status.threads > 1
             ? ": the main thread has exited while other threads run: not supported yet"
             : " is a zombie: it has no state left to dump"));
  if (!children) return {};
  CR_TRY_ASSIGN(std::vector<pid_t> tids, ctx.proc.tasks());
  ctx.children.clear();
  for (pid_t tid : tids) {
    // A thread that exits between the listing and the read is not an error.
    auto children = ctx.proc.read("task/" + std::to_string(tid) + "/children");
    if (!children.ok()) continue;
    for (pid_t kid : parse_children(*children)) ctx.children.push_back(kid);
  }
  std::sort(ctx.children.begin(), ctx.children.end());
  return {};
}

// After PTRACE_SEIZE + PTRACE_INTERRUPT the first stop can be a signal that was already being
// delivered. Let it be delivered (as it would have been without us) until the thread reaches
// the interrupt's event stop, or a group stop.
Status settle(ThreadState& t, bool& group_stopped, int& stop_signo) {
  for (int round = 0; round < 64; ++round) {
    const sys::WaitStatus& ws = t.tracee.last_stop();
    if (ws.ptrace_event() == kEventStop) {
      // In a group stop the event stop carries the stop signal (SIGSTOP, SIGTSTP, ...).
      group_stopped = ws.stop_sig() != SIGTRAP;
      if (group_stopped) stop_signo = ws.stop_sig();
      return {};
    }
    CR_TRY_ASSIGN(sys::WaitStatus next, t.tracee.cont_and_wait(ws.stop_sig()));
    if (!next.stopped())
      return make_error("thread " + std::to_string(t.tid) + " " + next.describe() +
                        " while being frozen");
  }
  return make_error("thread " + std::to_string(t.tid) + ": signals keep arriving, cannot freeze");
}

// A thread that has gone, or is past the point of no return in exit (a zombie waiting to be
// released, or dead): it cannot be seized and is not part of the image.
bool task_gone_or_exiting(const DumpContext& ctx, pid_t tid) {
  auto text = ctx.proc.read("task/" + std::to_string(tid) + "/stat");
  if (!text.ok()) return true;
  auto st = parse_stat(*text);
  return st.ok() && (st->state == 'Z' || st->state == 'X' || st->state == 'x');
}

// Seizes every thread. A stopped thread cannot clone, so once a listing of task/ shows only
// threads already stopped, the set is complete and no thread runs. Threads that exit before
// they are seized are simply not part of the image.
Status seize_all(DumpContext& ctx) {
  for (int round = 0; round < kMaxSeizeRounds; ++round) {
    CR_TRY_ASSIGN(std::vector<pid_t> tids, ctx.proc.tasks());
    // The leader first, so that it is threads.front().
    std::stable_partition(tids.begin(), tids.end(), [&](pid_t t) { return t == ctx.pid; });
    // Interrupt every new thread first, then wait for each: they stop in parallel.
    const size_t first_new = ctx.threads.size();
    for (pid_t tid : tids) {
      bool known = std::any_of(ctx.threads.begin(), ctx.threads.begin() + first_new,
                               [&](const ThreadState& t) { return t.tid == tid; });
      if (known) continue;
      auto tracee = sys::Tracee::seize_nowait(tid, PTRACE_O_TRACESYSGOOD);
      if (!tracee.ok()) {
        if (tid != ctx.pid && task_gone_or_exiting(ctx, tid)) continue;  // exiting meanwhile
        return std::move(tracee).error();
      }
      ThreadState t;
      t.tid = tid;
      t.tracee = std::move(tracee).value();
      ctx.threads.push_back(std::move(t));
    }
    const bool added = ctx.threads.size() > first_new;
    for (size_t i = first_new; i < ctx.threads.size();) {
      ThreadState& t = ctx.threads[i];
      Status st = t.tracee.wait_seized();
      if (!st.ok()) {
        if (t.tid != ctx.pid && task_gone_or_exiting(ctx, t.tid)) {  // exited before it stopped
          ctx.threads.erase(ctx.threads.begin() + static_cast<long>(i));
          continue;
        }
        return st;
      }
      bool stopped = false;
      CR_TRY(settle(t, stopped, ctx.stop_signo));
      ctx.group_stopped = ctx.group_stopped || stopped;
      ++i;
    }
    if (ctx.threads.empty() || ctx.threads.front().tid != ctx.pid)
      return make_error("pid " + std::to_string(ctx.pid) + ": main thread not found in task/");
    if (!added) {
      // Sorted by tid after the leader, so records come out in a stable order.
      std::sort(ctx.threads.begin() + 1, ctx.threads.end(),
                [](const ThreadState& a, const ThreadState& b) { return a.tid < b.tid; });
      return {};
    }
  }
  return make_error("pid " + std::to_string(ctx.pid) + ": threads keep appearing (" +
                    std::to_string(ctx.threads.size()) + " seized), cannot freeze");
}

// Every thread must carry the leader's credentials: the image has one Creds record and restore
// gives it to every thread. Its seccomp state is read from the same status (seccomp.cc).
Status check_thread_creds(DumpContext& ctx, ThreadState& t) {
  CR_TRY_ASSIGN(std::string text, ctx.proc.read("task/" + std::to_string(t.tid) + "/status"));
  CR_TRY_ASSIGN(ProcStatus ts, parse_status(text));
  const ProcStatus& s = ctx.status;
  const bool same = std::equal(s.uid, s.uid + 4, ts.uid) && std::equal(s.gid, s.gid + 4, ts.gid) &&
                    s.groups == ts.groups && s.cap_inh == ts.cap_inh && s.cap_prm == ts.cap_prm &&
                    s.cap_eff == ts.cap_eff && s.cap_bnd == ts.cap_bnd && s.cap_amb == ts.cap_amb &&
                    s.no_new_privs == ts.no_new_privs;
  if (!same)
    CR_TRY(ctx.tree.refuse(ctx.pid, make_error("thread " + std::to_string(t.tid) +
                                               " has credentials different from its "
                                               "process's: not supported yet")));
  return read_seccomp(ctx, t, ts);
}

// Every thread must hold its process's fd table and fs context: the image has the leader's fds
// (/proc/PID/fd) and one cwd, root and umask, and restore makes threads with CLONE_FILES |
// CLONE_FS. A thread that called unshare(CLONE_FILES) or unshare(CLONE_FS) (or a leader that did,
// leaving its threads on the old ones) would lose its own silently. kcmp compares the tasks'
// objects, so a thread id works as well as a process id.
Status check_thread_sharing(DumpContext& ctx, const ThreadState& t) {
  if (t.tid == ctx.pid) return {};
  static constexpr struct {
    int type;
    const char* what;
  } kOwn[] = {{KCMP_FILES, "an fd table of its own (unshare(CLONE_FILES))"},
              {KCMP_FS, "a cwd, root and umask of its own (unshare(CLONE_FS))"}};
  for (const auto& k : kOwn) {
    const long r = ::syscall(SYS_kcmp, ctx.pid, t.tid, k.type, 0, 0);
    if (r < 0)
      return errno_error("kcmp(" + std::to_string(ctx.pid) + ", " + std::to_string(t.tid) + ")");
    if (r != 0)
      CR_TRY(ctx.tree.refuse(
          ctx.pid, make_error("pid " + std::to_string(ctx.pid) + " thread " +
                              std::to_string(t.tid) + ": " + k.what + " not supported yet")));
  }
  return {};
}

// Every thread must be in its process's namespaces: the image has none of its own, and
// restore makes threads in their leader's, so a thread that called setns() or unshare() would
// be put back into its process's silently. These are the kinds a thread can hold apart (its
// pid and user namespaces and active time namespace only change for a single-threaded
// process; mnt needs an fs context of its own, refused before this). The links name the
// namespace by inode, so equal text is the same namespace. The leader's are read once (seven
// readlinks cost ~25 us per thread).
Status check_thread_namespaces(DumpContext& ctx) {
  static constexpr const char* kPerThread[] = {
      "net", "uts", "ipc", "mnt", "cgroup", "pid_for_children", "time_for_children"};
  if (ctx.threads.size() < 2) return {};
  // pid_for_children cannot be read while its namespace has no init yet (unshare(NEWPID)
  // before the first fork): unreadable on one side only is a difference too.
  std::vector<std::optional<std::string>> leaders;
  for (const char* ns : kPerThread) {
    auto link = ctx.proc.readlink(std::string("ns/") + ns);
    leaders.push_back(link.ok() ? std::optional(std::move(link).value()) : std::nullopt);
  }
  for (const ThreadState& t : ctx.threads) {
    if (t.tid == ctx.pid) continue;
    const std::string dir = "task/" + std::to_string(t.tid) + "/ns/";
    for (size_t i = 0; i < std::size(kPerThread); ++i) {
      auto link = ctx.proc.readlink(dir + kPerThread[i]);
      const bool same = link.ok() ? leaders[i] == *link : !leaders[i].has_value();
      if (!same)
        CR_TRY(ctx.tree.refuse(ctx.pid, make_error("pid " + std::to_string(ctx.pid) + " thread " +
                                                   std::to_string(t.tid) + ": " + kPerThread[i] +
                                                   " namespace differs from its process's: not "
                                                   "supported yet")));
    }
  }
  return {};
}

// The queued signals of thread `tid` (0: the process-wide queue, read through any thread).
Status peek_pending(const sys::Tracee& tracee, pid_t pid, pid_t tid,
                    std::vector<schema::PendingSignal>& out) {
  CR_TRY_ASSIGN(std::vector<siginfo_t> infos, tracee.peek_siginfo(/*shared=*/tid == 0));
  for (const siginfo_t& si : infos) {
    schema::PendingSignal ps;
    ps.pid = static_cast<uint32_t>(pid);
    ps.tid = static_cast<uint32_t>(tid);
    const auto* p = reinterpret_cast<const uint8_t*>(&si);
    ps.siginfo.assign(p, p + sizeof si);
    out.push_back(std::move(ps));
  }
  return {};
}

// A thread stopped inside an rseq critical section would have it aborted by the kernel on its
// way back to user space (it was preempted): its IP goes to the section's abort handler. A
// restored thread would not: its registration is made again (from the trampoline, outside any
// section, so the kernel clears rseq_cs) before its registers are set. So the image holds what
// the kernel would have done: the IP at the abort handler.
Status abort_rseq_critical_section(ThreadState& t) {
  struct RseqCs {  // struct rseq_cs (uapi/linux/rseq.h), 32-byte aligned in the task
    uint32_t version, flags;
    uint64_t start_ip, post_commit_offset, abort_ip;
  } cs{};
  uint64_t cs_addr = 0;
  // struct rseq: u32 cpu_id_start, u32 cpu_id, u64 rseq_cs, ...
  if (!t.tracee.read_mem(t.rseq.addr + 8, &cs_addr, sizeof cs_addr).ok() || cs_addr == 0) return {};
  // A descriptor the kernel cannot read or accept gets the thread killed (SIGSEGV) when it
  // resumes, restored or not: nothing to do for it here.
  if (!t.tracee.read_mem(cs_addr, &cs, sizeof cs).ok() || cs.version != 0) return {};
  const uint64_t ip = t.regs.rip;
  if (ip < cs.start_ip || ip - cs.start_ip >= cs.post_commit_offset) return {};
  uint32_t sig = 0;
  if (!t.tracee.read_mem(cs.abort_ip - 4, &sig, sizeof sig).ok() || sig != t.rseq.sig) return {};
  t.regs.rip = cs.abort_ip;
  return {};
}

Status read_thread(DumpContext& ctx, ThreadState& t) {
  CR_TRY_ASSIGN(t.regs, t.tracee.get_regs());
  sys::restart_fixup(t.regs);
  CR_TRY_ASSIGN(t.xsave, t.tracee.get_xstate());
  CR_TRY_ASSIGN(t.sigmask, t.tracee.get_sigmask());
  auto rseq = t.tracee.get_rseq();
  if (rseq.ok()) {
    t.rseq = *rseq;
  } else if (rseq.error().code != EINVAL && rseq.error().code != EIO) {
    return std::move(rseq).error();
  }
  if (t.rseq.addr != 0) CR_TRY(abort_rseq_critical_section(t));
  // get_robust_list works on another task with ptrace access; it is not a ptrace request.
  long head = 0;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, t.tid, &head, &len) != 0)
    return errno_error("get_robust_list(" + std::to_string(t.tid) + ")");
  t.robust_head = static_cast<uint64_t>(head);
  t.robust_len = len;
  CR_TRY(peek_pending(t.tracee, ctx.pid, t.tid, t.pending));
  CR_TRY(check_thread_sharing(ctx, t));
  return check_thread_creds(ctx, t);
}

// A process stopped by SIGTSTP, SIGTTIN or SIGTTOU is stopped by that signal again at restore
// (restore/group_stop.cc): its parent's waitpid(WUNTRACED) then reports the same signal. The
// kernel takes such a signal as a stop only where its default action applies and the process's
// group is not orphaned (get_signal discards it there); where it would not, the stop could not
// be made again, and the process is refused. (A SIGSTOP stop can always be made again.)
Status check_stop_signal(const DumpContext& ctx) {
  if (!ctx.group_stopped || ctx.stop_signo == SIGSTOP) return {};
  const int sig = ctx.stop_signo;
  const char* abbrev = ::sigabbrev_np(sig);
  const std::string name = abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
  const std::string who = "pid " + std::to_string(ctx.pid) + " is stopped by " + name;
  if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
    return make_error(who + ", which is not a stop signal");
  const uint64_t bit = uint64_t{1} << (sig - 1);
  // A thread that set a handler while the group stop was under way (it stops only on its way
  // back to user space) leaves one.
  if (((ctx.status.sig_ign | ctx.status.sig_cgt) & bit) != 0)
    return make_error(who +
                      " but now catches or ignores it: restore could not stop it the same "
                      "way (SIGCONT it, or stop it with SIGSTOP)");
  CR_TRY_ASSIGN(std::string text, ctx.proc.read("stat"));
  CR_TRY_ASSIGN(ProcStat st, parse_stat(text));
  CR_TRY_ASSIGN(bool orphaned, sys::pgrp_orphaned_now(st.pgrp));
  if (orphaned)
    return make_error(who + " in process group " + std::to_string(st.pgrp) +
                      ", which is orphaned: the kernel discards " + name +
                      " there, so restore could not stop it the same way (SIGCONT it, or stop "
                      "it with SIGSTOP)");
  return {};
}

}  // namespace

Status freeze(DumpContext& ctx) {
  CR_TRY_ASSIGN(ctx.proc, ProcDir::open(ctx.pid));
  // The refusals before anything is seized; the children only once every thread is stopped (a
  // list read before would be thrown away: one read of task/TID/children per thread).
  CR_TRY(check_supported(ctx, /*children=*/false));
  CR_TRY(seize_all(ctx));
  // Again, now that no thread can fork or change what /proc shows: the children are final.
  // (Threads: in status may still count one that is exiting; the listing loop decides.)
  CR_TRY(check_supported(ctx, /*children=*/true));

  for (ThreadState& t : ctx.threads) CR_TRY(read_thread(ctx, t));
  CR_TRY(check_thread_namespaces(ctx));
  if (Status st = check_stop_signal(ctx); !st.ok())
    CR_TRY(ctx.tree.refuse(ctx.pid, std::move(st).error()));

  CR_TRY(peek_pending(ctx.tracee(), ctx.pid, 0, ctx.shared_pending));
  // An epoll wait that returned EINTR with no signal queued was ended by the freeze: it waits
  // again. With one queued the EINTR may be the program's (its handler runs first), so it stays.
  for (ThreadState& t : ctx.threads)
    if (t.pending.empty() && ctx.shared_pending.empty())
      t.epoll_rerun = sys::rerun_interrupted_epoll_wait(t.regs);
  return {};
}

}  // namespace cr::dump
