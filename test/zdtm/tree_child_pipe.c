// A child blocked in read on a pipe from its parent: the tree is dumped and restored, the child
// then gets its command and its exit status reaches the parent.
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int p[2];
  if (pipe(p)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);  // only the parent reports ready
    close(p[1]);
    char c;
    _exit(read(p[0], &c, 1) == 1 && c == 'q' ? 7 : 8);
  }
  close(p[0]);
  test_ready();
  test_wait();
  if (write(p[1], "q", 1) != 1) test_fail_errno("write to child");
  int st;
  if (waitpid(child, &st, 0) != child) test_fail_errno("waitpid child");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) test_fail("child status %#x", st);
  return test_pass();
}
