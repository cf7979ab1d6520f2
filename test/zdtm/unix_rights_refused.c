// A socketpair with a file descriptor in flight (SCM_RIGHTS, sent and not yet received) that
// no fd of the process holds any more (the sender closed its copy): crdump must refuse it
// naming the fd, and leave the program intact: the descriptor still arrives, and the peek did
// not consume the message. (With the file still held, unix_rights, it is dumped.)
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int sv[2], p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(p)) test_fail_errno("setup");
  char cbuf[CMSG_SPACE(sizeof(int))] = {0};
  struct iovec iov = {.iov_base = "x", .iov_len = 1};
  struct msghdr m = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &p[1], sizeof(int));
  if (sendmsg(sv[0], &m, 0) != 1) test_fail_errno("sendmsg");
  close(p[1]);
  test_ready();
  test_wait();
  char b;
  char rbuf[CMSG_SPACE(sizeof(int))];
  struct iovec riov = {.iov_base = &b, .iov_len = 1};
  struct msghdr r = {
      .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf, .msg_controllen = sizeof rbuf};
  if (recvmsg(sv[1], &r, MSG_DONTWAIT) != 1 || b != 'x') test_fail("message lost");
  struct cmsghdr *rc = CMSG_FIRSTHDR(&r);
  if (!rc || rc->cmsg_type != SCM_RIGHTS) test_fail("descriptor lost");
  int fd;
  memcpy(&fd, CMSG_DATA(rc), sizeof fd);
  if (write(fd, "y", 1) != 1 || read(p[0], &b, 1) != 1 || b != 'y')
    test_fail("the received descriptor is not the pipe's write end");
  return test_pass();
}
