// Dgram sockets connected in a chain (issue 11: restore failed with "connect ... Operation not
// permitted"): A1 and A2 connected to B, then B connected to C, made so that B comes first in
// the fd table (crrestore connected B to C first, and then nobody could connect to B).
// Datagrams are queued at B (from A1, before B connected) and at C (from B). After restore each
// socket has its peer, the queues come back, B's new datagrams reach C, and neither A2 nor a
// stranger can send to B (it is connected elsewhere), as before the dump.
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmlib.h"

static socklen_t path_addr(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  strcpy(a->sun_path, path);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static int dgram(void) {
  int s = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (s < 0) test_fail_errno("socket");
  return s;
}

static void bind_to(int s, const char *path) {
  struct sockaddr_un a;
  socklen_t len = path_addr(&a, path);
  if (bind(s, (struct sockaddr *)&a, len) != 0) test_fail_errno("bind %s", path);
}

static void connect_to(int s, const char *path) {
  struct sockaddr_un a;
  socklen_t len = path_addr(&a, path);
  if (connect(s, (struct sockaddr *)&a, len) != 0) test_fail_errno("connect to %s", path);
}

static void peer_is(int s, const char *path, const char *what) {
  struct sockaddr_un got;
  socklen_t glen = sizeof got;
  if (getpeername(s, (struct sockaddr *)&got, &glen) != 0) test_fail_errno("%s: getpeername", what);
  if (strcmp(got.sun_path, path) != 0)
    test_fail("%s: peer '%s', want '%s'", what, got.sun_path, path);
}

static void receive(int s, const char *want, const char *what) {
  char buf[64];
  ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
  if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n) != 0)
    test_fail("%s: received %zd bytes, want '%s' (errno %d)", what, n, want, errno);
}

int main(void) {
  test_init();
  int b = dgram(), c = dgram(), a1 = dgram(), a2 = dgram();
  bind_to(b, "b.sock");
  bind_to(c, "c.sock");
  bind_to(a2, "a2.sock");
  connect_to(a1, "b.sock");
  connect_to(a2, "b.sock");
  if (send(a1, "from-a1", 7, 0) != 7) test_fail_errno("send a1");
  // From now on nobody but C can send to B, A1 and A2 included.
  connect_to(b, "c.sock");
  if (send(b, "from-b", 6, 0) != 6) test_fail_errno("send b");
  test_ready();
  test_wait();
  peer_is(a1, "b.sock", "A1");
  peer_is(a2, "b.sock", "A2");
  peer_is(b, "c.sock", "B");
  struct sockaddr_un got;
  socklen_t glen = sizeof got;
  if (getpeername(c, (struct sockaddr *)&got, &glen) == 0 || errno != ENOTCONN)
    test_fail("C has a peer");
  receive(b, "from-a1", "B's queue");
  receive(c, "from-b", "C's queue");
  if (send(b, "new-b", 5, 0) != 5) test_fail_errno("send b after restore");
  receive(c, "new-b", "C after restore");
  if (send(a2, "x", 1, MSG_DONTWAIT) != -1 || errno != EPERM)
    test_fail("A2 could send to B, which is connected to C (errno %d)", errno);
  int stranger = dgram();
  struct sockaddr_un a;
  socklen_t len = path_addr(&a, "b.sock");
  if (sendto(stranger, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&a, len) != -1 || errno != EPERM)
    test_fail("a stranger could send to B, which is connected to C (errno %d)", errno);
  return test_pass();
}
