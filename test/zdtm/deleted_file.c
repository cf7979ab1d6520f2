// A file opened, written and unlinked: its content and offset are there after restore.
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int fd = open("gone", O_RDWR | O_CREAT | O_TRUNC, 0640);
  if (fd < 0) test_fail_errno("open");
  static char data[10000];
  test_fill(data, sizeof(data), 0, 0xde);
  if (write(fd, data, sizeof(data)) != (ssize_t)sizeof(data)) test_fail_errno("write");
  if (unlink("gone")) test_fail_errno("unlink");
  if (lseek(fd, 777, SEEK_SET) != 777) test_fail_errno("lseek");

  test_ready();
  test_wait();

  struct stat st;
  if (fstat(fd, &st)) test_fail_errno("fstat");
  if (st.st_nlink != 0) test_fail("nlink %lu, want 0 (still unlinked)", (unsigned long)st.st_nlink);
  if (st.st_size != (off_t)sizeof(data)) test_fail("size %ld", (long)st.st_size);
  if ((st.st_mode & 07777) != 0640) test_fail("mode %o", st.st_mode & 07777);
  if (lseek(fd, 0, SEEK_CUR) != 777) test_fail("offset %ld, want 777", (long)lseek(fd, 0, SEEK_CUR));
  static char back[10000];
  if (pread(fd, back, sizeof(back), 0) != (ssize_t)sizeof(back) || memcmp(back, data, sizeof(back)))
    test_fail("content differs");
  char link[PATH_MAX], path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof(link) - 1);
  if (n < 0) test_fail_errno("readlink");
  link[n] = 0;
  if (!strstr(link, "(deleted)")) test_fail("fd link '%s' not deleted", link);
  if (access("gone", F_OK) == 0) test_fail("'gone' reappeared in the temp dir");
  return test_pass();
}
