// An ITIMER_REAL interval timer keeps firing after restore.
#define _GNU_SOURCE
#include <signal.h>
#include <sys/time.h>
#include <time.h>

#include "zdtmlib.h"

static volatile int ticks;
static void on_alarm(int sig) {
  (void)sig;
  ticks++;
}

int main(void) {
  test_init();
  struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {.it_interval = {0, 20000}, .it_value = {0, 20000}};
  if (setitimer(ITIMER_REAL, &it, NULL)) test_fail_errno("setitimer");

  test_ready();
  test_wait();  // SIGALRM wakes sigsuspend; test_wait loops until SIGTERM

  struct itimerval now;
  getitimer(ITIMER_REAL, &now);
  if (now.it_interval.tv_sec != 0 || now.it_interval.tv_usec != 20000)
    test_fail("interval %ld.%06ld, want 0.020000", (long)now.it_interval.tv_sec,
              (long)now.it_interval.tv_usec);
  if (now.it_value.tv_sec == 0 && now.it_value.tv_usec == 0) test_fail("timer disarmed");
  // Three more ticks must arrive; the 10 s bound only stops a hang.
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  sigprocmask(SIG_BLOCK, &alrm, NULL);
  for (int i = 0; i < 3; i++) {
    struct timespec limit = {10, 0};
    if (sigtimedwait(&alrm, NULL, &limit) != SIGALRM) test_fail_errno("tick %d after restore", i);
  }
  return test_pass();
}
