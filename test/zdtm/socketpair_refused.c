// Holds a socketpair: crdump must refuse it naming the socket, and leave the program intact.
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) test_fail_errno("socketpair");
  if (write(sv[0], "hi", 2) != 2) test_fail_errno("write");
  test_ready();
  test_wait();
  char buf[4];
  if (read(sv[1], buf, sizeof(buf)) != 2 || memcmp(buf, "hi", 2)) test_fail("socket data lost");
  return test_pass();
}
