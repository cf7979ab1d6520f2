// Half-closed TCP connections with both ends in the process (dumped with --tcp-established):
// one end shut for writing after its request (FIN_WAIT2, the other end CLOSE_WAIT with the
// request unread), and one shut behind bytes its peer's window has no room for (FIN_WAIT1, the
// FIN not sent yet). After restore the states are the same, the bytes then end of file come
// out, and the open direction still carries data. Every socket is closed with a reset at the
// end (SO_LINGER 0), so an original left running leaves no TIME_WAIT on the addresses.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

static int state(int s) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len)) test_fail_errno("TCP_INFO");
  return ti.tcpi_state;
}

static void pair(int *c, int *a) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1) ||
      getsockname(l, (struct sockaddr *)&sa, &len))
    test_fail_errno("listener");
  *c = socket(AF_INET, SOCK_STREAM, 0);
  if (*c < 0 || connect(*c, (struct sockaddr *)&sa, sizeof sa)) test_fail_errno("connect");
  *a = accept(l, NULL, NULL);
  if (*a < 0) test_fail_errno("accept");
  close(l);
}

static void reset_close(int s) {
  struct linger lg = {1, 0};
  setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(s);
}

static char big[1 << 16];

int main(void) {
  test_init();
  int c, a, c1, a1;
  pair(&c, &a);
  if (send(c, "req", 3, 0) != 3 || shutdown(c, SHUT_WR)) test_fail_errno("request");
  pair(&c1, &a1);
  size_t sent = 0;
  for (;;) {  // fill a1 -> c1 until nothing more goes (c1 reads nothing)
    ssize_t n = send(a1, big, sizeof big, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) test_fail_errno("fill");
    sent += (size_t)n;
  }
  if (shutdown(a1, SHUT_WR)) test_fail_errno("shutdown behind unsent bytes");
  // Loopback delivers as it sends, but the states are checked, not assumed (bounded).
  for (int i = 0; i < 1000 && (state(c) != TCP_FIN_WAIT2 || state(a) != TCP_CLOSE_WAIT); ++i)
    poll(NULL, 0, 10);
  test_ready();
  test_wait();

  if (state(c) != TCP_FIN_WAIT2 || state(a) != TCP_CLOSE_WAIT || state(a1) != TCP_FIN_WAIT1)
    test_fail("states %d %d %d", state(c), state(a), state(a1));
  char buf[8];
  if (recv(a, buf, sizeof buf, 0) != 3 || memcmp(buf, "req", 3) || recv(a, buf, 1, 0) != 0)
    test_fail("the request, then end of file");
  if (send(a, "resp", 4, 0) != 4 || recv(c, buf, sizeof buf, 0) != 4 || memcmp(buf, "resp", 4))
    test_fail("the open direction");
  size_t got = 0;
  for (;;) {
    ssize_t n = recv(c1, big, sizeof big, 0);
    if (n < 0) test_fail_errno("drain");
    if (n == 0) break;
    got += (size_t)n;
  }
  if (got != sent) test_fail("%zu of %zu bytes before the FIN", got, sent);
  reset_close(c);
  reset_close(a);
  reset_close(c1);
  reset_close(a1);
  return test_pass();
}
