#include "sys/sigreturn_frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace cr::sys {
namespace {

TEST(SigreturnFrame, FindsSyscallFollowedByXorsAndRet) {
  // From a 6.18 [vdso]: `syscall` then a `leave` (not usable), later clock_getres's fallback.
  const std::vector<uint8_t> code = {
      0xb8, 0x60, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xc9, 0x31, 0xd2,  // syscall; leave
      0xb8, 0xe5, 0x00, 0x00, 0x00, 0x0f, 0x05,                    // mov $0xe5,%eax; syscall
      0x31, 0xd2, 0x31, 0xc9, 0x31, 0xf6, 0x31, 0xff, 0x45, 0x31, 0xdb, 0xc3};
  EXPECT_EQ(find_syscall_ret(code.data(), code.size(), 0x1000), 0x1000u + 15);
  const std::vector<uint8_t> bare = {0x90, 0x0f, 0x05, 0xc3};
  EXPECT_EQ(find_syscall_ret(bare.data(), bare.size(), 0x2000), 0x2001u);
  // A xor with a memory operand is not a register clear.
  const std::vector<uint8_t> mem = {0x0f, 0x05, 0x31, 0x10, 0xc3};
  EXPECT_EQ(find_syscall_ret(mem.data(), mem.size(), 0), 0u);
}

TEST(SigreturnFrame, FindsSignalRestorers) {
  const std::vector<uint8_t> glibc = {0x90, 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
  EXPECT_EQ(find_sigreturn(glibc.data(), glibc.size(), 0x10), 0x11u);
  const std::vector<uint8_t> eax = {0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
  EXPECT_EQ(find_sigreturn(eax.data(), eax.size(), 0x10), 0x10u);
  const std::vector<uint8_t> other = {0xb8, 0x0e, 0x00, 0x00, 0x00, 0x0f, 0x05};
  EXPECT_EQ(find_sigreturn(other.data(), other.size(), 0x10), 0u);
}

TEST(SigreturnFrame, LaysOutFrameBelowTheRedZone) {
  user_regs_struct regs{};
  regs.rsp = 0x7ffc0000f008;
  regs.rip = 0x401000;
  regs.rax = 42;
  regs.eflags = 0x246;
  regs.cs = 0x33;
  regs.ss = 0x2b;
  std::vector<uint8_t> xsave(2432, 0);
  const uint64_t xstate_bv = 0x7;  // x87, SSE, AVX in use
  std::memcpy(xsave.data() + 512, &xstate_bv, 8);
  SigreturnFrame f = build_sigreturn_frame(regs, 0x4000, xsave, 0x7f0000001234);
  EXPECT_EQ(f.sp, f.addr);
  EXPECT_EQ(f.sp % 16, 0u);
  EXPECT_LE(f.addr + f.bytes.size(), regs.rsp - 128);  // the red zone is left alone
  uint64_t ret = 0;
  std::memcpy(&ret, f.bytes.data(), 8);
  EXPECT_EQ(ret, 0x7f0000001234u);  // where `ret` goes: rt_sigreturn
  // uc_sigmask at 8 + 296, rip at 8 + 40 + 16*8, fpstate at 8 + 40 + 184.
  uint64_t mask = 0, rip = 0, fp = 0;
  std::memcpy(&mask, f.bytes.data() + 8 + 296, 8);
  std::memcpy(&rip, f.bytes.data() + 8 + 40 + 128, 8);
  std::memcpy(&fp, f.bytes.data() + 8 + 40 + 184, 8);
  EXPECT_EQ(mask, 0x4000u);
  EXPECT_EQ(rip, 0x401000u);
  ASSERT_NE(fp, 0u);
  EXPECT_EQ(fp % 64, 0u);
  const uint8_t* area = f.bytes.data() + (fp - f.addr);
  uint32_t magic1 = 0, size = 0, magic2 = 0;
  std::memcpy(&magic1, area + 464, 4);
  std::memcpy(&size, area + 464 + 16, 4);
  EXPECT_EQ(magic1, 0x46505853u);
  EXPECT_EQ(size, sigframe_xstate_size(xsave));
  ASSERT_LE(fp + size + 4, f.addr + f.bytes.size());
  std::memcpy(&magic2, area + size, 4);
  EXPECT_EQ(magic2, 0x46505845u);
}

}  // namespace
}  // namespace cr::sys
