// Holds a bound AF_INET UDP socket with a corked datagram (UDP_CORK, sent to itself, not yet
// out): crdump must refuse it naming the socket and the fd, and leave the program intact (once
// uncorked, the datagram goes out and comes back).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
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
  int one = 1, zero = 0;
  if (setsockopt(s, IPPROTO_UDP, UDP_CORK, &one, sizeof one)) test_fail_errno("UDP_CORK");
  if (sendto(s, "hi", 2, 0, (struct sockaddr *)&a, sizeof a) != 2) test_fail_errno("sendto");
  test_ready();
  test_wait();
  if (setsockopt(s, IPPROTO_UDP, UDP_CORK, &zero, sizeof zero)) test_fail_errno("uncork");
  char buf[4];
  if (recv(s, buf, sizeof(buf), 0) != 2 || memcmp(buf, "hi", 2)) test_fail("corked datagram lost");
  return test_pass();
}
