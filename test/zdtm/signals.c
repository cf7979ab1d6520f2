// Signal state: a SA_SIGINFO|SA_RESTART|SA_ONSTACK handler with an sa_mask, an ignored signal,
// a blocked mask, signals pending while blocked (process-wide via sigqueue, thread-private via
// rt_tgsigqueueinfo, two queued instances of one RT signal) and sigaltstack. After restore the
// pending signals are delivered on unblock with the same si_value.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmlib.h"

static char altstack[64 * 1024];
static struct {
  int sig, code, value, on_altstack, sigusr2_blocked;
  pid_t pid;
} got[8];
static volatile int ngot;

static void handler(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  char here;
  if (ngot >= 8) return;
  got[ngot].sig = sig;
  got[ngot].code = si->si_code;
  got[ngot].value = si->si_value.sival_int;
  got[ngot].pid = si->si_pid;
  got[ngot].on_altstack = &here >= altstack && &here < altstack + sizeof(altstack);
  sigset_t cur;
  sigprocmask(SIG_SETMASK, NULL, &cur);
  got[ngot].sigusr2_blocked = sigismember(&cur, SIGUSR2);
  ngot++;
}

int main(void) {
  test_init();
  pid_t pid = getpid();
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0};
  if (sigaltstack(&ss, NULL)) test_fail_errno("sigaltstack");
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  const int rt_a = SIGRTMIN + 2, rt_b = SIGRTMIN + 3;
  // The mask also holds the tested signals, so handlers run one after the other in dequeue
  // order instead of nesting (the kernel stacks a frame per pending signal otherwise).
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaddset(&sa.sa_mask, SIGUSR1);
  sigaddset(&sa.sa_mask, rt_a);
  sigaddset(&sa.sa_mask, rt_b);
  if (sigaction(SIGUSR1, &sa, NULL) || sigaction(rt_a, &sa, NULL) || sigaction(rt_b, &sa, NULL))
    test_fail_errno("sigaction");
  signal(SIGWINCH, SIG_IGN);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, rt_a);
  sigaddset(&block, rt_b);
  sigaddset(&block, SIGHUP);  // blocked, never sent
  sigprocmask(SIG_BLOCK, &block, NULL);
  if (sigqueue(pid, SIGUSR1, (union sigval){.sival_int = 0x1234})) test_fail_errno("sigqueue USR1");
  if (sigqueue(pid, rt_a, (union sigval){.sival_int = 1})) test_fail_errno("sigqueue rt 1");
  if (sigqueue(pid, rt_a, (union sigval){.sival_int = 2})) test_fail_errno("sigqueue rt 2");
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  si.si_signo = rt_b;
  si.si_code = SI_QUEUE;
  si.si_pid = pid;
  si.si_uid = getuid();
  si.si_value.sival_int = 77;
  if (syscall(SYS_rt_tgsigqueueinfo, pid, pid, rt_b, &si)) test_fail_errno("rt_tgsigqueueinfo");

  test_ready();
  test_wait();

  struct sigaction now;
  sigaction(SIGUSR1, NULL, &now);
  if (now.sa_sigaction != handler) test_fail("SIGUSR1 handler changed");
  if ((now.sa_flags & (SA_SIGINFO | SA_RESTART | SA_ONSTACK)) != (SA_SIGINFO | SA_RESTART | SA_ONSTACK))
    test_fail("SIGUSR1 sa_flags %#x", now.sa_flags);
  if (!sigismember(&now.sa_mask, SIGUSR2) || sigismember(&now.sa_mask, SIGINT))
    test_fail("SIGUSR1 sa_mask changed");
  struct sigaction winch;
  sigaction(SIGWINCH, NULL, &winch);
  if (winch.sa_handler != SIG_IGN) test_fail("SIGWINCH no longer ignored");
  stack_t cur;
  sigaltstack(NULL, &cur);
  if (cur.ss_sp != altstack || cur.ss_size != sizeof(altstack) || cur.ss_flags != 0)
    test_fail("sigaltstack %p/%zu/%d, want %p/%zu/0", cur.ss_sp, cur.ss_size, cur.ss_flags,
              (void *)altstack, sizeof(altstack));
  sigset_t mask, pend;
  sigprocmask(SIG_SETMASK, NULL, &mask);
  if (!sigismember(&mask, SIGUSR1) || !sigismember(&mask, SIGHUP) || !sigismember(&mask, rt_a))
    test_fail("blocked mask lost");
  sigpending(&pend);
  if (!sigismember(&pend, SIGUSR1) || !sigismember(&pend, rt_a) || !sigismember(&pend, rt_b))
    test_fail("pending signals lost");
  if (sigismember(&pend, SIGHUP)) test_fail("SIGHUP pending out of nowhere");
  // rt_b is queued for the thread, the others for the process: /proc/self/status shows which.
  unsigned long long thread_pend = ~0ull, shared_pend = ~0ull;
  FILE *f = fopen("/proc/self/status", "re");
  char line[256];
  while (f && fgets(line, sizeof(line), f)) {
    sscanf(line, "SigPnd: %llx", &thread_pend);
    sscanf(line, "ShdPnd: %llx", &shared_pend);
  }
  if (f) fclose(f);
  unsigned long long want_thread = 1ull << (rt_b - 1);
  unsigned long long want_shared = (1ull << (SIGUSR1 - 1)) | (1ull << (rt_a - 1));
  if (thread_pend != want_thread || shared_pend != want_shared)
    test_fail("pending SigPnd %#llx ShdPnd %#llx, want %#llx %#llx", thread_pend, shared_pend,
              want_thread, want_shared);
  if (ngot) test_fail("a handler ran before unblock");

  sigprocmask(SIG_UNBLOCK, &block, NULL);
  // The kernel dequeues the thread-private queue first, then the process-wide one; within a
  // queue standard signals before RT ones, lowest number first, FIFO per signal.
  struct { int sig, value; } want[] = {{rt_b, 77}, {SIGUSR1, 0x1234}, {rt_a, 1}, {rt_a, 2}};
  if (ngot != 4) test_fail("%d signals delivered on unblock, want 4", ngot);
  for (int i = 0; i < 4; i++) {
    if (got[i].sig != want[i].sig || got[i].value != want[i].value)
      test_fail("delivery %d: sig %d value %d, want sig %d value %d", i, got[i].sig, got[i].value,
                want[i].sig, want[i].value);
    if (got[i].code != SI_QUEUE) test_fail("delivery %d: si_code %d, want SI_QUEUE", i, got[i].code);
    if (got[i].pid != pid) test_fail("delivery %d: si_pid %d, want %d", i, got[i].pid, pid);
    if (!got[i].on_altstack) test_fail("delivery %d: handler not on the alternate stack", i);
    if (!got[i].sigusr2_blocked) test_fail("delivery %d: sa_mask not applied", i);
  }
  return test_pass();
}
