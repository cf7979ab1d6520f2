// Tracee: the one class that talks ptrace. It owns a tid's attachment (RAII: a live Tracee
// that goes out of scope detaches, leaving the task running) and turns every failure into an
// Error naming the request, tid and errno. ESRCH becomes "task N is gone".
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"

namespace cr::sys {

/// A typed address in a tracee (never dereferenced here).
template <class T>
struct RemotePtr {
  uint64_t addr = 0;
  RemotePtr() = default;
  explicit RemotePtr(uint64_t a) : addr(a) {}
  RemotePtr operator+(size_t n) const { return RemotePtr(addr + n * sizeof(T)); }
  bool null() const { return addr == 0; }
};

/// A waitpid() status, decoded once.
struct WaitStatus {
  int raw = 0;
  static WaitStatus from(int raw) { return WaitStatus{raw}; }
  bool exited() const { return WIFEXITED(raw); }
  bool signaled() const { return WIFSIGNALED(raw); }
  bool stopped() const { return WIFSTOPPED(raw); }
  int exit_code() const { return WEXITSTATUS(raw); }
  int term_sig() const { return WTERMSIG(raw); }
  int stop_sig() const { return WSTOPSIG(raw) & 0x7f; }
  /// PTRACE_EVENT_* of a ptrace-event stop, or 0.
  int ptrace_event() const { return stopped() ? (raw >> 16) & 0xff : 0; }
  /// A syscall-entry/exit stop (needs PTRACE_O_TRACESYSGOOD).
  bool syscall_stop() const { return stopped() && WSTOPSIG(raw) == (SIGTRAP | 0x80); }
  std::string describe() const;
};

/// Waits for `tid` (__WALL). EINTR is retried.
Result<WaitStatus> wait_for(pid_t tid, int flags = 0);

class Tracee {
 public:
  /// Attaches to a running task with PTRACE_SEIZE and stops it with PTRACE_INTERRUPT.
  static Result<Tracee> seize(pid_t tid, unsigned options);
  /// The same in two halves, so that many threads can be interrupted before waiting for any
  /// (they stop in parallel): seize_nowait, then wait_seized before any other use.
  static Result<Tracee> seize_nowait(pid_t tid, unsigned options);
  Status wait_seized();
  /// In a freshly forked child: PTRACE_TRACEME, then stop with SIGSTOP for the parent.
  static void traceme_and_stop();
  /// In the parent: adopts a child that called traceme_and_stop(), once it has stopped.
  static Result<Tracee> adopt_stopped_child(pid_t tid, unsigned options);
  /// How many times any tracee of this process was resumed until its next stop (a remote call
  /// costs two): the round trips `crrestore -v` reports per pass.
  static uint64_t resumes();

  Tracee() = default;
  Tracee(Tracee&& o) noexcept;
  Tracee& operator=(Tracee&& o) noexcept;
  Tracee(const Tracee&) = delete;
  Tracee& operator=(const Tracee&) = delete;
  ~Tracee();

  pid_t tid() const { return tid_; }
  bool attached() const { return tid_ > 0; }
  /// The stop the task is in now (from the last wait).
  const WaitStatus& last_stop() const { return last_; }

  Result<user_regs_struct> get_regs() const;
  Status set_regs(const user_regs_struct& regs) const;
  /// The whole NT_X86_XSTATE area.
  Result<std::vector<uint8_t>> get_xstate() const;
  Status set_xstate(std::span<const uint8_t> area) const;
  Result<uint64_t> get_sigmask() const;
  Status set_sigmask(uint64_t mask) const;
  /// Queued signals: the thread's own (shared=false) or the process-wide queue.
  Result<std::vector<siginfo_t>> peek_siginfo(bool shared) const;
  /// rseq registration (PTRACE_GET_RSEQ_CONFIGURATION, 5.13+): addr, len, sig.
  struct Rseq {
    uint64_t addr = 0;
    uint32_t len = 0, sig = 0;
  };
  Result<Rseq> get_rseq() const;
  /// PTRACE_SETOPTIONS on a stopped tracee: the options replace those it had.
  Status set_options(unsigned options) const;
  /// Filter `index` of the task's seccomp chain, 0 the oldest (PTRACE_SECCOMP_GET_FILTER):
  /// its struct sock_filter array, 8 bytes an instruction. Past the newest: error ENOENT.
  /// Needs CAP_SYS_ADMIN and a tracer without seccomp of its own.
  Result<std::vector<uint8_t>> seccomp_filter(unsigned index) const;
  /// Its flags as the kernel reports them (PTRACE_SECCOMP_GET_METADATA: only
  /// SECCOMP_FILTER_FLAG_LOG is kept per filter).
  Result<uint64_t> seccomp_filter_flags(unsigned index) const;

  /// process_vm_readv / process_vm_writev of one range; errors name the address.
  Status read_mem(uint64_t addr, void* buf, size_t len) const;
  Status write_mem(uint64_t addr, const void* buf, size_t len) const;
  /// Writes through /proc/TID/mem (FOLL_FORCE: also into read-only mappings, copying on write).
  Status poke_mem(uint64_t addr, const void* buf, size_t len) const;

  /// Resumes with PTRACE_CONT / PTRACE_SYSCALL and waits for the next stop or exit.
  Result<WaitStatus> cont_and_wait(int sig = 0);
  Result<WaitStatus> syscall_and_wait();
  /// PTRACE_DETACH, delivering `sig` (0: none). The Tracee is empty afterwards.
  Status detach(int sig = 0);
  /// Forgets the task without detaching (it died, or was killed on purpose).
  void release() { tid_ = -1; }

 private:
  explicit Tracee(pid_t tid) : tid_(tid) {}
  Error ptrace_error(const char* request, uint64_t addr = 0) const;
  pid_t tid_ = -1;
  WaitStatus last_;
  mutable ScopedFd mem_fd_;
};

/// Applies what the kernel does to a task leaving a stop inside an interrupted system call,
/// so the registers can be saved and set back on any task (the restored one included):
/// -ERESTARTSYS/NOINTR/NOHAND re-run the call; -ERESTART_RESTARTBLOCK re-runs it too, with a
/// relative nanosleep resuming from the remaining time it wrote to `rem` (from the start when
/// the call has no `rem`). Returns a short note of what was done, empty if nothing.
std::string restart_fixup(user_regs_struct& regs);

/// epoll_wait, epoll_pwait and epoll_pwait2 are never restarted by the kernel: a task stopped
/// in one by PTRACE_INTERRUPT leaves it with -EINTR, as after a stop signal. If `regs` show
/// that, they are set to re-run the call (with its whole timeout) and true is returned. The
/// caller decides whether the EINTR was the freeze's: with a signal pending it is real.
bool rerun_interrupted_epoll_wait(user_regs_struct& regs);

}  // namespace cr::sys
