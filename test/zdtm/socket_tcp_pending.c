// A connection in a listener's accept queue whose client is the same process and has sent
// nothing: a listener on 127.0.0.1 (IPv4) and one on [::] (dual-stack, its client IPv4, the
// queued connection v4-mapped), each with one client connected and not accepted. After
// restore each listener accepts exactly that client (its address and port), and data goes
// both ways. The clients close with a reset (SO_LINGER 0): nothing lingers in TIME_WAIT on
// their ports for the next restore.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

struct pair {
  int listener, client;
  struct sockaddr_in client_addr;  // as the client's getsockname shows it
};

static void setup(struct pair *p, int family) {
  p->listener = socket(family, SOCK_STREAM, 0);
  if (p->listener < 0) test_fail_errno("socket");
  struct sockaddr_storage ss = {0};
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;  // [::], port 0: dual-stack
    len = sizeof *a;
  }
  if (bind(p->listener, (struct sockaddr *)&ss, len) || listen(p->listener, 4))
    test_fail_errno("listen");
  if (getsockname(p->listener, (struct sockaddr *)&ss, &len)) test_fail_errno("getsockname");
  const in_port_t port =
      family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = port};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  p->client = socket(AF_INET, SOCK_STREAM, 0);
  if (p->client < 0 || connect(p->client, (struct sockaddr *)&to, sizeof to))
    test_fail_errno("connect");
  len = sizeof p->client_addr;
  if (getsockname(p->client, (struct sockaddr *)&p->client_addr, &len))
    test_fail_errno("getsockname");
}

static void check(struct pair *p, const char *what) {
  int fl = fcntl(p->listener, F_GETFL);
  fcntl(p->listener, F_SETFL, fl | O_NONBLOCK);  // exactly one queued: a second accept fails
  struct sockaddr_storage from;
  socklen_t len = sizeof from;
  int a = accept(p->listener, (struct sockaddr *)&from, &len);
  if (a < 0) test_fail_errno("%s: accept", what);
  in_port_t port;
  if (from.ss_family == AF_INET) {
    port = ((struct sockaddr_in *)&from)->sin_port;
  } else {
    port = ((struct sockaddr_in6 *)&from)->sin6_port;
  }
  if (port != p->client_addr.sin_port)
    test_fail("%s: accepted port %d, the client's is %d", what, ntohs(port),
              ntohs(p->client_addr.sin_port));
  if (accept(p->listener, NULL, NULL) >= 0) test_fail("%s: a second connection queued", what);
  char b[8] = {0};
  if (write(p->client, "ping", 4) != 4 || read(a, b, sizeof b) != 4 || strcmp(b, "ping"))
    test_fail("%s: client to server", what);
  memset(b, 0, sizeof b);
  if (write(a, "pong", 4) != 4 || read(p->client, b, sizeof b) != 4 || strcmp(b, "pong"))
    test_fail("%s: server to client", what);
  struct linger lg = {1, 0};
  setsockopt(p->client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(p->client);
  close(a);
}

int main(void) {
  test_init();
  struct pair v4, v6;
  setup(&v4, AF_INET);
  setup(&v6, AF_INET6);
  test_ready();
  test_wait();
  check(&v4, "IPv4");
  check(&v6, "dual-stack");
  return test_pass();
}
