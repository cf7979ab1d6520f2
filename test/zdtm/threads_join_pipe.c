// Two threads, the simplest multi-threaded case: a worker is parked in read() on an empty pipe
// at dump time (main waits for /proc/self/task/TID/syscall to show it there before ready).
// After SIGTERM main writes one byte and joins it: the read must return that byte (EINTR or
// any error is a FAIL: the interrupted read must be restarted) and the join must see the
// worker's return value (its exit clears the tid word main's pthread_join() waits on).
// The worker blocks SIGTERM, so the harness's SIGTERM goes to main.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zdtmlib.h"

static int p[2];
static volatile pid_t worker_tid;
static char fail_msg[128];
static volatile int finished;

static void *worker(void *arg) {
  (void)arg;
  worker_tid = gettid();
  char c = 0;
  ssize_t n = read(p[0], &c, 1);  // parked until main writes
  if (n < 0)
    snprintf(fail_msg, sizeof(fail_msg), "read: %s", strerror(errno));
  else if (n != 1 || c != 'x')
    snprintf(fail_msg, sizeof(fail_msg), "read %zd bytes '%c'", n, c);
  finished = 1;
  return fail_msg[0] ? fail_msg : (void *)0x5a;
}

int main(void) {
  test_init();
  if (pipe(p)) test_fail_errno("pipe");
  // The worker inherits a mask blocking SIGTERM, so the main thread is the one woken.
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL)) test_fail("pthread_create");
  pthread_sigmask(SIG_SETMASK, &old, NULL);

  // Parked = /proc shows it inside read (polling /proc, not sleeping).
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  char raw[256] = "(not started)";
  for (;;) {
    if (worker_tid) {
      char path[64];
      snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", worker_tid);
      long n = test_read_file(path, raw, sizeof(raw) - 1);
      raw[n > 0 ? n : 0] = 0;
      char *end;
      long nr = strtol(raw, &end, 10);
      if (end != raw && nr == SYS_read) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > 20) test_fail("worker never parked in read: '%s'", raw);
    sched_yield();
  }

  test_ready();
  test_wait();
  if (write(p[1], "x", 1) != 1) test_fail_errno("write");
  void *ret;
  struct timespec limit;
  clock_gettime(CLOCK_REALTIME, &limit);
  limit.tv_sec += 20;
  int e = pthread_timedjoin_np(t, &ret, &limit);
  if (e == ETIMEDOUT)
    test_fail(finished ? "worker returned, but pthread_join() never saw it exit (tid word not "
                         "cleared: clear_child_tid lost?)"
                       : "worker still blocked in read 20 s after the write");
  if (e) test_fail("pthread_join: %s", strerror(e));
  if (ret == fail_msg) test_fail("worker: %s", fail_msg);
  if (ret != (void *)0x5a) test_fail("worker returned %p, want 0x5a", ret);
  return test_pass();
}
