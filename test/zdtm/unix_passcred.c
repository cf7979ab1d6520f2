// Credentials in flight (SCM_CREDENTIALS) on receivers with SO_PASSCRED: a dgram pair carries
// a message of the process itself; a stream pair a run sent before SO_PASSCRED was on (no
// credentials), then runs of a child of the tree (with another uid and gid when run as root)
// and of the process; a seqpacket pair whose sender is closed, the child's message. After
// restore each message comes back with the pid, uid and gid it was sent with (the child's pid
// is its own again), a run without credentials still without.
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static void check(int s, const char *data, pid_t pid, uid_t uid, gid_t gid) {
  char b[64] = {0};
  char cbuf[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec iov = {.iov_base = b, .iov_len = strlen(data)};
  struct msghdr m = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  if (recvmsg(s, &m, MSG_DONTWAIT) != (ssize_t)strlen(data) || strcmp(b, data) != 0)
    test_fail("'%s' lost or changed (got '%s')", data, b);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_type != SCM_CREDENTIALS) test_fail("'%s': no credentials", data);
  struct ucred cr;
  memcpy(&cr, CMSG_DATA(c), sizeof cr);
  if (cr.pid != pid || (pid != 0 && (cr.uid != uid || cr.gid != gid)))
    test_fail("'%s': credentials pid %d uid %d gid %d, want %d %d %d", data, (int)cr.pid,
              (int)cr.uid, (int)cr.gid, (int)pid, (int)uid, (int)gid);
}

int main(void) {
  test_init();
  int one = 1, dg[2], st[2], sp[2], ready[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || socketpair(AF_UNIX, SOCK_STREAM, 0, st) ||
      socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) || pipe(ready))
    test_fail_errno("setup");
  if (send(st[0], "plain", 5, 0) != 5) test_fail_errno("send plain");
  if (setsockopt(dg[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) ||
      setsockopt(st[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) ||
      setsockopt(sp[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one))
    test_fail_errno("SO_PASSCRED");
  if (send(dg[0], "self", 4, 0) != 4) test_fail_errno("send self");
  const uid_t cuid = geteuid() == 0 ? 4343 : getuid();
  const gid_t cgid = geteuid() == 0 ? 4242 : getgid();
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(ready[0]);
    close(3);  // the harness's ready pipe: the parent says ready
    if (geteuid() == 0 && (setresgid(cgid, cgid, cgid) || setresuid(cuid, cuid, cuid)))
      _exit(2);
    if (send(st[0], "child", 5, 0) != 5 || send(sp[0], "closed", 6, 0) != 6) _exit(3);
    close(sp[0]);
    close(ready[1]);  // sent
    pause();          // a process of the tree until the end
    _exit(0);
  }
  close(ready[1]);
  char x;
  if (read(ready[0], &x, 1) != 0) test_fail("child setup");
  close(sp[0]);  // the seqpacket sender is gone (the child's copy too: close below)
  if (send(st[0], "parent", 6, 0) != 6) test_fail_errno("send parent");
  test_ready();
  test_wait();
  check(dg[1], "self", getpid(), getuid(), getgid());
  check(st[1], "plain", 0, 0, 0);
  check(st[1], "child", child, cuid, cgid);
  check(st[1], "parent", getpid(), getuid(), getgid());
  check(sp[1], "closed", child, cuid, cgid);
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  return test_pass();
}
