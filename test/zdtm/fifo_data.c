// A FIFO in the temp dir with both ends held and data queued.
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kLen = 4000 };

int main(void) {
  test_init();
  if (mkfifo("fifo", 0600)) test_fail_errno("mkfifo");
  int r = open("fifo", O_RDONLY | O_NONBLOCK);
  int w = open("fifo", O_WRONLY);
  if (r < 0 || w < 0) test_fail_errno("open fifo");
  static char data[kLen];
  test_fill(data, kLen, 0, 0xf0);
  if (write(w, data, kLen) != kLen) test_fail_errno("write fifo");
  struct stat st0;
  stat("fifo", &st0);

  test_ready();
  test_wait();

  struct stat st;
  if (fstat(r, &st) || !S_ISFIFO(st.st_mode) || st.st_ino != st0.st_ino) test_fail("read end is not the fifo");
  if (fstat(w, &st) || !S_ISFIFO(st.st_mode) || st.st_ino != st0.st_ino) test_fail("write end is not the fifo");
  if (!(fcntl(r, F_GETFL) & O_NONBLOCK)) test_fail("read end lost O_NONBLOCK");
  int queued = -1;
  ioctl(r, FIONREAD, &queued);
  if (queued != kLen) test_fail("%d bytes queued, want %d", queued, kLen);
  static char back[kLen + 10];
  ssize_t n = read(r, back, sizeof(back));
  if (n != kLen || memcmp(back, data, kLen)) test_fail("fifo data differs (%zd bytes)", n);
  if (write(w, "q", 1) != 1 || read(r, back, 1) != 1 || back[0] != 'q') test_fail("fifo ends not connected");
  return test_pass();
}
