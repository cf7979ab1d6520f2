// A parent and its child share socketpairs of all three types with data queued both ways at
// dump time: a stream pair (bytes), a dgram pair (several messages, one empty, whose
// boundaries must survive), a seqpacket pair, and a stream pair the child shut down for writing
// after queueing its last bytes. After restore each side reads what was queued for it, the
// shutdown still holds (the child's write fails with EPIPE, the parent reads EOF after the
// data), and a message sent after restore crosses from child to parent: the pairs really
// connect the two restored processes. Two more pairs lost their child end before the dump: a
// stream (the parent reads the child's bytes, then EOF) and a dgram (its datagram arrives, then
// sending fails with ECONNREFUSED as before the dump).
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static const size_t dgram_sizes[] = {1, 100, 0, 4000, 7};
static const size_t seq_sizes[] = {10, 2000, 33};
#define NDGRAM (sizeof dgram_sizes / sizeof dgram_sizes[0])
#define NSEQ (sizeof seq_sizes / sizeof seq_sizes[0])

static unsigned char buf[8192];

static int send_msg(int fd, size_t len, uint32_t seed) {
  test_fill(buf, len, 0, seed);
  return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

// Receives one message of exactly `len` pattern bytes, without waiting: it must be queued.
// Returns 0, or a small number saying what was wrong.
static int recv_msg(int fd, size_t len, uint32_t seed) {
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0) return 1;
  if ((size_t)n != len) return 2;
  return test_check(buf, len, 0, seed) == -1 ? 0 : 3;
}

static int read_exact(int fd, size_t len, uint32_t seed) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
    if (n <= 0) return 1;
    got += (size_t)n;
  }
  return test_check(buf, len, 0, seed) == -1 ? 0 : 3;
}

static void child(int sp, int dp, int qp, int hp, int cs, int cd, int sync_w, int go_r) {
  if (send_msg(sp, 5000, 2)) _exit(10);
  for (size_t i = 0; i < 2; ++i)
    if (send_msg(dp, 50 + i, 20 + i)) _exit(11);
  for (size_t i = 0; i < 2; ++i)
    if (send_msg(qp, 300 + i, 30 + i)) _exit(12);
  if (send(hp, "last", 4, MSG_NOSIGNAL) != 4 || shutdown(hp, SHUT_WR)) _exit(13);
  if (send(cs, "bye", 3, MSG_NOSIGNAL) != 3 || send(cd, "dbye", 4, MSG_NOSIGNAL) != 4) _exit(16);
  close(cs), close(cd);
  if (write(sync_w, "k", 1) != 1) _exit(14);
  char go[2];
  if (read(go_r, go, 2) != 2) _exit(15);
  // Restored: what the parent queued before the dump.
  if (read_exact(sp, 3000, 1)) _exit(20);
  for (size_t i = 0; i < NDGRAM; ++i)
    if (recv_msg(dp, dgram_sizes[i], 40 + i)) _exit(21 + i);
  for (size_t i = 0; i < NSEQ; ++i)
    if (recv_msg(qp, seq_sizes[i], 50 + i)) _exit(30 + i);
  if (recv(dp, buf, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN) _exit(35);  // nothing more
  if (send(hp, "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE) _exit(36);   // still shut down
  if (recv(hp, buf, 4, 0) != 4 || memcmp(buf, "back", 4)) _exit(37);
  if (send(sp, "after-child", 11, MSG_NOSIGNAL) != 11) _exit(38);
  _exit(0);
}

int main(void) {
  test_init();
  int sp[2], dp[2], qp[2], hp[2], cs[2], cd[2], sync[2], go[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dp) ||
      socketpair(AF_UNIX, SOCK_SEQPACKET, 0, qp) || socketpair(AF_UNIX, SOCK_STREAM, 0, hp) ||
      socketpair(AF_UNIX, SOCK_STREAM, 0, cs) || socketpair(AF_UNIX, SOCK_DGRAM, 0, cd))
    test_fail_errno("socketpair");
  if (pipe(sync) || pipe(go)) test_fail_errno("pipe");
  pid_t pid = fork();
  if (pid < 0) test_fail_errno("fork");
  if (pid == 0) {
    close(3);  // only the parent reports ready
    close(sp[0]), close(dp[0]), close(qp[0]), close(hp[0]), close(cs[0]), close(cd[0]);
    close(sync[0]), close(go[1]);
    child(sp[1], dp[1], qp[1], hp[1], cs[1], cd[1], sync[1], go[0]);
  }
  close(sp[1]), close(dp[1]), close(qp[1]), close(hp[1]), close(cs[1]), close(cd[1]);
  close(sync[1]), close(go[0]);
  if (send_msg(sp[0], 3000, 1)) test_fail_errno("stream send");
  for (size_t i = 0; i < NDGRAM; ++i)
    if (send_msg(dp[0], dgram_sizes[i], 40 + i)) test_fail_errno("dgram send %zu", i);
  for (size_t i = 0; i < NSEQ; ++i)
    if (send_msg(qp[0], seq_sizes[i], 50 + i)) test_fail_errno("seqpacket send %zu", i);
  // A stream pair filled until the kernel says EAGAIN: the whole queue must come back.
  int fp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fp)) test_fail_errno("socketpair full");
  size_t full = 0;
  for (;;) {
    test_fill(buf, 1000, full, 70);
    ssize_t n = send(fp[0], buf, 1000, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) test_fail_errno("fill");
    full += (size_t)n;
  }
  char k;
  if (read(sync[0], &k, 1) != 1) test_fail("the child did not queue its data");
  test_ready();
  test_wait();

  int r;
  if ((r = read_exact(sp[0], 5000, 2))) test_fail("stream bytes from the child: error %d", r);
  for (size_t i = 0; i < 2; ++i)
    if ((r = recv_msg(dp[0], 50 + i, 20 + i)))
      test_fail("datagram %zu from the child: error %d", i, r);
  for (size_t i = 0; i < 2; ++i)
    if ((r = recv_msg(qp[0], 300 + i, 30 + i)))
      test_fail("seqpacket %zu from the child: error %d", i, r);
  if (recv(hp[0], buf, sizeof buf, MSG_DONTWAIT) != 4 || memcmp(buf, "last", 4))
    test_fail("the child's last bytes before its shutdown are lost");
  if (recv(hp[0], buf, sizeof buf, MSG_DONTWAIT) != 0)
    test_fail("no EOF after the child's shutdown");
  if (send(hp[0], "back", 4, MSG_NOSIGNAL) != 4) test_fail_errno("send back on the half-shut pair");
  if (recv(cs[0], buf, sizeof buf, MSG_DONTWAIT) != 3 || memcmp(buf, "bye", 3))
    test_fail("the bytes of a stream whose peer closed are lost");
  if (recv(cs[0], buf, sizeof buf, MSG_DONTWAIT) != 0) test_fail("no EOF: the closed peer is back");
  if (recv(cd[0], buf, sizeof buf, MSG_DONTWAIT) != 4 || memcmp(buf, "dbye", 4))
    test_fail("the datagram of a pair whose peer closed is lost");
  if (send(cd[0], "x", 1, MSG_NOSIGNAL) != -1 || errno != ECONNREFUSED)
    test_fail("sending to the closed dgram peer: want ECONNREFUSED, got %s", strerror(errno));
  for (size_t got = 0; got < full;) {
    ssize_t n = recv(fp[1], buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) test_fail("full stream: %zu of %zu bytes", got, full);
    if (test_check(buf, (size_t)n, got, 70) != -1)
      test_fail("full stream: wrong bytes at %zu", got);
    got += (size_t)n;
  }
  if (write(go[1], "go", 2) != 2) test_fail_errno("write go");
  if (recv(sp[0], buf, 11, MSG_WAITALL) != 11 || memcmp(buf, "after-child", 11))
    test_fail("no message from the restored child over the stream pair");
  int st;
  if (waitpid(pid, &st, 0) != pid) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) test_fail("child status %#x", st);
  return test_pass();
}
