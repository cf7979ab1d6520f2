// A connection in a listener's accept queue whose client (of the tree) has sent data before it
// was accepted: what it sent is in a socket no fd holds, which a restore could not give back.
// crdump refuses naming the listener; the program goes on intact (the data is read after).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4) ||
      getsockname(l, (struct sockaddr *)&a, &len) || connect(c, (struct sockaddr *)&a, sizeof a))
    test_fail_errno("setup");
  if (write(c, "early", 5) != 5) test_fail_errno("write");
  test_ready();
  test_wait();
  int s = accept(l, NULL, NULL);
  char b[8] = {0};
  if (s < 0 || read(s, b, sizeof b) != 5 || strcmp(b, "early")) test_fail("data lost");
  return test_pass();
}
