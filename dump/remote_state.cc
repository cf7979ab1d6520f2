// State only the task itself can report, read by system calls injected into it: signal
// dispositions, interval and POSIX timers, securebits, dumpable, THP-disable, membarrier
// registrations, brk (process-wide, asked of the leader); altstack, clear_child_tid, the
// parent-death signal and timer slack (asked of every thread).
// Results land on a scratch page mapped in the task and unmapped again on every path.
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>

#include "common/text.h"
#include "dump/passes.h"
#include "sys/linux_abi.h"
#include "sys/remote_syscalls.h"

namespace cr::dump {

namespace {

constexpr uint64_t kScratchSize = 4096;

// struct sigaction as the kernel's rt_sigaction takes it on x86_64.
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

struct KernelStack {  // stack_t
  uint64_t sp;
  int32_t flags;
  int32_t pad;
  uint64_t size;
};

struct KernelItimerval {
  int64_t interval_sec, interval_usec, value_sec, value_usec;
};

struct KernelItimerspec {
  int64_t interval_sec, interval_nsec, value_sec, value_nsec;
};

// The scratch page in the task; unmapped when the scope ends (before the registers go back).
class ScratchPage {
 public:
  ScratchPage(sys::RemoteSyscalls& rs, uint64_t addr) : rs_(rs), addr_(addr) {}
  ScratchPage(const ScratchPage&) = delete;
  ~ScratchPage() {
    if (addr_ != 0) (void)rs_.call("munmap", SYS_munmap, addr_, kScratchSize);
  }
  Status unmap() {
    uint64_t a = std::exchange(addr_, 0);
    CR_TRY(rs_.call("munmap", SYS_munmap, a, kScratchSize));
    return {};
  }
  uint64_t addr() const { return addr_; }

 private:
  sys::RemoteSyscalls& rs_;
  uint64_t addr_;
};

template <class T>
Result<T> fetch(const sys::Tracee& t, uint64_t addr) {
  T v{};
  CR_TRY(t.read_mem(addr, &v, sizeof v));
  return v;
}

Status query(DumpContext& ctx, sys::RemoteSyscalls& rs, uint64_t scratch) {
  RemoteState& r = ctx.remote;
  const uint32_t pid = static_cast<uint32_t>(ctx.pid);
  // Only signals /proc says are ignored or caught can be anything but SIG_DFL.
  const uint64_t non_default = ctx.status.sig_ign | ctx.status.sig_cgt;
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || !(non_default & (uint64_t{1} << (sig - 1)))) continue;
    CR_TRY(rs.call("rt_sigaction", SYS_rt_sigaction, sig, 0, scratch, 8));
    CR_TRY_ASSIGN(KernelSigaction sa, fetch<KernelSigaction>(ctx.tracee(), scratch));
    if (sa.handler == reinterpret_cast<uint64_t>(SIG_DFL)) continue;
    r.sigactions.push_back(schema::Sigaction{pid, static_cast<uint32_t>(sig), sa.handler, sa.flags,
                                             sa.restorer, sa.mask});
  }

  for (int which : {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF}) {
    CR_TRY(rs.call("getitimer", SYS_getitimer, which, scratch));
    CR_TRY_ASSIGN(KernelItimerval it, fetch<KernelItimerval>(ctx.tracee(), scratch));
    if (it.value_sec == 0 && it.value_usec == 0 && it.interval_sec == 0 && it.interval_usec == 0)
      continue;
    r.itimers.push_back(
        schema::Itimer{pid, static_cast<uint32_t>(which),
                       static_cast<uint64_t>(it.interval_sec * 1000000 + it.interval_usec),
                       static_cast<uint64_t>(it.value_sec * 1000000 + it.value_usec)});
  }

  CR_TRY_ASSIGN(uint64_t bits, rs.call("prctl(PR_GET_SECUREBITS)", SYS_prctl, PR_GET_SECUREBITS));
  r.securebits = static_cast<uint32_t>(bits);
  CR_TRY_ASSIGN(uint64_t dumpable, rs.call("prctl(PR_GET_DUMPABLE)", SYS_prctl, PR_GET_DUMPABLE));
  r.dumpable = static_cast<uint32_t>(dumpable);
  CR_TRY_ASSIGN(uint64_t thp, rs.call("prctl(PR_GET_THP_DISABLE)", SYS_prctl, PR_GET_THP_DISABLE));
  r.thp_disable = static_cast<uint32_t>(thp);
  // The mm's membarrier registrations show nowhere in /proc; since 6.3 the task can ask.
  auto regs = rs.call_raw(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0, 0, 0);
  if (!regs.ok()) return std::move(regs).error();
  if (*regs >= 0) {
    r.membarrier = static_cast<uint32_t>(*regs);
  } else if (*regs != -EINVAL) {
    return errno_error("remote membarrier(GET_REGISTRATIONS)", static_cast<int>(-*regs));
  }  // EINVAL: a kernel before 6.3 cannot tell (docs/ARCHITECTURE.md)
  CR_TRY_ASSIGN(r.brk, rs.call("brk", SYS_brk, 0));
  CR_TRY(rs.call("prctl(PR_GET_CHILD_SUBREAPER)", SYS_prctl, PR_GET_CHILD_SUBREAPER, scratch));
  CR_TRY_ASSIGN(uint32_t subreaper, fetch<uint32_t>(ctx.tracee(), scratch));
  r.child_subreaper = subreaper != 0;

  CR_TRY_ASSIGN(std::string timers_text, ctx.proc.read("timers"));
  CR_TRY_ASSIGN(std::vector<ProcTimer> timers, parse_timers(timers_text));
  for (const ProcTimer& t : timers) {
    CR_TRY(rs.call("timer_gettime", SYS_timer_gettime, t.id, scratch));
    CR_TRY_ASSIGN(KernelItimerspec its, fetch<KernelItimerspec>(ctx.tracee(), scratch));
    CR_TRY_ASSIGN(uint64_t overrun, rs.call("timer_getoverrun", SYS_timer_getoverrun, t.id));
    schema::PosixTimer pt;
    pt.pid = pid;
    pt.timer_id = t.id;
    pt.clock_id = t.clock_id;
    pt.notify = t.notify;
    pt.signo = t.signo;
    pt.sigval = t.sigval;
    pt.notify_tid = t.notify_tid;
    pt.interval_ns = static_cast<uint64_t>(its.interval_sec * 1000000000 + its.interval_nsec);
    pt.value_ns = static_cast<uint64_t>(its.value_sec * 1000000000 + its.value_nsec);
    pt.overrun = static_cast<uint32_t>(overrun);
    r.posix_timers.push_back(pt);
  }
  return {};
}

// What only a thread can say about itself: its alternate signal stack and clear_child_tid.
Status query_thread(const sys::Tracee& leader, ThreadState& t, sys::RemoteSyscalls& rs,
                    uint64_t scratch) {
  CR_TRY(rs.call("sigaltstack", SYS_sigaltstack, 0, scratch));
  CR_TRY_ASSIGN(KernelStack ss, fetch<KernelStack>(leader, scratch));
  t.ss_sp = ss.sp;
  t.ss_size = ss.size;
  t.ss_flags = static_cast<uint32_t>(ss.flags);
  CR_TRY(rs.call("prctl(PR_GET_TID_ADDRESS)", SYS_prctl, PR_GET_TID_ADDRESS, scratch));
  CR_TRY_ASSIGN(t.clear_child_tid, fetch<uint64_t>(leader, scratch));
  CR_TRY(rs.call("prctl(PR_GET_PDEATHSIG)", SYS_prctl, PR_GET_PDEATHSIG, scratch));
  CR_TRY_ASSIGN(t.pdeathsig, fetch<uint32_t>(leader, scratch));
  CR_TRY_ASSIGN(t.timer_slack_ns,
                rs.call("prctl(PR_GET_TIMERSLACK)", SYS_prctl, PR_GET_TIMERSLACK));
  return {};
}

// Runs the per-thread queries in every thread other than the leader, each in its own
// injection scope (the scratch page is shared: it is the same address space).
Status query_other_threads(DumpContext& ctx, uint64_t scratch) {
  for (size_t i = 1; i < ctx.threads.size(); ++i) {
    ThreadState& t = ctx.threads[i];
    CR_TRY_ASSIGN(sys::RemoteSyscalls rs, injection_scope(ctx, t));
    CR_TRY(query_thread(ctx.tracee(), t, rs, scratch));
    CR_TRY(rs.finish());
  }
  return {};
}

// The protection keys allocated in the mm: /proc shows only those on mappings. pkey_mprotect
// takes an allocated key and fails with EINVAL on any other (on a CPU without protection keys
// on every key but 0), and changes nothing else: tried on the scratch page, which gets key 0
// back (the kernel's own writes there obey the thread's rights for the page's key).
// Without protection keys on this CPU (pkey_alloc fails in crdump) there is none to ask about.
bool pkeys_supported() {
  static const bool yes = [] {
    const long k = ::syscall(SYS_pkey_alloc, 0, 0);
    if (k > 0) ::syscall(SYS_pkey_free, k);
    return k > 0;
  }();
  return yes;
}

Status query_pkeys(DumpContext& ctx, sys::RemoteSyscalls& rs, uint64_t scratch) {
  if (!pkeys_supported()) return {};
  constexpr uint64_t kProt = PROT_READ | PROT_WRITE;
  uint32_t taken = 0;
  for (uint64_t k = 1; k < 16; ++k) {
    CR_TRY_ASSIGN(int64_t r, rs.call_raw(SYS_pkey_mprotect, scratch, kScratchSize, kProt, k));
    if (r == 0) {
      taken |= 1u << k;
    } else if (r != -EINVAL) {
      return errno_error("remote pkey_mprotect with key " + std::to_string(k),
                         static_cast<int>(-r));
    }
  }
  if (taken != 0)
    CR_TRY(rs.call("pkey_mprotect", SYS_pkey_mprotect, scratch, kScratchSize, kProt, 0));
  ctx.remote.pkeys = taken;
  return {};
}

// The mm's locked size (VmLck), which only this process's mappings change, and it is stopped.
Result<uint64_t> locked_kb(DumpContext& ctx) {
  CR_TRY_ASSIGN(std::string text, ctx.proc.read("status"));
  CR_TRY_ASSIGN(ProcStatus st, parse_status(text));
  return st.vm_lck_kb;
}

// mlockall(MCL_FUTURE) sets the mm's def_flags, which /proc does not show: a mapping made now
// is locked (VmLck grows by it) exactly when it is in force, and lock-on-fault ("lf") with
// MCL_ONFAULT. `scratch` was just mapped in the task; smaps is read only in that case.
Status find_mlockall(DumpContext& ctx, uint64_t scratch, uint64_t locked_before) {
  CR_TRY_ASSIGN(uint64_t locked_after, locked_kb(ctx));
  if (locked_after == locked_before) return {};
  CR_TRY_ASSIGN(std::string text, ctx.proc.read("smaps"));
  CR_TRY_ASSIGN(std::vector<MapEntry> maps, parse_smaps(text));
  for (const MapEntry& m : maps) {
    if (scratch < m.start || scratch >= m.end) continue;
    if (!m.has_flag("lo"))
      return make_error("pid " + std::to_string(ctx.pid) + ": VmLck grew by " +
                        std::to_string(locked_after - locked_before) +
                        " kB while crdump mapped an unlocked page");
    ctx.remote.mlockall = MCL_FUTURE | (m.has_flag("lf") ? MCL_ONFAULT : 0);
    return {};
  }
  return make_error("pid " + std::to_string(ctx.pid) + ": crdump's page " + hex(scratch) +
                    " is not in its smaps");
}

}  // namespace

Result<sys::RemoteSyscalls> injection_scope(DumpContext& ctx, ThreadState& t) {
  CR_TRY_ASSIGN(sys::RemoteSyscalls rs, sys::RemoteSyscalls::create(t.tracee, ctx.syscall_insn));
  // What the thread gets back when its scope ends: the fixed-up registers, so a thread stopped
  // inside a syscall re-runs it correctly (the kernel's own restart is bypassed once we have
  // run syscalls of our own from this stop).
  rs.final_regs() = t.regs;
  // The scope keeps its thread able to find its way back should crdump die (sys/
  // sigreturn_frame.h).
  if (ctx.heal.ok()) rs.heal_with(ctx.heal, t.xsave);
  return rs;
}

Status collect_remote_state(DumpContext& ctx) {
  ThreadState& leader = ctx.threads.front();
  // The leader's scope stays open while the other threads are asked.
  CR_TRY_ASSIGN(sys::RemoteSyscalls rs, injection_scope(ctx, leader));
  CR_TRY_ASSIGN(uint64_t locked_before, locked_kb(ctx));
  CR_TRY_ASSIGN(int64_t mapped, rs.call_raw(SYS_mmap, 0, kScratchSize, PROT_READ | PROT_WRITE,
                                            MAP_PRIVATE | MAP_ANONYMOUS, ~uint64_t{0}, 0));
  if (mapped == -EAGAIN)
    return make_error("pid " + std::to_string(ctx.pid) +
                      ": mlockall(MCL_FUTURE) with its locked memory at RLIMIT_MEMLOCK: a page "
                      "for crdump's calls cannot be mapped in it");
  if (mapped < 0 && mapped > -4096)
    return errno_error("remote mmap of a scratch page", static_cast<int>(-mapped));
  const uint64_t scratch = static_cast<uint64_t>(mapped);
  {
    ScratchPage page(rs, scratch);
    CR_TRY(find_mlockall(ctx, scratch, locked_before));
    CR_TRY(query_pkeys(ctx, rs, scratch));
    CR_TRY(query(ctx, rs, scratch));
    CR_TRY(query_thread(leader.tracee, leader, rs, scratch));
    CR_TRY(query_other_threads(ctx, scratch));
    CR_TRY(page.unmap());
  }
  return rs.finish();
}

}  // namespace cr::dump
