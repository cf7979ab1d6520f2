// A thread in nanosleep with no `rem` pointer (as glibc's usleep calls it) at dump time: the
// kernel's restart block does not survive, and the remaining time is nowhere to be read, so the
// sleep starts over. It must end with 0, never with an EINTR the program did not ask for.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zdtmlib.h"

static volatile pid_t sleeper_tid;

static void *sleeper(void *arg) {
  (void)arg;
  sleeper_tid = (pid_t)syscall(SYS_gettid);
  struct timespec req = {1, 0};
  long r = syscall(SYS_nanosleep, &req, NULL);
  return (void *)(r == 0 ? 0L : (long)errno);
}

// True once the thread sits in nanosleep (syscall 35), from /proc/self/task/TID/syscall.
static int in_nanosleep(pid_t tid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
  long n = test_read_file(path, buf, sizeof buf - 1);
  if (n <= 0) return 0;
  buf[n] = 0;
  return atoi(buf) == SYS_nanosleep;
}

int main(void) {
  test_init();
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);  // the sleeper never sees SIGTERM
  pthread_t t;
  if (pthread_create(&t, NULL, sleeper, NULL)) test_fail("pthread_create");
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  while (sleeper_tid == 0 || !in_nanosleep(sleeper_tid)) sched_yield();
  test_ready();
  test_wait();
  void *r;
  if (pthread_join(t, &r)) test_fail("join");
  if (r != 0) test_fail("nanosleep without rem returned errno %ld", (long)r);
  return test_pass();
}
