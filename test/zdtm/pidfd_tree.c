// pidfds of processes of the tree: the root holds one of its live child (PIDFD_NONBLOCK), one
// of a zombie child (exited with 7, not reaped), one of itself (PIDFD_THREAD where the kernel
// has it, 6.9+); the child holds one of its parent. After restore each still names its
// process: fdinfo's Pid, the zombie's pidfd is readable and waitid(P_PIDFD) reaps it with its
// status, the live child's is not, pidfd_send_signal through it reaches the child, and the
// child's names its parent. With "outside": a pidfd of a process outside the tree (the
// harness), which crdump must refuse naming the fd and the pid.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL  // Linux 6.9
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned flags) {
  return (int)syscall(SYS_pidfd_open, pid, flags);
}

// The Pid: line of an fd's fdinfo.
static long fdinfo_pid(int fd) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  if (test_read_file(path, text, sizeof text - 1) < 0) test_fail_errno("read %s", path);
  const char *p = strstr(text, "\nPid:");
  if (!p) test_fail("no Pid: in %s", path);
  return strtol(p + 5, NULL, 10);
}

static int readable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

int main(int argc, char **argv) {
  test_init();
  const pid_t me = getpid();
  if (argc > 1 && strcmp(argv[1], "outside") == 0) {
    int out = pidfd_open(getppid(), 0);
    if (out < 0) test_fail_errno("pidfd_open parent");
    test_ready();
    test_wait();
    if (fdinfo_pid(out) != getppid()) test_fail("the outside pidfd changed");
    return test_pass();
  }
  int sync[2];
  if (pipe2(sync, O_CLOEXEC) != 0) test_fail_errno("pipe2");
  pid_t kid = fork();
  if (kid < 0) test_fail_errno("fork");
  if (kid == 0) {
    close(3);  // the harness's ready pipe: the root says when the tree is ready
    close(sync[0]);
    int parent = pidfd_open(me, 0);
    if (parent < 0) test_fail_errno("pidfd_open parent");
    close(sync[1]);
    test_wait();
    if (fdinfo_pid(parent) != me || getppid() != me) test_fail("child: parent pidfd changed");
    if (readable(parent)) test_fail("child: parent reported as exited");
    _exit(test_pass());
  }
  close(sync[1]);
  char c;
  if (read(sync[0], &c, 1) != 0) test_fail("child did not get ready");
  close(sync[0]);
  pid_t zombie = fork();
  if (zombie == 0) {
    close(3);
    _exit(7);
  }
  siginfo_t si;
  if (waitid(P_PID, zombie, &si, WEXITED | WNOWAIT) != 0) test_fail_errno("waitid zombie");
  int kid_fd = pidfd_open(kid, PIDFD_NONBLOCK);
  int zombie_fd = pidfd_open(zombie, 0);
  int self_fd = pidfd_open(me, PIDFD_THREAD);
  if (self_fd < 0 && errno == EINVAL) self_fd = pidfd_open(me, 0);  // before 6.9
  if (kid_fd < 0 || zombie_fd < 0 || self_fd < 0) test_fail_errno("pidfd_open");
  const int self_fl = fcntl(self_fd, F_GETFL);
  const int kid_fl = fcntl(kid_fd, F_GETFL);
  test_ready();
  test_wait();
  if (fdinfo_pid(kid_fd) != kid || fdinfo_pid(zombie_fd) != zombie || fdinfo_pid(self_fd) != me)
    test_fail("a pidfd names another process");
  if (fcntl(kid_fd, F_GETFL) != kid_fl || fcntl(self_fd, F_GETFL) != self_fl)
    test_fail("pidfd flags changed: %o %o, were %o %o", fcntl(kid_fd, F_GETFL),
              fcntl(self_fd, F_GETFL), kid_fl, self_fl);
  if (!readable(zombie_fd)) test_fail("the zombie's pidfd is not readable");
  if (readable(kid_fd) || readable(self_fd)) test_fail("a live process's pidfd is readable");
  memset(&si, 0, sizeof si);
  if (waitid(P_PIDFD, zombie_fd, &si, WEXITED) != 0) test_fail_errno("waitid P_PIDFD zombie");
  if (si.si_pid != zombie || si.si_code != CLD_EXITED || si.si_status != 7)
    test_fail("zombie reaped as pid %d code %d status %d", si.si_pid, si.si_code, si.si_status);
  if (syscall(SYS_pidfd_send_signal, kid_fd, SIGTERM, NULL, 0) != 0)
    test_fail_errno("pidfd_send_signal");
  memset(&si, 0, sizeof si);
  // Non-blocking pidfd: waitid returns EAGAIN until the child has exited.
  for (;;) {
    struct pollfd p = {kid_fd, POLLIN, 0};
    poll(&p, 1, -1);
    if (waitid(P_PIDFD, kid_fd, &si, WEXITED) == 0) break;
    if (errno != EAGAIN && errno != EINTR) test_fail_errno("waitid P_PIDFD child");
  }
  if (si.si_pid != kid || si.si_code != CLD_EXITED || si.si_status != 0)
    test_fail("child ended with code %d status %d", si.si_code, si.si_status);
  return test_pass();
}
