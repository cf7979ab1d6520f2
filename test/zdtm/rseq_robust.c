// glibc's rseq registration survives (same area, sched_getcpu works), and the robust list head
// and the clear_child_tid address are unchanged.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/rseq.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmlib.h"

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif
#define RSEQ_SIG_X86 0x53053053

static void nop(int sig) { (void)sig; }

static struct rseq *area(void) {
  return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

// The kernel answers EBUSY only when the very same area, length and signature are registered.
static int registered_len(void) {
  const int lens[] = {32, (int)__rseq_size, 20};
  for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
    if (syscall(SYS_rseq, area(), lens[i], 0, RSEQ_SIG_X86) == -1 && errno == EBUSY) return lens[i];
  return -1;
}

int main(void) {
  test_init();
  if (__rseq_size == 0) test_fail("glibc did not register rseq (GLIBC_TUNABLES?)");
  int len0 = registered_len();
  if (len0 < 0) test_fail("cannot find glibc's rseq registration");
  struct robust_list_head *head0;
  size_t hlen0;
  if (syscall(SYS_get_robust_list, 0, &head0, &hlen0)) test_fail_errno("get_robust_list");
  void *tid_addr0 = NULL;
  if (prctl(PR_GET_TID_ADDRESS, &tid_addr0, 0, 0, 0)) test_fail_errno("PR_GET_TID_ADDRESS");
  signal(SIGUSR1, nop);

  test_ready();
  test_wait();

  int len = registered_len();
  if (len != len0) test_fail("rseq registration lost (EBUSY probe gives len %d, was %d)", len, len0);
  // A signal delivery makes the kernel refresh the rseq area; it must then agree with getcpu.
  int ok = 0;
  for (int i = 0; i < 100 && !ok; i++) {
    raise(SIGUSR1);
    unsigned cpu = 0;
    int32_t rseq_cpu = (int32_t)__atomic_load_n(&area()->cpu_id, __ATOMIC_RELAXED);
    syscall(SYS_getcpu, &cpu, NULL, NULL);
    int32_t rseq_cpu2 = (int32_t)__atomic_load_n(&area()->cpu_id, __ATOMIC_RELAXED);
    ok = rseq_cpu >= 0 && rseq_cpu == (int32_t)cpu && rseq_cpu2 == rseq_cpu && sched_getcpu() == (int)cpu;
  }
  if (!ok) test_fail("rseq cpu_id (%d) never agrees with getcpu", (int)area()->cpu_id);
  struct robust_list_head *head;
  size_t hlen;
  if (syscall(SYS_get_robust_list, 0, &head, &hlen)) test_fail_errno("get_robust_list");
  if (head != head0 || hlen != hlen0) test_fail("robust list %p/%zu, want %p/%zu", (void *)head, hlen, (void *)head0, hlen0);
  void *tid_addr = NULL;
  if (prctl(PR_GET_TID_ADDRESS, &tid_addr, 0, 0, 0)) test_fail_errno("PR_GET_TID_ADDRESS");
  if (tid_addr != tid_addr0) test_fail("clear_child_tid %p, want %p", tid_addr, tid_addr0);
  return test_pass();
}
