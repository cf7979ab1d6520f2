// General registers, ymm0-15, the x87 stack and control word and MXCSR hold known values
// across the dump: an asm loop loads them, spins until the SIGTERM handler sets a flag in
// memory, then stores them back for comparison.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "zdtmlib.h"

static volatile int flag;

static void on_term(int sig) {
  (void)sig;
  flag = 1;
}

int main(void) {
  struct sigaction sa = {.sa_handler = on_term};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);

  static uint8_t ymm_in[16][32] __attribute__((aligned(32)));
  static uint8_t ymm_out[16][32] __attribute__((aligned(32)));
  static uint64_t gpr_out[9];
  static uint8_t x87_out[3][10];
  static uint16_t fcw_out;
  static uint32_t mxcsr_out;
  for (int r = 0; r < 16; r++) test_fill(ymm_in[r], 32, (uint64_t)r * 32, 0xa5a5);
  const uint16_t fcw_in = 0x0f7f;      // round toward zero, all exceptions masked
  const uint32_t mxcsr_in = 0xff80;    // flush-to-zero + round toward zero + masks
  const uint64_t g[9] = {0x1111111111111111ull, 0x8888888888888888ull, 0x9999999999999999ull,
                         0xaaaaaaaaaaaaaaaaull, 0xbbbbbbbbbbbbbbbbull, 0xccccccccccccccccull,
                         0xddddddddddddddddull, 0xeeeeeeeeeeeeeeeeull, 0x0f0f0f0f0f0f0f0full};

  // The stack is pushed pi, 1, log2(10) and popped in reverse order; the constants are
  // rounded by the control word, so compute the expected values under the same one.
  static long double want[3];
  uint16_t fcw_default = 0x037f;
  __asm__ volatile("fldcw %3\n\tfldl2t\n\tfstpt %0\n\tfld1\n\tfstpt %1\n\t"
                   "fldpi\n\tfstpt %2\n\tfldcw %4"
                   : "=m"(want[0]), "=m"(want[1]), "=m"(want[2])
                   : "m"(fcw_in), "m"(fcw_default));
  static uint32_t mxcsr_default;

  test_ready();
  __asm__ volatile(
      "fldcw %[fcw]\n\t"
      "fldpi\n\tfld1\n\tfldl2t\n\t"
      "ldmxcsr %[mxin]\n\t"
      "vmovdqa 0(%[in]), %%ymm0\n\t"
      "vmovdqa 32(%[in]), %%ymm1\n\t"
      "vmovdqa 64(%[in]), %%ymm2\n\t"
      "vmovdqa 96(%[in]), %%ymm3\n\t"
      "vmovdqa 128(%[in]), %%ymm4\n\t"
      "vmovdqa 160(%[in]), %%ymm5\n\t"
      "vmovdqa 192(%[in]), %%ymm6\n\t"
      "vmovdqa 224(%[in]), %%ymm7\n\t"
      "vmovdqa 256(%[in]), %%ymm8\n\t"
      "vmovdqa 288(%[in]), %%ymm9\n\t"
      "vmovdqa 320(%[in]), %%ymm10\n\t"
      "vmovdqa 352(%[in]), %%ymm11\n\t"
      "vmovdqa 384(%[in]), %%ymm12\n\t"
      "vmovdqa 416(%[in]), %%ymm13\n\t"
      "vmovdqa 448(%[in]), %%ymm14\n\t"
      "vmovdqa 480(%[in]), %%ymm15\n\t"
      "mov 0(%[g]), %%rbx\n\t"
      "mov 8(%[g]), %%r8\n\t"
      "mov 16(%[g]), %%r9\n\t"
      "mov 24(%[g]), %%r10\n\t"
      "mov 32(%[g]), %%r11\n\t"
      "mov 40(%[g]), %%r12\n\t"
      "mov 48(%[g]), %%r13\n\t"
      "mov 56(%[g]), %%r14\n\t"
      "mov 64(%[g]), %%r15\n\t"
      "1:\n\t"
      "pause\n\t"
      "cmpl $0, (%[flag])\n\t"
      "je 1b\n\t"
      "mov %%rbx, 0(%[gout])\n\t"
      "mov %%r8, 8(%[gout])\n\t"
      "mov %%r9, 16(%[gout])\n\t"
      "mov %%r10, 24(%[gout])\n\t"
      "mov %%r11, 32(%[gout])\n\t"
      "mov %%r12, 40(%[gout])\n\t"
      "mov %%r13, 48(%[gout])\n\t"
      "mov %%r14, 56(%[gout])\n\t"
      "mov %%r15, 64(%[gout])\n\t"
      "vmovdqa %%ymm0, 0(%[out])\n\t"
      "vmovdqa %%ymm1, 32(%[out])\n\t"
      "vmovdqa %%ymm2, 64(%[out])\n\t"
      "vmovdqa %%ymm3, 96(%[out])\n\t"
      "vmovdqa %%ymm4, 128(%[out])\n\t"
      "vmovdqa %%ymm5, 160(%[out])\n\t"
      "vmovdqa %%ymm6, 192(%[out])\n\t"
      "vmovdqa %%ymm7, 224(%[out])\n\t"
      "vmovdqa %%ymm8, 256(%[out])\n\t"
      "vmovdqa %%ymm9, 288(%[out])\n\t"
      "vmovdqa %%ymm10, 320(%[out])\n\t"
      "vmovdqa %%ymm11, 352(%[out])\n\t"
      "vmovdqa %%ymm12, 384(%[out])\n\t"
      "vmovdqa %%ymm13, 416(%[out])\n\t"
      "vmovdqa %%ymm14, 448(%[out])\n\t"
      "vmovdqa %%ymm15, 480(%[out])\n\t"
      "vzeroupper\n\t"
      "stmxcsr %[mxout]\n\t"
      "fnstcw %[fcwout]\n\t"
      "fstpt 0(%[x87])\n\t"
      "fstpt 10(%[x87])\n\t"
      "fstpt 20(%[x87])\n\t"
      "movl $0x1f80, %[mxout2]\n\t"
      "ldmxcsr %[mxout2]\n\t"
      "fninit\n\t"
      : [mxout] "=m"(mxcsr_out), [fcwout] "=m"(fcw_out), [mxout2] "=m"(mxcsr_default)
      : [in] "r"(ymm_in), [out] "r"(ymm_out), [g] "r"(g), [gout] "r"(gpr_out),
        [flag] "r"(&flag), [x87] "r"(x87_out), [fcw] "m"(fcw_in), [mxin] "m"(mxcsr_in)
      : "rbx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2",
        "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15", "memory", "cc");

  for (int i = 0; i < 9; i++)
    if (gpr_out[i] != g[i])
      test_fail("general register #%d: got %#llx, want %#llx", i,
                (unsigned long long)gpr_out[i], (unsigned long long)g[i]);
  for (int r = 0; r < 16; r++)
    if (memcmp(ymm_out[r], ymm_in[r], 32) != 0) {
      int upper = memcmp(ymm_out[r], ymm_in[r], 16) == 0;
      test_fail("ymm%d differs (%s half)", r, upper ? "upper" : "lower");
    }
  if (fcw_out != fcw_in) test_fail("x87 control word %#x, want %#x", fcw_out, fcw_in);
  if (mxcsr_out != mxcsr_in) test_fail("MXCSR %#x, want %#x", mxcsr_out, mxcsr_in);
  for (int i = 0; i < 3; i++)
    if (memcmp(x87_out[i], &want[i], 10) != 0) test_fail("x87 st(%d) differs", i);
  return test_pass();
}
