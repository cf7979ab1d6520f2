// A parent and a child share one open file description (inherited across fork) and talk over
// pipes with data in flight at dump time. After restore the sharing is real: the child's write
// moves the parent's offset; the bytes queued in each direction arrive; the child's exit
// status reaches the parent.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int f = open("shared.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (f < 0) test_fail_errno("open");
  if (write(f, "0123456789", 10) != 10) test_fail_errno("write");
  int down[2], up[2];
  if (pipe(down) || pipe(up)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);  // only the parent reports ready
    close(down[1]);
    close(up[0]);
    // Queued before the dump, read after the restore by the parent.
    if (write(up[1], "from-child", 10) != 10) _exit(20);
    char cmd[8] = {0};
    if (read(down[0], cmd, 8) != 8 || memcmp(cmd, "pre-dump", 8) != 0) _exit(21);
    // Parked in read until the parent, restored, says go.
    if (read(down[0], cmd, 2) != 2 || memcmp(cmd, "go", 2) != 0) _exit(22);
    if (write(f, "abcde", 5) != 5) _exit(23);  // through the shared description
    _exit(7);
  }
  close(down[0]);
  close(up[1]);
  // Queued for the child, which is already blocked reading the next command.
  if (write(down[1], "pre-dump", 8) != 8) test_fail_errno("write down");
  test_ready();
  test_wait();
  char buf[16] = {0};
  if (read(up[0], buf, 10) != 10 || memcmp(buf, "from-child", 10) != 0)
    test_fail("bytes queued by the child before the dump: '%s'", buf);
  off_t before = lseek(f, 0, SEEK_CUR);
  if (before != 10) test_fail("parent offset %ld before the child's write, want 10", (long)before);
  if (write(down[1], "go", 2) != 2) test_fail_errno("write go");
  int st;
  if (waitpid(child, &st, 0) != child) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) test_fail("child status %#x", st);
  off_t after = lseek(f, 0, SEEK_CUR);
  if (after != 15) test_fail("parent offset %ld after the child wrote 5 bytes: not shared", (long)after);
  char all[16] = {0};
  if (pread(f, all, 15, 0) != 15 || memcmp(all, "0123456789abcde", 15) != 0)
    test_fail("file holds '%s'", all);
  return test_pass();
}
