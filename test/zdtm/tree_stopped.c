// Children stopped when dumped: three by SIGSTOP (one in a group of its own, one with two
// threads); with "tstp" the second is stopped by SIGTSTP instead (in a group of its own, so the
// stop is not discarded as it is in an orphaned group), which crdump refuses for now. After
// restore each is stopped again by the same signal: its parent's waitpid(WUNTRACED) reports
// the stop anew (a restore is a new stop), with that signal. After SIGCONT each carries on and
// exits with its own status.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static int go[2], started[2];

static void *spin(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

// Tells the parent it runs, then waits for its byte (after SIGCONT) and exits with `code`.
static void kid_main(int code, int threads) {
  close(3);
  close(go[1]);
  if (threads) {
    pthread_t t;
    if (pthread_create(&t, NULL, spin, NULL)) _exit(20);
  }
  // Only now may it be stopped: fd 3 (the harness's ready pipe) is closed.
  if (write(started[1], "s", 1) != 1) _exit(22);
  char c;
  _exit(read(go[0], &c, 1) == 1 ? code : 21);
}

static char state_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  if (test_read_file(path, buf, sizeof buf) < 0) test_fail_errno("%s", path);
  const char *p = strrchr(buf, ')');
  return p ? p[2] : '?';
}

int main(int argc, char **argv) {
  test_init();
  if (pipe(go) || pipe(started)) test_fail_errno("pipe");
  const int tstp = argc > 1 && !strcmp(argv[1], "tstp");
  const int sigs[3] = {SIGSTOP, tstp ? SIGTSTP : SIGSTOP, SIGSTOP};
  pid_t kids[3];
  for (int i = 0; i < 3; i++) {
    kids[i] = fork();
    if (kids[i] < 0) test_fail_errno("fork");
    if (kids[i] == 0) {
      if (i == 1) setpgid(0, 0);
      kid_main(10 + i, i == 2);
    }
    if (i == 1) setpgid(kids[i], kids[i]);
    char c;
    if (read(started[0], &c, 1) != 1) test_fail_errno("kid %d start", i);
    if (kill(kids[i], sigs[i])) test_fail_errno("kill");
    int st;
    if (waitpid(kids[i], &st, WUNTRACED) != kids[i]) test_fail_errno("waitpid");
    if (!WIFSTOPPED(st) || WSTOPSIG(st) != sigs[i]) test_fail("kid %d: status %#x", i, st);
  }
  close(go[0]);
  close(started[0]);
  close(started[1]);

  test_ready();
  test_wait();

  for (int i = 0; i < 3; i++) {
    if (state_of(kids[i]) != 'T') test_fail("kid %d: state %c, want T", i, state_of(kids[i]));
    // The restored stop is reported to the parent (the original's was consumed above); the
    // original left running has nothing new to report.
    int st = 0;
    pid_t r = waitpid(kids[i], &st, WUNTRACED | WNOHANG);
    if (r < 0) test_fail_errno("waitpid kid %d", i);
    if (r == kids[i] && (!WIFSTOPPED(st) || WSTOPSIG(st) != sigs[i]))
      test_fail("kid %d: restored stop status %#x, want stopped by %d", i, st, sigs[i]);
  }
  for (int i = 0; i < 3; i++)
    if (kill(kids[i], SIGCONT)) test_fail_errno("SIGCONT");
  if (write(go[1], "xxx", 3) != 3) test_fail_errno("write");
  for (int i = 0; i < 3; i++) {
    int st;
    if (waitpid(kids[i], &st, 0) != kids[i]) test_fail_errno("waitpid kid %d", i);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 10 + i) test_fail("kid %d: status %#x", i, st);
  }
  return test_pass();
}
