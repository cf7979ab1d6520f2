// Unix sockets whose bound file was unlinked after bind: a listener (with a connection it
// accepted before the unlink, a client of the tree still connected through it) and a bound
// dgram socket. They keep their names (getsockname) with no file at the path, so nothing new
// can connect by it, and the old connection still carries data both ways.
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmlib.h"

static void check_name(int s, const char *want) {
  struct sockaddr_un got = {0};
  socklen_t len = sizeof got;
  if (getsockname(s, (struct sockaddr *)&got, &len)) test_fail_errno("getsockname");
  if (strcmp(got.sun_path, want)) test_fail("name '%s', not '%s'", got.sun_path, want);
  struct stat st;
  if (lstat(want, &st) == 0) test_fail("%s is on disk again", want);
}

int main(void) {
  test_init();
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strcpy(a.sun_path, "gone.sock");
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4))
    test_fail_errno("listener");
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) test_fail_errno("connect");
  int s = accept(l, NULL, NULL);
  if (s < 0) test_fail_errno("accept");
  struct sockaddr_un d = {.sun_family = AF_UNIX};
  strcpy(d.sun_path, "gone-dgram.sock");
  int g = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (g < 0 || bind(g, (struct sockaddr *)&d, sizeof d)) test_fail_errno("dgram");
  if (unlink("gone.sock") || unlink("gone-dgram.sock")) test_fail_errno("unlink");
  test_ready();
  test_wait();
  int acc = 0;
  socklen_t len = sizeof acc;
  if (getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc) test_fail("not listening");
  check_name(l, "gone.sock");
  check_name(s, "gone.sock");
  check_name(g, "gone-dgram.sock");
  int n = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(n, (struct sockaddr *)&a, sizeof a) == 0 || errno != ENOENT)
    test_fail("a new connect by the unlinked name did not fail with ENOENT");
  char buf[4];
  if (send(c, "ab", 2, 0) != 2 || recv(s, buf, sizeof buf, 0) != 2 || memcmp(buf, "ab", 2))
    test_fail("client to server");
  if (send(s, "cd", 2, 0) != 2 || recv(c, buf, sizeof buf, 0) != 2 || memcmp(buf, "cd", 2))
    test_fail("server to client");
  return test_pass();
}
