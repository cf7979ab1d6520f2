// A pipe with both ends held and 10 KiB queued: after restore the same bytes come out, and the
// pipe keeps its capacity.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kLen = 10 * 1024 };

int main(void) {
  test_init();
  int p[2];
  if (pipe(p)) test_fail_errno("pipe");
  static char data[kLen];
  test_fill(data, sizeof(data), 0, 0x99);
  if (write(p[1], data, 3000) != 3000 || write(p[1], data + 3000, kLen - 3000) != kLen - 3000)
    test_fail_errno("write pipe");
  int cap0 = fcntl(p[0], F_GETPIPE_SZ);

  test_ready();
  test_wait();

  int queued = -1;
  if (ioctl(p[0], FIONREAD, &queued) || queued != kLen) test_fail("%d bytes queued, want %d", queued, kLen);
  if (fcntl(p[0], F_GETPIPE_SZ) != cap0) test_fail("pipe size %d, want %d", fcntl(p[0], F_GETPIPE_SZ), cap0);
  static char back[kLen];
  size_t got = 0;
  while (got < kLen) {
    ssize_t n = read(p[0], back + got, kLen - got);
    if (n <= 0) test_fail_errno("read pipe after %zu bytes", got);
    got += (size_t)n;
  }
  long bad = test_check(back, kLen, 0, 0x99);
  if (bad >= 0) test_fail("pipe data differs at byte %ld", bad);
  // Both ends still connected to each other.
  if (write(p[1], "z", 1) != 1 || read(p[0], back, 1) != 1 || back[0] != 'z') test_fail("pipe ends not connected");
  return test_pass();
}
