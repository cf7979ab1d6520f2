// Fds in flight (SCM_RIGHTS) whose files the process also holds: on a stream socketpair, bytes
// without fds, then a message carrying a pipe's read end and one end of another socketpair;
// on a seqpacket pair, a message without fds, then one carrying a file opened at an offset.
// After restore each message comes with its fds, and each fd is the very description the
// process holds (the same pipe, the same socket, the same file offset).
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

// Receives up to `len` bytes into `buf` (NUL-ended); returns how many fds came, in `fds`.
static int recv_fds(int s, char *buf, size_t len, int *fds) {
  char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
  struct msghdr m = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  ssize_t n = recvmsg(s, &m, MSG_DONTWAIT);
  if (n < 0) test_fail_errno("recvmsg");
  buf[n] = 0;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_type != SCM_RIGHTS) return 0;
  int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
  memcpy(fds, CMSG_DATA(c), sizeof(int) * k);
  return k;
}

int main(void) {
  test_init();
  int sv[2], p[2], q[2], sq[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, q) ||
      socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq))
    test_fail_errno("setup");
  int f = open("data", O_RDWR | O_CREAT, 0600);
  if (f < 0 || write(f, "0123456789", 10) != 10 || lseek(f, 5, SEEK_SET) != 5)
    test_fail_errno("file");
  test_send_fds(sv[0], "abc", NULL, 0);
  int two[2] = {p[0], q[1]};
  test_send_fds(sv[0], "X", two, 2);
  test_send_fds(sq[0], "m1", NULL, 0);
  test_send_fds(sq[0], "m2", &f, 1);
  test_ready();
  test_wait();

  char buf[64];
  int got[4];
  // A stream read takes the bytes before the buffer with fds and that buffer, as before.
  if (recv_fds(sv[1], buf, sizeof buf, got) != 2 || strcmp(buf, "abcX"))
    test_fail("stream: '%s' and its two fds", buf);
  char b[4] = {0};
  if (write(p[1], "hi", 2) != 2 || read(got[0], b, 2) != 2 || strcmp(b, "hi"))
    test_fail("the pipe's read end in flight is another pipe");
  if (write(got[1], "q", 1) != 1 || read(q[0], b, 1) != 1 || b[0] != 'q')
    test_fail("the socket in flight is another socket");
  if (recv_fds(sq[1], buf, sizeof buf, got) != 0 || strcmp(buf, "m1"))
    test_fail("seqpacket: '%s' should come without fds", buf);
  if (recv_fds(sq[1], buf, sizeof buf, got) != 1 || strcmp(buf, "m2"))
    test_fail("seqpacket: '%s' and its fd", buf);
  if (lseek(got[0], 0, SEEK_CUR) != 5 || lseek(got[0], 9, SEEK_SET) != 9 ||
      lseek(f, 0, SEEK_CUR) != 9)
    test_fail("the file in flight is not the same open file (offset)");
  return test_pass();
}
