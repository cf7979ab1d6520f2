// A __thread variable, the fs base glibc set up and a gs base we set survive the dump.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmlib.h"

static __thread uint64_t tls_value = 0x1234;
static __thread char tls_buf[100];
static uint64_t gs_target[16];

int main(void) {
  test_init();
  tls_value = 0xfeedfacecafebeefull;
  test_fill(tls_buf, sizeof(tls_buf), 0, 7);
  unsigned long fs_before = 0, gs_before = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_before) != 0) test_fail_errno("ARCH_GET_FS");
  if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)gs_target) != 0)
    test_fail_errno("ARCH_SET_GS");
  if (syscall(SYS_arch_prctl, ARCH_GET_GS, &gs_before) != 0) test_fail_errno("ARCH_GET_GS");
  uint64_t *addr_before = &tls_value;

  test_ready();
  test_wait();

  unsigned long fs = 0, gs = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) != 0) test_fail_errno("ARCH_GET_FS");
  if (syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) != 0) test_fail_errno("ARCH_GET_GS");
  if (fs != fs_before) test_fail("fs base %#lx, want %#lx", fs, fs_before);
  if (gs != gs_before) test_fail("gs base %#lx, want %#lx", gs, gs_before);
  if ((unsigned long)pthread_self() != fs) test_fail("pthread_self() != fs base");
  if (&tls_value != addr_before) test_fail("&tls_value moved");
  if (tls_value != 0xfeedfacecafebeefull) test_fail("tls_value %#llx", (unsigned long long)tls_value);
  if (test_check(tls_buf, sizeof(tls_buf), 0, 7) >= 0) test_fail("tls_buf differs");
  return test_pass();
}
