// timerfds after restore (issue 11: their times came back wrong). No timing assertion that
// depends on how long the dump takes: only orderings that hold however long it was.
//   rel       CLOCK_MONOTONIC, relative, 1000 s, one-shot: 0 < left <= 1000 s, no period.
//   periodic  CLOCK_BOOTTIME, 500 s then every 700 s: 0 < left <= 500 s, period 700 s.
//   abs       CLOCK_REALTIME, TFD_TIMER_ABSTIME at now + 1000 s: it keeps its expiry, so after
//             restore now + left <= that expiry (a relative re-arm would push it later).
//   expired   CLOCK_MONOTONIC, fired at once, every 1000 s, not read: it keeps ticking, so
//             0 < left <= 1000 s, period 1000 s, and a read returns at least one expiration.
#define _GNU_SOURCE
#include <poll.h>
#include <stdint.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "zdtmlib.h"

static int64_t ns_of(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int arm(int clock, int flags, struct timespec value, time_t interval_s) {
  int fd = timerfd_create(clock, TFD_NONBLOCK);
  if (fd < 0) test_fail_errno("timerfd_create(%d)", clock);
  struct itimerspec its = {.it_value = value, .it_interval = {interval_s, 0}};
  if (timerfd_settime(fd, flags, &its, NULL) != 0) test_fail_errno("timerfd_settime");
  return fd;
}

static void check_left(int fd, const char *name, int64_t max_ns, int64_t period_ns) {
  struct itimerspec now;
  if (timerfd_gettime(fd, &now) != 0) test_fail_errno("%s: timerfd_gettime", name);
  int64_t left = ns_of(now.it_value);
  if (left <= 0 || left > max_ns)
    test_fail("%s: %lld ns left, want in (0, %lld]", name, (long long)left, (long long)max_ns);
  if (ns_of(now.it_interval) != period_ns)
    test_fail("%s: period %lld ns, want %lld", name, (long long)ns_of(now.it_interval),
              (long long)period_ns);
}

int main(void) {
  test_init();
  const int64_t s = 1000000000;
  int rel = arm(CLOCK_MONOTONIC, 0, (struct timespec){1000, 0}, 0);
  int periodic = arm(CLOCK_BOOTTIME, 0, (struct timespec){500, 0}, 700);
  struct timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  const int64_t abs_expiry = ns_of(rt) + 1000 * s;
  int abs = arm(CLOCK_REALTIME, TFD_TIMER_ABSTIME,
                (struct timespec){(time_t)(abs_expiry / s), (long)(abs_expiry % s)}, 0);
  int expired = arm(CLOCK_MONOTONIC, 0, (struct timespec){0, 1}, 1000);
  struct pollfd p = {expired, POLLIN, 0};
  if (poll(&p, 1, -1) != 1) test_fail_errno("poll");  // fired, not read
  test_ready();
  test_wait();
  check_left(rel, "rel", 1000 * s, 0);
  check_left(periodic, "periodic", 500 * s, 700 * s);
  check_left(abs, "abs", 1000 * s, 0);
  struct itimerspec now;
  clock_gettime(CLOCK_REALTIME, &rt);
  const int64_t before = ns_of(rt);
  if (timerfd_gettime(abs, &now) != 0) test_fail_errno("abs: timerfd_gettime");
  if (before + ns_of(now.it_value) > abs_expiry)
    test_fail("abs: expires %lld ns after its TFD_TIMER_ABSTIME time",
              (long long)(before + ns_of(now.it_value) - abs_expiry));
  check_left(expired, "expired", 1000 * s, 1000 * s);
  uint64_t ticks = 0;
  if (read(expired, &ticks, sizeof ticks) != sizeof ticks || ticks < 1)
    test_fail("expired: read %llu expirations", (unsigned long long)ticks);
  return test_pass();
}
