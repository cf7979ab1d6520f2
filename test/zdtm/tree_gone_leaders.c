// Sessions and process groups whose leader has exited, as daemons and job runners leave them:
// the root (a child subreaper, like a supervisor) started a child that called setsid() and forked
// a daemon before exiting (the daemon's session and group are the dead leader's), and a child
// that made its own group, forked a worker into it and exited. Both orphans are the root's now.
// After restore each is in the same session and group as before, still the root's child, and
// the daemon's own child is in its session too.
#define _GNU_SOURCE
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static int start[2], go[2], rep[2];  // start: report before; go: report after

struct ids {
  pid_t sid, pgid, ppid;
};

static struct ids mine(void) {
  struct ids i = {getsid(0), getpgrp(), getppid()};
  return i;
}

// Reports its ids before the dump and after it; the root compares. Waits for `child` (if any)
// before exiting, so that the child's parent is still this process when it looks.
static void report_twice(pid_t child) {
  char c;
  if (read(start[0], &c, 1) != 1) _exit(39);  // once the leaders are gone and reaped
  struct ids before = mine();
  if (write(rep[1], &before, sizeof before) != sizeof before) _exit(40);
  if (read(go[0], &c, 1) != 1) _exit(41);
  struct ids after = mine();
  if (write(rep[1], &after, sizeof after) != sizeof after) _exit(42);
  int st;
  if (child > 0 && (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
    _exit(43);
  _exit(0);
}

int main(void) {
  test_init();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) test_fail_errno("PR_SET_CHILD_SUBREAPER");
  if (pipe(start) || pipe(go) || pipe(rep)) test_fail_errno("pipe");
  pid_t leaders[2];
  for (int k = 0; k < 2; ++k) {
    leaders[k] = fork();
    if (leaders[k] < 0) test_fail_errno("fork");
    if (leaders[k] == 0) {
      close(3);
      if (k == 0 ? setsid() < 0 : setpgid(0, 0) != 0) _exit(30);
      pid_t w = fork();
      if (w < 0) _exit(31);
      if (w == 0) {
        pid_t kid = k == 0 ? fork() : -1;  // the daemon's child, in its session too
        if (kid == 0) report_twice(-1);
        report_twice(kid);
      }
      _exit(0);  // the leader goes; its session or group lives on in its members
    }
    int st;
    if (waitpid(leaders[k], &st, 0) != leaders[k] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      test_fail("leader %d status %#x", k, st);
  }
  struct ids before[3];
  for (int i = 0; i < 3; ++i)
    if (write(start[1], "s", 1) != 1) test_fail_errno("start");
  for (int i = 0; i < 3; ++i)
    if (read(rep[0], &before[i], sizeof before[i]) != sizeof before[i]) test_fail("report");
  test_ready();
  test_wait();

  for (int i = 0; i < 3; ++i)
    if (write(go[1], "g", 1) != 1) test_fail_errno("go");
  int matched = 0;
  for (int i = 0; i < 3; ++i) {
    struct ids after;
    if (read(rep[0], &after, sizeof after) != sizeof after) test_fail("report after");
    for (int j = 0; j < 3; ++j)
      if (after.sid == before[j].sid && after.pgid == before[j].pgid && after.ppid == before[j].ppid)
        ++matched;
  }
  if (matched != 3) test_fail("%d of 3 processes kept their session, group and parent", matched);
  // Sessions and groups as set up: the daemon's is its dead leader's.
  int in_daemon_session = 0, in_dead_group = 0;
  for (int j = 0; j < 3; ++j) {
    in_daemon_session += before[j].sid == leaders[0] && before[j].pgid == leaders[0];
    in_dead_group += before[j].pgid == leaders[1] && before[j].sid == getsid(0);
  }
  if (in_daemon_session != 2 || in_dead_group != 1)
    test_fail("setup: %d in the daemon session, %d in the dead group", in_daemon_session,
              in_dead_group);
  for (int i = 0; i < 2; ++i) {  // the daemon and the worker; the daemon reaps its own child
    int st;
    pid_t got = waitpid(-1, &st, 0);
    if (got <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) test_fail("reaped %d: %#x", got, st);
  }
  return test_pass();
}
