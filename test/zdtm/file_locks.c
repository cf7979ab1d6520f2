// Every kind of file lock, checked after restore from a process outside the locks' owners:
// POSIX locks with two ranges (read, write), OFD locks, flock, a lease, a flock and a POSIX
// lock on a deleted file, and a POSIX lock held by a child. The checker is forked after the
// restore and opens the files anew, so it asks the kernel what is really held and by whom.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static void setlk(int fd, int cmd, short type, off_t start, off_t len, const char *what) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  if (fcntl(fd, cmd, &fl) != 0) test_fail_errno("%s", what);
}

static int report = -1;  // the checker's pipe to the parent: a failure message, or nothing

static void check_fail(const char *fmt, int a, int b) {
  char msg[256];
  int n = snprintf(msg, sizeof(msg), fmt, a, b);
  if (write(report, msg, (size_t)n) != n) _exit(2);
  _exit(1);
}

// Asks which lock conflicts with `type` over [start, start+len) and checks it is `want_type`
// over [want_start, +want_len) held by `want_pid` (F_UNLCK: none).
static void expect(int fd, int cmd, short type, off_t start, off_t len, short want_type,
                   off_t want_start, off_t want_len, pid_t want_pid, const char *what) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  if (fcntl(fd, cmd, &fl) != 0) check_fail("%s: getlk failed", 0, 0);
  char fmt[200];
  if (fl.l_type != want_type) {
    snprintf(fmt, sizeof(fmt), "%s: lock type %%d, want %%d", what);
    check_fail(fmt, fl.l_type, want_type);
  }
  if (want_type == F_UNLCK) return;
  if (fl.l_start != want_start || fl.l_len != want_len) {
    snprintf(fmt, sizeof(fmt), "%s: range start %%d len %d, want start %%d", what, (int)fl.l_len);
    check_fail(fmt, (int)fl.l_start, (int)want_start);
  }
  if (fl.l_pid != want_pid) {
    snprintf(fmt, sizeof(fmt), "%s: held by pid %%d, want %%d", what);
    check_fail(fmt, fl.l_pid, want_pid);
  }
}

static int open_or_fail(const char *path, int flags) {
  int fd = open(path, flags);
  if (fd < 0) check_fail("checker: open failed (%d)", errno, 0);
  return fd;
}

static void checker(pid_t parent, pid_t child, int deleted_fd) {
  int fd = open_or_fail("posix", O_RDWR);
  expect(fd, F_GETLK, F_WRLCK, 0, 0, F_WRLCK, 5, 10, parent, "posix write 5-14");
  expect(fd, F_GETLK, F_RDLCK, 0, 0, F_WRLCK, 5, 10, parent, "posix write 5-14 vs read");
  expect(fd, F_GETLK, F_WRLCK, 15, 85, F_UNLCK, 0, 0, 0, "posix 15-99 free");
  expect(fd, F_GETLK, F_WRLCK, 100, 1, F_RDLCK, 100, 0, parent, "posix read 100-EOF");
  expect(fd, F_GETLK, F_RDLCK, 100, 0, F_UNLCK, 0, 0, 0, "posix read 100-EOF shared");
  fd = open_or_fail("ofd", O_RDWR);
  expect(fd, F_OFD_GETLK, F_WRLCK, 0, 10, F_RDLCK, 3, 7, -1, "ofd read 3-9");
  expect(fd, F_OFD_GETLK, F_RDLCK, 0, 0, F_WRLCK, 20, 10, -1, "ofd write 20-29");
  expect(fd, F_OFD_GETLK, F_WRLCK, 10, 10, F_UNLCK, 0, 0, 0, "ofd 10-19 free");
  fd = open_or_fail("flock", O_RDONLY);
  if (flock(fd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
    check_fail("flock file: LOCK_SH not refused (errno %d)", errno, 0);
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/fd/%d", parent, deleted_fd);
  fd = open_or_fail(path, O_RDWR);
  if (flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
    check_fail("deleted file: LOCK_EX not refused (errno %d)", errno, 0);
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) check_fail("deleted file: LOCK_SH refused (%d)", errno, 0);
  expect(fd, F_GETLK, F_RDLCK, 0, 0, F_WRLCK, 0, 1, parent, "deleted posix write 0-0");
  fd = open_or_fail("childlock", O_RDWR);
  expect(fd, F_GETLK, F_RDLCK, 0, 0, F_WRLCK, 0, 100, child, "child's posix write 0-99");
  _exit(0);
}

int main(void) {
  test_init();
  int posix = open("posix", O_RDWR | O_CREAT, 0644);
  int ofd = open("ofd", O_RDWR | O_CREAT, 0644);
  int fl = open("flock", O_RDWR | O_CREAT, 0644);
  int del = open("gone", O_RDWR | O_CREAT, 0644);
  int lease_w = open("lease", O_RDWR | O_CREAT, 0644);
  if (posix < 0 || ofd < 0 || fl < 0 || del < 0 || lease_w < 0) test_fail_errno("open");
  close(lease_w);  // a read lease wants no writer
  int lease = open("lease", O_RDONLY);
  if (lease < 0) test_fail_errno("open lease");
  setlk(posix, F_SETLK, F_WRLCK, 5, 10, "posix write 5-14");
  setlk(posix, F_SETLK, F_RDLCK, 100, 0, "posix read 100-EOF");
  setlk(ofd, F_OFD_SETLK, F_RDLCK, 3, 7, "ofd read 3-9");
  setlk(ofd, F_OFD_SETLK, F_WRLCK, 20, 10, "ofd write 20-29");
  if (flock(fl, LOCK_EX | LOCK_NB) != 0) test_fail_errno("flock");
  if (write(del, "deleted", 7) != 7) test_fail_errno("write gone");
  if (flock(del, LOCK_SH | LOCK_NB) != 0) test_fail_errno("flock gone");
  setlk(del, F_SETLK, F_WRLCK, 0, 1, "posix write 0 on gone");
  if (unlink("gone") != 0) test_fail_errno("unlink");
  if (fcntl(lease, F_SETLEASE, F_RDLCK) != 0) test_fail_errno("F_SETLEASE");

  int cmd[2], ack[2];
  if (pipe(cmd) || pipe(ack)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);
    close(cmd[1]);
    close(ack[0]);
    int c = open("childlock", O_RDWR | O_CREAT, 0644);
    struct flock f = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
    if (c < 0 || fcntl(c, F_SETLK, &f) != 0) _exit(3);
    if (write(ack[1], "k", 1) != 1) _exit(4);
    char ch;
    _exit(read(cmd[0], &ch, 1) == 1 && ch == 'q' ? 7 : 8);
  }
  close(cmd[0]);
  close(ack[1]);
  char ch;
  if (read(ack[0], &ch, 1) != 1) test_fail("child did not take its lock");

  test_ready();
  test_wait();

  if (fcntl(lease, F_GETLEASE) != F_RDLCK)
    test_fail("lease is %d, want F_RDLCK", fcntl(lease, F_GETLEASE));
  int rep[2];
  if (pipe(rep)) test_fail_errno("pipe");
  pid_t me = getpid();
  pid_t chk = fork();
  if (chk < 0) test_fail_errno("fork checker");
  if (chk == 0) {
    close(rep[0]);
    report = rep[1];
    checker(me, child, del);
  }
  close(rep[1]);
  char msg[256] = {0};
  ssize_t n = read(rep[0], msg, sizeof(msg) - 1);
  int st;
  if (waitpid(chk, &st, 0) != chk) test_fail_errno("waitpid checker");
  if (n > 0) test_fail("%s", msg);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) test_fail("checker status %#x", st);
  // The owner can still let go and take its locks again.
  setlk(posix, F_SETLK, F_UNLCK, 0, 0, "posix unlock");
  setlk(posix, F_SETLK, F_WRLCK, 0, 0, "posix relock");
  if (write(cmd[1], "q", 1) != 1) test_fail_errno("write to child");
  if (waitpid(child, &st, 0) != child) test_fail_errno("waitpid child");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) test_fail("child status %#x", st);
  return test_pass();
}
