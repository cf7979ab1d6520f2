// A child stopped by SIGTSTP whose process group has since been orphaned, which crdump must
// refuse: the kernel discards SIGTSTP in an orphaned group, so restore could not stop it by
// that signal again. The root's child Q forks K, which leads a group of its own; Q stops K with
// SIGTSTP (not orphaned yet: Q is in another group of the session), then calls setsid(): K's
// only link to the session is gone, and no SIGHUP comes (the kernel sends one when a parent
// exits, not when it leaves). After the refused dumps K must still be stopped by SIGTSTP; Q
// then lets it go and both exit 0.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static char state_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  if (test_read_file(path, buf, sizeof buf) < 0) return '?';
  const char *p = strrchr(buf, ')');
  return p ? p[2] : '?';
}

// Q: returns its exit code (0: every check passed).
static int q_main(int go_rd, int set_wr) {
  int k_pipe[2];
  if (pipe(k_pipe)) return 2;
  pid_t k = fork();
  if (k < 0) return 3;
  if (k == 0) {
    close(k_pipe[1]);
    char c;
    // Runs only after SIGCONT; EOF when Q lets it go.
    _exit(read(k_pipe[0], &c, 1) == 0 ? 0 : 4);
  }
  close(k_pipe[0]);
  if (setpgid(k, k)) return 5;
  if (kill(k, SIGTSTP)) return 6;
  int st;
  if (waitpid(k, &st, WUNTRACED) != k || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGTSTP) return 7;
  if (setsid() < 0) return 8;
  if (write(set_wr, "s", 1) != 1) return 9;
  close(set_wr);
  char c;
  if (read(go_rd, &c, 1) != 1) return 10;
  if (state_of(k) != 'T') return 11;
  if (kill(k, SIGCONT)) return 12;
  close(k_pipe[1]);
  if (waitpid(k, &st, 0) != k || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 13;
  return 0;
}

int main(void) {
  test_init();
  int go[2], set[2];
  if (pipe(go) || pipe(set)) test_fail_errno("pipe");
  pid_t q = fork();
  if (q < 0) test_fail_errno("fork");
  if (q == 0) {
    close(3);  // the harness's ready pipe
    close(go[1]);
    close(set[0]);
    _exit(q_main(go[0], set[1]));
  }
  close(go[0]);
  close(set[1]);
  char c;
  if (read(set[0], &c, 1) != 1) test_fail("Q did not set up its stopped child");
  close(set[0]);

  test_ready();
  test_wait();

  if (write(go[1], "g", 1) != 1) test_fail_errno("write to Q");
  int st;
  if (waitpid(q, &st, 0) != q) test_fail_errno("waitpid Q");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) test_fail("Q: status %#x", st);
  return test_pass();
}
