// Unix listeners with connections not yet accepted, their clients in the tree: a path stream
// listener with three (one client shut down for writing, one bound to a name of its own) and
// an abstract seqpacket one with one. After restore each is accepted in the order it
// connected, carries data both ways, and the shut one reads as shut.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmlib.h"

static void connect_to(int c, const struct sockaddr_un *a, socklen_t len) {
  if (c < 0 || connect(c, (const struct sockaddr *)a, len)) test_fail_errno("connect");
}

// Accepts the next connection of `l` and checks that it is `c`'s: a byte each way.
static int accept_from(int l, int c, char tag, int can_send) {
  int s = accept(l, NULL, NULL);
  if (s < 0) test_fail_errno("accept %c", tag);
  char b = 0;
  if (send(s, &tag, 1, 0) != 1 || recv(c, &b, 1, MSG_DONTWAIT) != 1 || b != tag)
    test_fail("connection %c is not accepted in its order", tag);
  if (can_send) {
    if (send(c, &tag, 1, 0) != 1 || recv(s, &b, 1, 0) != 1 || b != tag)
      test_fail("client %c to server", tag);
  } else if (recv(s, &b, 1, 0) != 0) {
    test_fail("client %c shut for writing: the server does not read end of file", tag);
  }
  return s;
}

int main(void) {
  test_init();
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strcpy(a.sun_path, "pending.sock");
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 8))
    test_fail_errno("listener");
  // Abstract names are shared by the whole network namespace: the pid (restored the same) keeps
  // cases run side by side apart.
  struct sockaddr_un abs = {.sun_family = AF_UNIX};
  const int abs_n = snprintf(abs.sun_path + 1, sizeof abs.sun_path - 1, "crtools-zdtm-pending-%d",
                             (int)getpid());
  const socklen_t abs_len = offsetof(struct sockaddr_un, sun_path) + 1 + abs_n;
  int lq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  if (lq < 0 || bind(lq, (struct sockaddr *)&abs, abs_len) || listen(lq, 2))
    test_fail_errno("seqpacket listener");

  int c1 = socket(AF_UNIX, SOCK_STREAM, 0);
  connect_to(c1, &a, sizeof a);
  int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
  connect_to(c2, &a, sizeof a);
  if (shutdown(c2, SHUT_WR)) test_fail_errno("shutdown");
  struct sockaddr_un own = {.sun_family = AF_UNIX};
  strcpy(own.sun_path, "client.sock");
  int c3 = socket(AF_UNIX, SOCK_STREAM, 0);
  if (c3 < 0 || bind(c3, (struct sockaddr *)&own, sizeof own)) test_fail_errno("bind client");
  connect_to(c3, &a, sizeof a);
  int q1 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  connect_to(q1, &abs, abs_len);
  test_ready();
  test_wait();

  accept_from(l, c1, '1', 1);
  accept_from(l, c2, '2', 0);
  int s3 = accept_from(l, c3, '3', 1);
  struct sockaddr_un peer = {0};
  socklen_t plen = sizeof peer;
  if (getpeername(s3, (struct sockaddr *)&peer, &plen) || strcmp(peer.sun_path, "client.sock"))
    test_fail("client 3 lost its name");
  accept_from(lq, q1, 'q', 1);
  if (fcntl(l, F_SETFL, O_NONBLOCK)) test_fail_errno("fcntl");
  if (accept(l, NULL, NULL) >= 0) test_fail("a fourth connection appeared");
  return test_pass();
}
