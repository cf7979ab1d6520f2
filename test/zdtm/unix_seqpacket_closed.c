// Seqpacket socketpairs whose peer has closed (issue 11: crdump spun for ever on them, reading
// end of file as zero-byte messages): one with messages queued, zero-byte ones among them and
// last, one with a single message, one with nothing queued. After restore each reads back its
// messages with their boundaries, then end of file. SO_PASSCRED tells a zero-byte message
// (it comes with credentials) from the end of file (nothing comes with it).
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

// Reads one message without waiting: its length, or -2 for the end of file, -1 for an error.
static long next(int s, char *buf, size_t cap) {
  char control[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec iov = {buf, cap};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  long n = recvmsg(s, &m, MSG_DONTWAIT);
  if (n < 0) return -1;
  if (n == 0 && m.msg_controllen == 0) return -2;
  return n;
}

static void expect(int s, const char *const *msgs, size_t count, const char *what) {
  int one = 1;
  if (setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
    test_fail_errno("%s: SO_PASSCRED", what);
  char buf[64];
  for (size_t i = 0; i < count; ++i) {
    long n = next(s, buf, sizeof buf);
    if (n != (long)strlen(msgs[i]) || memcmp(buf, msgs[i], (size_t)n) != 0)
      test_fail("%s: message %zu read %ld bytes, want '%s'", what, i, n, msgs[i]);
  }
  for (int i = 0; i < 2; ++i)
    if (next(s, buf, sizeof buf) != -2) test_fail("%s: no end of file after the messages", what);
}

int main(void) {
  test_init();
  static const char *const full[] = {"one", "", "three", "four", ""};
  static const char *const single[] = {"x"};
  int a[2], b[2], c[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, a) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, b) ||
      socketpair(AF_UNIX, SOCK_SEQPACKET, 0, c))
    test_fail_errno("socketpair");
  for (size_t i = 0; i < 5; ++i)
    if (send(a[1], full[i], strlen(full[i]), 0) != (ssize_t)strlen(full[i]))
      test_fail_errno("send %zu", i);
  if (send(b[1], "x", 1, 0) != 1) test_fail_errno("send x");
  close(a[1]);
  close(b[1]);
  close(c[1]);
  test_ready();
  test_wait();
  expect(a[0], full, 5, "pair with messages");
  expect(b[0], single, 1, "pair with one message");
  expect(c[0], NULL, 0, "empty pair");
  return test_pass();
}
