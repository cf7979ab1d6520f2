// /dev/null, /dev/zero and /dev/urandom fds work after restore.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "zdtmlib.h"

static void check_dev(int fd, unsigned maj, unsigned min, const char *name) {
  struct stat st;
  if (fstat(fd, &st) || !S_ISCHR(st.st_mode) || major(st.st_rdev) != maj || minor(st.st_rdev) != min)
    test_fail("fd %d is not %s", fd, name);
}

int main(void) {
  test_init();
  int null = open("/dev/null", O_RDWR);
  int zero = open("/dev/zero", O_RDONLY);
  int urnd = open("/dev/urandom", O_RDONLY);
  if (null < 0 || zero < 0 || urnd < 0) test_fail_errno("open /dev/*");

  test_ready();
  test_wait();

  check_dev(null, 1, 3, "/dev/null");
  check_dev(zero, 1, 5, "/dev/zero");
  check_dev(urnd, 1, 9, "/dev/urandom");
  char buf[64];
  if (write(null, "abc", 3) != 3) test_fail_errno("write /dev/null");
  if (read(null, buf, sizeof(buf)) != 0) test_fail("read /dev/null not EOF");
  memset(buf, 1, sizeof(buf));
  if (read(zero, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) test_fail_errno("read /dev/zero");
  for (unsigned i = 0; i < sizeof(buf); i++)
    if (buf[i]) test_fail("/dev/zero gave a non-zero byte");
  memset(buf, 0, sizeof(buf));
  if (read(urnd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) test_fail_errno("read /dev/urandom");
  int nonzero = 0;
  for (unsigned i = 0; i < sizeof(buf); i++) nonzero |= buf[i];
  if (!nonzero) test_fail("/dev/urandom gave 64 zero bytes");
  if ((fcntl(zero, F_GETFL) & O_ACCMODE) != O_RDONLY || (fcntl(null, F_GETFL) & O_ACCMODE) != O_RDWR)
    test_fail("access modes changed");
  return test_pass();
}
