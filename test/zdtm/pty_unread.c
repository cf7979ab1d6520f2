// A pty pair with bytes written to the master that the slave has not read: the line
// discipline cannot show them without consuming them, so crdump must refuse ("unread input")
// and leave the bytes where they are.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  char pts[64];
  if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, pts, sizeof pts) != 0)
    test_fail_errno("posix_openpt");
  int s = open(pts, O_RDWR | O_NOCTTY);
  if (s < 0) test_fail_errno("open %s", pts);
  struct termios t;
  if (tcgetattr(s, &t) != 0) test_fail_errno("tcgetattr");
  cfmakeraw(&t);
  if (tcsetattr(s, TCSANOW, &t) != 0) test_fail_errno("tcsetattr");
  if (write(m, "abc", 3) != 3) test_fail_errno("write master");
  // The bytes reach the slave's queue through the kernel's flip buffer: wait until they do.
  int queued = 0;
  while (queued != 3)
    if (ioctl(s, FIONREAD, &queued) != 0) test_fail_errno("FIONREAD");
  test_ready();
  test_wait();
  char buf[4] = {0};
  if (read(s, buf, 3) != 3 || strcmp(buf, "abc") != 0) test_fail("slave read '%s'", buf);
  return test_pass();
}
