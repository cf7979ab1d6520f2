// The root of its own time namespace (the harness starts it with CLONE_NEWTIME and offsets of
// days on CLOCK_MONOTONIC and CLOCK_BOOTTIME). After restore: the same offsets; the vDSO gives
// the namespace's time (clock_gettime through libc's vDSO call and through the raw syscall
// agree, in the root and in its child); the clocks went on; timers armed inside for an hour
// on are still an hour away as the namespace's clocks tell: an absolute CLOCK_MONOTONIC
// timerfd (its expiry kept: now + time left is its deadline), a relative CLOCK_BOOTTIME
// timerfd and an absolute CLOCK_BOOTTIME posix timer (time left kept: not due yet, not later
// than an hour), and a child asleep in clock_nanosleep(TIMER_ABSTIME) (still asleep; SIGUSR2
// wakes it at the end). A timer moved to the host's clocks would be off by days: fired at once
// or due days late. The slack of kSlack covers how a restore rounds, not how long it takes.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zdtmlib.h"

static const long long kNs = 1000000000ll;
static const long long kHour = 3600 * kNs;
static const long long kSlack = 10 * kNs;

static long long ns_of(const struct timespec *t) { return t->tv_sec * kNs + t->tv_nsec; }

static long long vdso_now(clockid_t c) {
  struct timespec t;
  if (clock_gettime(c, &t)) test_fail_errno("clock_gettime(%d)", c);
  return ns_of(&t);
}

static long long raw_now(clockid_t c) {
  struct timespec t;
  if (syscall(SYS_clock_gettime, c, &t)) test_fail_errno("syscall clock_gettime(%d)", c);
  return ns_of(&t);
}

static struct timespec ts_of(long long ns) {
  struct timespec t = {(time_t)(ns / kNs), (long)(ns % kNs)};
  return t;
}

// The vDSO's reading and the kernel's, in order: vDSO <= syscall <= vDSO.
static int vdso_agrees(clockid_t c) {
  long long a = vdso_now(c), s = raw_now(c), b = vdso_now(c);
  return a <= s && s <= b;
}

static void check_vdso(clockid_t c, const char *name) {
  if (!vdso_agrees(c))
    test_fail("%s: the vDSO does not give the namespace's time (vDSO %lld, syscall %lld)", name,
              vdso_now(c), raw_now(c));
}

// Time left on a timer whose deadline on clock `c` is `deadline`, read between two clock
// readings: `exact` (an absolute expiry kept) or at most an hour and not due (time left kept).
static void check_left(const char *what, clockid_t c, long long deadline, long long left, int exact,
                       long long t0, long long t1) {
  if (left <= 0) test_fail("%s: fired or disarmed", what);
  if (left > kHour) test_fail("%s: %lld s left, more than the hour it had", what, left / kNs);
  if (t1 + left < deadline - kSlack)
    test_fail("%s: due %lld s before its deadline", what, (deadline - t1 - left) / kNs);
  if (exact && t0 + left > deadline + kSlack)
    test_fail("%s: due %lld s after its deadline", what, (t0 + left - deadline) / kNs);
  (void)c;
}

static volatile sig_atomic_t woken;
static void on_usr2(int sig) {
  (void)sig;
  woken = 1;
}

int main(void) {
  test_init();
  char offsets[256], now_offsets[256];
  if (test_read_file("/proc/self/timens_offsets", offsets, sizeof offsets) < 0)
    test_fail_errno("read timens_offsets");
  if (strstr(offsets, "monotonic           0         0"))
    test_fail("not in a time namespace with offsets: %s", offsets);
  check_vdso(CLOCK_MONOTONIC, "CLOCK_MONOTONIC");
  const long long mono0 = vdso_now(CLOCK_MONOTONIC), boot0 = vdso_now(CLOCK_BOOTTIME);
  const long long deadline_mono = mono0 + kHour, deadline_boot = boot0 + kHour;

  int abs_fd = timerfd_create(CLOCK_MONOTONIC, 0);
  int rel_fd = timerfd_create(CLOCK_BOOTTIME, 0);
  if (abs_fd < 0 || rel_fd < 0) test_fail_errno("timerfd_create");
  struct itimerspec abs_spec = {{0, 0}, ts_of(deadline_mono)};
  if (timerfd_settime(abs_fd, TFD_TIMER_ABSTIME, &abs_spec, NULL)) test_fail_errno("timerfd abs");
  struct itimerspec rel_spec = {{0, 0}, ts_of(kHour)};
  if (timerfd_settime(rel_fd, 0, &rel_spec, NULL)) test_fail_errno("timerfd rel");
  const long long rel_deadline = vdso_now(CLOCK_BOOTTIME) + kHour;

  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGUSR1;
  timer_t timer;
  if (timer_create(CLOCK_BOOTTIME, &sev, &timer)) test_fail_errno("timer_create");
  struct itimerspec t_spec = {{0, 0}, ts_of(deadline_boot)};
  if (timer_settime(timer, TIMER_ABSTIME, &t_spec, NULL)) test_fail_errno("timer_settime");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  if (sigaction(SIGUSR2, &sa, NULL)) test_fail_errno("sigaction");
  int up[2];
  if (pipe(up)) test_fail_errno("pipe");
  pid_t kid = fork();
  if (kid < 0) test_fail_errno("fork");
  if (kid == 0) {
    close(3);
    close(up[0]);
    close(up[1]);  // the parent's read returns: the child is about to sleep
    struct timespec until = ts_of(deadline_mono);
    int r;
    do r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
    while (r == EINTR && !woken);
    if (r != EINTR) _exit(3);  // woke without the parent's signal: an hour early
    _exit(vdso_agrees(CLOCK_MONOTONIC) && vdso_agrees(CLOCK_BOOTTIME) ? 0 : 4);
  }
  close(up[1]);
  char c;
  if (read(up[0], &c, 1) != 0) test_fail("child pipe");
  close(up[0]);
  // Ready only once the child sleeps: a SIGUSR2 sent before it called clock_nanosleep would
  // leave it asleep for the hour. /proc/KID/syscall names the call it is blocked in; KID as
  // the mounted proc numbers it (in a pid namespace of its own too): thread-self/children.
  char path[64], sc[256];
  if (test_read_file("/proc/thread-self/children", sc, sizeof sc) < 0)
    test_fail_errno("read children");
  snprintf(path, sizeof path, "/proc/%d/syscall", atoi(sc));
  for (;;) {
    if (test_read_file(path, sc, sizeof sc) < 0) test_fail_errno("read %s", path);
    if (atoi(sc) == SYS_clock_nanosleep) break;
    sched_yield();
  }

  test_ready();
  test_wait();

  if (test_read_file("/proc/self/timens_offsets", now_offsets, sizeof now_offsets) < 0)
    test_fail_errno("read timens_offsets");
  if (strcmp(offsets, now_offsets)) test_fail("offsets were\n%s now\n%s", offsets, now_offsets);
  check_vdso(CLOCK_MONOTONIC, "CLOCK_MONOTONIC");
  check_vdso(CLOCK_BOOTTIME, "CLOCK_BOOTTIME");
  if (vdso_now(CLOCK_MONOTONIC) < mono0) test_fail("CLOCK_MONOTONIC went back");
  if (vdso_now(CLOCK_BOOTTIME) < boot0) test_fail("CLOCK_BOOTTIME went back");

  struct itimerspec cur;
  long long t0 = raw_now(CLOCK_MONOTONIC);
  if (timerfd_gettime(abs_fd, &cur)) test_fail_errno("timerfd_gettime");
  check_left("absolute CLOCK_MONOTONIC timerfd", CLOCK_MONOTONIC, deadline_mono,
             ns_of(&cur.it_value), 1, t0, raw_now(CLOCK_MONOTONIC));
  t0 = raw_now(CLOCK_BOOTTIME);
  if (timerfd_gettime(rel_fd, &cur)) test_fail_errno("timerfd_gettime");
  check_left("relative CLOCK_BOOTTIME timerfd", CLOCK_BOOTTIME, rel_deadline, ns_of(&cur.it_value),
             0, t0, raw_now(CLOCK_BOOTTIME));
  t0 = raw_now(CLOCK_BOOTTIME);
  if (timer_gettime(timer, &cur)) test_fail_errno("timer_gettime");
  check_left("absolute CLOCK_BOOTTIME posix timer", CLOCK_BOOTTIME, deadline_boot,
             ns_of(&cur.it_value), 0, t0, raw_now(CLOCK_BOOTTIME));

  if (kill(kid, SIGUSR2)) test_fail_errno("kill child");
  int st;
  if (waitpid(kid, &st, 0) != kid) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("child status %#x (3: its absolute sleep ended early, 4: its vDSO is off)", st);
  return test_pass();
}
