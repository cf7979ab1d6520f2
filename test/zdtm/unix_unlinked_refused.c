// A unix listener whose socket file was unlinked after bind: the name cannot come back (a bind
// would make a file the original does not have), so crdump must refuse it naming the fd and
// the name, and leave the program intact (still listening, reachable only by a socket it had).
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strcpy(a.sun_path, "gone.sock");
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4))
    test_fail_errno("listener");
  if (unlink("gone.sock")) test_fail_errno("unlink");
  test_ready();
  test_wait();
  int acc = 0;
  socklen_t len = sizeof acc;
  if (getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) || !acc) test_fail("not listening");
  return test_pass();
}
