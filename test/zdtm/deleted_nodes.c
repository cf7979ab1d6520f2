// A directory, a FIFO with queued data (both ends held) and copies of /dev/null and /dev/zero
// made with mknod, each removed while open: after restore each fd is still on a removed node of
// the same type, name, mode and device, and works as before.
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kLen = 3000 };

static void check_link(int fd, const char* top, const char* name) {
  char path[64], link[PATH_MAX], want[PATH_MAX + 64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof(link) - 1);
  if (n < 0) test_fail_errno("readlink fd %d", fd);
  link[n] = 0;
  snprintf(want, sizeof(want), "%s/%s (deleted)", top, name);
  if (strcmp(link, want)) test_fail("fd %d is '%s', want '%s'", fd, link, want);
}

static void check_node(int fd, mode_t type, mode_t perm, const char* what) {
  struct stat st;
  if (fstat(fd, &st)) test_fail_errno("fstat %s", what);
  if ((st.st_mode & S_IFMT) != type) test_fail("%s: type %o", what, st.st_mode & S_IFMT);
  if ((st.st_mode & 07777) != perm) test_fail("%s: mode %o, want %o", what, st.st_mode & 07777, perm);
  if (st.st_nlink != 0) test_fail("%s: nlink %lu, want 0", what, (unsigned long)st.st_nlink);
}

int main(int argc, char** argv) {
  test_init();
  const int refused = argc > 1 && !strcmp(argv[1], "refused");
  char top[PATH_MAX];
  if (!getcwd(top, sizeof(top))) test_fail_errno("getcwd");
  umask(0);
  if (refused) {
    // /dev/kmsg's device (1:11): not one crrestore may create.
    if (mknod("mykmsg", S_IFCHR | 0600, makedev(1, 11))) test_fail_errno("mknod kmsg");
    int k = open("mykmsg", O_WRONLY);
    if (k < 0) test_fail_errno("open mykmsg");
    unlink("mykmsg");
    test_ready();
    test_wait();
    return test_pass();
  }
  if (mkdir("dir", 0705)) test_fail_errno("mkdir");
  int dir = open("dir", O_RDONLY | O_DIRECTORY);
  if (dir < 0) test_fail_errno("open dir");
  if (rmdir("dir")) test_fail_errno("rmdir");

  if (mkfifo("fifo", 0640)) test_fail_errno("mkfifo");
  int r = open("fifo", O_RDONLY | O_NONBLOCK);
  int w = open("fifo", O_WRONLY);
  if (r < 0 || w < 0) test_fail_errno("open fifo");
  static char data[kLen];
  test_fill(data, kLen, 0, 0x5e);
  if (write(w, data, kLen) != kLen) test_fail_errno("write fifo");
  if (unlink("fifo")) test_fail_errno("unlink fifo");

  if (mknod("mynull", S_IFCHR | 0620, makedev(1, 3))) test_fail_errno("mknod null");
  if (mknod("myzero", S_IFCHR | 0604, makedev(1, 5))) test_fail_errno("mknod zero");
  int null = open("mynull", O_RDWR);
  int zero = open("myzero", O_RDONLY);
  if (null < 0 || zero < 0) test_fail_errno("open devices");
  if (unlink("mynull") || unlink("myzero")) test_fail_errno("unlink devices");

  test_ready();
  test_wait();

  check_node(dir, S_IFDIR, 0705, "dir");
  check_link(dir, top, "dir");
  if (openat(dir, "x", O_CREAT | O_WRONLY, 0600) >= 0) test_fail("made a file in the removed dir");

  check_node(r, S_IFIFO, 0640, "fifo read end");
  check_node(w, S_IFIFO, 0640, "fifo write end");
  check_link(r, top, "fifo");
  check_link(w, top, "fifo");
  struct stat sr, sw;
  fstat(r, &sr);
  fstat(w, &sw);
  if (sr.st_ino != sw.st_ino) test_fail("fifo ends on different inodes");
  if (!(fcntl(r, F_GETFL) & O_NONBLOCK)) test_fail("read end lost O_NONBLOCK");
  if ((fcntl(w, F_GETFL) & O_ACCMODE) != O_WRONLY) test_fail("write end not O_WRONLY");
  int queued = -1;
  ioctl(r, FIONREAD, &queued);
  if (queued != kLen) test_fail("%d bytes queued, want %d", queued, kLen);
  static char back[kLen + 10];
  if (read(r, back, sizeof(back)) != kLen || memcmp(back, data, kLen)) test_fail("fifo data differs");
  if (write(w, "q", 1) != 1 || read(r, back, 1) != 1 || back[0] != 'q')
    test_fail("fifo ends not connected");

  check_node(null, S_IFCHR, 0620, "mynull");
  check_node(zero, S_IFCHR, 0604, "myzero");
  check_link(null, top, "mynull");
  check_link(zero, top, "myzero");
  struct stat sn;
  fstat(null, &sn);
  if (sn.st_rdev != makedev(1, 3)) test_fail("mynull is %u:%u", major(sn.st_rdev), minor(sn.st_rdev));
  if (write(null, data, 100) != 100 || read(null, back, 10) != 0) test_fail("mynull is not null");
  memset(back, 1, 64);
  if (read(zero, back, 64) != 64) test_fail_errno("read myzero");
  for (int i = 0; i < 64; i++)
    if (back[i]) test_fail("myzero gave a non-zero byte");
  return test_pass();
}
