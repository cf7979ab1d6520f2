// A thread dumped inside an rseq critical section (issue 11). The thread spins inside the
// section until told to stop; the kernel aborts the section whenever the thread is preempted
// (it then enters it again). Inside, it checks that the section's descriptor is still set in
// its rseq area: the kernel clears it only when the thread is found outside the section, so a
// restore that puts the thread back inside the section after re-registering rseq elsewhere
// (the descriptor cleared meanwhile) is caught as "lost". After restore the thread is stopped
// and joined; it must never have run inside the section without its descriptor.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/rseq.h>

#include "zdtmlib.h"

#if !defined(__x86_64__)
#error "x86_64 only"
#endif

static volatile int stop;
static volatile long lost, aborts, commits, entered;

static void critical_section(struct rseq *rs) {
  __asm__ __volatile__(
      ".pushsection __rseq_cs, \"aw\"\n\t"
      ".balign 32\n\t"
      "3: .long 0x0, 0x0\n\t"
      ".quad 1f, (2f - 1f), 4f\n\t"
      ".popsection\n\t"
      "0:\n\t"
      "leaq 3b(%%rip), %%rax\n\t"
      "movq %%rax, 8(%[rs])\n\t"
      "1:\n\t"
      // Preempted between the store and here, the kernel found the thread outside the section
      // and cleared the descriptor: arm it again.
      "cmpq $0, 8(%[rs])\n\t"
      "je 7f\n\t"
      "8:\n\t"
      "cmpq $0, 8(%[rs])\n\t"
      "je 5f\n\t"
      "cmpl $0, %[stop]\n\t"
      "je 8b\n\t"
      "2:\n\t"
      "incq %[commits]\n\t"
      "jmp 6f\n\t"
      ".byte 0x0f, 0xb9, 0x3d\n\t"  // ud1 with the signature as its operand, as the kernel's
      ".long 0x53053053\n\t"        // selftests lay out an x86 abort handler
      "4:\n\t"
      "incq %[aborts]\n\t"
      "jmp 6f\n\t"
      "5:\n\t"
      "incq %[lost]\n\t"
      "jmp 6f\n\t"
      "7:\n\t"
      "jmp 0b\n\t"
      "6:\n\t"
      : [aborts] "+m"(aborts), [lost] "+m"(lost), [commits] "+m"(commits)
      : [rs] "r"(rs), [stop] "m"(stop)
      : "rax", "memory", "cc");
}

static void *spinner(void *arg) {
  (void)arg;
  struct rseq *rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
  while (!stop) {
    entered = 1;
    critical_section(rs);
  }
  return NULL;
}

int main(void) {
  test_init();
  if (__rseq_size == 0) test_fail("glibc did not register rseq (GLIBC_TUNABLES?)");
  // SIGTERM is for the main thread's test_wait: the spinner is made with it blocked.
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  pthread_t t;
  if (pthread_create(&t, NULL, spinner, NULL) != 0) test_fail("pthread_create");
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  while (!entered) sched_yield();
  test_ready();
  test_wait();
  stop = 1;
  pthread_join(t, NULL);
  if (lost != 0)
    test_fail("ran inside the rseq critical section without its descriptor %ld times", lost);
  return test_pass();
}
