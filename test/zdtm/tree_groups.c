// A three-generation tree with its own process groups and a session: the child leads a new
// process group, the grandchild joins it, a second child starts its own session. After restore
// every pid, parent, group and session is as it was, and the tree still works as one: the
// grandchild's exit reaches the child, the child's reaches the parent.
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

// Each process reports "pid ppid pgid sid" on its pipe once set up, and again after restore.
static int check_ids(int fd, pid_t pid, pid_t ppid, pid_t pgid, pid_t sid, const char *who) {
  pid_t got[4];
  if (read(fd, got, sizeof got) != sizeof got) test_fail("%s: no report", who);
  if (got[0] != pid || got[1] != ppid || got[2] != pgid || got[3] != sid)
    test_fail("%s: pid %d ppid %d pgid %d sid %d, want %d %d %d %d", who, got[0], got[1], got[2],
              got[3], pid, ppid, pgid, sid);
  return 0;
}

static void report_ids(int fd) {
  pid_t ids[4] = {getpid(), getppid(), getpgrp(), getsid(0)};
  if (write(fd, ids, sizeof ids) != sizeof ids) _exit(30);
}

// Waits for 'g' on `cmd`, then reports its ids on `rep`.
static void wait_go(int cmd, int rep) {
  char c;
  if (read(cmd, &c, 1) != 1 || c != 'g') _exit(31);
  report_ids(rep);
}

int main(void) {
  test_init();
  // One command pipe per process, so each "go" reaches the one it is meant for.
  int cg[2], cc[2], cl[2], rep[2];
  if (pipe(cg) || pipe(cc) || pipe(cl) || pipe(rep)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child == 0) {
    close(3);
    setpgid(0, 0);
    pid_t grand = fork();
    if (grand == 0) {
      setpgid(0, getppid());
      report_ids(rep[1]);
      wait_go(cg[0], rep[1]);
      _exit(5);
    }
    setpgid(grand, getpid());
    report_ids(rep[1]);
    int st;
    if (waitpid(grand, &st, 0) != grand || !WIFEXITED(st) || WEXITSTATUS(st) != 5) _exit(32);
    wait_go(cc[0], rep[1]);
    _exit(6);
  }
  pid_t leader = fork();
  if (leader == 0) {
    close(3);
    setsid();
    report_ids(rep[1]);
    wait_go(cl[0], rep[1]);
    _exit(4);
  }
  // Three reports, in any order: learn the grandchild's pid from its report.
  pid_t grand = 0;
  for (int i = 0; i < 3; ++i) {
    pid_t ids[4];
    if (read(rep[0], ids, sizeof ids) != sizeof ids) test_fail("setup report");
    if (ids[0] != child && ids[0] != leader) grand = ids[0];
  }
  if (grand == 0) test_fail("no grandchild report");
  test_ready();
  test_wait();
  const pid_t me = getpid(), my_sid = getsid(0);
  // One at a time, so the reports come back in a known order: grandchild, child, leader.
  if (write(cg[1], "g", 1) != 1) test_fail_errno("go");
  check_ids(rep[0], grand, child, child, my_sid, "grandchild");
  if (write(cc[1], "g", 1) != 1) test_fail_errno("go");
  check_ids(rep[0], child, me, child, my_sid, "child");
  if (write(cl[1], "g", 1) != 1) test_fail_errno("go");
  check_ids(rep[0], leader, me, leader, leader, "session leader");
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 6)
    test_fail("child status %#x", st);
  if (waitpid(leader, &st, 0) != leader || !WIFEXITED(st) || WEXITSTATUS(st) != 4)
    test_fail("session leader status %#x", st);
  return test_pass();
}
