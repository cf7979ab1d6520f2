// Multicast memberships of UDP sockets: "v4" joins 239.1.2.3 and 239.1.2.4 on lo
// (IP_ADD_MEMBERSHIP), "v6" ff15::1234 on lo (IPV6_JOIN_GROUP); after restore each socket is a
// member again, for any source (MCAST_MSFILTER shows it, and leaving succeeds only for a
// member), and a socket that joined nothing is in no group. "source": memberships with source
// filters: 239.1.2.3 from 127.0.0.1 only (IP_ADD_SOURCE_MEMBERSHIP: include mode), 239.1.2.5
// from all but 127.0.0.2 (IP_BLOCK_SOURCE: exclude mode); both come back with their filter.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zdtmlib.h"

static void group_v4(struct group_filter *gf, const char *addr) {
  memset(gf, 0, sizeof *gf);
  gf->gf_interface = if_nametoindex("lo");
  struct sockaddr_in *a = (struct sockaddr_in *)&gf->gf_group;
  a->sin_family = AF_INET;
  inet_pton(AF_INET, addr, &a->sin_addr);
}

// 239.1.2.3 from 127.0.0.1 only, on lo.
static struct ip_mreq_source from_localhost(void) {
  struct ip_mreq_source m = {0};
  inet_pton(AF_INET, "239.1.2.3", &m.imr_multiaddr);
  inet_pton(AF_INET, "127.0.0.1", &m.imr_sourceaddr);
  inet_pton(AF_INET, "127.0.0.1", &m.imr_interface);
  return m;
}

// Whether `s` is in group `addr` for any source.
static int member_any(int s, int level, struct group_filter *gf) {
  socklen_t len = sizeof *gf;
  if (getsockopt(s, level, MCAST_MSFILTER, gf, &len)) return 0;
  return gf->gf_fmode == MCAST_EXCLUDE && gf->gf_numsrc == 0;
}

int main(int argc, char **argv) {
  test_init();
  const char *what = argc > 1 ? argv[1] : "v4";
  const int v6 = !strcmp(what, "v6");
  int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  int none = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  if (s < 0 || none < 0) test_fail_errno("socket");
  if (!strcmp(what, "source")) {
    struct ip_mreq_source m = from_localhost();
    if (setsockopt(s, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &m, sizeof m))
      test_fail_errno("join 239.1.2.3 from 127.0.0.1");
    struct ip_mreqn j = {.imr_ifindex = (int)if_nametoindex("lo")};
    inet_pton(AF_INET, "239.1.2.5", &j.imr_multiaddr);
    if (setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &j, sizeof j)) test_fail_errno("join 239.1.2.5");
    struct ip_mreq_source b = {0};
    inet_pton(AF_INET, "239.1.2.5", &b.imr_multiaddr);
    inet_pton(AF_INET, "127.0.0.2", &b.imr_sourceaddr);
    inet_pton(AF_INET, "127.0.0.1", &b.imr_interface);
    if (setsockopt(s, IPPROTO_IP, IP_BLOCK_SOURCE, &b, sizeof b)) test_fail_errno("block 127.0.0.2");
  } else if (v6) {
    struct ipv6_mreq m = {.ipv6mr_interface = if_nametoindex("lo")};
    inet_pton(AF_INET6, "ff15::1234", &m.ipv6mr_multiaddr);
    if (setsockopt(s, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m)) test_fail_errno("join ff15::1234");
  } else {
    for (const char *g = "239.1.2.3"; g; g = strcmp(g, "239.1.2.3") ? NULL : "239.1.2.4") {
      struct ip_mreqn m = {.imr_ifindex = (int)if_nametoindex("lo")};
      inet_pton(AF_INET, g, &m.imr_multiaddr);
      if (setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m)) test_fail_errno("join %s", g);
    }
  }

  test_ready();
  test_wait();

  if (!strcmp(what, "source")) {
    struct {
      const char *group, *source;
      uint32_t mode;
    } want[] = {{"239.1.2.3", "127.0.0.1", MCAST_INCLUDE}, {"239.1.2.5", "127.0.0.2", MCAST_EXCLUDE}};
    for (int i = 0; i < 2; i++) {
      struct group_filter gf;
      group_v4(&gf, want[i].group);
      gf.gf_numsrc = 1;  // room for one source: the kernel copies no more than this asks
      socklen_t len = sizeof gf;
      if (getsockopt(s, IPPROTO_IP, MCAST_MSFILTER, &gf, &len)) test_fail_errno("not in %s", want[i].group);
      struct in_addr src;
      inet_pton(AF_INET, want[i].source, &src);
      if (gf.gf_fmode != want[i].mode || gf.gf_numsrc != 1 ||
          ((struct sockaddr_in *)&gf.gf_slist[0])->sin_addr.s_addr != src.s_addr)
        test_fail("%s: filter mode %u with %u sources, not the dumped one", want[i].group,
                  gf.gf_fmode, gf.gf_numsrc);
    }
    struct ip_mreq_source m = from_localhost();
    if (setsockopt(s, IPPROTO_IP, IP_DROP_SOURCE_MEMBERSHIP, &m, sizeof m))
      test_fail_errno("no longer a member from 127.0.0.1");
  } else if (v6) {
    struct group_filter gf = {.gf_interface = if_nametoindex("lo")};
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&gf.gf_group;
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "ff15::1234", &a->sin6_addr);
    if (!member_any(s, IPPROTO_IPV6, &gf)) test_fail("not in ff15::1234 for any source");
    struct group_filter other = gf;
    if (member_any(none, IPPROTO_IPV6, &other)) test_fail("the other socket joined ff15::1234");
    struct ipv6_mreq m = {.ipv6mr_interface = if_nametoindex("lo")};
    inet_pton(AF_INET6, "ff15::1234", &m.ipv6mr_multiaddr);
    if (setsockopt(s, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &m, sizeof m)) test_fail_errno("no longer a member");
  } else {
    for (const char *g = "239.1.2.3"; g; g = strcmp(g, "239.1.2.3") ? NULL : "239.1.2.4") {
      struct group_filter gf;
      group_v4(&gf, g);
      if (!member_any(s, IPPROTO_IP, &gf)) test_fail("not in %s for any source", g);
      group_v4(&gf, g);
      if (member_any(none, IPPROTO_IP, &gf)) test_fail("the other socket joined %s", g);
      struct ip_mreqn m = {.imr_ifindex = (int)if_nametoindex("lo")};
      inet_pton(AF_INET, g, &m.imr_multiaddr);
      if (setsockopt(s, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m)) test_fail_errno("no longer in %s", g);
    }
  }
  return test_pass();
}
