// eventfd (a count, semaphore mode), signalfd (a mask, with a signal pending for it) and timerfd
// (a periodic timer far from expiry, and a one-shot one that expired unread) are restored with
// their state: the count reads back, the pending signal comes through the signalfd, the timers
// keep their period, remaining time bound and unread expiration, and the eventfd is still shared
// with the child that inherited it.
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int efd = eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK);
  uint64_t seven = 7;
  if (efd < 0 || write(efd, &seven, 8) != 8) test_fail_errno("eventfd");
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  int sfd = signalfd(-1, &usr1, SFD_NONBLOCK);
  if (sfd < 0) test_fail_errno("signalfd");
  union sigval v = {.sival_int = 4242};
  if (sigqueue(getpid(), SIGUSR1, v) != 0) test_fail_errno("sigqueue");
  int periodic = timerfd_create(CLOCK_MONOTONIC, 0);
  struct itimerspec far = {{1, 0}, {1000, 0}};
  if (periodic < 0 || timerfd_settime(periodic, 0, &far, NULL) != 0) test_fail_errno("timerfd");
  int fired = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec once = {{0, 0}, {0, 1}};
  if (fired < 0 || timerfd_settime(fired, 0, &once, NULL) != 0) test_fail_errno("timerfd once");
  struct pollfd p = {fired, POLLIN, 0};
  if (poll(&p, 1, -1) != 1) test_fail_errno("poll timerfd");  // expired, not read
  // A child that shares the eventfd: it takes one unit after the restore.
  int go[2];
  if (pipe(go)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child == 0) {
    close(3);
    close(go[1]);  // only the parent writes: EOF, not a hang, if it fails first
    char c;
    if (read(go[0], &c, 1) != 1) _exit(20);
    uint64_t one = 0;
    _exit(read(efd, &one, 8) == 8 && one == 1 ? 7 : 21);
  }
  test_ready();
  test_wait();
  if (write(go[1], "g", 1) != 1) test_fail_errno("go");
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
    test_fail("child status %#x", st);
  // Semaphore mode: each read takes one; 7 - the child's one = 6 left.
  int left = 0;
  uint64_t one;
  while (read(efd, &one, 8) == 8) ++left;
  if (left != 6) test_fail("eventfd gave %d units after the child took one, want 6", left);
  struct signalfd_siginfo si;
  if (read(sfd, &si, sizeof si) != sizeof si) test_fail_errno("read signalfd");
  if (si.ssi_signo != SIGUSR1 || si.ssi_int != 4242)
    test_fail("signalfd read signal %u value %d", si.ssi_signo, si.ssi_int);
  struct itimerspec now;
  if (timerfd_gettime(periodic, &now) != 0) test_fail_errno("timerfd_gettime");
  if (now.it_interval.tv_sec != 1 || now.it_interval.tv_nsec != 0)
    test_fail("periodic timer's period %ld.%09ld", (long)now.it_interval.tv_sec,
              now.it_interval.tv_nsec);
  if (now.it_value.tv_sec > 1000 || (now.it_value.tv_sec == 0 && now.it_value.tv_nsec == 0))
    test_fail("periodic timer disarmed or beyond its setting: %ld s", (long)now.it_value.tv_sec);
  uint64_t ticks = 0;
  if (read(fired, &ticks, 8) != 8 || ticks != 1)
    test_fail("expired one-shot timer: %llu unread expirations, want 1", (unsigned long long)ticks);
  return test_pass();
}
