// A root in a net namespace of its own (the harness clones it with CLONE_NEWNET): lo up with
// an MTU of its own, an extra IPv4 and IPv6 address and a route via the extra address, sysctls
// (ip_forward, somaxconn, ping_group_range), a TCP listener on 127.0.0.1 and a UDP socket on
// the extra address. After restore each is checked, a new client connects to the listener and
// its bytes get through, and a datagram reaches the UDP socket.
//
// argv[1]:
//   "lo"           the above
//   "established"  also a connection to the listener accepted before the dump (crdump
//                  --tcp-established), each end with bytes in flight both ways
//   "veth"         also a veth pair inside the namespace, one end up with an MTU and a MAC
//                  of its own: after restore the same pair, each end with its settings
//   "tun", "bridge", "nft", "rule", "table":  something crdump refuses in the namespace
//                  (a tun device, a bridge, an nftables table, a policy rule, a route of
//                  another table)
//   "old_socket"   a socket made before the root unshared its net namespace: refused
//   "stranger"     a process outside the tree (a grandchild left to the harness, a subreaper)
//                  in the namespace: refused
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kPort = 7090, kUdpPort = 7091 };

static void sh(const char *cmd) {
  // iproute2 and nft print nothing when they succeed; their errors go to the log, before ready
  // (the log may change only then).
  int st = system(cmd);
  if (st != 0) test_fail("'%s' exited %#x", cmd, st);
}

static void write_sysctl(const char *name, const char *value) {
  char path[128];
  snprintf(path, sizeof path, "/proc/sys/net/%s", name);
  int fd = open(path, O_WRONLY);
  if (fd < 0 || write(fd, value, strlen(value)) < 0) test_fail_errno("write %s", path);
  close(fd);
}

static void check_sysctl(const char *name, const char *want) {
  char path[128], buf[64];
  snprintf(path, sizeof path, "/proc/sys/net/%s", name);
  if (test_read_file(path, buf, sizeof buf) < 0) test_fail_errno("read %s", path);
  buf[strcspn(buf, "\n")] = 0;
  if (strcmp(buf, want)) test_fail("%s is '%s', not '%s'", name, buf, want);
}

static int tcp_listener(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(kPort)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 8))
    test_fail_errno("listen on 127.0.0.1:%d", kPort);
  return s;
}

static int tcp_client(void) {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(kPort)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) test_fail_errno("connect");
  return c;
}

static void send_all(int s, const char *what, size_t n) {
  if (write(s, what, n) != (ssize_t)n) test_fail_errno("write %zu bytes", n);
}

static void expect(int s, const char *want) {
  char buf[64] = {0};
  size_t n = strlen(want), got = 0;
  while (got < n) {
    ssize_t r = read(s, buf + got, n - got);
    if (r <= 0) test_fail_errno("read after %zu of '%s'", got, want);
    got += (size_t)r;
  }
  if (memcmp(buf, want, n)) test_fail("read '%s', not '%s'", buf, want);
}

static int has_addr(const char *text, int family, int prefix) {
  struct ifaddrs *all, *i;
  if (getifaddrs(&all)) test_fail_errno("getifaddrs");
  int found = 0;
  for (i = all; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != family || strcmp(i->ifa_name, "lo")) continue;
    char buf[64];
    const void *a = family == AF_INET ? (void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                                      : (void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
    const void *m = family == AF_INET ? (void *)&((struct sockaddr_in *)i->ifa_netmask)->sin_addr
                                      : (void *)&((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr;
    int bits = 0;
    for (int b = 0; b < (family == AF_INET ? 4 : 16); b++)
      bits += __builtin_popcount(((const unsigned char *)m)[b]);
    inet_ntop(family, a, buf, sizeof buf);
    if (!strcmp(buf, text) && bits == prefix) found = 1;
  }
  freeifaddrs(all);
  return found;
}

int main(int argc, char **argv) {
  test_init();
  const char *mode = argc > 1 ? argv[1] : "lo";
  if (access("/proc/self/ns/net", F_OK)) test_fail("no net namespaces");
  int old = -1;
  if (!strcmp(mode, "old_socket")) {
    old = socket(AF_INET, SOCK_DGRAM, 0);
    if (old < 0 || unshare(CLONE_NEWNET)) test_fail_errno("socket, then unshare(CLONE_NEWNET)");
  }
  sh("ip link set lo up mtu 60000 && ip addr add 10.7.0.1/24 dev lo && "
     "ip -6 addr add fd00:7::1/64 dev lo && ip route add 10.8.0.0/16 via 10.7.0.2 dev lo");
  write_sysctl("ipv4/ip_forward", "1");
  write_sysctl("core/somaxconn", "1234");
  write_sysctl("ipv4/ping_group_range", "0 100");
  if (!strcmp(mode, "tun")) {
    int t = open("/dev/net/tun", O_RDWR);
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    strcpy(ifr.ifr_name, "crtun0");
    if (t < 0 || ioctl(t, TUNSETIFF, &ifr) || ioctl(t, TUNSETPERSIST, 1)) test_fail_errno("tun");
    close(t);
  } else if (!strcmp(mode, "bridge")) {
    sh("ip link add crbr0 type bridge");
  } else if (!strcmp(mode, "veth")) {
    sh("ip link add crve0 mtu 1400 address 02:00:00:00:06:01 type veth peer name crve1 "
       "address 02:00:00:00:06:02 && ip link set crve0 up");
  } else if (!strcmp(mode, "nft")) {
    sh("nft add table inet crtools_test_netns");
  } else if (!strcmp(mode, "rule")) {
    sh("ip rule add from 10.7.0.9 lookup 100 priority 100");
  } else if (!strcmp(mode, "table")) {
    sh("ip route add 10.9.0.0/16 dev lo table 100");
  } else if (!strcmp(mode, "stranger")) {
    // A grandchild whose parent exits goes to the harness (a child subreaper): outside the
    // tree, in its net namespace. It leaves when the root exits (its pidfd polls readable); it
    // holds nothing of the tree's.
    const pid_t root = getpid();
    int up[2];
    if (pipe(up)) test_fail_errno("pipe");
    pid_t k = fork();
    if (k == 0) {
      close(3);
      if (fork() == 0) {
        int pfd = (int)syscall(SYS_pidfd_open, root, 0);
        close(up[0]);
        close(up[1]);
        struct pollfd p = {.fd = pfd, .events = POLLIN};
        while (pfd >= 0 && poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
        _exit(0);
      }
      _exit(0);
    }
    close(up[1]);
    if (k < 0 || waitpid(k, NULL, 0) != k) test_fail("stranger");
    char c;
    if (read(up[0], &c, 1) != 0) test_fail("stranger's pipe");  // EOF: it has its pidfd
    close(up[0]);
  }
  int l = tcp_listener();
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in ua = {.sin_family = AF_INET, .sin_port = htons(kUdpPort)};
  inet_pton(AF_INET, "10.7.0.1", &ua.sin_addr);
  if (u < 0 || bind(u, (struct sockaddr *)&ua, sizeof ua)) test_fail_errno("udp bind");
  int cl = -1, sv = -1;
  if (!strcmp(mode, "established")) {
    cl = tcp_client();
    sv = accept(l, NULL, NULL);
    if (sv < 0) test_fail_errno("accept");
    send_all(cl, "ping", 4);  // queued at the server, not read before the dump
    send_all(sv, "pong", 4);
  }

  test_ready();
  test_wait();

  if (!has_addr("127.0.0.1", AF_INET, 8) || !has_addr("10.7.0.1", AF_INET, 24) ||
      !has_addr("::1", AF_INET6, 128) || !has_addr("fd00:7::1", AF_INET6, 64))
    test_fail("an address of lo is missing");
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  int q = socket(AF_INET, SOCK_DGRAM, 0);
  if (ioctl(q, SIOCGIFFLAGS, &ifr) || !(ifr.ifr_flags & IFF_UP)) test_fail("lo is not up");
  if (ioctl(q, SIOCGIFMTU, &ifr) || ifr.ifr_mtu != 60000) test_fail("lo's mtu %d", ifr.ifr_mtu);
  close(q);
  char routes[4096];
  if (test_read_file("/proc/net/route", routes, sizeof routes) < 0) test_fail_errno("route");
  // 10.8.0.0/16 via 10.7.0.2, in /proc/net/route's little-endian hex.
  if (!strstr(routes, "lo\t0000080A\t0200070A"))
    test_fail("route 10.8.0.0/16 missing:\n%s", routes);
  if (!strcmp(mode, "veth") &&
      (system("ip -o link show crve0 | grep -q 'crve0@crve1: <[^>]*UP[^>]*> mtu 1400 "
              ".*link/ether 02:00:00:00:06:01'") ||
       system("ip -o link show crve1 | grep -q 'crve1@crve0: <BROADCAST,MULTICAST> mtu "
              "1500 .*link/ether 02:00:00:00:06:02'")))
    test_fail("the veth pair is not as it was");
  check_sysctl("ipv4/ip_forward", "1");
  check_sysctl("core/somaxconn", "1234");
  check_sysctl("ipv4/ping_group_range", "0\t100");
  if (cl >= 0) {
    expect(sv, "ping");
    expect(cl, "pong");
    send_all(cl, "after", 5);
    expect(sv, "after");
  }
  int c = tcp_client();
  int a = accept(l, NULL, NULL);
  if (a < 0) test_fail_errno("accept after restore");
  send_all(c, "hello", 5);
  expect(a, "hello");
  int us = socket(AF_INET, SOCK_DGRAM, 0);
  if (sendto(us, "dgram", 5, 0, (struct sockaddr *)&ua, sizeof ua) != 5) test_fail_errno("sendto");
  char d[8] = {0};
  if (recv(u, d, sizeof d, 0) != 5 || memcmp(d, "dgram", 5)) test_fail("datagram '%s'", d);
  if (old >= 0) close(old);
  return test_pass();
}
