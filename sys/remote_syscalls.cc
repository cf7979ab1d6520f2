#include "sys/remote_syscalls.h"

#include <csignal>
#include <cstring>
#include <utility>

namespace cr::sys {

Result<RemoteSyscalls> RemoteSyscalls::create(Tracee& tracee, uint64_t syscall_insn) {
  RemoteSyscalls rs(tracee, syscall_insn);
  CR_TRY_ASSIGN(rs.saved_, tracee.get_regs());
  CR_TRY_ASSIGN(rs.saved_mask_, tracee.get_sigmask());
  CR_TRY(tracee.set_sigmask(~uint64_t{0}));
  rs.active_ = true;
  return rs;
}

RemoteSyscalls::RemoteSyscalls(RemoteSyscalls&& o) noexcept
    : tracee_(o.tracee_),
      insn_(o.insn_),
      saved_(o.saved_),
      saved_mask_(o.saved_mask_),
      active_(std::exchange(o.active_, false)) {}

RemoteSyscalls::~RemoteSyscalls() {
  if (active_) (void)finish();
}

Status RemoteSyscalls::finish() {
  if (!active_) return {};
  active_ = false;
  if (!tracee_->attached()) return make_error("task died during remote system calls");
  CR_TRY(tracee_->set_regs(saved_));
  return tracee_->set_sigmask(saved_mask_);
}

Result<int64_t> RemoteSyscalls::call_raw(long nr, uint64_t a1, uint64_t a2, uint64_t a3,
                                         uint64_t a4, uint64_t a5, uint64_t a6) {
  if (!active_ || !tracee_->attached()) return make_error("remote syscall on a finished scope");
  user_regs_struct regs = saved_;
  regs.rip = insn_;
  regs.rax = static_cast<uint64_t>(nr);
  // orig_rax < 0: the kernel must not apply syscall-restart logic to these registers.
  regs.orig_rax = ~uint64_t{0};
  regs.rdi = a1;
  regs.rsi = a2;
  regs.rdx = a3;
  regs.r10 = a4;
  regs.r8 = a5;
  regs.r9 = a6;
  CR_TRY(tracee_->set_regs(regs));
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
  }
  CR_TRY_ASSIGN(user_regs_struct after, tracee_->get_regs());
  return static_cast<int64_t>(after.rax);
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
