// Dumped while in nanosleep(2 s): after restore the call returns 0 and, on CLOCK_MONOTONIC, at
// least the requested time has passed since it started (no upper bound). SIGTERM stays blocked
// during the sleep, so the harness's SIGTERM is only taken afterwards.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <time.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, NULL);
  test_ready();
  struct timespec t0, t1, req = {2, 0}, rem = {0, 0};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int r = nanosleep(&req, &rem);
  int err = errno;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  sigprocmask(SIG_UNBLOCK, &term, NULL);
  test_wait();

  if (r != 0) {
    errno = err;
    test_fail_errno("nanosleep returned %d (rem %ld.%09ld)", r, (long)rem.tv_sec, rem.tv_nsec);
  }
  long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec);
  if (ns < 2000000000ll) test_fail("nanosleep(2 s) returned after %lld ns", ns);
  return test_pass();
}
