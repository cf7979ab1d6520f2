// clock_gettime, gettimeofday and time (vDSO calls) work after restore and time goes forward;
// the vDSO sits where the saved auxv says. With "proxy" (test/e2e/vdso_test.cc restores it as
// if dumped on another kernel build), the saved auxv's address holds crrestore's jumps instead:
// the calls, through libc's pointers into the dumped vDSO, must still work.
#define _GNU_SOURCE
#include <string.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <time.h>

#include "zdtmlib.h"

static int ts_before(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec <= b->tv_nsec);
}

int main(int argc, char **argv) {
  test_init();
  const int proxy = argc > 1 && !strcmp(argv[1], "proxy");
  struct timespec real0, mono0, boot0;
  struct timeval tv0;
  clock_gettime(CLOCK_REALTIME, &real0);
  clock_gettime(CLOCK_MONOTONIC, &mono0);
  clock_gettime(CLOCK_BOOTTIME, &boot0);
  gettimeofday(&tv0, NULL);
  unsigned long vdso = getauxval(AT_SYSINFO_EHDR);

  test_ready();
  test_wait();

  char line[512];
  if (test_maps_line((void *)vdso, line, sizeof(line)) != 0)
    test_fail("nothing mapped at AT_SYSINFO_EHDR %#lx", vdso);
  if (!proxy && !strstr(line, "[vdso]")) test_fail("no [vdso] at AT_SYSINFO_EHDR %#lx", vdso);
  if (proxy && (strstr(line, "[vdso]") || !strstr(line, "r-xp")))
    test_fail("not crrestore's jumps at the dumped vDSO address: %s", line);
  time_t t0 = time(NULL);
  struct timespec real1, mono1, mono2, boot1;
  struct timeval tv1;
  if (clock_gettime(CLOCK_REALTIME, &real1)) test_fail_errno("CLOCK_REALTIME");
  if (clock_gettime(CLOCK_MONOTONIC, &mono1)) test_fail_errno("CLOCK_MONOTONIC");
  if (clock_gettime(CLOCK_BOOTTIME, &boot1)) test_fail_errno("CLOCK_BOOTTIME");
  if (gettimeofday(&tv1, NULL)) test_fail_errno("gettimeofday");
  if (!ts_before(&real0, &real1)) test_fail("CLOCK_REALTIME went back");
  if (!ts_before(&mono0, &mono1)) test_fail("CLOCK_MONOTONIC went back");
  if (!ts_before(&boot0, &boot1)) test_fail("CLOCK_BOOTTIME went back");
  if (tv1.tv_sec < tv0.tv_sec || (tv1.tv_sec == tv0.tv_sec && tv1.tv_usec < tv0.tv_usec))
    test_fail("gettimeofday went back");
  if (time(NULL) < t0) test_fail("time went back");
  for (int i = 0; i < 1000; i++) {
    clock_gettime(CLOCK_MONOTONIC, &mono2);
    if (!ts_before(&mono1, &mono2)) test_fail("CLOCK_MONOTONIC not monotonic after restore");
    mono1 = mono2;
  }
  return test_pass();
}
