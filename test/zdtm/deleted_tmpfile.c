// An O_TMPFILE file (never had a name; /proc shows "DIR/#INO (deleted)") with contents and an
// offset: after restore it is again an unnamed file of that directory, with its contents, mode
// and offset, and can still be given a name with linkat.
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kLen = 20000 };

int main(void) {
  test_init();
  char top[PATH_MAX];
  if (!getcwd(top, sizeof(top))) test_fail_errno("getcwd");
  int fd = open(".", O_TMPFILE | O_RDWR, 0604);
  if (fd < 0) test_fail_errno("O_TMPFILE");
  fchmod(fd, 0604);
  static char data[kLen];
  test_fill(data, kLen, 0, 0x7e);
  if (write(fd, data, kLen) != kLen) test_fail_errno("write");
  if (lseek(fd, 1234, SEEK_SET) != 1234) test_fail_errno("lseek");

  test_ready();
  test_wait();

  struct stat st;
  if (fstat(fd, &st)) test_fail_errno("fstat");
  if (!S_ISREG(st.st_mode) || st.st_nlink != 0) test_fail("not an unnamed regular file");
  if ((st.st_mode & 07777) != 0604) test_fail("mode %o, want 604", st.st_mode & 07777);
  if (st.st_size != kLen) test_fail("size %ld", (long)st.st_size);
  if (lseek(fd, 0, SEEK_CUR) != 1234) test_fail("offset %ld", (long)lseek(fd, 0, SEEK_CUR));
  static char back[kLen];
  if (pread(fd, back, kLen, 0) != kLen || memcmp(back, data, kLen)) test_fail("content differs");
  char path[64], link[PATH_MAX], want[PATH_MAX + 64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof(link) - 1);
  if (n < 0) test_fail_errno("readlink");
  link[n] = 0;
  snprintf(want, sizeof(want), "%s/#%lu (deleted)", top, (unsigned long)st.st_ino);
  if (strcmp(link, want)) test_fail("fd link '%s', want '%s'", link, want);
  // Still linkable (no O_EXCL): give it a name, read it back through the name.
  if (linkat(AT_FDCWD, path, AT_FDCWD, "named", AT_SYMLINK_FOLLOW)) test_fail_errno("linkat");
  int again = open("named", O_RDONLY);
  if (again < 0 || pread(again, back, kLen, 0) != kLen || memcmp(back, data, kLen))
    test_fail("linked name does not show the content");
  return test_pass();
}
