// A message queued on a unix socket with SO_PASSCRED carries the credentials of a child that
// has exited and been reaped since: no process of the tree has its pid, and the kernel would
// take that pid only from a process that exists, so crdump must refuse naming the fd and leave
// the program intact (the data still there, with its credentials).
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int sv[2], one = 1;
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) ||
      setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one))
    test_fail_errno("setup");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) _exit(send(sv[0], "cred", 4, 0) == 4 ? 0 : 1);
  int status;
  if (waitpid(child, &status, 0) != child || status != 0) test_fail("child send");
  test_ready();
  test_wait();
  char b[8];
  char cbuf[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec iov = {.iov_base = b, .iov_len = sizeof b};
  struct msghdr m = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  if (recvmsg(sv[1], &m, MSG_DONTWAIT) != 4 || memcmp(b, "cred", 4)) test_fail("data lost");
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_type != SCM_CREDENTIALS) test_fail("credentials lost");
  struct ucred cr;
  memcpy(&cr, CMSG_DATA(c), sizeof cr);
  if (cr.pid != child) test_fail("credentials of pid %d, want %d", (int)cr.pid, (int)child);
  return test_pass();
}
