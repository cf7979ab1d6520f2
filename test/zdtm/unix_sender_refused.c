// A bound dgram socket holding a datagram from a named sender that has been closed since: the
// datagram could only come back from another address, so crdump must refuse it naming the fd
// and the sender, and leave the program intact (the datagram still there, from that name).
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  struct sockaddr_un srv = {.sun_family = AF_UNIX}, cli = {.sun_family = AF_UNIX};
  strcpy(srv.sun_path, "srv.sock");
  strcpy(cli.sun_path, "cli.sock");
  int s = socket(AF_UNIX, SOCK_DGRAM, 0), c = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (s < 0 || c < 0 || bind(s, (struct sockaddr *)&srv, sizeof srv) ||
      bind(c, (struct sockaddr *)&cli, sizeof cli))
    test_fail_errno("bind");
  if (sendto(c, "req", 3, 0, (struct sockaddr *)&srv, sizeof srv) != 3) test_fail_errno("sendto");
  close(c);
  test_ready();
  test_wait();
  char b[4];
  struct sockaddr_un from;
  socklen_t flen = sizeof from;
  if (recvfrom(s, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&from, &flen) != 3 ||
      memcmp(b, "req", 3) || strcmp(from.sun_path, "cli.sock"))
    test_fail("the datagram or its sender is lost");
  return test_pass();
}
