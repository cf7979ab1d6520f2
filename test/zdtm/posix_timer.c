// A POSIX timer keeps its id and keeps firing after restore. Two timers are created and the
// first deleted, so the surviving id is not simply the first one handed out.
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <time.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  const int sig = SIGRTMIN + 1;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, NULL);
  struct sigevent sev;
  memset(&sev, 0, sizeof(sev));
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = sig;
  timer_t first, t;
  sev.sigev_value.sival_int = 41;
  if (timer_create(CLOCK_MONOTONIC, &sev, &first)) test_fail_errno("timer_create 1");
  sev.sigev_value.sival_int = 42;
  if (timer_create(CLOCK_MONOTONIC, &sev, &t)) test_fail_errno("timer_create 2");
  if (timer_delete(first)) test_fail_errno("timer_delete");
  struct itimerspec its = {.it_interval = {0, 20000000}, .it_value = {0, 20000000}};
  if (timer_settime(t, 0, &its, NULL)) test_fail_errno("timer_settime");

  test_ready();
  test_wait();

  struct itimerspec now;
  if (timer_gettime(t, &now)) test_fail_errno("timer_gettime(id %ld) after restore", (long)(intptr_t)t);
  if (now.it_interval.tv_sec != 0 || now.it_interval.tv_nsec != 20000000)
    test_fail("interval %ld.%09ld", (long)now.it_interval.tv_sec, now.it_interval.tv_nsec);
  // The 10 s bound only stops a hang.
  for (int i = 0; i < 3; i++) {
    siginfo_t si;
    struct timespec limit = {10, 0};
    if (sigtimedwait(&set, &si, &limit) != sig) test_fail_errno("expiry %d after restore", i);
    if (si.si_code != SI_TIMER) test_fail("si_code %d, want SI_TIMER", si.si_code);
    if (si.si_value.sival_int != 42) test_fail("si_value %d, want 42", si.si_value.sival_int);
    if (si.si_timerid != (int)(intptr_t)t) test_fail("si_timerid %d, want %d", si.si_timerid, (int)(intptr_t)t);
  }
  return test_pass();
}
