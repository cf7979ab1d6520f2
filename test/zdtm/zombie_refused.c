// A child that has exited and was not reaped (a zombie): crdump must refuse it, naming it, and
// leave the tree intact; the parent then reaps it with the status it exited with.
#define _GNU_SOURCE
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) _exit(9);
  siginfo_t si;
  // Wait for it to be a zombie, without reaping it.
  if (waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT) != 0) test_fail_errno("waitid");
  test_ready();
  test_wait();
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 9)
    test_fail("zombie child status %#x", st);
  return test_pass();
}
