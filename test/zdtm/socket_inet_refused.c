// Holds a bound AF_INET UDP socket with a datagram queued: crdump must refuse it naming the
// socket and the fd, and leave the program intact (the datagram still there).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) test_fail_errno("socket");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &len))
    test_fail_errno("bind");
  if (sendto(s, "hi", 2, 0, (struct sockaddr *)&a, sizeof a) != 2) test_fail_errno("sendto");
  test_ready();
  test_wait();
  char buf[4];
  if (recv(s, buf, sizeof(buf), MSG_DONTWAIT) != 2 || memcmp(buf, "hi", 2))
    test_fail("datagram lost");
  return test_pass();
}
