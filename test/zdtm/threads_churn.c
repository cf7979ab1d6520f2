// Threads come and go during the dump: a spawner thread keeps creating short-lived detached
// threads, each adds one to `finished` and exits. crdump must freeze a consistent set (threads
// created or exiting meanwhile included or not, never half) and the restored process must go on:
// after SIGTERM every thread ever created has finished exactly once, and new threads still work.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>

#include "zdtmlib.h"

static atomic_long created, finished;
static atomic_int stop;

static void *short_lived(void *arg) {
  (void)arg;
  atomic_fetch_add(&finished, 1);
  return NULL;
}

static void *spawner(void *arg) {
  (void)arg;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 << 10);
  while (!atomic_load(&stop)) {
    pthread_t t;
    if (pthread_create(&t, &attr, short_lived, NULL) != 0) continue;  // EAGAIN: try again
    atomic_fetch_add(&created, 1);
  }
  return NULL;
}

static void *joined(void *arg) { return arg; }

int main(void) {
  test_init();
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);  // inherited by every thread but main
  pthread_t sp;
  if (pthread_create(&sp, NULL, spawner, NULL)) test_fail("pthread_create spawner");
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  while (atomic_load(&created) < 1000) sched_yield();  // churning for real before the dump
  test_ready();
  test_wait();
  atomic_store(&stop, 1);
  if (pthread_join(sp, NULL)) test_fail("join spawner");
  // Detached threads cannot be joined: wait for the last ones to count themselves.
  long c = atomic_load(&created);
  for (long spins = 0; atomic_load(&finished) < c; ++spins) {
    if (spins > 100000000L) test_fail("%ld threads created, %ld finished", c, atomic_load(&finished));
    sched_yield();
  }
  if (atomic_load(&finished) != c)
    test_fail("%ld threads created, %ld finished", c, atomic_load(&finished));
  pthread_t t;
  void *r = NULL;
  if (pthread_create(&t, NULL, joined, (void *)0x77) || pthread_join(t, &r) || r != (void *)0x77)
    test_fail("a new thread after restore");
  return test_pass();
}
