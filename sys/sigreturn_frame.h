// What makes an injected system call safe against the death of its tracer: when a tracer dies,
// the kernel detaches its tracees and they run on with whatever registers and signal mask they
// hold at that instant. A task driven through injected calls therefore always holds registers
// that, if it runs on its own, lead it back to where it was:
//
//   rip -> `syscall` in [vdso], followed only by register-clearing xors and `ret`
//   rsp -> S:  [S]   address of `mov $15,%eax; syscall` (rt_sigreturn) found in the task
//              [S+8] a ucontext: the registers and signal mask to go back to,
//                    uc_mcontext.fpstate -> the task's own xsave area (64-byte aligned)
//
// With the tracer alive it stops the task at the call's syscall-exit and the `ret` never runs.
// Without it, the call completes, `ret` takes the task to rt_sigreturn, and rt_sigreturn puts
// every register, the FPU/SSE/AVX state and the signal mask back as the kernel does after a
// signal handler. The frame sits below the 128-byte red zone under the task's stack pointer,
// exactly where the kernel would put a signal frame, so it overwrites nothing the program owns.
// No code byte of the task is written.
#pragma once

#include <sys/user.h>

#include <cstdint>
#include <span>
#include <vector>

namespace cr::sys {

/// The two pieces of code the frame needs, found in the task's executable mappings.
struct HealGadgets {
  uint64_t syscall_ret = 0;  // 0f 05, xors, c3
  uint64_t sigreturn = 0;    // mov $15,%eax (or %rax); syscall
  bool ok() const { return syscall_ret != 0 && sigreturn != 0; }
};

/// Finds `syscall` followed by nothing but `xor reg,reg` (any width) and `ret`, in
/// [data, data+len) that starts at `base` in the task. Returns its address or 0.
uint64_t find_syscall_ret(const uint8_t* data, size_t len, uint64_t base);
/// Finds `mov $15,%eax; syscall` or `mov $15,%rax; syscall` (libc's and Go's signal
/// restorers); returns the address of the `mov`, or 0.
uint64_t find_sigreturn(const uint8_t* data, size_t len, uint64_t base);
/// Whether the bytes at the start of `data` are one of those rt_sigreturn sequences.
bool is_sigreturn(const uint8_t* data, size_t len);

/// An rt_sigreturn frame to be written at `addr` in the task; `sp` is the stack pointer the
/// injected calls run with (the `ret` slot).
struct SigreturnFrame {
  uint64_t addr = 0;
  uint64_t sp = 0;
  std::vector<uint8_t> bytes;
};

/// Lays out the frame that gives back `regs`, `sigmask` and the NT_X86_XSTATE area `xsave`
/// (as PTRACE_GETREGSET returned it), below the red zone under regs.rsp.
SigreturnFrame build_sigreturn_frame(const user_regs_struct& regs, uint64_t sigmask,
                                     std::span<const uint8_t> xsave, uint64_t sigreturn_gadget);

/// The size of `xsave` that the kernel's rt_sigreturn takes from a task's signal frame:
/// everything up to the last component it may use (the large AMX tile data only if the task
/// has it in use; a task without the permission would be refused the larger frame).
uint32_t sigframe_xstate_size(std::span<const uint8_t> xsave);

}  // namespace cr::sys
