// State about locks and async I/O crdump must refuse, by argv[1]:
//   owner_outside   a pipe whose SIGIO goes to a process outside the tree (our parent)
//   lease_breaking  a read lease a child is breaking (its open for writing waits)
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(int argc, char **argv) {
  test_init();
  if (argc < 2) test_fail("which case?");
  if (strcmp(argv[1], "owner_outside") == 0) {
    int p[2];
    if (pipe(p)) test_fail_errno("pipe");
    if (fcntl(p[0], F_SETOWN, getppid()) != 0) test_fail_errno("F_SETOWN");
    test_ready();
    test_wait();
    if (fcntl(p[0], F_GETOWN) != getppid()) test_fail("owner changed");
    return test_pass();
  }
  int w = open("lease", O_RDWR | O_CREAT, 0644);
  if (w < 0) test_fail_errno("open");
  close(w);
  int fd = open("lease", O_RDONLY);
  if (fd < 0 || fcntl(fd, F_SETLEASE, F_RDLCK) != 0) test_fail_errno("F_SETLEASE");
  // The lease-break signal (SIGIO) would kill us: ignore it, the fdinfo shows the break.
  signal(SIGIO, SIG_IGN);
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);
    int o = open("lease", O_WRONLY);  // waits until the lease is given up
    _exit(o >= 0 ? 7 : 3);
  }
  char path[64], info[4096];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
  for (;;) {
    if (test_read_file(path, info, sizeof(info)) < 0) test_fail_errno("read fdinfo");
    if (strstr(info, "BREAKING")) break;
    sched_yield();
  }
  test_ready();
  test_wait();
  if (fcntl(fd, F_SETLEASE, F_UNLCK) != 0) test_fail_errno("F_SETLEASE F_UNLCK");
  int st;
  if (waitpid(child, &st, 0) != child) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) test_fail("child status %#x", st);
  return test_pass();
}
