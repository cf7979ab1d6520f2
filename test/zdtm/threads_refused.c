// Two threads: crdump must refuse the process (multi-threaded) and leave it intact.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "zdtmlib.h"

static int p[2];

static void *worker(void *arg) {
  (void)arg;
  char c;
  while (read(p[0], &c, 1) < 0) {
  }  // parked until main lets it go
  return (void *)0x5a;
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
  test_ready();
  test_wait();
  if (write(p[1], "x", 1) != 1) test_fail_errno("write");
  void *ret;
  if (pthread_join(t, &ret) || ret != (void *)0x5a) test_fail("worker thread lost");
  return test_pass();
}
