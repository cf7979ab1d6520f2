// Epoll watches crdump cannot restore, so it must refuse them naming the watch and leave the
// program intact:
//   oneshot  a fired EPOLLONESHOT watch on a pipe with nothing ready (restore disarms a fired
//            one-shot by letting it fire once, which needs an event);
//   outside  a watch on an eventfd that only a process outside the tree holds (the program
//            closed its own fd; an orphaned grandchild keeps the file until the program exits).
#define _GNU_SOURCE
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(int argc, char **argv) {
  test_init();
  const int oneshot = argc > 1 && strcmp(argv[1], "oneshot") == 0;
  int ep = epoll_create1(0);
  if (ep < 0) test_fail_errno("epoll_create1");
  int p[2] = {-1, -1};
  if (oneshot) {
    if (pipe(p) || write(p[1], "x", 1) != 1) test_fail_errno("pipe");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 1};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev)) test_fail_errno("EPOLL_CTL_ADD");
    if (epoll_wait(ep, &ev, 1, 0) != 1) test_fail("the one-shot did not fire");
    char c;
    if (read(p[0], &c, 1) != 1) test_fail_errno("drain pipe");
  } else {
    int efd = eventfd(0, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 2};
    if (efd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev)) test_fail_errno("eventfd watch");
    const pid_t self = getpid();
    pid_t a = fork();
    if (a == 0) {
      if (fork() == 0) {
        // The grandchild, orphaned below: it holds only the eventfd, until the program exits.
        int pidfd = (int)syscall(SYS_pidfd_open, self, 0);
        for (int fd = 0; fd < 1024; ++fd)
          if (fd != efd && fd != pidfd) close(fd);
        struct pollfd w = {pidfd, POLLIN, 0};
        poll(&w, 1, -1);
        _exit(0);
      }
      _exit(0);
    }
    int st;
    if (waitpid(a, &st, 0) != a) test_fail_errno("waitpid");
    close(efd);
  }
  test_ready();
  test_wait();
  char text[4096];
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
  long len = test_read_file(path, text, sizeof text - 1);
  if (len < 0) test_fail_errno("read %s", path);
  text[len] = 0;
  if (strstr(text, "tfd:") == NULL) test_fail("the watch is gone:\n%s", text);
  struct epoll_event ev;
  if (epoll_wait(ep, &ev, 1, 0) != 0) test_fail("the epoll reports an event");
  return test_pass();
}
