// An orphan: the root is a child subreaper (PR_SET_CHILD_SUBREAPER, as a container's init or a
// job supervisor is); its child forks a grandchild and exits, so the grandchild is reparented to
// the root. After restore the root is a subreaper again, the orphan is still its child, and the
// root reaps it with the status it exits with.
#define _GNU_SOURCE
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) test_fail_errno("PR_SET_CHILD_SUBREAPER");
  const pid_t root = getpid();
  int go[2], rep[2];
  if (pipe(go) || pipe(rep)) test_fail_errno("pipe");
  pid_t mid = fork();
  if (mid < 0) test_fail_errno("fork");
  if (mid == 0) {
    close(3);
    close(go[1]);
    close(rep[0]);
    pid_t orphan = fork();
    if (orphan < 0) _exit(30);
    if (orphan == 0) {
      char c;
      if (read(go[0], &c, 1) != 1) _exit(31);
      char ok = getppid() == root ? 'y' : 'n';
      if (write(rep[1], &ok, 1) != 1) _exit(32);
      _exit(5);
    }
    _exit(0);  // the orphan goes to the root
  }
  close(go[0]);
  close(rep[1]);
  int st;
  if (waitpid(mid, &st, 0) != mid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("middle child status %#x", st);
  test_ready();
  test_wait();

  int sub = 0;
  if (prctl(PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0) != 0 || sub != 1)
    test_fail("not a child subreaper any more (%d)", sub);
  if (write(go[1], "g", 1) != 1) test_fail_errno("go");
  char ok = 0;
  if (read(rep[0], &ok, 1) != 1 || ok != 'y') test_fail("the orphan's parent is not the root");
  pid_t got = waitpid(-1, &st, 0);
  if (got <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 5)
    test_fail("reaped %d with status %#x, want the orphan's exit 5", got, st);
  return test_pass();
}
