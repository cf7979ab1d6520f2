// What a socket holds that crtools does not restore yet, and which no /proc file shows: crdump
// must find it and refuse, leaving the program intact. "ipopts": IP options set on a UDP
// socket (IP_OPTIONS). ("mcast", "mcast6": memberships, restored now: socket_mcast.c tests
// them.) After SIGTERM the program checks the state is still there.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(int argc, char **argv) {
  test_init();
  const char *what = argc > 1 ? argv[1] : "mcast";
  const int v6 = !strcmp(what, "mcast6");
  int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  if (s < 0) test_fail_errno("socket");
  unsigned char opts[4] = {1, 1, 1, 0};  // three NOPs and the end of the list
  if (!strcmp(what, "ipopts")) {
    if (setsockopt(s, IPPROTO_IP, IP_OPTIONS, opts, sizeof opts)) test_fail_errno("IP_OPTIONS");
  } else if (v6) {
    struct ipv6_mreq m = {.ipv6mr_interface = if_nametoindex("lo")};
    inet_pton(AF_INET6, "ff15::1234", &m.ipv6mr_multiaddr);
    if (setsockopt(s, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m)) test_fail_errno("join ff15::1234");
  } else {
    struct ip_mreqn m = {.imr_ifindex = (int)if_nametoindex("lo")};
    inet_pton(AF_INET, "239.1.2.3", &m.imr_multiaddr);
    if (setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m)) test_fail_errno("join 239.1.2.3");
  }

  test_ready();
  test_wait();

  if (!strcmp(what, "ipopts")) {
    unsigned char got[40];
    socklen_t len = sizeof got;
    if (getsockopt(s, IPPROTO_IP, IP_OPTIONS, got, &len) || len != sizeof opts ||
        memcmp(got, opts, sizeof opts))
      test_fail("IP options lost (%u bytes)", (unsigned)len);
  } else {
    // Leaving the group succeeds only for a member.
    if (v6) {
      struct ipv6_mreq m = {.ipv6mr_interface = if_nametoindex("lo")};
      inet_pton(AF_INET6, "ff15::1234", &m.ipv6mr_multiaddr);
      if (setsockopt(s, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &m, sizeof m)) test_fail_errno("no longer a member");
    } else {
      struct ip_mreqn m = {.imr_ifindex = (int)if_nametoindex("lo")};
      inet_pton(AF_INET, "239.1.2.3", &m.imr_multiaddr);
      if (setsockopt(s, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m)) test_fail_errno("no longer a member");
    }
  }
  return test_pass();
}
