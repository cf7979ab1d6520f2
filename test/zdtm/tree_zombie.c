// Two children that have exited and were not reaped (zombies), one by exit(9), one killed by
// SIGTERM: after restore they are still there, with their pids, and the parent reaps each with
// the status it died with.
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) _exit(9);
  // The child inherits test_init's SIGTERM handler: it takes the default action only once it
  // has put it back, so SIGTERM stays blocked until then.
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, &old);
  pid_t killed = fork();
  if (killed < 0) test_fail_errno("fork");
  if (killed == 0) {
    close(3);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &term, NULL);
    for (;;) pause();
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  kill(killed, SIGTERM);
  siginfo_t si;
  // Wait for both to be zombies, without reaping them.
  if (waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT) != 0) test_fail_errno("waitid");
  if (waitid(P_PID, (id_t)killed, &si, WEXITED | WNOWAIT) != 0) test_fail_errno("waitid");
  test_ready();
  test_wait();
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 9)
    test_fail("zombie child status %#x, want exit 9", st);
  if (waitpid(killed, &st, 0) != killed || !WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM)
    test_fail("killed zombie status %#x, want SIGTERM", st);
  return test_pass();
}
