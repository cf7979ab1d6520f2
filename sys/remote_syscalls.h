// RemoteSyscalls: runs system calls inside a stopped tracee, as an RAII scope.
//
// On creation it saves the tracee's registers and signal mask and blocks every signal (so
// nothing is delivered in the middle); each call() points rip at a `syscall` instruction in
// the tracee, sets rax and the arguments, and steps over exactly that instruction with
// PTRACE_SYSCALL (entry stop, exit stop), so no trap instruction is needed after it. When the
// scope ends, on every path, the saved registers and mask are put back.
//
// A scope given HealGadgets (heal_with, the dump does it) also survives the death of its
// tracer at any instant (sys/sigreturn_frame.h): the registers it gives the task always lead it
// back, through rt_sigreturn, to the final registers and mask, and the mask is blocked only
// while they do so.
#pragma once

#include <sys/user.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "sys/sigreturn_frame.h"
#include "sys/tracee.h"

namespace cr::sys {

class RemoteSyscalls {
 public:
  /// `syscall_insn` is the address of the bytes 0f 05 in an executable mapping of the tracee.
  static Result<RemoteSyscalls> create(Tracee& tracee, uint64_t syscall_insn);
  RemoteSyscalls(RemoteSyscalls&& o) noexcept;
  RemoteSyscalls& operator=(RemoteSyscalls&&) = delete;
  RemoteSyscalls(const RemoteSyscalls&) = delete;
  ~RemoteSyscalls();

  /// Runs syscall `nr`; returns the raw rax (a negative errno on failure).
  Result<int64_t> call_raw(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                           uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0);
  /// call_raw, but should the tracer die once this call has run (before the next call), the
  /// task first makes the call `undo_nr(undo_arg)` and only then goes back where it was: a
  /// second rt_sigreturn frame under the first sends it through that call. For a call that
  /// makes something the task must not keep (crdump's userfaultfd: undone by close of the fd
  /// it will get, known beforehand). Without healing, or without room on the stack for the
  /// second frame, a plain call.
  Result<int64_t> call_raw_undo(long nr, uint64_t a1, uint64_t a2, long undo_nr, uint64_t undo_arg);
  /// Same, but a negative result becomes an Error "remote <name>: <strerror>".
  Result<uint64_t> call(const char* name, long nr, uint64_t a1 = 0, uint64_t a2 = 0,
                        uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0);

  /// Runs the batch loop (sys/remote_batch.h) at `code` over `count` entries at `entries` in
  /// the task: one PTRACE_CONT to its int3. Returns how many entries ran without a failure
  /// that stopped it: `count`, or the index of the failed one. Not with heal_with.
  Result<size_t> run_batch(uint64_t code, uint64_t code_end, uint64_t entries, size_t count);

  /// Makes the scope safe against the tracer's death (see above), from the first call on:
  /// `xsave` is the task's NT_X86_XSTATE area, given back with the registers. The final
  /// registers and mask must be set before the first call.
  void heal_with(const HealGadgets& g, std::vector<uint8_t> xsave);

  Tracee& tracee() { return *tracee_; }

  /// Moves the instruction used for later calls (the restorer moves it to a page it owns).
  void set_syscall_insn(uint64_t addr) { insn_ = addr; }
  /// The registers that will be put back when the scope ends (the restorer sets the restored
  /// task's final registers here). The saved signal mask likewise.
  user_regs_struct& final_regs() { return saved_; }
  void set_final_sigmask(uint64_t mask) { saved_mask_ = mask; }

  /// Puts the final registers and mask back now. Called by the destructor if not done.
  Status finish();

 private:
  RemoteSyscalls(Tracee& t, uint64_t insn) : tracee_(&t), insn_(insn) {}
  Tracee* tracee_ = nullptr;
  uint64_t insn_ = 0;
  user_regs_struct saved_{};
  uint64_t saved_mask_ = 0;
  bool active_ = false;
  bool masked_ = false;  // every signal blocked in the task (undone by finish)
  // Self-healing (heal_with): the frame is written once, before the first call.
  HealGadgets heal_;
  std::vector<uint8_t> xsave_;
  uint64_t frame_sp_ = 0;
  user_regs_struct frame_regs_{};
  uint64_t frame_mask_ = 0;
  Status park(user_regs_struct& regs, uint64_t sp = 0);
  Result<int64_t> run_call(user_regs_struct& regs, long nr, uint64_t sp);
};

/// Finds the bytes 0f 05 (`syscall`) inside [data, data+len) that starts at `base` in the
/// tracee; returns its tracee address or 0.
uint64_t find_syscall_insn(const uint8_t* data, size_t len, uint64_t base);

}  // namespace cr::sys
