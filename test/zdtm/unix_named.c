// Named unix sockets: a stream listener bound to a path relative to the cwd, a connection
// accepted from it whose client lives in a child, with bytes queued both ways; an abstract
// seqpacket listener; a dgram socket bound to a path with datagrams queued by a sender that is
// gone and from a bound client. After restore the names are the same (getsockname, getpeername),
// the queued data arrives with its boundaries, the child's client still talks to the parent's
// accepted socket, and new clients can connect to both listeners; a connection whose client has
// closed keeps its bytes and then reads EOF; two connections accepted from a listener closed since
// keep its name and stay connected, and nobody answers at it; SO_PASSCRED, SO_RCVBUF and
// SO_PEEK_OFF are kept; the socket file keeps its mode.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static unsigned char buf[8192];

static socklen_t path_addr(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  strcpy(a->sun_path, path);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static socklen_t abstract_addr(struct sockaddr_un *a, const char *name) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  memcpy(a->sun_path + 1, name, strlen(name));
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
}

// The socket's own name (or its peer's) must be exactly `want` of `len` bytes.
static int name_is(int fd, int peer, const struct sockaddr_un *want, socklen_t len) {
  struct sockaddr_un got;
  socklen_t glen = sizeof got;
  int r = peer ? getpeername(fd, (struct sockaddr *)&got, &glen)
               : getsockname(fd, (struct sockaddr *)&got, &glen);
  return r == 0 && glen == len && memcmp(&got, want, len) == 0;
}

static int read_exact(int fd, size_t len, uint32_t seed) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
    if (n <= 0) return 1;
    got += (size_t)n;
  }
  return test_check(buf, len, 0, seed) == -1 ? 0 : 2;
}

static int send_pattern(int fd, size_t len, uint32_t seed) {
  test_fill(buf, len, 0, seed);
  return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

// A new client reaches the listener, and a round trip works.
static void check_new_client(int listener, int type, const struct sockaddr_un *a, socklen_t len,
                             const char *what) {
  int c = socket(AF_UNIX, type, 0);
  if (c < 0) test_fail_errno("socket");
  if (connect(c, (const struct sockaddr *)a, len))
    test_fail_errno("connect a new client to %s", what);
  int s = accept(listener, NULL, NULL);
  if (s < 0) test_fail_errno("accept a new client on %s", what);
  if (send(c, "ping", 4, 0) != 4 || recv(s, buf, 4, 0) != 4 || memcmp(buf, "ping", 4))
    test_fail("no round trip through %s", what);
  close(c);
  close(s);
}

int main(void) {
  test_init();
  struct sockaddr_un srv, abs, dg;
  socklen_t srv_len = path_addr(&srv, "srv.sock");
  char absname[64];
  snprintf(absname, sizeof absname, "crtools-zdtm-unix-named-%d", (int)getpid());
  socklen_t abs_len = abstract_addr(&abs, absname);
  socklen_t dg_len = path_addr(&dg, "dgram.sock");

  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&srv, srv_len) || listen(l, 7))
    test_fail_errno("listener");
  if (chmod("srv.sock", 0604)) test_fail_errno("chmod srv.sock");
  int q = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  if (q < 0 || bind(q, (struct sockaddr *)&abs, abs_len) || listen(q, 3))
    test_fail_errno("abstract listener");
  int d = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (d < 0 || bind(d, (struct sockaddr *)&dg, dg_len)) test_fail_errno("dgram bind");
  // Datagrams from an unnamed sender that is gone, and from a bound client, interleaved: each
  // must come back with its sender's address.
  struct sockaddr_un cl;
  socklen_t cl_len = path_addr(&cl, "cli.sock");
  int sender = socket(AF_UNIX, SOCK_DGRAM, 0), cli = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (cli < 0 || bind(cli, (struct sockaddr *)&cl, cl_len)) test_fail_errno("bind cli.sock");
  for (int i = 0; i < 4; ++i) {
    test_fill(buf, 100 * (size_t)(i + 1), 0, 60 + i);
    if (sendto(i == 1 ? cli : sender, buf, 100 * (size_t)(i + 1), 0, (struct sockaddr *)&dg,
               dg_len) != 100 * (i + 1))
      test_fail_errno("sendto dgram.sock");
  }
  close(sender);

  // Options that must come back: SO_PASSCRED, a receive buffer size, a peek offset.
  int one = 1, rcvbuf = 50000, peek = 2, want_rcvbuf = 0;
  socklen_t ilen = sizeof want_rcvbuf;
  if (setsockopt(q, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) ||
      setsockopt(d, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) ||
      setsockopt(d, SOL_SOCKET, SO_PEEK_OFF, &peek, sizeof peek) ||
      getsockopt(d, SOL_SOCKET, SO_RCVBUF, &want_rcvbuf, &ilen))
    test_fail_errno("setsockopt");

  // Sockets never connected: a bare stream socket and one bound, not listening.
  struct sockaddr_un idle;
  socklen_t idle_len = path_addr(&idle, "idle.sock");
  int bare = socket(AF_UNIX, SOCK_STREAM, 0), bound = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  if (bare < 0 || bound < 0 || bind(bound, (struct sockaddr *)&idle, idle_len))
    test_fail_errno("idle sockets");

  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&srv, srv_len)) test_fail_errno("connect");
  int a = accept(l, NULL, NULL);
  if (a < 0) test_fail_errno("accept");
  if (send_pattern(c, 1000, 1) || send_pattern(a, 2000, 2)) test_fail_errno("queue");
  // A second client sends and is gone: its accepted socket keeps the bytes, then EOF.
  int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
  if (c2 < 0 || connect(c2, (struct sockaddr *)&srv, srv_len)) test_fail_errno("connect c2");
  int a2 = accept(l, NULL, NULL);
  if (a2 < 0 || send(c2, "gone", 4, 0) != 4) test_fail_errno("accept c2");
  close(c2);
  // A listener that accepted two connections and was closed: both keep its name.
  struct sockaddr_un old;
  socklen_t old_len = path_addr(&old, "old.sock");
  int ol = socket(AF_UNIX, SOCK_STREAM, 0);
  if (ol < 0 || bind(ol, (struct sockaddr *)&old, old_len) || listen(ol, 2)) test_fail_errno("old");
  int oc[2], oa[2];
  for (int i = 0; i < 2; ++i) {
    oc[i] = socket(AF_UNIX, SOCK_STREAM, 0);
    if (oc[i] < 0 || connect(oc[i], (struct sockaddr *)&old, old_len))
      test_fail_errno("connect old");
    oa[i] = accept(ol, NULL, NULL);
    if (oa[i] < 0 || send_pattern(oc[i], 10 + (size_t)i, 80 + i)) test_fail_errno("accept old");
  }
  close(ol);
  int go[2];
  if (pipe(go)) test_fail_errno("pipe");
  pid_t pid = fork();
  if (pid < 0) test_fail_errno("fork");
  if (pid == 0) {
    close(3), close(l), close(q), close(d), close(a), close(a2), close(go[1]), close(bare),
        close(cli);
    close(bound);
    close(oc[0]), close(oc[1]), close(oa[0]), close(oa[1]);
    char g[2];
    if (read(go[0], g, 2) != 2) _exit(10);
    if (!name_is(c, 1, &srv, srv_len)) _exit(11);  // the client's peer is the listener's name
    if (read_exact(c, 2000, 2)) _exit(12);
    if (send(c, "after-child", 11, MSG_NOSIGNAL) != 11) _exit(13);
    _exit(0);
  }
  close(c), close(go[0]);
  test_ready();
  test_wait();

  if (!name_is(l, 0, &srv, srv_len)) test_fail("the listener's name changed");
  struct stat sb;
  if (stat("srv.sock", &sb) || !S_ISSOCK(sb.st_mode) || (sb.st_mode & 07777) != 0604)
    test_fail("srv.sock is not the listener's socket file with mode 0604");
  if (!name_is(a, 0, &srv, srv_len)) test_fail("the accepted socket's name changed");
  if (!name_is(q, 0, &abs, abs_len)) test_fail("the abstract listener's name changed");
  if (!name_is(d, 0, &dg, dg_len)) test_fail("the dgram socket's name changed");
  int v = 0;
  struct sockaddr_un peer;
  socklen_t plen = sizeof peer;
  if (getpeername(bare, (struct sockaddr *)&peer, &plen) != -1 || errno != ENOTCONN ||
      getsockopt(bare, SOL_SOCKET, SO_TYPE, &v, &ilen) || v != SOCK_STREAM)
    test_fail("the bare stream socket is not a bare stream socket");
  if (!name_is(bound, 0, &idle, idle_len) ||
      getsockopt(bound, SOL_SOCKET, SO_ACCEPTCONN, &v, &ilen) || v != 0)
    test_fail("the bound seqpacket socket lost its name, or listens");
  if (getsockopt(q, SOL_SOCKET, SO_PASSCRED, &v, &ilen) || v != 1) test_fail("SO_PASSCRED lost");
  if (getsockopt(d, SOL_SOCKET, SO_RCVBUF, &v, &ilen) || v != want_rcvbuf)
    test_fail("SO_RCVBUF %d, want %d", v, want_rcvbuf);
  if (getsockopt(d, SOL_SOCKET, SO_PEEK_OFF, &v, &ilen) || v != 2) test_fail("SO_PEEK_OFF %d", v);
  if (read_exact(a, 1000, 1)) test_fail("bytes the client queued before the dump are lost");
  if (!name_is(a2, 0, &srv, srv_len)) test_fail("the name of the socket whose client left changed");
  if (recv(a2, buf, sizeof buf, MSG_DONTWAIT) != 4 || memcmp(buf, "gone", 4) ||
      recv(a2, buf, sizeof buf, MSG_DONTWAIT) != 0)
    test_fail("the bytes of the client that left, then EOF, are not there");
  for (int i = 0; i < 4; ++i) {
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(d, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
    if (n != 100 * (i + 1) || test_check(buf, (size_t)n, 0, 60 + i) != -1)
      test_fail("datagram %d: %zd bytes or wrong contents", i, n);
    if (i == 1 ? flen != cl_len || memcmp(&from, &cl, cl_len) : flen != 0)
      test_fail("datagram %d: wrong sender address (%u bytes)", i, (unsigned)flen);
  }
  if (recv(d, buf, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN) test_fail("extra datagrams");
  for (int i = 0; i < 2; ++i) {
    if (!name_is(oa[i], 0, &old, old_len) || !name_is(oc[i], 1, &old, old_len))
      test_fail("connection %d of the closed listener lost its name", i);
    if (read_exact(oa[i], 10 + (size_t)i, 80 + i)) test_fail("connection %d lost its bytes", i);
    if (send(oa[i], "re", 2, 0) != 2 || recv(oc[i], buf, 2, MSG_DONTWAIT) != 2)
      test_fail("connection %d of the closed listener is not connected", i);
  }
  int probe = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(probe, (struct sockaddr *)&old, old_len) != -1 || errno != ECONNREFUSED)
    test_fail("the closed listener's name answers: %s", strerror(errno));
  close(probe);
  if (write(go[1], "go", 2) != 2) test_fail_errno("write go");
  if (recv(a, buf, 11, MSG_WAITALL) != 11 || memcmp(buf, "after-child", 11))
    test_fail("no message from the child's client after restore");
  int st;
  if (waitpid(pid, &st, 0) != pid) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) test_fail("child status %#x", st);
  check_new_client(l, SOCK_STREAM, &srv, srv_len, "srv.sock");
  check_new_client(q, SOCK_SEQPACKET, &abs, abs_len, "the abstract listener");
  return test_pass();
}
