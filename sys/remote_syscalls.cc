#include "sys/remote_syscalls.h"

#include <sys/syscall.h>

#include <csignal>
#include <cstring>
#include <utility>

#include "common/test_hook.h"
#include "common/text.h"

namespace cr::sys {

namespace {
// Every step that changes the task's state is a point where the tests kill the tracer.
constexpr const char* kKillPoint = "inject";
}  // namespace

Result<RemoteSyscalls> RemoteSyscalls::create(Tracee& tracee, uint64_t syscall_insn) {
  RemoteSyscalls rs(tracee, syscall_insn);
  CR_TRY_ASSIGN(rs.saved_, tracee.get_regs());
  CR_TRY_ASSIGN(rs.saved_mask_, tracee.get_sigmask());
  rs.active_ = true;
  return rs;
}

RemoteSyscalls::RemoteSyscalls(RemoteSyscalls&& o) noexcept
    : tracee_(o.tracee_),
      insn_(o.insn_),
      saved_(o.saved_),
      saved_mask_(o.saved_mask_),
      active_(std::exchange(o.active_, false)),
      masked_(o.masked_),
      heal_(o.heal_),
      xsave_(std::move(o.xsave_)),
      frame_sp_(o.frame_sp_),
      frame_regs_(o.frame_regs_),
      frame_mask_(o.frame_mask_) {}

RemoteSyscalls::~RemoteSyscalls() {
  if (active_) (void)finish();
}

void RemoteSyscalls::heal_with(const HealGadgets& g, std::vector<uint8_t> xsave) {
  heal_ = g;
  xsave_ = std::move(xsave);
}

Status RemoteSyscalls::finish() {
  if (!active_) return {};
  active_ = false;
  if (!tracee_->attached()) return make_error("task died during remote system calls");
  // The mask first, then the registers: parked on its frame (healing), the task then holds at
  // no instant registers that would run on with every signal blocked.
  CR_TRY(tracee_->set_sigmask(saved_mask_));
  test_kill_point(kKillPoint);
  CR_TRY(tracee_->set_regs(saved_));
  test_kill_point(kKillPoint);
  return {};
}

// Sets the registers of a call. With healing on they also park the task on its rt_sigreturn
// frame, which is written first, while the task still holds its own registers (a frame cut
// short by the tracer's death then lies unused below its stack).
Status RemoteSyscalls::park(user_regs_struct& regs, uint64_t sp) {
  if (!heal_.ok()) {
    regs.rip = insn_;
    return tracee_->set_regs(regs);
  }
  if (frame_sp_ == 0) {
    SigreturnFrame f = build_sigreturn_frame(saved_, saved_mask_, xsave_, heal_.sigreturn);
    if (!tracee_->write_mem(f.addr, f.bytes.data(), f.bytes.size()).ok()) {
      // No room under the stack pointer (a thread at the deepest point its stack has reached:
      // ptrace cannot grow a stack): the calls run unprotected, as before.
      heal_ = {};
      regs.rip = insn_;
      return tracee_->set_regs(regs);
    }
    test_kill_point(kKillPoint);
    frame_sp_ = f.sp;
    frame_regs_ = saved_;
    frame_mask_ = saved_mask_;
  } else if (std::memcmp(&frame_regs_, &saved_, sizeof saved_) != 0 || frame_mask_ != saved_mask_) {
    return make_error("remote syscalls: final registers changed after the first call");
  }
  regs.rip = heal_.syscall_ret;
  regs.rsp = sp != 0 ? sp : frame_sp_;
  return tracee_->set_regs(regs);
}

Result<int64_t> RemoteSyscalls::call_raw(long nr, uint64_t a1, uint64_t a2, uint64_t a3,
                                         uint64_t a4, uint64_t a5, uint64_t a6) {
  if (!active_ || !tracee_->attached()) return make_error("remote syscall on a finished scope");
  user_regs_struct regs = saved_;
  regs.rax = static_cast<uint64_t>(nr);
  // orig_rax < 0: the kernel must not apply syscall-restart logic to these registers.
  regs.orig_rax = ~uint64_t{0};
  regs.rdi = a1;
  regs.rsi = a2;
  regs.rdx = a3;
  regs.r10 = a4;
  regs.r8 = a5;
  regs.r9 = a6;
  return run_call(regs, nr, 0);
}

Result<int64_t> RemoteSyscalls::call_raw_undo(long nr, uint64_t a1, uint64_t a2, long undo_nr,
                                              uint64_t undo_arg) {
  if (!active_ || !tracee_->attached()) return make_error("remote syscall on a finished scope");
  if (heal_.ok() && frame_sp_ == 0) {
    // The first frame is laid by a call's park: a harmless one first.
    auto warm = call_raw(SYS_getpid);
    if (!warm.ok()) return std::move(warm).error();
  }
  if (!heal_.ok() || frame_sp_ == 0) return call_raw(nr, a1, a2);
  // Under the first frame: registers that make the undo call with `ret` going on to the first
  // frame's rt_sigreturn. Every signal stays blocked for it; no FPU state of its own (the
  // first frame gives the task's back).
  user_regs_struct undo = saved_;
  undo.rip = heal_.syscall_ret;
  undo.rax = static_cast<uint64_t>(undo_nr);
  undo.rdi = undo_arg;
  undo.rsp = frame_sp_;
  SigreturnFrame f = build_sigreturn_frame(undo, ~uint64_t{0}, {}, heal_.sigreturn);
  if (!tracee_->write_mem(f.addr, f.bytes.data(), f.bytes.size()).ok()) return call_raw(nr, a1, a2);
  test_kill_point(kKillPoint);
  user_regs_struct regs = saved_;
  regs.rax = static_cast<uint64_t>(nr);
  regs.orig_rax = ~uint64_t{0};
  regs.rdi = a1;
  regs.rsi = a2;
  regs.rdx = regs.r10 = regs.r8 = regs.r9 = 0;
  return run_call(regs, nr, f.sp);
}

// Parks the task on its frame (`sp`: another one) with `regs` and runs the call.
Result<int64_t> RemoteSyscalls::run_call(user_regs_struct& regs, long nr, uint64_t sp) {
  CR_TRY(park(regs, sp));
  test_kill_point(kKillPoint);
  // Nothing may be delivered in the middle. Blocked only now: with healing on, the registers
  // just set give the mask back if the task runs on without us.
  if (!masked_) {
    CR_TRY(tracee_->set_sigmask(~uint64_t{0}));
    masked_ = true;
    test_kill_point(kKillPoint);
  }
  int group_stops = 0;
  for (int stop = 0; stop < 2; ++stop) {  // entry stop, then exit stop
    CR_TRY_ASSIGN(WaitStatus ws, tracee_->syscall_and_wait());
    // A task that was in group stop (SIGSTOP'd) reports the stop again once when resumed;
    // resuming it once more runs the syscall.
    if (ws.ptrace_event() == 128 /* PTRACE_EVENT_STOP */ && ws.stop_sig() != SIGTRAP &&
        ++group_stops <= 4) {
      --stop;
      continue;
    }
    if (!ws.syscall_stop())
      return make_error("task " + std::to_string(tracee_->tid()) + " " + ws.describe() +
                        " during remote syscall " + std::to_string(nr));
    test_kill_point(kKillPoint);
  }
  CR_TRY_ASSIGN(user_regs_struct after, tracee_->get_regs());
  return static_cast<int64_t>(after.rax);
}

Result<size_t> RemoteSyscalls::run_batch(uint64_t code, uint64_t code_end, uint64_t entries,
                                         size_t count) {
  if (!active_ || !tracee_->attached()) return make_error("remote batch on a finished scope");
  // A batch's registers lead nowhere if the tracer dies in the middle: not for a healing scope.
  if (heal_.ok()) return make_error("remote batch in a self-healing scope");
  user_regs_struct regs = saved_;
  regs.orig_rax = ~uint64_t{0};
  regs.rip = code;
  regs.rbx = entries;  // the entry being run
  regs.r12 = count;    // entries left
  regs.r13 = entries;  // the first (results of earlier entries are found from it)
  CR_TRY(tracee_->set_regs(regs));
  test_kill_point(kKillPoint);
  // Everything blocked but SIGTRAP: the kernel forces the int3's SIGTRAP through a mask that
  // blocks it by unblocking it and resetting its handler to SIG_DFL; unblocked, it changes
  // neither (an ignored SIGTRAP is still reset: the caller's to avoid, remote_batch.h).
  CR_TRY(tracee_->set_sigmask(~(uint64_t{1} << (SIGTRAP - 1))));
  masked_ = false;  // the next single call blocks everything again
  test_kill_point(kKillPoint);
  int group_stops = 0;
  for (;;) {
    CR_TRY_ASSIGN(WaitStatus ws, tracee_->cont_and_wait());
    if (ws.ptrace_event() == 128 /* PTRACE_EVENT_STOP */ && ws.stop_sig() != SIGTRAP &&
        ++group_stops <= 4)
      continue;  // a task that was in group stop reports it again once (see call_raw)
    // The int3's SIGTRAP at its delivery stop: the next resume (with no signal) discards it.
    if (!ws.stopped() || ws.ptrace_event() != 0 || ws.stop_sig() != SIGTRAP)
      return make_error("task " + std::to_string(tracee_->tid()) + " " + ws.describe() +
                        " during a remote batch of " + std::to_string(count) + " calls");
    break;
  }
  test_kill_point(kKillPoint);
  CR_TRY_ASSIGN(user_regs_struct after, tracee_->get_regs());
  if (after.rip != code_end || after.r12 > count)
    return make_error("task " + std::to_string(tracee_->tid()) + " stopped at " + hex(after.rip) +
                      " in a remote batch, not at its end");
  return count - static_cast<size_t>(after.r12);
}

Result<uint64_t> RemoteSyscalls::call(const char* name, long nr, uint64_t a1, uint64_t a2,
                                      uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6) {
  CR_TRY_ASSIGN(int64_t r, call_raw(nr, a1, a2, a3, a4, a5, a6));
  if (r < 0 && r > -4096)
    return Error{std::string("remote ") + name + " in task " + std::to_string(tracee_->tid()) +
                     ": " + std::strerror(static_cast<int>(-r)),
                 static_cast<int>(-r)};
  return static_cast<uint64_t>(r);
}

uint64_t find_syscall_insn(const uint8_t* data, size_t len, uint64_t base) {
  for (size_t i = 0; i + 1 < len; ++i)
    if (data[i] == 0x0f && data[i + 1] == 0x05) return base + i;
  return 0;
}

}  // namespace cr::sys
