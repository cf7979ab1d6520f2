// A listening unix socket with a connection not yet accepted that carries data (unreadable
// before accept): crdump must refuse it naming the fd, and leave the program intact (the
// connection is still there to accept, its bytes with it).
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strcpy(a.sun_path, "backlog.sock");
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4))
    test_fail_errno("listener");
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) test_fail_errno("connect");
  if (send(c, "hi", 2, 0) != 2) test_fail_errno("send");
  test_ready();
  test_wait();
  int s = accept(l, NULL, NULL);
  char buf[4];
  if (s < 0 || recv(s, buf, sizeof buf, MSG_DONTWAIT) != 2 || memcmp(buf, "hi", 2))
    test_fail("the pending connection or its bytes are lost");
  return test_pass();
}
