// Children stopped when dumped: three by SIGSTOP (the second in a group of its own, the last
// two with two threads each); with argv[1] "tstp", "ttin" or "ttou" the second is stopped by
// SIGTSTP, SIGTTIN or SIGTTOU instead (in a group of its own, so that the stop is not discarded
// as it is in an orphaned group: the root leads its session). After restore each is stopped
// again by the same signal: its parent's waitpid(WUNTRACED) reports the stop anew (a restore is
// a new stop), with that signal; the original left running has nothing new to report (or the
// same signal). A kid is known to be restored by its start time. After SIGCONT each carries on
// and exits with its own status.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig) {
  (void)sig;
  usr1_seen++;
}

// Tells the parent it runs, then waits for its byte (after SIGCONT) and exits with `code`.
// Every kid catches SIGUSR1: one sent while it is stopped stays queued (through the restore
// too: the /proc comparison sees it) and is handled once it runs again, by the main thread
// (the other one blocks it), before its read goes on (SA_RESTART).
static void kid_main(int code, int threads) {
  close(3);
  close(go[1]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR1, &sa, NULL)) _exit(23);
  if (threads) {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);  // inherited by the new thread
    pthread_t t;
    if (pthread_create(&t, NULL, spin, NULL)) _exit(20);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  }
  // Only now may it be stopped: fd 3 (the harness's ready pipe) is closed.
  if (write(started[1], "s", 1) != 1) _exit(22);
  char c;
  if (read(go[0], &c, 1) != 1) _exit(21);
  _exit(usr1_seen == 1 ? code : 24);
}

// Field `n` (3: state, 22: start time) of /proc/PID/stat, counted as proc(5) does.
static unsigned long long stat_field(pid_t pid, int n) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  if (test_read_file(path, buf, sizeof buf) < 0) test_fail_errno("%s", path);
  const char *p = strrchr(buf, ')');
  if (!p) test_fail("%s: no ')'", path);
  p += 2;  // field 3
  for (int f = 3; f < n; f++) {
    p = strchr(p, ' ');
    if (!p) test_fail("%s: no field %d", path, n);
    p++;
  }
  return n == 3 ? (unsigned long long)(unsigned char)*p : strtoull(p, NULL, 10);
}

int main(int argc, char **argv) {
  test_init();
  if (pipe(go) || pipe(started)) test_fail_errno("pipe");
  int sigs[3] = {SIGSTOP, SIGSTOP, SIGSTOP};
  if (argc > 1) {
    static const struct {
      const char *name;
      int sig;
    } kinds[] = {{"tstp", SIGTSTP}, {"ttin", SIGTTIN}, {"ttou", SIGTTOU}};
    sigs[1] = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
      if (!strcmp(argv[1], kinds[i].name)) sigs[1] = kinds[i].sig;
    if (!sigs[1]) test_fail("unknown stop %s", argv[1]);
  }
  pid_t kids[3];
  unsigned long long started_at[3];
  for (int i = 0; i < 3; i++) {
    kids[i] = fork();
    if (kids[i] < 0) test_fail_errno("fork");
    if (kids[i] == 0) {
      if (i == 1) setpgid(0, 0);
      kid_main(10 + i, i >= 1);
    }
    if (i == 1) setpgid(kids[i], kids[i]);
    char c;
    if (read(started[0], &c, 1) != 1) test_fail_errno("kid %d start", i);
    if (kill(kids[i], sigs[i])) test_fail_errno("kill");
    int st;
    if (waitpid(kids[i], &st, WUNTRACED) != kids[i]) test_fail_errno("waitpid");
    if (!WIFSTOPPED(st) || WSTOPSIG(st) != sigs[i]) test_fail("kid %d: status %#x", i, st);
    started_at[i] = stat_field(kids[i], 22);
    if (kill(kids[i], SIGUSR1)) test_fail_errno("SIGUSR1");
  }
  close(go[0]);
  close(started[0]);
  close(started[1]);

  test_ready();
  test_wait();

  for (int i = 0; i < 3; i++) {
    const char state = (char)stat_field(kids[i], 3);
    if (state != 'T') test_fail("kid %d: state %c, want T", i, state);
    // The restored stop is reported to the parent (the original's was consumed above). The
    // harness sends SIGTERM once no thread of the tree runs: every thread of the kid has
    // stopped, so its group stop is complete and reported.
    const int restored = stat_field(kids[i], 22) != started_at[i];
    int st = 0;
    pid_t r = waitpid(kids[i], &st, WUNTRACED | WNOHANG);
    if (r < 0) test_fail_errno("waitpid kid %d", i);
    if (restored && r != kids[i]) test_fail("kid %d: restored, but no stop reported", i);
    if (r == kids[i] && (!WIFSTOPPED(st) || WSTOPSIG(st) != sigs[i]))
      test_fail("kid %d: %s stop status %#x, want stopped by %d", i,
                restored ? "restored" : "original's", st, sigs[i]);
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
