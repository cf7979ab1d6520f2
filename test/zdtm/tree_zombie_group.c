// Zombies in other process groups than their parent's (issue 11: a zombie came back in its
// parent's group). Z1 joined the group of L, a sibling made after it (so L does not exist yet
// when crrestore forks Z1 in pid order); Z2 led a group of its own; Z3, a child of L, stayed in
// the root's group. After restore /proc shows each zombie in its group, L still leads its own,
// and each zombie is reaped with its status.
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static pid_t pgrp_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  long n = test_read_file(path, buf, sizeof buf);
  const char *p = n > 0 ? strrchr(buf, ')') : NULL;
  char state;
  int ppid, pgrp;
  if (p == NULL || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) return -1;
  return pgrp;
}

static void wait_zombie(pid_t pid) {
  siginfo_t si;
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) != 0) test_fail_errno("waitid %d", pid);
}

int main(void) {
  test_init();
  // L's zombie comes to us when L is killed at the end, to be reaped here (not left to the
  // harness, which may restore this pid's tree again at once).
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) test_fail_errno("PR_SET_CHILD_SUBREAPER");
  const pid_t root_group = getpgrp();
  int go[2], l_ready[2];
  if (pipe(go) != 0 || pipe(l_ready) != 0) test_fail_errno("pipe");
  pid_t z1 = fork();
  if (z1 < 0) test_fail_errno("fork");
  if (z1 == 0) {
    pid_t l;
    close(go[1]);
    if (read(go[0], &l, sizeof l) != sizeof l) _exit(90);
    if (setpgid(0, l) != 0) _exit(91);
    _exit(11);
  }
  pid_t l = fork();
  if (l < 0) test_fail_errno("fork");
  if (l == 0) {
    close(3);
    if (setpgid(0, 0) != 0) _exit(92);
    pid_t z3 = fork();  // back in the root's group, under L
    if (z3 < 0) _exit(93);
    if (z3 == 0) {
      if (setpgid(0, root_group) != 0) _exit(94);
      _exit(13);
    }
    if (write(l_ready[1], &z3, sizeof z3) != sizeof z3) _exit(95);
    // Sits until the root kills it at the end; it never reaps its zombie.
    signal(SIGTERM, SIG_DFL);
    for (;;) pause();
  }
  pid_t z3;
  if (read(l_ready[0], &z3, sizeof z3) != sizeof z3) test_fail("L did not start");
  if (write(go[1], &l, sizeof l) != sizeof l) test_fail_errno("write");
  pid_t z2 = fork();
  if (z2 < 0) test_fail_errno("fork");
  if (z2 == 0) {
    if (setpgid(0, 0) != 0) _exit(96);
    _exit(12);
  }
  wait_zombie(z1);
  wait_zombie(z2);
  // Z3 is L's: it is a zombie once /proc shows it so.
  for (;;) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", z3);
    long n = test_read_file(path, buf, sizeof buf);
    const char *p = n > 0 ? strrchr(buf, ')') : NULL;
    if (p != NULL && p[2] == 'Z') break;
    sched_yield();
  }
  if (pgrp_of(z1) != l || pgrp_of(z2) != z2 || pgrp_of(l) != l)
    test_fail("setup: z1 in %d (want %d), z2 in %d, l in %d", pgrp_of(z1), l, pgrp_of(z2),
              pgrp_of(l));
  test_ready();
  test_wait();
  if (pgrp_of(l) != l) test_fail("L is in group %d, want its own %d", pgrp_of(l), l);
  if (pgrp_of(z1) != l) test_fail("zombie %d is in group %d, want L's %d", z1, pgrp_of(z1), l);
  if (pgrp_of(z2) != z2) test_fail("zombie %d is in group %d, want its own", z2, pgrp_of(z2));
  if (pgrp_of(z3) != root_group)
    test_fail("zombie %d (L's) is in group %d, want the root's %d", z3, pgrp_of(z3), root_group);
  int st;
  if (waitpid(z1, &st, 0) != z1 || !WIFEXITED(st) || WEXITSTATUS(st) != 11)
    test_fail("zombie 1 status %#x, want exit 11", st);
  if (waitpid(z2, &st, 0) != z2 || !WIFEXITED(st) || WEXITSTATUS(st) != 12)
    test_fail("zombie 2 status %#x, want exit 12", st);
  kill(l, SIGKILL);
  if (waitpid(l, &st, 0) != l) test_fail_errno("waitpid L");
  if (waitpid(z3, &st, 0) != z3 || !WIFEXITED(st) || WEXITSTATUS(st) != 13)
    test_fail("zombie 3 status %#x, want exit 13", st);
  return test_pass();
}
