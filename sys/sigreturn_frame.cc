#include "sys/sigreturn_frame.h"

#include <cpuid.h>

#include <algorithm>
#include <cstring>

namespace cr::sys {

namespace {

// The x86_64 kernel ABI (arch/x86/include/uapi/asm/sigcontext.h, ucontext.h), spelled out:
// glibc's ucontext_t is a different, larger structure.
struct KernelSigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2;
  uint64_t fpstate;
  uint64_t reserved1[8];
};
static_assert(sizeof(KernelSigcontext) == 256);

struct KernelStackT {
  uint64_t ss_sp;
  int32_t ss_flags;
  int32_t pad;
  uint64_t ss_size;
};

struct KernelUcontext {
  uint64_t uc_flags;
  uint64_t uc_link;
  KernelStackT uc_stack;
  KernelSigcontext uc_mcontext;
  uint64_t uc_sigmask;
};
static_assert(sizeof(KernelUcontext) == 304);

// struct rt_sigframe: the return address slot, the ucontext, a siginfo (unused by
// rt_sigreturn, but the kernel checks the whole frame is addressable).
constexpr size_t kFrameSize = 8 + sizeof(KernelUcontext) + 128;

constexpr uint64_t kUcFpXstate = 0x1;
constexpr uint64_t kUcSigcontextSs = 0x2;
constexpr uint64_t kUcStrictRestoreSs = 0x4;
constexpr uint32_t kFpXstateMagic1 = 0x46505853;
constexpr uint32_t kFpXstateMagic2 = 0x46505845;
constexpr size_t kSwBytes = 464;         // struct _fpx_sw_bytes in the fxsave area
constexpr size_t kMinXstate = 512 + 64;  // legacy area + xsave header
constexpr uint64_t kRedZone = 128;
constexpr int kXtileData = 18;  // the one dynamically enabled component (AMX)

// `xor r,r` in its encodings between registers: 31/33 /r (mod = 11), with an optional REX.
size_t xor_reg_len(const uint8_t* p, size_t left) {
  size_t i = 0;
  if (left > 0 && (p[0] & 0xf0) == 0x40) i = 1;
  if (left < i + 2) return 0;
  if ((p[i] == 0x31 || p[i] == 0x33) && (p[i + 1] & 0xc0) == 0xc0) return i + 2;
  return 0;
}

}  // namespace

uint64_t find_syscall_ret(const uint8_t* data, size_t len, uint64_t base) {
  for (size_t i = 0; i + 2 < len; ++i) {
    if (data[i] != 0x0f || data[i + 1] != 0x05) continue;
    size_t j = i + 2;
    for (int n = 0; n < 12 && j < len; ++n) {
      if (data[j] == 0xc3) return base + i;
      size_t k = xor_reg_len(data + j, len - j);
      if (k == 0) break;
      j += k;
    }
  }
  return 0;
}

bool is_sigreturn(const uint8_t* p, size_t len) {
  static const uint8_t kMovEax[] = {0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
  static const uint8_t kMovRax[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
  return (len >= sizeof kMovEax && std::memcmp(p, kMovEax, sizeof kMovEax) == 0) ||
         (len >= sizeof kMovRax && std::memcmp(p, kMovRax, sizeof kMovRax) == 0);
}

uint64_t find_sigreturn(const uint8_t* data, size_t len, uint64_t base) {
  for (size_t i = 0; i + 7 <= len; ++i) {
    if (data[i] != 0xb8 && data[i] != 0x48) continue;
    if (is_sigreturn(data + i, len - i)) return base + i;
  }
  return 0;
}

uint32_t sigframe_xstate_size(std::span<const uint8_t> xsave) {
  if (xsave.size() < kMinXstate) return 0;
  uint64_t in_use = 0;
  std::memcpy(&in_use, xsave.data() + 512, sizeof in_use);
  if ((in_use >> kXtileData) & 1) return static_cast<uint32_t>(xsave.size());
  // The end of every enabled user component other than the tile data, from CPUID leaf 0xd
  // (standard, uncompacted offsets: the layout PTRACE_GETREGSET gives).
  unsigned a = 0, b = 0, c = 0, d = 0;
  __cpuid_count(0xd, 0, a, b, c, d);
  const uint64_t xcr0_user = (uint64_t{d} << 32) | a;
  uint32_t end = kMinXstate;
  for (int i = 2; i < 63; ++i) {
    if (i == kXtileData || ((xcr0_user >> i) & 1) == 0) continue;
    __cpuid_count(0xd, i, a, b, c, d);
    if (b != 0) end = std::max(end, a + b);
  }
  return std::min<uint32_t>(end, static_cast<uint32_t>(xsave.size()));
}

SigreturnFrame build_sigreturn_frame(const user_regs_struct& regs, uint64_t sigmask,
                                     std::span<const uint8_t> xsave, uint64_t sigreturn_gadget) {
  const uint32_t xsize = sigframe_xstate_size(xsave);
  const uint64_t top = (regs.rsp - kRedZone) & ~uint64_t{63};
  const uint64_t fp = xsize != 0 ? (top - (xsize + 4)) & ~uint64_t{63} : top;
  const uint64_t sp = (fp - kFrameSize) & ~uint64_t{15};

  SigreturnFrame f;
  f.addr = sp;
  f.sp = sp;
  f.bytes.assign(top - sp, 0);
  std::memcpy(f.bytes.data(), &sigreturn_gadget, 8);

  KernelUcontext uc{};
  uc.uc_flags = kUcSigcontextSs | kUcStrictRestoreSs | (xsize != 0 ? kUcFpXstate : 0);
  // An invalid mode: rt_sigreturn's sigaltstack() fails, and it ignores that failure, so the
  // thread's alternate stack stays what it is (we do not know it before asking).
  uc.uc_stack.ss_flags = 7;
  KernelSigcontext& sc = uc.uc_mcontext;
  sc.r8 = regs.r8, sc.r9 = regs.r9, sc.r10 = regs.r10, sc.r11 = regs.r11;
  sc.r12 = regs.r12, sc.r13 = regs.r13, sc.r14 = regs.r14, sc.r15 = regs.r15;
  sc.rdi = regs.rdi, sc.rsi = regs.rsi, sc.rbp = regs.rbp, sc.rbx = regs.rbx;
  sc.rdx = regs.rdx, sc.rax = regs.rax, sc.rcx = regs.rcx, sc.rsp = regs.rsp;
  sc.rip = regs.rip, sc.eflags = regs.eflags;
  sc.cs = static_cast<uint16_t>(regs.cs);
  sc.ss = static_cast<uint16_t>(regs.ss);
  sc.fpstate = xsize != 0 ? fp : 0;
  uc.uc_sigmask = sigmask;
  std::memcpy(f.bytes.data() + 8, &uc, sizeof uc);

  if (xsize != 0) {
    uint8_t* area = f.bytes.data() + (fp - sp);
    std::memcpy(area, xsave.data(), xsize);
    // The software-reserved bytes say what follows the legacy area; without them the kernel
    // would restore the legacy x87/SSE part only and reset AVX and beyond.
    const uint32_t magic1 = kFpXstateMagic1, ext = xsize + 4, magic2 = kFpXstateMagic2;
    const uint64_t all = ~uint64_t{0};  // the kernel keeps only the task's own components
    std::memcpy(area + kSwBytes, &magic1, 4);
    std::memcpy(area + kSwBytes + 4, &ext, 4);
    std::memcpy(area + kSwBytes + 8, &all, 8);
    std::memcpy(area + kSwBytes + 16, &xsize, 4);
    std::memcpy(area + xsize, &magic2, 4);
  }
  return f;
}

}  // namespace cr::sys
